// Acknowledgements (api-extensions.md §5, §7 and §11): ack mode on subscribe
// (ack_wait_ms, max_ack_pending, max_deliver, dead_letter_subject), the
// ack-mode fetch answer {"data","deliveries","id","pending","seqs","subject"},
// POST /api/ack and /api/nack, redelivery after a deadline, dead letters
// (published to a subject that either shard may own), in-flight messages
// counted in every bound, /api/info, and the metrics of acknowledgements.
// Subjects fall on both shards (kSubjects of them) and the test's connection
// is on one of them, so ack-mode queues of either shard are exercised.
//
// Nothing here sleeps to let something happen: a redelivery, a dead letter or
// a metric is polled for until a deadline. That a message is NOT handed out
// again is asserted only with an ack_wait_ms far longer than the test.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "ack_test_support.h"
#include "test_support.h"

namespace gophermq::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Subjects enough that both shards own some.
constexpr int kSubjects = 6;
// Ack mode whose deadline no test reaches: a message is never handed out
// again unless nacked.
constexpr std::string_view kLongAckWait = R"("ack_wait_ms":60000)";
// One year in milliseconds: the largest ack_wait_ms and delay_ms.
constexpr std::uint64_t kOneYearMs = 31'536'000'000;

constexpr std::string_view kDoesNotUseAcksBody = "{\"message\":\"subscriber does not use acks\"}\n";

class AcksTest : public AckBrokerTest {
 protected:
  // Polls (kPollFor at most) until /healthz's pending count is `count`.
  ::testing::AssertionResult HealthzPendingBecomes(long long count) {
    return Eventually([this] { return static_cast<double>(HealthzPending()); },
                      [count](double seen) { return seen == static_cast<double>(count); },
                      "/healthz pending", std::to_string(count));
  }
};

// --- Fetch, ack, and what a fetch answers ---

TEST_F(AcksTest, AFetchHandsMessagesOutAndOnlyAnAckRemovesThem) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("ack.basic", s);
    const std::string id = SubscribeWith(subject, kLongAckWait);
    ASSERT_FALSE(id.empty());
    PublishOk(subject, "a");
    PublishOk(subject, "bb");
    PublishOk(subject, "ccc");
    // A fetch without any field of §3 still answers every key of ack mode.
    EXPECT_TRUE(IsJsonResponse(
        Post("/api/fetch", SubscriberBody(subject, id)), 200,
        ExpectedAckFetchBody({"a", "bb", "ccc"}, {1, 1, 1}, id, 0, {1, 2, 3}, subject)));
    // In flight, not gone: not handed out again before the deadline.
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id)), 200,
                               ExpectedAckFetchBody({}, {}, id, 0, {}, subject)));
    SubscriberInfo info = GetInfo(subject, id);
    EXPECT_EQ(info.inflight, 3u);
    EXPECT_EQ(info.pending, 0u);
    EXPECT_EQ(info.pending_bytes, 6u) << "in-flight payload is still held";
    EXPECT_EQ(HealthzPending(), 3);

    EXPECT_TRUE(IsJsonResponse(Ack(subject, id, R"("seqs":[1,3])"), 200, AckedBody(2)));
    EXPECT_TRUE(IsJsonResponse(Ack(subject, id, R"("seqs":[1,3])"), 200, AckedBody(0)))
        << "acking again acks nothing";
    info = GetInfo(subject, id);
    EXPECT_EQ(info.inflight, 1u);
    EXPECT_EQ(info.pending_bytes, 2u);
    EXPECT_EQ(HealthzPending(), 1);
    // Seqs not delivered yet (4) or never used (99) are ignored.
    EXPECT_TRUE(IsJsonResponse(Ack(subject, id, R"("seqs":[4,2,99])"), 200, AckedBody(1)));
    info = GetInfo(subject, id);
    EXPECT_EQ(info.inflight, 0u);
    EXPECT_EQ(info.pending, 0u);
    EXPECT_EQ(info.pending_bytes, 0u);
    EXPECT_EQ(HealthzPending(), 0);

    // The queue goes on numbering.
    PublishOk(subject, "d");
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id)), 200,
                               ExpectedAckFetchBody({"d"}, {1}, id, 0, {4}, subject)));
    EXPECT_TRUE(IsJsonResponse(Ack(subject, id, R"("through":4)"), 200, AckedBody(1)));
  }
}

TEST_F(AcksTest, ThroughAcksEveryInFlightSeqUpToItAndCombinesWithSeqs) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("ack.through", s);
    const std::string id = SubscribeWith(subject, kLongAckWait);
    ASSERT_FALSE(id.empty());
    for (int i = 1; i <= 8; ++i) PublishOk(subject, Numbered("m", i));
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id, R"("max_messages":4)")), 200,
                       ExpectedAckFetchBody({"m1", "m2", "m3", "m4"}, {1, 1, 1, 1}, id, 4,
                                            {1, 2, 3, 4}, subject)));
    EXPECT_TRUE(IsJsonResponse(Ack(subject, id, R"("through":2)"), 200, AckedBody(2)));
    // 5 and 6 were never handed out: a through past them leaves them queued.
    EXPECT_TRUE(IsJsonResponse(Ack(subject, id, R"("through":6)"), 200, AckedBody(2)));
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id, R"("max_messages":10)")), 200,
                       ExpectedAckFetchBody({"m5", "m6", "m7", "m8"}, {1, 1, 1, 1}, id, 0,
                                            {5, 6, 7, 8}, subject)));
    // Both at once: through 6 acks 5 and 6, seqs adds 8.
    EXPECT_TRUE(IsJsonResponse(Ack(subject, id, R"("seqs":[8],"through":6)"), 200, AckedBody(3)));
    EXPECT_EQ(GetInfo(subject, id).inflight, 1u);
    // A seq named twice is acked once.
    EXPECT_TRUE(IsJsonResponse(Ack(subject, id, R"("seqs":[7,7])"), 200, AckedBody(1)));
    EXPECT_EQ(GetInfo(subject, id).inflight, 0u);
    // Nothing to do is still a 200.
    EXPECT_TRUE(IsJsonResponse(Ack(subject, id, R"("seqs":[])"), 200, AckedBody(0)));
    EXPECT_TRUE(IsJsonResponse(Ack(subject, id, R"("through":0)"), 200, AckedBody(0)));
    // Sequences are unsigned 64-bit: the largest is a sequence an ack may
    // name (none has it) and a through past every one.
    PublishOk(subject, "m9");
    PublishOk(subject, "m10");
    ASSERT_EQ(Post("/api/fetch", SubscriberBody(subject, id, "")).status, 200);
    EXPECT_TRUE(
        IsJsonResponse(Ack(subject, id, R"("seqs":[18446744073709551615])"), 200, AckedBody(0)));
    EXPECT_TRUE(
        IsJsonResponse(Ack(subject, id, R"("through":18446744073709551615)"), 200, AckedBody(2)));
  }
  EXPECT_EQ(HealthzPending(), 0);
}

