// Long-poll and batch limits on fetch (api-extensions.md §3 and §4): wait_ms,
// max_messages, max_bytes, and the "pending" and "seqs" keys they add. A
// waiting fetch lives on the shard that owns its subject; the subjects here
// fall on both shards and the connections on either, so waits on the
// connection's own shard and on the other one are both exercised.
//
// Nothing here sleeps to see that a fetch waits: a test waits until the
// broker reports it (gophermq_waiting_fetches), then acts.
#include <dirent.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "raw_socket.h"
#include "test_support.h"

namespace gophermq::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Subjects enough that both shards own some.
constexpr int kSubjects = 6;

// The answer of a fetch that used a field of §3, for plain ASCII data.
std::string ExpectedExtendedBody(const std::vector<std::string>& data, std::string_view id,
                                 std::uint64_t pending, std::uint64_t first_seq,
                                 std::string_view subject) {
  std::string body = ExpectedFetchBody(data, id, subject);
  std::string extras = ",\"pending\":" + std::to_string(pending) + ",\"seqs\":[";
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (i > 0) extras += ',';
    extras += std::to_string(first_seq + i);
  }
  extras += "]";
  body.insert(body.find(",\"subject\":"), extras);
  return body;
}

// Stops one thread of the broker until destroyed: ptrace stops the thread it
// is attached to and no other, so one shard stalls (as a swamped one would)
// while the rest serve on.
class StoppedThread {
 public:
  StoppedThread(pid_t pid, std::string_view name) {
    const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
    DIR* dir = ::opendir(tasks.c_str());
    if (dir == nullptr) {
      error_ = "cannot list " + tasks;
      return;
    }
    while (dirent* entry = ::readdir(dir)) {
      std::string comm;
      std::getline(std::ifstream(tasks + "/" + entry->d_name + "/comm"), comm);
      if (comm == name) tid_ = static_cast<pid_t>(std::stoi(entry->d_name));
    }
    ::closedir(dir);
    if (tid_ < 0) {
      error_ = "no thread named " + std::string(name);
      return;
    }
    if (::ptrace(PTRACE_SEIZE, tid_, nullptr, nullptr) != 0) {
      error_ = std::string("ptrace(PTRACE_SEIZE): ") + std::strerror(errno);
      tid_ = -1;
      return;
    }
    int status = 0;
    if (::ptrace(PTRACE_INTERRUPT, tid_, nullptr, nullptr) != 0 ||
        ::waitpid(tid_, &status, __WALL) != tid_ || !WIFSTOPPED(status)) {
      error_ = "the thread did not stop";
    }
  }
  ~StoppedThread() { Resume(); }
  StoppedThread(const StoppedThread&) = delete;
  StoppedThread& operator=(const StoppedThread&) = delete;

  // Empty when the thread is stopped.
  const std::string& error() const { return error_; }
  void Resume() {
    if (tid_ >= 0) ::ptrace(PTRACE_DETACH, tid_, nullptr, nullptr);
    tid_ = -1;
  }

 private:
  pid_t tid_ = -1;
  std::string error_;
};

class LongPollTest : public BrokerTest {
 protected:
  std::optional<BrokerOptions> Options() const override {
    return MonitoredOptions({"--broker.max-waiting-fetches=3", "--broker.max-fetch-wait=20s"});
  }

  // Waits (kPollFor at most) until the broker holds `count` waiting fetches.
  ::testing::AssertionResult WaitingFetchesReach(double count) {
    return MetricReaches("gophermq_waiting_fetches", count);
  }

  // SendFetch() of a long wait (only a publish, or an event of the test,
  // answers it within the client's timeout), once the broker holds it: then
  // `waiting` fetches wait in all.
  std::unique_ptr<HttpClient> StartWaiting(const std::string& subject, const std::string& id,
                                           double waiting) {
    std::unique_ptr<HttpClient> client = SendFetch(subject, id, R"("wait_ms":20000)");
    EXPECT_TRUE(WaitingFetchesReach(waiting));
    return client;
  }

