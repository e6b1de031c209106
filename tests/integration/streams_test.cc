// Server-Sent Event streams (api-extensions.md §8): GET /api/stream. The
// broker has two shards; each test opens streams for several subjects, so
// streams sit on either shard (by the connection) for subjects owned by
// either (by the hash).
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ack_test_support.h"
#include "event_stream_client.h"
#include "test_support.h"

namespace gophermq::testing {
namespace {

std::string StreamTarget(std::string_view subject, std::string_view id,
                         std::string_view extra = {}) {
  return Joined({"/api/stream?subject=", subject, "&id=", id, extra});
}

class StreamsTest : public BrokerTest {
 protected:
  std::optional<BrokerOptions> Options() const override {
    return MonitoredOptions({"--broker.stream-heartbeat=1h"});
  }

  // A stream of `id`, open (its head checked), or null with a failure.
  std::unique_ptr<EventStreamClient> OpenStream(std::string_view subject, std::string_view id,
                                                std::string_view extra = {},
                                                int receive_buffer = 0) {
    auto stream = std::make_unique<EventStreamClient>(receive_buffer);
    if (!stream->Open(port(), StreamTarget(subject, id, extra))) {
      ADD_FAILURE() << "stream of " << subject << " not open: " << stream->status() << " "
                    << stream->error() << stream->error_body();
      return nullptr;
    }
    EXPECT_EQ(stream->Header("Content-Type"), "text/event-stream");
    EXPECT_EQ(stream->Header("Cache-Control"), "no-cache");
    EXPECT_EQ(stream->Header("X-Accel-Buffering"), "no");
    return stream;
  }