TEST_F(AcksTest, BatchLimitsAndLongPollWorkInAckMode) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("ack.batch", s);
    const std::string id = SubscribeWith(subject, kLongAckWait);
    ASSERT_FALSE(id.empty());
    for (const char* data : {"aa", "bb", "cc", "dddddd"}) PublishOk(subject, data);
    // Five bytes: aa and bb fit, cc does not.
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id, R"("max_bytes":5)")),
                               200,
                               ExpectedAckFetchBody({"aa", "bb"}, {1, 1}, id, 2, {1, 2}, subject)));
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id, R"("max_messages":1)")), 200,
                       ExpectedAckFetchBody({"cc"}, {1}, id, 1, {3}, subject)));
    // A message larger than max_bytes still goes, alone.
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id, R"("max_bytes":1)")),
                               200, ExpectedAckFetchBody({"dddddd"}, {1}, id, 0, {4}, subject)));
    // A wait with nothing available ends in an empty 200 at its deadline.
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id, R"("wait_ms":200)")),
                               200, ExpectedAckFetchBody({}, {}, id, 0, {}, subject)));
    // A parked fetch is answered by the publish that feeds it.
    auto parked = SendFetch(subject, id, R"("wait_ms":20000)", kLongClientTimeout);
    ASSERT_TRUE(MetricBecomes(
        "gophermq_waiting_fetches", [](double v) { return v == 1; }, "1"));
    PublishOk(subject, "e");
    EXPECT_TRUE(
        IsJsonResponse(Read(*parked), 200, ExpectedAckFetchBody({"e"}, {1}, id, 0, {5}, subject)));
    EXPECT_TRUE(IsJsonResponse(Ack(subject, id, R"("through":5)"), 200, AckedBody(5)));
  }
}

// --- Redelivery ---

TEST_F(AcksTest, AnUnackedMessageComesBackAfterItsDeadlineWithItsSeq) {
  int redeliveries = 0;
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("ack.redeliver", s);
    // One in flight at a time: while "first" is out, "second" cannot go, and
    // once "first" is back both are available and the lowest seq goes first.
    const std::string id = SubscribeWith(subject, R"("ack_wait_ms":200,"max_ack_pending":1)");
    ASSERT_FALSE(id.empty());
    PublishOk(subject, "first");
    PublishOk(subject, "second");
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id)), 200,
                               ExpectedAckFetchBody({"first"}, {1}, id, 1, {1}, subject)));
    for (std::uint64_t deliveries = 2; deliveries <= 3; ++deliveries) {
      const BatchReply again = FetchUntilSomething(subject, id);
      EXPECT_EQ(again.data, std::vector<std::string>{"first"});
      EXPECT_EQ(again.deliveries, std::vector<std::uint64_t>{deliveries});
      EXPECT_EQ(again.seqs, std::vector<std::uint64_t>{1});
      EXPECT_EQ(again.pending, 1u) << "\"second\" waits for the window";
      ++redeliveries;
    }
    redeliveries += AckSurely(subject, id, 1, "first", 3);
    // Its slot is free: the next one goes, for the first time.
    const BatchReply next = AckFetch(subject, id);
    EXPECT_EQ(next.data, std::vector<std::string>{"second"});
    EXPECT_EQ(next.deliveries, std::vector<std::uint64_t>{1});
    EXPECT_EQ(next.seqs, std::vector<std::uint64_t>{2});
    redeliveries += AckSurely(subject, id, 2, "second", 1);
  }
  EXPECT_EQ(HealthzPending(), 0);
  EXPECT_EQ(Metric("gophermq_messages_redelivered_total"), redeliveries);
  EXPECT_EQ(Metric("gophermq_inflight_messages"), 0);
}