  // Which shard answered what `probe` sent (one GET /ready): the one whose
  // request count moved. -1 when none did.
  int ShardThatAnswers(const std::function<void()>& probe, int shards) {
    std::vector<double> before;
    for (int shard = 0; shard < shards; ++shard) before.push_back(Metric(ShardRequests(shard)));
    probe();
    for (int shard = 0; shard < shards; ++shard) {
      if (Metric(ShardRequests(shard)) != before[shard]) return shard;
    }
    return -1;
  }
  // A new connection that shard `shard` accepted: the kernel spreads them by
  // the client's port, so a few tries find one.
  std::unique_ptr<HttpClient> ConnectOnShard(int shard, int shards) {
    for (int attempt = 0; attempt < 200; ++attempt) {
      std::unique_ptr<HttpClient> client = Connect();
      HttpResponse ready;
      const int answered = ShardThatAnswers(
          [&] { EXPECT_TRUE(client->Request("GET", "/ready", "", &ready)) << client->error(); },
          shards);
      if (answered == shard) return client;
    }
    ADD_FAILURE() << "no connection landed on shard " << shard;
    return nullptr;
  }
  static std::string ShardRequests(int shard) {
    return Joined({"gophermq_shard_requests_total{shard=\"", std::to_string(shard), "\"}"});
  }
};

TEST_F(LongPollTest, AWaitingFetchIsAnsweredByThePublishThatFeedsIt) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = Numbered("lp.feed.", s);
    const std::string id = Subscribe(subject);
    // Longer than the client's own timeout: only the publish can answer it
    // in time.
    auto waiting = StartWaiting(subject, id, 1);
    PublishOk(subject, "hello");
    EXPECT_TRUE(
        IsJsonResponse(Read(*waiting), 200, ExpectedExtendedBody({"hello"}, id, 0, 1, subject)));
    EXPECT_TRUE(WaitingFetchesReach(0));
    // The next wait starts from the next sequence number.
    auto again = StartWaiting(subject, id, 1);
    PublishOk(subject, "again");
    EXPECT_TRUE(
        IsJsonResponse(Read(*again), 200, ExpectedExtendedBody({"again"}, id, 0, 2, subject)));
  }
}

TEST_F(LongPollTest, WithSomethingPendingTheAnswerIsImmediate) {
  const std::string id = Subscribe("lp.now");
  PublishOk("lp.now", "already");
  const HttpResponse response =
      Post("/api/fetch", SubscriberBody("lp.now", id, R"("wait_ms":20000)"));
  EXPECT_TRUE(IsJsonResponse(response, 200, ExpectedExtendedBody({"already"}, id, 0, 1, "lp.now")));
}

TEST_F(LongPollTest, AtItsDeadlineAWaitIsAnEmpty200) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = Numbered("lp.deadline.", s);
    const std::string id = Subscribe(subject);
    const auto sent = Clock::now();
    const HttpResponse response =
        Post("/api/fetch", SubscriberBody(subject, id, R"("wait_ms":300)"));
    const auto took = Clock::now() - sent;
    EXPECT_TRUE(IsJsonResponse(response, 200, ExpectedExtendedBody({}, id, 0, 1, subject)));
    EXPECT_GE(took, milliseconds(290)) << "answered before its deadline";
  }
  EXPECT_EQ(Metric("gophermq_empty_fetches_total"), kSubjects);
}