  static std::vector<std::string> Data(const std::vector<StreamEvent>& events) {
    std::vector<std::string> out;
    for (const StreamEvent& event : events) out.push_back(event.data);
    return out;
  }
  static std::vector<std::string> Ids(const std::vector<StreamEvent>& events) {
    std::vector<std::string> out;
    for (const StreamEvent& event : events) out.push_back(event.id);
    return out;
  }
};

TEST_F(StreamsTest, SendsWhatIsPendingThenEachMessageAsItArrives) {
  std::vector<std::unique_ptr<EventStreamClient>> open;
  for (int s = 0; s < 4; ++s) {
    const std::string subject = SubjectName("stream.live", s);
    const std::string id = Subscribe(subject);
    ASSERT_FALSE(id.empty());
    PublishOk(subject, "one");
    PublishOk(subject, "two");
    auto stream = OpenStream(subject, id);
    ASSERT_NE(stream, nullptr);
    std::vector<StreamEvent> events = stream->Take(2);
    EXPECT_EQ(Data(events), (std::vector<std::string>{"one", "two"})) << subject;
    EXPECT_EQ(Ids(events), (std::vector<std::string>{"1", "2"}));
    PublishOk(subject, "three");
    EXPECT_TRUE(IsJsonResponse(
        Post("/api/publish/batch", Joined({R"({"subject":")", subject, R"(","data":["4","5"]})"})),
        200, kOkBody));
    events = stream->Take(3);
    EXPECT_EQ(Data(events), (std::vector<std::string>{"three", "4", "5"})) << subject;
    EXPECT_EQ(Ids(events), (std::vector<std::string>{"3", "4", "5"}));
    // What went to the stream left the queue.
    EXPECT_EQ(Fetch(subject, id), std::vector<std::string>{});
    open.push_back(std::move(stream));
  }
  EXPECT_TRUE(MetricReaches("gophermq_streams", 4));
  EXPECT_EQ(Metric(R"(gophermq_requests_total{method="stream",code="200"})"), 4);
}

// An open stream keeps its subscriber active (it never expires meanwhile),
// and its info says so, as it does for a waiting fetch: idle_ms is 0.
TEST_F(StreamsTest, ASubscriberWithAStreamOpenIsNotIdleInItsInfo) {
  const std::string subject = UniqueSubject("stream.info");
  const std::string id = Subscribe(subject);
  auto stream = OpenStream(subject, id);
  ASSERT_TRUE(stream);
  // Long enough for an idle clock to show it (info restarts the clock).
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(GetInfo(subject, id).idle_ms, 0u);
  stream.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::uint64_t idle = 0;
  while ((idle = GetInfo(subject, id).idle_ms) == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
  }
  EXPECT_GT(idle, 0u) << "the stream closed: its subscriber's idle clock runs again";
}

TEST_F(StreamsTest, SplitsDataIntoLinesAndRoundTripsJsonExactly) {
  const std::vector<std::string> payloads = {
      "a\nb", "c\r\nd", "e\rf", "", "tail\n", "caf\xc3\xa9 \xe2\x82\xac", std::string("nul\0x", 5)};
  for (int s = 0; s < 2; ++s) {
    const std::string subject = SubjectName("stream.lines", s);
    const std::string plain = Subscribe(subject);
    const std::string json = Subscribe(subject);
    ASSERT_FALSE(plain.empty());
    ASSERT_FALSE(json.empty());
    std::string data;
    for (const std::string& payload : payloads) {
      std::string escaped;
      for (char c : payload) {
        if (c == '\n') {
          escaped += "\\n";
        } else if (c == '\r') {
          escaped += "\\r";
        } else if (c == '\0') {
          escaped += "\\u0000";
        } else {
          escaped += c;
        }
      }
      data += Joined({data.empty() ? "" : ",", "\"", escaped, "\""});
    }
    ASSERT_TRUE(IsJsonResponse(Post("/api/publish/batch", Joined({R"({"subject":")", subject,
                                                                  R"(","data":[)", data, "]}"})),
                               200, kOkBody));
    // Plain: every line end comes back as LF, as EventSource reads them.
    auto lines = OpenStream(subject, plain);
    ASSERT_NE(lines, nullptr);
    EXPECT_EQ(Data(lines->Take(payloads.size())),
              (std::vector<std::string>{"a\nb", "c\nd", "e\nf", "", "tail\n",
                                        "caf\xc3\xa9 \xe2\x82\xac", std::string("nul\0x", 5)}));
    // JSON: each event one line, the data exact.
    auto encoded = OpenStream(subject, json, "&encoding=json");
    ASSERT_NE(encoded, nullptr);
    const std::vector<StreamEvent> events = encoded->Take(payloads.size());
    ASSERT_EQ(events.size(), payloads.size());
    for (std::size_t i = 0; i < payloads.size(); ++i) {
      EXPECT_EQ(events[i].data.find('\n'), std::string::npos);
      const std::optional<JsonObject> object = DecodeJsonObject(events[i].data + "\n");
      ASSERT_TRUE(object.has_value()) << events[i].data;
      EXPECT_EQ(object->keys, (std::vector<std::string>{"data", "seq", "subject"}));
      EXPECT_EQ(object->strings.at("data"), payloads[i]);
      EXPECT_EQ(object->numbers.at("seq"), i + 1);
      EXPECT_EQ(object->strings.at("subject"), subject);
      EXPECT_EQ(events[i].id, std::to_string(i + 1));
    }
  }
}

TEST_F(StreamsTest, ErrorsBeforeTheStreamAreJsonAnswers) {
  const std::string subject = SubjectName("stream.errors", 0);
  const std::string id = Subscribe(subject);
  ASSERT_FALSE(id.empty());
  struct Case {
    std::string target;
    int status;
    std::string_view body;
  };
  const std::vector<Case> cases = {
      {StreamTarget("bad%20subject", id), 400, kInvalidSubjectBody},
      {Joined({"/api/stream?id=", id}), 400, kInvalidSubjectBody},
      {StreamTarget("a%2", id), 400, kInvalidSubjectBody},
      {StreamTarget(subject, "00000000-0000-4000-8000-000000000000"), 404, kBadIdBody},
      {StreamTarget(subject, "not-an-id"), 404, kBadIdBody},
      {Joined({"/api/stream?subject=", subject}), 404, kBadIdBody},
      {StreamTarget(subject, id, "&encoding=xml"), 400, kInvalidBodyBody},
  };
  for (const Case& c : cases) {
    EventStreamClient stream;
    EXPECT_FALSE(stream.Open(port(), c.target)) << c.target;
    EXPECT_EQ(stream.status(), c.status) << c.target;
    EXPECT_EQ(stream.error_body(), c.body) << c.target;
  }
  const HttpResponse post = Call("POST", StreamTarget(subject, id));
  EXPECT_TRUE(IsJsonResponse(post, 405, kMethodNotAllowedBody));
  ASSERT_NE(post.Header("Allow"), nullptr);
  EXPECT_EQ(*post.Header("Allow"), "GET");
}

TEST_F(StreamsTest, QueryValuesArePercentDecodedAndPlusIsLiteral) {
  const std::string subject = "stream.plus+dot";
  const std::string id = Subscribe(subject);
  ASSERT_FALSE(id.empty());
  PublishOk(subject, "found");
  auto stream = OpenStream("stream%2Eplus+dot", id);
  ASSERT_NE(stream, nullptr);
  EXPECT_EQ(Data(stream->Take(1)), std::vector<std::string>{"found"});
}

TEST_F(StreamsTest, ANewStreamReplacesTheOldOne) {
  for (int s = 0; s < 3; ++s) {
    const std::string subject = SubjectName("stream.replace", s);
    const std::string id = Subscribe(subject);
    ASSERT_FALSE(id.empty());
    auto first = OpenStream(subject, id);
    ASSERT_NE(first, nullptr);
    PublishOk(subject, "to the first");
    EXPECT_EQ(Data(first->Take(1)), std::vector<std::string>{"to the first"});
    auto second = OpenStream(subject, id);
    ASSERT_NE(second, nullptr);
    EXPECT_TRUE(first->EndsCleanly()) << "the replaced stream ends with its last chunk";
    PublishOk(subject, "to the second");
    EXPECT_EQ(Data(second->Take(1)), std::vector<std::string>{"to the second"});
  }
}

TEST_F(StreamsTest, UnsubscribeEndsTheStream) {
  for (int s = 0; s < 3; ++s) {
    const std::string subject = SubjectName("stream.unsubscribe", s);
    const std::string id = Subscribe(subject);
    ASSERT_FALSE(id.empty());
    auto stream = OpenStream(subject, id);
    ASSERT_NE(stream, nullptr);
    ASSERT_TRUE(MetricReaches("gophermq_streams", 1));
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/unsubscribe", SubscriberBody(subject, id)), 200, kOkBody));
    EXPECT_TRUE(stream->EndsCleanly());
    EXPECT_TRUE(MetricReaches("gophermq_streams", 0));
  }
}

TEST_F(StreamsTest, AStreamKeepsItsSubscriberFromExpiring) {
  const std::string subject = SubjectName("stream.expiry", 0);
  const std::string streamed = SubscribeWith(subject, R"("inactive_threshold_ms":200)");
  const std::string idle = SubscribeWith(subject, R"("inactive_threshold_ms":200)");
  ASSERT_FALSE(streamed.empty());
  ASSERT_FALSE(idle.empty());
  auto stream = OpenStream(subject, streamed);
  ASSERT_NE(stream, nullptr);
  // The idle one expires; the streamed one stays, however long it is quiet.
  ASSERT_TRUE(MetricReaches("gophermq_subscribers_expired_total", 1));
  PublishOk(subject, "still here");
  EXPECT_EQ(Data(stream->Take(1)), std::vector<std::string>{"still here"});
}

class StalledStreamTest : public StreamsTest {
 protected:
  std::optional<BrokerOptions> Options() const override {
    return MonitoredOptions({"--broker.idle-timeout=1s"});
  }
};

TEST_F(StalledStreamTest, AClientThatStopsReadingLeavesItsMessagesQueuedAndIsCutOff) {
  // A small receive window, a client that reads nothing: the broker may
  // send it its window of events and what the sockets' buffers hold, and
  // no more. Everything else stays queued. The stream is cut off once it
  // has taken nothing for the idle timeout, and a fetch then takes the
  // rest, in order, up to the last.
  const std::string subject = SubjectName("stream.slow", 0);
  const std::string id = Subscribe(subject);
  ASSERT_FALSE(id.empty());
  auto stream = OpenStream(subject, id, {}, 4096);
  ASSERT_NE(stream, nullptr);
  // The most the kernel may buffer towards this client: the broker lets at
  // most the window wait unsent (TCP_NOTSENT_LOWAT), not tcp_wmem's maximum
  // of megabytes, with what our fixed receive buffer lets into flight.
  constexpr std::size_t kPayload = 1024;
  constexpr std::uint64_t kWindow = 64 << 10;  // StreamFeeds::kWindowBytes
  const std::uint64_t may_leave = kWindow + 2 * kWindow + 2 * 4096 + 2 * (64 << 10);
  const std::size_t messages = static_cast<std::size_t>(may_leave / kPayload) + 2000;
  const std::string filler(kPayload - 8, 'x');
  for (std::size_t batch = 0; batch < messages; batch += 100) {
    std::string data;
    for (std::size_t i = batch; i < batch + 100 && i < messages; ++i) {
      data += Joined(
          {data.empty() ? "\"" : ",\"", std::to_string(i + 100000000).substr(1), filler, "\""});
    }
    ASSERT_TRUE(IsJsonResponse(Post("/api/publish/batch", Joined({R"({"subject":")", subject,
                                                                  R"(","data":[)", data, "]}"})),
                               200, kOkBody));
  }
  // Once the broker has cut it off, nothing more leaves.
  ASSERT_TRUE(MetricReaches("gophermq_streams", 0));
  EXPECT_GE(Metric(R"(gophermq_connections_closed_total{reason="write_stall"})"), 1);
  client_ = Connect();  // ours may have been idle past the timeout too
  std::vector<std::string> left;
  for (std::vector<std::string> more = Fetch(subject, id); !more.empty();
       more = Fetch(subject, id)) {
    left.insert(left.end(), more.begin(), more.end());
  }
  ASSERT_GE(left.size(), messages - may_leave / kPayload) << "the broker sent past its window";
  for (std::size_t i = 0; i < left.size(); ++i) {
    const std::size_t expected = messages - left.size() + i;
    ASSERT_EQ(left[i].substr(0, 8), std::to_string(expected + 100000000).substr(1))
        << "queued messages in order, up to the last";
  }
}

TEST_F(StreamsTest, AckModeStreamsHandOutInFlightMessages) {
  for (int s = 0; s < 2; ++s) {
    const std::string subject = SubjectName("stream.acks", s);
    const std::string id = SubscribeWith(subject, R"("ack_wait_ms":60000)");
    ASSERT_FALSE(id.empty());
    PublishOk(subject, "a");
    PublishOk(subject, "b");
    auto stream = OpenStream(subject, id);
    ASSERT_NE(stream, nullptr);
    EXPECT_EQ(Ids(stream->Take(2)), (std::vector<std::string>{"1", "2"}));
    EXPECT_EQ(GetInfo(subject, id).inflight, 2u);
    EXPECT_TRUE(IsJsonResponse(Post("/api/ack", SubscriberBody(subject, id, R"("seqs":[1])")), 200,
                               "{\"acked\":1,\"status\":\"ok\"}\n"));
    // A nack gives it back at once: the stream has it again.
    EXPECT_TRUE(IsJsonResponse(Post("/api/nack", SubscriberBody(subject, id, R"("seqs":[2])")), 200,
                               "{\"nacked\":1,\"status\":\"ok\"}\n"));
    const std::vector<StreamEvent> again = stream->Take(1);
    EXPECT_EQ(Ids(again), std::vector<std::string>{"2"});
    EXPECT_EQ(Data(again), std::vector<std::string>{"b"});
    EXPECT_EQ(GetInfo(subject, id).inflight, 1u);
  }
}

TEST_F(StreamsTest, AWildcardSubscribersEventsCarryEachMessagesOwnSubject) {
  const std::string pattern = "stream.wild.*.>";
  const std::string id = SubscribeWith(pattern, R"("wildcard":true)");
  ASSERT_FALSE(id.empty());
  auto plain = OpenStream(pattern, id);
  ASSERT_NE(plain, nullptr);
  // Subjects on both shards; one that does not match.
  std::vector<std::string> subjects;
  for (int s = 0; s < 4; ++s)
    subjects.push_back(Joined({"stream.wild.", SubjectName("s", s), ".x"}));
  for (const std::string& subject : subjects) PublishOk(subject, Joined({"to ", subject}));
  EXPECT_TRUE(IsJsonResponse(Publish("stream.wild.only", "x"), 404, kSubscriberNotFoundBody));
  std::vector<std::string> expected;
  for (const std::string& subject : subjects) expected.push_back(Joined({"to ", subject}));
  // Each subject's messages keep their order; across subjects on other
  // shards they may interleave.
  std::vector<std::string> got = Data(plain->Take(subjects.size()));
  std::sort(got.begin(), got.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(got, expected);
  auto json = OpenStream(pattern, id, "&encoding=json");  // replaces the plain one
  ASSERT_NE(json, nullptr);
  PublishOk(subjects[1], "json");
  const std::optional<StreamEvent> event = json->Next();
  ASSERT_TRUE(event.has_value());
  const std::optional<JsonObject> object = DecodeJsonObject(event->data + "\n");
  ASSERT_TRUE(object.has_value()) << event->data;
  EXPECT_EQ(object->strings.at("subject"), subjects[1]);
  EXPECT_EQ(object->strings.at("data"), "json");
}

class StreamHeartbeatTest : public StreamsTest {
 protected:
  std::optional<BrokerOptions> Options() const override {
    return MonitoredOptions({"--broker.stream-heartbeat=50ms"});
  }
};

TEST_F(StreamHeartbeatTest, AnIdleStreamGetsCommentLines) {
  const std::string subject = SubjectName("stream.heartbeat", 0);
  const std::string id = Subscribe(subject);
  ASSERT_FALSE(id.empty());
  auto stream = OpenStream(subject, id);
  ASSERT_NE(stream, nullptr);
  for (int i = 0; i < 3; ++i) {
    const std::optional<StreamEvent> beat = stream->Next(EventStreamClient::kTimeout, true);
    ASSERT_TRUE(beat.has_value());
    EXPECT_TRUE(beat->comment);
  }
  PublishOk(subject, "after the beats");
  EXPECT_EQ(Data(stream->Take(1)), std::vector<std::string>{"after the beats"});
}

TEST_F(StreamsTest, SigtermEndsEveryStreamCleanly) {
  std::vector<std::unique_ptr<EventStreamClient>> streams;
  for (int s = 0; s < 4; ++s) {
    const std::string subject = SubjectName("stream.stop", s);
    const std::string id = Subscribe(subject);
    ASSERT_FALSE(id.empty());
    streams.push_back(OpenStream(subject, id));
    ASSERT_NE(streams.back(), nullptr);
  }
  ASSERT_TRUE(MetricReaches("gophermq_streams", 4));
  broker_->Signal(SIGTERM);
  for (auto& stream : streams) EXPECT_TRUE(stream->EndsCleanly());
}

TEST_F(StreamsTest, HttpTenStreamsEndWithTheConnection) {
  const std::string subject = SubjectName("stream.http10", 0);
  const std::string id = Subscribe(subject);
  ASSERT_FALSE(id.empty());
  EventStreamClient stream;
  ASSERT_TRUE(stream.Open(port(), StreamTarget(subject, id), "HTTP/1.0")) << stream.error();
  EXPECT_EQ(stream.Header("Transfer-Encoding"), "");
  PublishOk(subject, "plain body");
  EXPECT_EQ(Data(stream.Take(1)), std::vector<std::string>{"plain body"});
  EXPECT_TRUE(IsJsonResponse(Post("/api/unsubscribe", SubscriberBody(subject, id)), 200, kOkBody));
  EXPECT_TRUE(stream.EndsCleanly());
}

// Coalescing (broker.stream-flush-interval): under load a stream is sent
// its events at most once an interval, many to a send.
class StreamCoalescingTest : public StreamsTest {
 protected:
  static constexpr int kIntervalMs = 200;
  std::optional<BrokerOptions> Options() const override {
    return MonitoredOptions({"--broker.stream-heartbeat=1h",
                             Numbered("--broker.stream-flush-interval=", kIntervalMs) + "ms"});
  }
};

TEST_F(StreamCoalescingTest, UnderLoadAStreamIsSentAtMostOnceAnInterval) {
  constexpr int kMessages = 30;
  for (int s = 0; s < 4; ++s) {
    const std::string subject = SubjectName("stream.coalesce", s);
    const std::string id = Subscribe(subject);
    ASSERT_FALSE(id.empty());
    auto stream = OpenStream(subject, id);
    ASSERT_NE(stream, nullptr);
    std::vector<std::string> published;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kMessages; ++i) {
      published.push_back(Numbered("m", i));
      PublishOk(subject, published.back());
    }
    EXPECT_EQ(Data(stream->Take(kMessages)), published) << subject;
    const auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - start)
                                .count();
    // The first goes at once (the stream was quiet); each later send comes
    // at least an interval after the one before (less a millisecond of the
    // broker's clock). Each send is one chunk.
    EXPECT_LE(stream->data_chunks(), static_cast<std::size_t>(2 + elapsed_ms / (kIntervalMs - 10)))
        << subject << ": " << kMessages << " messages in " << elapsed_ms << " ms";
  }
}

class StreamStopTest : public StreamsTest {
 protected:
  std::optional<BrokerOptions> Options() const override {
    return MonitoredOptions({"--broker.stream-heartbeat=1h", "--broker.stream-flush-interval=1s"});
  }
};

TEST_F(StreamStopTest, SigtermSendsWhatAStreamHeldBeforeItsEnd) {
  std::vector<std::unique_ptr<EventStreamClient>> streams;
  for (int s = 0; s < 4; ++s) {
    const std::string subject = SubjectName("stream.held", s);
    const std::string id = Subscribe(subject);
    ASSERT_FALSE(id.empty());
    streams.push_back(OpenStream(subject, id));
    ASSERT_NE(streams.back(), nullptr);
    PublishOk(subject, "first");
    EXPECT_EQ(Data(streams.back()->Take(1)), std::vector<std::string>{"first"});
    // Within a second of the first send: held for the rest of it.
    PublishOk(subject, "second");
    PublishOk(subject, "third");
  }
  broker_->Signal(SIGTERM);
  for (auto& stream : streams) {
    EXPECT_EQ(Data(stream->Take(2)), (std::vector<std::string>{"second", "third"}));
    EXPECT_TRUE(stream->EndsCleanly());
  }
}

class CorsStreamTest : public StreamsTest {
 protected:
  std::optional<BrokerOptions> Options() const override {
    return MonitoredOptions({"--broker.cors-origins=http://localhost:8080"});
  }
};

TEST_F(CorsStreamTest, AStreamToAnAllowedOriginCarriesItsHeaderAndIsPreflighted) {
  for (int s = 0; s < 2; ++s) {
    const std::string subject = SubjectName("stream.cors", s);
    const std::string id = Subscribe(subject);
    ASSERT_FALSE(id.empty());
    EventStreamClient stream;
    ASSERT_TRUE(stream.Open(port(), StreamTarget(subject, id), "HTTP/1.1",
                            "Origin: http://localhost:8080\r\n"))
        << stream.error();
    EXPECT_EQ(stream.Header("Access-Control-Allow-Origin"), "http://localhost:8080");
    PublishOk(subject, "cross-origin");
    EXPECT_EQ(Data(stream.Take(1)), std::vector<std::string>{"cross-origin"});
    EventStreamClient stranger;
    ASSERT_TRUE(stranger.Open(port(), StreamTarget(subject, id), "HTTP/1.1",
                              "Origin: http://elsewhere.example\r\n"));
    EXPECT_EQ(stranger.Header("Access-Control-Allow-Origin"), "");
  }
  const HttpResponse preflight =
      Call("OPTIONS", "/api/stream?subject=a&id=b", {},
           "Origin: http://localhost:8080\r\nAccess-Control-Request-Method: GET\r\n");
  EXPECT_EQ(preflight.status, 204);
  ASSERT_NE(preflight.Header("Access-Control-Allow-Origin"), nullptr);
  EXPECT_EQ(*preflight.Header("Access-Control-Allow-Origin"), "http://localhost:8080");
}

}  // namespace
}  // namespace gophermq::testing