TEST_F(AcksTest, MaxAckPendingBoundsWhatIsInFlight) {
  std::vector<std::string> ids;
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("ack.window", s);
    const std::string id = SubscribeWith(subject, R"("ack_wait_ms":60000,"max_ack_pending":2)");
    ASSERT_FALSE(id.empty());
    ids.push_back(id);
    for (int i = 1; i <= 5; ++i) PublishOk(subject, Numbered("m", i));
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id, R"("max_messages":10)")), 200,
                       ExpectedAckFetchBody({"m1", "m2"}, {1, 1}, id, 3, {1, 2}, subject)));
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id)), 200,
                               ExpectedAckFetchBody({}, {}, id, 3, {}, subject)))
        << "the window is full until an ack";
    EXPECT_TRUE(IsJsonResponse(Ack(subject, id, R"("seqs":[1])"), 200, AckedBody(1)));
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id)), 200,
                               ExpectedAckFetchBody({"m3"}, {1}, id, 2, {3}, subject)));
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id)), 200,
                               ExpectedAckFetchBody({}, {}, id, 2, {}, subject)));
    EXPECT_TRUE(IsJsonResponse(Ack(subject, id, R"("through":3)"), 200, AckedBody(2)));
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id)), 200,
                               ExpectedAckFetchBody({"m4", "m5"}, {1, 1}, id, 0, {4, 5}, subject)));
    const SubscriberInfo info = GetInfo(subject, id);
    EXPECT_EQ(info.inflight, 2u);
    EXPECT_EQ(info.pending, 0u);
  }
  // Two in flight on each subject, whichever shard owns it.
  EXPECT_EQ(Metric("gophermq_inflight_messages"), 2 * kSubjects);
  EXPECT_EQ(Metric("gophermq_pending_messages"), 2 * kSubjects);
  EXPECT_EQ(HealthzPending(), 2 * kSubjects);
  for (int s = 0; s < kSubjects; ++s) {
    EXPECT_TRUE(IsJsonResponse(Ack(SubjectName("ack.window", s), ids[s], R"("through":5)"), 200,
                               AckedBody(2)));
  }
  EXPECT_EQ(Metric("gophermq_inflight_messages"), 0);
  EXPECT_EQ(Metric("gophermq_pending_messages"), 0);
  EXPECT_EQ(Metric("gophermq_messages_redelivered_total"), 0);
}

TEST_F(AcksTest, MaxAckPendingIsAThousandByDefault) {
  for (int s = 0; s < 2; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("ack.window.default", s);
    const std::string id = SubscribeWith(subject, kLongAckWait);
    ASSERT_FALSE(id.empty());
    // 1001 publishes, pipelined on a connection of their own.
    constexpr int kPublishes = 1001;
    std::string batch;
    for (int i = 1; i <= kPublishes; ++i) {
      batch += FormatRequest("POST", "/api/publish", PublishBody(subject, Numbered("m", i)));
    }
    auto publisher = Connect();
    ASSERT_TRUE(publisher->SendRaw(batch)) << publisher->error();
    for (int i = 1; i <= kPublishes; ++i) {
      HttpResponse response;
      ASSERT_TRUE(publisher->ReadResponse(&response)) << publisher->error();
      ASSERT_TRUE(IsJsonResponse(response, 200, kOkBody)) << "publish " << i;
    }
    const BatchReply first = AckFetch(subject, id, R"("max_messages":5000)");
    ASSERT_EQ(first.seqs.size(), 1000u);
    EXPECT_EQ(first.seqs.front(), 1u);
    EXPECT_EQ(first.seqs.back(), 1000u);
    EXPECT_EQ(first.data.back(), "m1000");
    EXPECT_EQ(first.pending, 1u);
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id)), 200,
                               ExpectedAckFetchBody({}, {}, id, 1, {}, subject)));
    EXPECT_TRUE(IsJsonResponse(Ack(subject, id, R"("through":1000)"), 200, AckedBody(1000)));
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id)), 200,
                               ExpectedAckFetchBody({"m1001"}, {1}, id, 0, {1001}, subject)));
  }
}

TEST_F(AcksTest, ALongPollOnAFullWindowIsWokenByAnAckOrByARedelivery) {
  // By an ack that makes room.
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("ack.wake", s);
    const std::string id = SubscribeWith(subject, R"("ack_wait_ms":60000,"max_ack_pending":1)");
    ASSERT_FALSE(id.empty());
    PublishOk(subject, "a");
    PublishOk(subject, "b");
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id)), 200,
                               ExpectedAckFetchBody({"a"}, {1}, id, 1, {1}, subject)));
    auto parked = SendFetch(subject, id, R"("wait_ms":20000)", kLongClientTimeout);
    ASSERT_TRUE(MetricBecomes(
        "gophermq_waiting_fetches", [](double v) { return v == 1; }, "1"));
    EXPECT_EQ(GetInfo(subject, id).waiting, 1u);
    EXPECT_TRUE(IsJsonResponse(Ack(subject, id, R"("seqs":[1])"), 200, AckedBody(1)));
    EXPECT_TRUE(
        IsJsonResponse(Read(*parked), 200, ExpectedAckFetchBody({"b"}, {1}, id, 0, {2}, subject)));
  }
  // By the deadline of the one in flight: it comes back to the waiting fetch.
  std::vector<std::string> ids;
  std::vector<std::unique_ptr<HttpClient>> parked;
  for (int s = 0; s < kSubjects; ++s) {
    const std::string subject = SubjectName("ack.wake.redelivered", s);
    ids.push_back(SubscribeWith(subject, R"("ack_wait_ms":300,"max_ack_pending":1)"));
    PublishOk(subject, "c");
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, ids.back())), 200,
                               ExpectedAckFetchBody({"c"}, {1}, ids.back(), 0, {1}, subject)));
    parked.push_back(SendFetch(subject, ids.back(), R"("wait_ms":20000)", kLongClientTimeout));
  }
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("ack.wake.redelivered", s);
    EXPECT_TRUE(IsJsonResponse(Read(*parked[s]), 200,
                               ExpectedAckFetchBody({"c"}, {2}, ids[s], 0, {1}, subject)));
  }
  EXPECT_EQ(Metric("gophermq_messages_redelivered_total"), kSubjects);
}

// --- Nack ---