TEST_F(LongPollTest, AWaitLongerThanTheBrokersMostIsClamped) {
  StartBroker(MonitoredOptions({"--broker.max-fetch-wait=200ms"}));
  const std::string id = Subscribe("lp.clamped");
  // An hour asked for; the client gives up after 5 s.
  const HttpResponse response =
      Post("/api/fetch", SubscriberBody("lp.clamped", id, R"("wait_ms":3600000)"));
  EXPECT_TRUE(IsJsonResponse(response, 200, ExpectedExtendedBody({}, id, 0, 1, "lp.clamped")));
  // The largest unsigned 64-bit value too: clamped, not refused.
  EXPECT_TRUE(IsJsonResponse(
      Post("/api/fetch", SubscriberBody("lp.clamped", id, R"("wait_ms":18446744073709551615)")),
      200, ExpectedExtendedBody({}, id, 0, 2, "lp.clamped")));
}

TEST_F(LongPollTest, TheOldestWaitingFetchOfASubscriberIsAnsweredFirst) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = Numbered("lp.order.", s);
    const std::string id = Subscribe(subject);
    auto first = StartWaiting(subject, id, 1);
    auto second = StartWaiting(subject, id, 2);
    PublishOk(subject, "one");
    EXPECT_TRUE(
        IsJsonResponse(Read(*first), 200, ExpectedExtendedBody({"one"}, id, 0, 1, subject)));
    ASSERT_TRUE(WaitingFetchesReach(1)) << "the second still waits";
    PublishOk(subject, "two");
    EXPECT_TRUE(
        IsJsonResponse(Read(*second), 200, ExpectedExtendedBody({"two"}, id, 0, 2, subject)));
  }
}

TEST_F(LongPollTest, OneWaitingFetchTooManyIs409) {
  const std::string id = Subscribe("lp.many");
  std::vector<std::unique_ptr<HttpClient>> waiting;
  for (int i = 0; i < 3; ++i) {  // broker.max-waiting-fetches
    waiting.push_back(StartWaiting("lp.many", id, i + 1));
  }
  const HttpResponse refused =
      Post("/api/fetch", SubscriberBody("lp.many", id, R"("wait_ms":20000)"));
  EXPECT_TRUE(IsJsonResponse(refused, 409, "{\"message\":\"too many waiting fetches\"}\n"));
  // Another subscriber is not held back by this one's waits.
  const std::string other = Subscribe("lp.many");
  auto other_waiting = StartWaiting("lp.many", other, 4);
  // One publish feeds the oldest of each subscriber's waits.
  PublishOk("lp.many", "m");
  EXPECT_TRUE(
      IsJsonResponse(Read(*waiting[0]), 200, ExpectedExtendedBody({"m"}, id, 0, 1, "lp.many")));
  EXPECT_TRUE(IsJsonResponse(Read(*other_waiting), 200,
                             ExpectedExtendedBody({"m"}, other, 0, 1, "lp.many")));
}

TEST_F(LongPollTest, AClientThatClosesWhileWaitingTakesNothing) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = Numbered("lp.gone.", s);
    const std::string id = Subscribe(subject);
    auto waiting = StartWaiting(subject, id, 1);
    waiting->Close();
    ASSERT_TRUE(WaitingFetchesReach(0)) << "the wait ends with its client";
    PublishOk(subject, "kept");
    EXPECT_EQ(Fetch(subject, id), std::vector<std::string>{"kept"});
  }
}

// Requests pipelined behind a waiting fetch are held unread, and once 64 KiB
// of them wait the broker reads nothing more from that client until the
// fetch is answered: it still sees the client go (here with a reset, as a
// crashed client's kernel sends), so the wait takes nothing.
TEST_F(LongPollTest, AClientThatGoesWithRequestsHeldBehindItsWaitTakesNothing) {
  std::string held;
  while (held.size() < 1024 * 1024) held += FormatRequest("GET", "/ready", "");
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = Numbered("lp.held.", s);
    const std::string id = Subscribe(subject);
    const double received_before = Metric("gophermq_received_bytes_total");
    RawSocket socket;
    ASSERT_TRUE(socket.Connect(port())) << socket.error();
    ASSERT_TRUE(socket.SendAll(
        FormatRequest("POST", "/api/fetch", SubscriberBody(subject, id, R"("wait_ms":20000)"))));
    ASSERT_TRUE(WaitingFetchesReach(1));
    // As much as the broker and the kernels take: the broker stops reading
    // once 64 KiB wait behind the fetch.
    socket.Send(held, milliseconds(300));
    ASSERT_TRUE(MetricBecomes(
        "gophermq_received_bytes_total",
        [&](double received) { return received >= received_before + 64 * 1024; },
        "64 KiB more received: the broker holds them and stopped reading"));
    socket.AbortiveClose();
    ASSERT_TRUE(WaitingFetchesReach(0)) << "the wait ends with its client";
    PublishOk(subject, "kept");
    EXPECT_EQ(Fetch(subject, id), std::vector<std::string>{"kept"});
  }
}

// A shard whose calls to another shard back up (that shard is swamped, or
// here stopped) stops receiving from all its clients until they drain. A
// long-poll client that goes meanwhile must still be seen, or the next
// message would be handed to its dead connection and lost.
TEST_F(LongPollTest, AClientThatGoesWhileItsShardStopsReceivingTakesNothing) {
  constexpr int kShards = 3;
  // One connection may pipeline as many publishes as it takes to back up.
  ASSERT_NO_FATAL_FAILURE(StartBroker(
      MonitoredOptions({"--broker.cores=3", "--broker.max-pipeline-depth=65536",
                        "--broker.max-waiting-fetches=3", "--broker.max-fetch-wait=20s"})));
  // Shard 0 holds the long poll and will pause; shard 1 stalls; shard 2
  // publishes. Which shard owns a subject: the one where subscribing to it
  // is no cross-shard call.
  std::unique_ptr<HttpClient> waiter = ConnectOnShard(0, kShards);
  std::unique_ptr<HttpClient> on_stalled = ConnectOnShard(1, kShards);
  std::unique_ptr<HttpClient> publisher = ConnectOnShard(2, kShards);
  ASSERT_TRUE(waiter && on_stalled && publisher);
  const auto owned_by = [&](HttpClient& local, std::string_view stem) {
    for (int n = 0; n < 1000; ++n) {
      const std::string subject = Numbered(stem, n);
      const double calls = Metric("gophermq_cross_shard_calls_total");
      HttpResponse subscribed;
      EXPECT_TRUE(local.Request("POST", "/api/subscribe", SubscribeBody(subject), &subscribed));
      const std::optional<SubscribeReply> reply = DecodeSubscribeReply(subscribed.body);
      if (!reply) break;
      if (Metric("gophermq_cross_shard_calls_total") == calls) {
        return std::make_pair(subject, reply->id);
      }
    }
    ADD_FAILURE() << "no subject " << stem << "N is owned by the connection's shard, or a "
                  << "subscribe failed";
    return std::make_pair(std::string(), std::string());
  };
  const auto [subject, id] = owned_by(*waiter, "lp.paused.");
  const std::string stalled_subject = owned_by(*on_stalled, "lp.stalled.").first;

  // A small max_bytes reserves little room for the answer, so the wait does
  // not hold the connection's input (a large one would, and a held
  // connection's hangup is watched for anyway): its receive is armed as
  // usual, until the pause cancels it.
  ASSERT_TRUE(waiter->SendRaw(FormatRequest(
      "POST", "/api/fetch", SubscriberBody(subject, id, R"("wait_ms":20000,"max_bytes":1024)"))));
  ASSERT_TRUE(WaitingFetchesReach(1));

  // A connection on shard 0 for the flood, found before shard 1 stalls (a
  // probe there would go unanswered).
  std::unique_ptr<RawSocket> flood;
  for (int attempt = 0; attempt < 200 && !flood; ++attempt) {
    auto socket = std::make_unique<RawSocket>();
    ASSERT_TRUE(socket->Connect(port())) << socket->error();
    const int answered = ShardThatAnswers(
        [&] {
          std::string answer;
          EXPECT_TRUE(socket->SendAll(FormatRequest("GET", "/ready", "")));
          EXPECT_TRUE(socket->ReadUntil("\r\n\r\n", milliseconds(5000), &answer));
        },
        kShards);
    if (answered == 0) flood = std::move(socket);
  }
  ASSERT_TRUE(flood) << "no connection landed on shard 0";

  StoppedThread stalled(broker_->pid(), "shard-1");
  ASSERT_EQ(stalled.error(), "");
  // Publishes for the stalled shard, as many as shard 0 takes before it
  // stops receiving.
  std::string publishes;
  const std::string one = FormatRequest("POST", "/api/publish", PublishBody(stalled_subject, "x"));
  while (publishes.size() < 40'000 * one.size()) publishes += one;
  // Until all are sent or the broker takes nothing for a while: once paused,
  // it takes none, and the kernel's buffers fill (a busy machine may also
  // keep shard 0 from reading for a moment, hence the generous stall).
  flood->Send(publishes, milliseconds(2000));
  ASSERT_TRUE(MetricBecomes(
      "gophermq_receive_pauses_total", [](double pauses) { return pauses >= 1; },
      "shard 0 stopped receiving"));

  waiter->Close();
  EXPECT_TRUE(WaitingFetchesReach(0)) << "the wait ends with its client, though shard 0 is paused";
  HttpResponse published;
  ASSERT_TRUE(publisher->Request("POST", "/api/publish", PublishBody(subject, "kept"), &published));
  EXPECT_TRUE(IsJsonResponse(published, 200, kOkBody));

  stalled.Resume();
  flood->Close();
  HttpResponse fetched;
  ASSERT_TRUE(publisher->Request("POST", "/api/fetch", FetchBody(subject, id), &fetched));
  EXPECT_TRUE(IsJsonResponse(fetched, 200, ExpectedFetchBody({"kept"}, id, subject)))
      << Describe(fetched);
}

TEST_F(LongPollTest, UnsubscribeAnswersItsWaitingFetches404) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = Numbered("lp.unsub.", s);
    const std::string id = Subscribe(subject);
    auto waiting = StartWaiting(subject, id, 1);
    EXPECT_TRUE(IsJsonResponse(Post("/api/unsubscribe", FetchBody(subject, id)), 200, kOkBody));
    EXPECT_TRUE(IsJsonResponse(Read(*waiting), 404, kBadIdBody));
    EXPECT_TRUE(WaitingFetchesReach(0));
  }
}