TEST_F(AcksTest, ANackedMessageIsAvailableAgainAtOnceOrAfterItsDelay) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("ack.nack", s);
    const std::string id = SubscribeWith(subject, kLongAckWait);
    ASSERT_FALSE(id.empty());
    PublishOk(subject, "a");
    PublishOk(subject, "bb");
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id)), 200,
                               ExpectedAckFetchBody({"a", "bb"}, {1, 1}, id, 0, {1, 2}, subject)));
    // No delay: available at once.
    EXPECT_TRUE(IsJsonResponse(Nack(subject, id, R"("seqs":[1])"), 200, NackedBody(1)));
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id)), 200,
                               ExpectedAckFetchBody({"a"}, {2}, id, 0, {1}, subject)));
    // A delay far past the test: held, not in flight, and not handed out.
    EXPECT_TRUE(
        IsJsonResponse(Nack(subject, id, R"("seqs":[2],"delay_ms":60000)"), 200, NackedBody(1)));
    SubscriberInfo info = GetInfo(subject, id);
    EXPECT_EQ(info.inflight, 1u);
    EXPECT_EQ(info.pending, 1u) << "a message waiting out its delay is pending";
    EXPECT_EQ(info.pending_bytes, 3u);
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id)), 200,
                               ExpectedAckFetchBody({}, {}, id, 1, {}, subject)));
    // Only in-flight messages can be nacked: 2 waits out its delay, 99 is unknown.
    EXPECT_TRUE(IsJsonResponse(Nack(subject, id, R"("seqs":[2,99])"), 200, NackedBody(0)));
    // A short delay: it comes back once the delay has passed.
    EXPECT_TRUE(
        IsJsonResponse(Nack(subject, id, R"("seqs":[1],"delay_ms":200)"), 200, NackedBody(1)));
    const BatchReply back = FetchUntilSomething(subject, id);
    EXPECT_EQ(back.data, std::vector<std::string>{"a"});
    EXPECT_EQ(back.deliveries, std::vector<std::uint64_t>{3});
    EXPECT_EQ(back.seqs, std::vector<std::uint64_t>{1});
    EXPECT_EQ(back.pending, 1u);
    EXPECT_TRUE(IsJsonResponse(Ack(subject, id, R"("seqs":[1])"), 200, AckedBody(1)));
    info = GetInfo(subject, id);
    EXPECT_EQ(info.inflight, 0u);
    EXPECT_EQ(info.pending, 1u);
    EXPECT_EQ(info.pending_bytes, 2u);
  }
  // "bb" still waits out its delay on every subject.
  EXPECT_EQ(HealthzPending(), kSubjects);
  EXPECT_EQ(Metric("gophermq_messages_redelivered_total"), 2 * kSubjects);
  EXPECT_EQ(Metric("gophermq_inflight_messages"), 0);
}

// --- max_deliver and dead letters ---

TEST_F(AcksTest, MaxDeliverDropsAMessageWithNowhereToGo) {
  std::vector<std::string> limited;
  std::vector<std::string> undeliverable;
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("ack.maxdeliver", s);
    // Twice, then dropped: no dead-letter subject.
    limited.push_back(SubscribeWith(subject, R"("ack_wait_ms":200,"max_deliver":2)"));
    // Once, then dead-lettered to a subject nobody subscribes to: dropped.
    undeliverable.push_back(SubscribeWith(
        subject, Joined({R"("ack_wait_ms":200,"max_deliver":1,"dead_letter_subject":)",
                         JsonQuote(SubjectName("ack.maxdeliver.nobody", s))})));
    ASSERT_FALSE(limited.back().empty());
    ASSERT_FALSE(undeliverable.back().empty());
    PublishOk(subject, "x");
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, limited.back())), 200,
                               ExpectedAckFetchBody({"x"}, {1}, limited.back(), 0, {1}, subject)));
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, undeliverable.back())), 200,
                       ExpectedAckFetchBody({"x"}, {1}, undeliverable.back(), 0, {1}, subject)));
    const BatchReply second = FetchUntilSomething(subject, limited.back());
    EXPECT_EQ(second.data, std::vector<std::string>{"x"});
    EXPECT_EQ(second.deliveries, std::vector<std::uint64_t>{2});
  }
  // Each leaves its queue once its last deadline passes, without a fetch.
  EXPECT_TRUE(HealthzPendingBecomes(0));
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("ack.maxdeliver", s);
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, limited[s])), 200,
                               ExpectedAckFetchBody({}, {}, limited[s], 0, {}, subject)))
        << "not handed out a third time";
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, undeliverable[s])), 200,
                               ExpectedAckFetchBody({}, {}, undeliverable[s], 0, {}, subject)));
    const SubscriberInfo info = GetInfo(subject, limited[s]);
    EXPECT_EQ(info.inflight, 0u);
    EXPECT_EQ(info.pending, 0u);
    EXPECT_EQ(info.pending_bytes, 0u);
    // Dead-lettering made no subscriber: the dead-letter subject has none.
    EXPECT_TRUE(IsJsonResponse(Publish(SubjectName("ack.maxdeliver.nobody", s), "y"), 404,
                               kSubscriberNotFoundBody));
  }
  EXPECT_EQ(Metric("gophermq_messages_dead_lettered_total"), 2 * kSubjects);
  // Each dropped dead letter is a publish its subject refused, as the
  // client's publish there above is.
  EXPECT_EQ(Metric(R"(gophermq_messages_refused_total{reason="no_subscriber"})"), 2 * kSubjects);
  EXPECT_EQ(Metric("gophermq_messages_redelivered_total"), kSubjects);
  EXPECT_EQ(Metric("gophermq_inflight_messages"), 0);
}