TEST_F(LongPollTest, AWaitingSubscriberDoesNotExpire) {
  const std::string id = SubscribeWith("lp.active", R"("inactive_threshold_ms":200)");
  // Waits four times its threshold; the broker looks at expiry meanwhile.
  const HttpResponse waited =
      Post("/api/fetch", SubscriberBody("lp.active", id, R"("wait_ms":800)"));
  EXPECT_TRUE(IsJsonResponse(waited, 200, ExpectedExtendedBody({}, id, 0, 1, "lp.active")));
  // Its idle clock restarted when the wait ended: it is still there.
  PublishOk("lp.active", "still");
  EXPECT_EQ(Fetch("lp.active", id), std::vector<std::string>{"still"});
}

TEST_F(LongPollTest, AnswersOnAConnectionStayInRequestOrder) {
  const std::string id = Subscribe("lp.pipelined");
  std::unique_ptr<HttpClient> client = Connect();
  ASSERT_TRUE(client->SendRaw(
      FormatRequest("POST", "/api/fetch", SubscriberBody("lp.pipelined", id, R"("wait_ms":300)")) +
      FormatRequest("GET", "/ready", "")));
  EXPECT_TRUE(
      IsJsonResponse(Read(*client), 200, ExpectedExtendedBody({}, id, 0, 1, "lp.pipelined")));
  EXPECT_EQ(Read(*client).status, 204) << "the ready after it";
}