TEST_F(AcksTest, DeadLettersReachTheSubscribersOfTheirSubjectOnEitherShard) {
  // Every source subject dead-letters to every dead-letter subject: both
  // lists span both shards, so some pairs share a shard and some do not.
  std::vector<std::string> letter_boxes;
  for (int d = 0; d < kSubjects; ++d) {
    const std::string dead_letters = SubjectName("ack.dlq.box", d);
    letter_boxes.push_back(Subscribe(dead_letters));
    ASSERT_FALSE(letter_boxes.back().empty());
  }
  std::vector<std::string> payloads;
  for (int s = 0; s < kSubjects; ++s) {
    const std::string subject = SubjectName("ack.dlq.source", s);
    std::vector<std::string> ids;
    for (int d = 0; d < kSubjects; ++d) {
      std::string fields = R"("ack_wait_ms":200,"max_deliver":1,"dead_letter_subject":)";
      fields += JsonQuote(SubjectName("ack.dlq.box", d));
      ids.push_back(SubscribeWith(subject, fields));
      ASSERT_FALSE(ids.back().empty());
    }
    payloads.push_back(Numbered("letter-", s));
    PublishOk(subject, payloads.back());
    for (const std::string& id : ids) {
      EXPECT_TRUE(
          IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id)), 200,
                         ExpectedAckFetchBody({payloads.back()}, {1}, id, 0, {1}, subject)));
    }
  }
  // Never acked: once its deadline passes each copy goes to its dead-letter
  // subject, as a normal message with the original payload.
  for (int d = 0; d < kSubjects; ++d) {
    SCOPED_TRACE(d);
    const std::string dead_letters = SubjectName("ack.dlq.box", d);
    std::vector<std::string> received;
    const auto deadline = Clock::now() + kPollFor;
    while (received.size() < payloads.size() && Clock::now() < deadline) {
      const std::vector<std::string> batch = Fetch(dead_letters, letter_boxes[d]);
      received.insert(received.end(), batch.begin(), batch.end());
      if (received.size() < payloads.size()) std::this_thread::sleep_for(kPollPause);
    }
    std::sort(received.begin(), received.end());
    EXPECT_EQ(received, payloads);
  }
  EXPECT_TRUE(HealthzPendingBecomes(0));
  EXPECT_EQ(Metric("gophermq_messages_dead_lettered_total"), kSubjects * kSubjects);
  EXPECT_EQ(Metric("gophermq_messages_redelivered_total"), 0);
  EXPECT_EQ(Metric("gophermq_inflight_messages"), 0);
}

// --- Bounds, unsubscribe, info ---

TEST_F(AcksTest, InFlightMessagesCountAgainstTheSubscribersOwnBound) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("ack.ownbound", s);
    const std::string id = SubscribeWith(subject, R"("ack_wait_ms":60000,"max_pending":2)");
    ASSERT_FALSE(id.empty());
    PublishOk(subject, "a");
    PublishOk(subject, "b");
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id)), 200,
                               ExpectedAckFetchBody({"a", "b"}, {1, 1}, id, 0, {1, 2}, subject)));
    // Both in flight fill its bound: "c" is dropped for it (discard new).
    PublishOk(subject, "c");
    SubscriberInfo info = GetInfo(subject, id);
    EXPECT_EQ(info.inflight, 2u);
    EXPECT_EQ(info.pending, 0u);
    EXPECT_EQ(info.pending_bytes, 2u);
    EXPECT_TRUE(IsJsonResponse(Ack(subject, id, R"("through":2)"), 200, AckedBody(2)));
    PublishOk(subject, "d");
    const BatchReply reply = AckFetch(subject, id);
    EXPECT_EQ(reply.data, std::vector<std::string>{"d"});
    EXPECT_EQ(reply.deliveries, std::vector<std::uint64_t>{1});
  }
  EXPECT_EQ(Metric("gophermq_messages_dropped_total{reason=\"discard_new\"}"), kSubjects);
}

TEST_F(AcksTest, InFlightMessagesCountAgainstTheSubjectsMaxPending) {
  ASSERT_NO_FATAL_FAILURE(StartBroker(MonitoredOptions({"--broker.max-pending=3"})));
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("ack.subjectbound", s);
    const std::string id = SubscribeWith(subject, kLongAckWait);
    ASSERT_FALSE(id.empty());
    for (const char* data : {"a", "b", "c"}) PublishOk(subject, data);
    EXPECT_TRUE(IsJsonResponse(
        Post("/api/fetch", SubscriberBody(subject, id)), 200,
        ExpectedAckFetchBody({"a", "b", "c"}, {1, 1, 1}, id, 0, {1, 2, 3}, subject)));
    // All three in flight: the subject is still full.
    EXPECT_TRUE(IsJsonResponse(Publish(subject, "d"), 429, kOverflowBody));
    // A nacked one is still held.
    EXPECT_TRUE(
        IsJsonResponse(Nack(subject, id, R"("seqs":[3],"delay_ms":60000)"), 200, NackedBody(1)));
    EXPECT_TRUE(IsJsonResponse(Publish(subject, "d"), 429, kOverflowBody));
    // An ack makes room for one.
    EXPECT_TRUE(IsJsonResponse(Ack(subject, id, R"("seqs":[1])"), 200, AckedBody(1)));
    PublishOk(subject, "e");
    EXPECT_TRUE(IsJsonResponse(Publish(subject, "f"), 429, kOverflowBody));
  }
  EXPECT_EQ(HealthzPending(), 3 * kSubjects);
  EXPECT_EQ(Metric("gophermq_pending_messages"), 3 * kSubjects);
  EXPECT_EQ(Metric("gophermq_inflight_messages"), kSubjects) << "seq 2 of each";
}

TEST_F(AcksTest, UnsubscribeReleasesEverythingTheSubscriberHeld) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("ack.leave", s);
    const std::string id = SubscribeWith(subject, kLongAckWait);
    ASSERT_FALSE(id.empty());
    for (const char* data : {"a", "b", "c", "d"}) PublishOk(subject, data);
    EXPECT_EQ(AckFetch(subject, id, R"("max_messages":2)").seqs,
              (std::vector<std::uint64_t>{1, 2}));
    EXPECT_TRUE(
        IsJsonResponse(Nack(subject, id, R"("seqs":[2],"delay_ms":60000)"), 200, NackedBody(1)));
    // One in flight, one waiting out a delay, two never handed out.
    EXPECT_EQ(HealthzPending(), 4);
    EXPECT_EQ(Metric("gophermq_inflight_messages"), 1);
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/unsubscribe", SubscriberBody(subject, id)), 200, kOkBody));
    EXPECT_EQ(HealthzPending(), 0);
    EXPECT_EQ(Metric("gophermq_inflight_messages"), 0);
    EXPECT_EQ(Metric("gophermq_pending_messages"), 0);
    EXPECT_TRUE(IsJsonResponse(Ack(subject, id, R"("seqs":[1])"), 404, kBadIdBody));
    EXPECT_TRUE(IsJsonResponse(Nack(subject, id, R"("seqs":[1])"), 404, kBadIdBody));
    EXPECT_TRUE(IsJsonResponse(Publish(subject, "gone"), 404, kSubscriberNotFoundBody));
  }
}

TEST_F(AcksTest, InfoCountsInFlightAndPendingApart) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("ack.info", s);
    const std::string id = SubscribeWith(subject, kLongAckWait);
    ASSERT_FALSE(id.empty());
    SubscriberInfo info = GetInfo(subject, id);
    EXPECT_EQ(info.inflight, 0u);
    EXPECT_EQ(info.pending, 0u);
    EXPECT_EQ(info.pending_bytes, 0u);
    EXPECT_EQ(info.waiting, 0u);
    for (const char* data : {"abc", "de", "f"}) PublishOk(subject, data);
    EXPECT_EQ(AckFetch(subject, id, R"("max_messages":1)").data, std::vector<std::string>{"abc"});
    info = GetInfo(subject, id);
    EXPECT_EQ(info.inflight, 1u);
    EXPECT_EQ(info.pending, 2u);
    EXPECT_EQ(info.pending_bytes, 6u);
    EXPECT_EQ(AckFetch(subject, id).data, (std::vector<std::string>{"de", "f"}));
    info = GetInfo(subject, id);
    EXPECT_EQ(info.inflight, 3u);
    EXPECT_EQ(info.pending, 0u);
    EXPECT_EQ(info.pending_bytes, 6u);
    EXPECT_TRUE(IsJsonResponse(Ack(subject, id, R"("seqs":[2])"), 200, AckedBody(1)));
    info = GetInfo(subject, id);
    EXPECT_EQ(info.inflight, 2u);
    EXPECT_EQ(info.pending_bytes, 4u);
  }
}

TEST_F(AcksTest, AnAckANackAndAFetchEachRestartTheIdleClock) {
  const std::string subject = "ack.idle";
  const std::string id = SubscribeWith(subject, kLongAckWait);
  ASSERT_FALSE(id.empty());
  PublishOk(subject, "m");
  EXPECT_EQ(AckFetch(subject, id).seqs, std::vector<std::uint64_t>{1});
  const std::vector<std::pair<std::string, std::function<void()>>> actions = {
      {"ack", [&] { EXPECT_EQ(Ack(subject, id, R"("seqs":[99])").status, 200); }},
      {"nack", [&] { EXPECT_EQ(Nack(subject, id, R"("seqs":[99])").status, 200); }},
      {"fetch", [&] { AckFetch(subject, id); }},
  };
  for (const auto& [name, action] : actions) {
    SCOPED_TRACE(name);
    GetInfo(subject, id);  // restarts the clock
    const Clock::time_point since_info = Clock::now();
    std::this_thread::sleep_for(milliseconds(250));  // idle time to measure, not a wait
    const Clock::time_point acted = Clock::now();
    action();
    const std::uint64_t idle = GetInfo(subject, id).idle_ms;
    const auto since_action =
        std::chrono::duration_cast<milliseconds>(Clock::now() - acted).count();
    const auto since_previous =
        std::chrono::duration_cast<milliseconds>(acted - since_info).count();
    EXPECT_LE(idle, static_cast<std::uint64_t>(since_action) + 1)
        << "idle since the previous info (" << since_previous << " ms before the " << name
        << "), not since the " << name;
  }
}

// --- Errors ---