TEST_F(LongPollTest, SigtermAnswersWaitingFetchesAtOnce) {
  std::vector<std::unique_ptr<HttpClient>> waiting;
  std::vector<std::string> ids;
  for (int s = 0; s < kSubjects; ++s) {
    ids.push_back(Subscribe(Numbered("lp.stop.", s)));
    waiting.push_back(SendFetch(Numbered("lp.stop.", s), ids.back(), R"("wait_ms":20000)"));
  }
  ASSERT_TRUE(WaitingFetchesReach(kSubjects));
  broker_->Signal(SIGTERM);
  for (int s = 0; s < kSubjects; ++s) {
    EXPECT_TRUE(IsJsonResponse(Read(*waiting[s]), 200,
                               ExpectedExtendedBody({}, ids[s], 0, 1, Numbered("lp.stop.", s))));
  }
  ASSERT_TRUE(broker_->WaitForExit(milliseconds(10'000)));
  const int status = broker_->wait_status();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
}

TEST_F(LongPollTest, MaxMessagesAndMaxBytesBoundOneAnswer) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = Numbered("lp.batch.", s);
    const std::string id = Subscribe(subject);
    for (const char* data : {"m1", "m2", "m3", "m4", "m5", "m6"}) PublishOk(subject, data);
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id, R"("max_messages":2)")), 200,
                       ExpectedExtendedBody({"m1", "m2"}, id, 4, 1, subject)));
    // Five bytes: m3 and m4 (two each) fit, m5 does not.
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id, R"("max_bytes":5)")),
                               200, ExpectedExtendedBody({"m3", "m4"}, id, 2, 3, subject)));
    // A message larger than max_bytes still goes, alone.
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id, R"("max_bytes":1)")),
                               200, ExpectedExtendedBody({"m5"}, id, 1, 5, subject)));
    // A plain fetch answers as the original does: no new keys.
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", FetchBody(subject, id)), 200,
                               ExpectedFetchBody({"m6"}, id, subject)));
  }
}

TEST_F(LongPollTest, SeqsCountWhatTheSubscriberReceivedDropsIncluded) {
  // Discard old: messages 1 to 3 were received, then dropped for 4 and 5.
  const std::string id = SubscribeWith("lp.seqs", R"("max_pending":2,"discard":"old")");
  for (const char* data : {"a", "b", "c", "d", "e"}) PublishOk("lp.seqs", data);
  EXPECT_TRUE(
      IsJsonResponse(Post("/api/fetch", SubscriberBody("lp.seqs", id, R"("max_messages":10)")), 200,
                     ExpectedExtendedBody({"d", "e"}, id, 0, 4, "lp.seqs")));
  // A later subscriber numbers from its own first message.
  const std::string later = Subscribe("lp.seqs");
  PublishOk("lp.seqs", "f");
  EXPECT_TRUE(
      IsJsonResponse(Post("/api/fetch", SubscriberBody("lp.seqs", later, R"("max_messages":10)")),
                     200, ExpectedExtendedBody({"f"}, later, 0, 1, "lp.seqs")));
}

TEST_F(LongPollTest, OutOfRangeFieldsAreAnInvalidBody) {
  const std::string id = Subscribe("lp.invalid");
  for (const char* fields : {R"("max_messages":0)", R"("max_bytes":0)", R"("wait_ms":-1)",
                             R"("wait_ms":"5")", R"("max_messages":1.5)", R"("max_bytes":true)"}) {
    SCOPED_TRACE(fields);
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody("lp.invalid", id, fields)), 400,
                               kInvalidBodyBody));
  }
  // null leaves a field unset, and wait_ms 0 does not wait.
  EXPECT_TRUE(IsJsonResponse(
      Post("/api/fetch", SubscriberBody("lp.invalid", id, R"("wait_ms":0,"max_bytes":null)")), 200,
      ExpectedExtendedBody({}, id, 0, 1, "lp.invalid")));
}

}  // namespace
}  // namespace gophermq::testing