TEST_F(AcksTest, OutOfRangeSubscribeFieldsAreAnInvalidBody) {
  const std::string subject = "ack.badfields";
  const std::string long_subject(1025, 's');
  const std::vector<std::string> bad_fields = {
      R"("ack_wait_ms":-1)",
      R"("ack_wait_ms":"100")",
      R"("ack_wait_ms":1.5)",
      R"("ack_wait_ms":true)",
      R"("ack_wait_ms":[100])",
      Numbered("\"ack_wait_ms\":", static_cast<long long>(kOneYearMs + 1)),
      R"("ack_wait_ms":1000,"max_ack_pending":0)",
      R"("ack_wait_ms":1000,"max_ack_pending":-1)",
      R"("ack_wait_ms":1000,"max_ack_pending":"5")",
      R"("ack_wait_ms":1000,"max_ack_pending":2.5)",
      R"("ack_wait_ms":1000,"max_deliver":-1)",
      R"("ack_wait_ms":1000,"max_deliver":"3")",
      R"("ack_wait_ms":1000,"max_deliver":1.5)",
      R"("ack_wait_ms":1000,"max_deliver":false)",
      R"("ack_wait_ms":1000,"dead_letter_subject":"bad subject")",
      R"("ack_wait_ms":1000,"dead_letter_subject":"bad..subject")",
      R"("ack_wait_ms":1000,"dead_letter_subject":".bad")",
      R"("ack_wait_ms":1000,"dead_letter_subject":"tab\tbad")",
      R"("ack_wait_ms":1000,"dead_letter_subject":5)",
      R"("ack_wait_ms":1000,"dead_letter_subject":true)",
      R"("ack_wait_ms":1000,"dead_letter_subject":["dlq"])",
      Joined({R"("ack_wait_ms":1000,"dead_letter_subject":)", JsonQuote(long_subject)}),
      // Its own subject: its dead letters would come back to it for ever.
      Joined({R"("ack_wait_ms":1000,"dead_letter_subject":)", JsonQuote(subject)}),
  };
  for (const std::string& fields : bad_fields) {
    SCOPED_TRACE(fields);
    EXPECT_TRUE(IsJsonResponse(Post("/api/subscribe", WithFields(SubscribeBody(subject), fields)),
                               400, kInvalidBodyBody));
  }
  // None of them made a subscriber.
  EXPECT_TRUE(IsJsonResponse(Publish(subject, "x"), 404, kSubscriberNotFoundBody));

  // The edges that are fine: a year of ack wait is ack mode...
  const std::string year =
      SubscribeWith(subject, Numbered("\"ack_wait_ms\":", static_cast<long long>(kOneYearMs)));
  const std::string tight = SubscribeWith(
      subject,
      R"("ack_wait_ms":60000,"max_ack_pending":1,"max_deliver":0,"dead_letter_subject":"dlq.fine")");
  // ... and 0 (or null) is a normal subscriber.
  const std::string normal = SubscribeWith(subject, R"("ack_wait_ms":0)");
  const std::string null_wait = SubscribeWith(subject, R"("ack_wait_ms":null)");
  ASSERT_FALSE(year.empty());
  ASSERT_FALSE(tight.empty());
  ASSERT_FALSE(normal.empty());
  ASSERT_FALSE(null_wait.empty());
  PublishOk(subject, "m");
  EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, year)), 200,
                             ExpectedAckFetchBody({"m"}, {1}, year, 0, {1}, subject)));
  EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, tight)), 200,
                             ExpectedAckFetchBody({"m"}, {1}, tight, 0, {1}, subject)));
  EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, normal)), 200,
                             ExpectedFetchBody({"m"}, normal, subject)));
  EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, null_wait)), 200,
                             ExpectedFetchBody({"m"}, null_wait, subject)));
  EXPECT_TRUE(IsJsonResponse(Ack(subject, normal, R"("seqs":[1])"), 409, kDoesNotUseAcksBody));
}

TEST_F(AcksTest, AckAndNackAnswer404ForAnUnknownSubscriberAnd409ForANormalOne) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("ack.who", s);
    const std::string other_subject = SubjectName("ack.who.other", s);
    const std::string acker = SubscribeWith(subject, kLongAckWait);
    const std::string normal = Subscribe(subject);
    ASSERT_FALSE(acker.empty());
    ASSERT_FALSE(normal.empty());
    PublishOk(subject, "m");
    EXPECT_EQ(AckFetch(subject, acker).seqs, std::vector<std::uint64_t>{1});
    for (const char* path : {"/api/ack", "/api/nack"}) {
      SCOPED_TRACE(path);
      const std::string fields = R"("seqs":[1])";
      // An id of another subject, a malformed one, an unknown one.
      EXPECT_TRUE(IsJsonResponse(Post(path, SubscriberBody(other_subject, acker, fields)), 404,
                                 kBadIdBody));
      for (const std::string& bad_id :
           {std::string("not-an-id"), std::string(), acker.substr(1), acker + "0",
            std::string("1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b")}) {
        EXPECT_TRUE(
            IsJsonResponse(Post(path, SubscriberBody(subject, bad_id, fields)), 404, kBadIdBody))
            << bad_id;
      }
      EXPECT_TRUE(IsJsonResponse(Post(path, SubscriberBody("ack who", acker, fields)), 400,
                                 kInvalidSubjectBody));
      EXPECT_TRUE(IsJsonResponse(Post(path, SubscriberBody("ack..who", acker, fields)), 400,
                                 kInvalidSubjectBody));
      EXPECT_TRUE(IsJsonResponse(Post(path, SubscriberBody(subject, normal, fields)), 409,
                                 kDoesNotUseAcksBody));
      EXPECT_TRUE(IsJsonResponse(Call("GET", path), 405, kMethodNotAllowedBody));
    }
    // None of that touched the message in flight, nor the normal subscriber's.
    EXPECT_EQ(GetInfo(subject, acker).inflight, 1u);
    EXPECT_EQ(Fetch(subject, normal), std::vector<std::string>{"m"});
    EXPECT_TRUE(IsJsonResponse(Ack(subject, acker, R"("seqs":[1])"), 200, AckedBody(1)));
  }
}

TEST_F(AcksTest, MalformedAckAndNackBodiesAreAnInvalidBody) {
  const std::string subject = "ack.malformed";
  const std::string id = SubscribeWith(subject, kLongAckWait);
  ASSERT_FALSE(id.empty());
  PublishOk(subject, "m");
  EXPECT_EQ(AckFetch(subject, id).seqs, std::vector<std::uint64_t>{1});
  const std::vector<std::string> bad_acks = {
      "",  // neither seqs nor through
      R"("seqs":null)",
      R"("through":null)",
      R"("seqs":1)",
      R"("seqs":"1")",
      R"("seqs":{"1":1})",
      R"("seqs":[-1])",
      R"("seqs":[1.5])",
      R"("seqs":["1"])",
      R"("seqs":[null])",
      R"("seqs":[true])",
      R"("seqs":[[1]])",
      R"("seqs":[1,-2])",
      R"("through":-1)",
      R"("through":"1")",
      R"("through":1.5)",
      R"("through":[1])",
      R"("seqs":[1],"through":-1)",
  };
  for (const std::string& fields : bad_acks) {
    SCOPED_TRACE(fields);
    EXPECT_TRUE(IsJsonResponse(Ack(subject, id, fields), 400, kInvalidBodyBody));
  }
  const std::vector<std::string> bad_nacks = {
      "",  // no seqs
      R"("delay_ms":10)",
      R"("through":1)",
      R"("seqs":null)",
      R"("seqs":"1")",
      R"("seqs":[-1])",
      R"("seqs":[1.5])",
      R"("seqs":["1"])",
      R"("seqs":[1],"delay_ms":-1)",
      R"("seqs":[1],"delay_ms":"10")",
      R"("seqs":[1],"delay_ms":1.5)",
      R"("seqs":[1],"delay_ms":true)",
      Numbered("\"seqs\":[1],\"delay_ms\":", static_cast<long long>(kOneYearMs + 1)),
  };
  for (const std::string& fields : bad_nacks) {
    SCOPED_TRACE(fields);
    EXPECT_TRUE(IsJsonResponse(Nack(subject, id, fields), 400, kInvalidBodyBody));
  }
  EXPECT_TRUE(IsJsonResponse(Post("/api/ack", "not json"), 400, kInvalidBodyBody));
  EXPECT_TRUE(IsJsonResponse(Post("/api/nack", "[1]"), 400, kInvalidBodyBody));
  // None of them acked or nacked the message in flight.
  EXPECT_EQ(GetInfo(subject, id).inflight, 1u);
  EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, id)), 200,
                             ExpectedAckFetchBody({}, {}, id, 0, {}, subject)));
  // A year of delay is the most, and allowed.
  EXPECT_TRUE(IsJsonResponse(
      Nack(subject, id, Numbered("\"seqs\":[1],\"delay_ms\":", static_cast<long long>(kOneYearMs))),
      200, NackedBody(1)));
  const SubscriberInfo info = GetInfo(subject, id);
  EXPECT_EQ(info.inflight, 0u);
  EXPECT_EQ(info.pending, 1u);
}

// --- Metrics ---

TEST_F(AcksTest, AckAndNackRequestsAreCountedByMethodAndCode) {
  const std::string subject = "ack.counted";
  const std::string id = SubscribeWith(subject, kLongAckWait);
  const std::string normal = Subscribe(subject);
  ASSERT_FALSE(id.empty());
  ASSERT_FALSE(normal.empty());
  for (const char* data : {"a", "b", "c"}) PublishOk(subject, data);
  EXPECT_EQ(AckFetch(subject, id).seqs, (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(Ack(subject, id, R"("seqs":[1])").status, 200);
  EXPECT_EQ(Ack(subject, id, R"("seqs":[1])").status, 200);
  EXPECT_EQ(Ack(subject, id, "").status, 400);
  EXPECT_EQ(Ack(subject, normal, R"("seqs":[1])").status, 409);
  EXPECT_EQ(Ack(subject, "not-an-id", R"("seqs":[1])").status, 404);
  EXPECT_EQ(Nack(subject, id, R"("seqs":[2])").status, 200);
  EXPECT_EQ(Nack(subject, id, R"("seqs":[3])").status, 200);
  EXPECT_EQ(Nack(subject, id, R"("seqs":[3])").status, 200);
  EXPECT_EQ(Nack(subject, normal, R"("seqs":[3])").status, 409);
  // More connections, so the requests land on both shards.
  for (int i = 0; i < 4; ++i) {
    auto client = Connect();
    HttpResponse response;
    ASSERT_TRUE(client->Request("POST", "/api/ack", SubscriberBody(subject, id, R"("seqs":[9])"),
                                &response))
        << client->error();
    EXPECT_EQ(response.status, 200) << Describe(response);
  }
  const std::vector<std::pair<std::string, double>> expected = {
      {R"(gophermq_requests_total{method="ack",code="200"})", 6},
      {R"(gophermq_requests_total{method="ack",code="400"})", 1},
      {R"(gophermq_requests_total{method="ack",code="404"})", 1},
      {R"(gophermq_requests_total{method="ack",code="409"})", 1},
      {R"(gophermq_requests_total{method="nack",code="200"})", 3},
      {R"(gophermq_requests_total{method="nack",code="409"})", 1},
  };
  for (const auto& [series, count] : expected) {
    EXPECT_EQ(Metric(series), count) << series;
  }
  // The nacks handed nothing out again yet; the fetch after them does.
  EXPECT_EQ(Metric("gophermq_messages_redelivered_total"), 0);
  EXPECT_EQ(AckFetch(subject, id).deliveries, (std::vector<std::uint64_t>{2, 2}));
  EXPECT_EQ(Metric("gophermq_messages_redelivered_total"), 2);
}

TEST_F(AcksTest, TheOldestPendingAgeCoversEveryShardAndIsZeroWhenEmpty) {
  const auto positive = [](double v) { return v > 0; };
  const auto zero = [](double v) { return v == 0; };
  EXPECT_EQ(Metric("gophermq_oldest_pending_age_seconds"), 0);
  // One subject at a time, so each shard alone must report its message.
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("ack.age", s);
    const std::string acker = SubscribeWith(subject, kLongAckWait);
    const std::string normal = Subscribe(subject);
    ASSERT_FALSE(acker.empty());
    ASSERT_FALSE(normal.empty());
    PublishOk(subject, "old");
    ASSERT_TRUE(MetricBecomes("gophermq_oldest_pending_age_seconds", positive, "> 0"));
    // The normal subscriber's copy goes; the ack-mode one is still held, in
    // flight.
    EXPECT_EQ(Fetch(subject, normal), std::vector<std::string>{"old"});
    EXPECT_EQ(AckFetch(subject, acker).data, std::vector<std::string>{"old"});
    EXPECT_GT(Metric("gophermq_oldest_pending_age_seconds"), 0);
    EXPECT_TRUE(IsJsonResponse(Ack(subject, acker, R"("seqs":[1])"), 200, AckedBody(1)));
    EXPECT_TRUE(MetricBecomes("gophermq_oldest_pending_age_seconds", zero, "0"));
  }
}

}  // namespace
}  // namespace gophermq::testing
