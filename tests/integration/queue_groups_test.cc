// Queue groups (api-extensions.md §6, with §5 and §7): subscribe with
// "group" makes the subscriber a member of (subject, group), and all members
// share one queue: a publish stores one copy for the group, and each message
// goes to exactly one member's fetch (in ack mode, an expired message goes
// back to the group). The first member sets the queue's options; a member
// naming different ones is 409. Subjects fall on both shards and members
// fetch from connections of their own, in parallel threads where it matters.
//
// Nothing here sleeps to let something happen: a redelivery, an expiry or a
// parked fetch is polled for (through the metrics) until a deadline.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
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

// Subjects enough that both shards own some.
constexpr int kSubjects = 6;
// The bound of a test whose threads run until every message is through.
constexpr std::chrono::seconds kThreadsDeadline(20);

constexpr std::string_view kGroupOptionsDifferBody = "{\"message\":\"group options differ\"}\n";

class QueueGroupsTest : public AckBrokerTest {
 protected:
  // Joins `group` of `subject` and checks the exact answer; the member's id,
  // or "" (and a failure).
  std::string Join(std::string_view subject, std::string_view group, std::string_view fields = {}) {
    const HttpResponse response = Post("/api/subscribe", JoinBody(subject, group, fields));
    const std::optional<std::string> id = JoinedId(response, subject, group);
    if (!id) {
      ADD_FAILURE() << "join " << JoinBody(subject, group, fields) << ": unexpected answer\n"
                    << Describe(response);
      return {};
    }
    return *id;
  }

  HttpResponse Unsubscribe(const std::string& subject, const std::string& id) {
    return Post("/api/unsubscribe", SubscriberBody(subject, id));
  }
};

// --- Joining ---

TEST_F(QueueGroupsTest, JoiningAGroupAnswersGroupIdAndSubject) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("grp.join", s);
    const std::string first = Join(subject, "workers");
    const std::string second = Join(subject, "workers");
    const std::string other = Join(subject, "others");
    ASSERT_FALSE(first.empty());
    ASSERT_FALSE(second.empty());
    ASSERT_FALSE(other.empty());
    EXPECT_NE(first, second) << "each member has an id of its own";
    EXPECT_NE(first, other);
  }
  // The longest group name.
  EXPECT_FALSE(Join("grp.join.long", std::string(256, 'g')).empty());
  // null leaves the field unset: a plain subscriber, answered as one.
  EXPECT_FALSE(SubscribeWith("grp.join.null", R"("group":null)").empty());
}

TEST_F(QueueGroupsTest, AnInvalidGroupIsAnInvalidBody) {
  const std::string subject = "grp.invalid";
  const std::vector<std::string> bad_fields = {
      R"("group":"")",
      Joined({"\"group\":", JsonQuote(std::string(257, 'g'))}),
      R"("group":5)",
      R"("group":true)",
      R"("group":["g"])",
      R"("group":{"name":"g"})",
      R"("group":"g","ack_wait_ms":-1)",
      R"("group":"g","max_ack_pending":0)",
      R"("group":"g","max_pending":0)",
      R"("group":"g","discard":"oldest")",
      R"("group":"g","dead_letter_subject":"bad subject")",
  };
  for (const std::string& fields : bad_fields) {
    SCOPED_TRACE(fields);
    EXPECT_TRUE(IsJsonResponse(Post("/api/subscribe", WithFields(SubscribeBody(subject), fields)),
                               400, kInvalidBodyBody));
  }
  // None of them made a member.
  EXPECT_TRUE(IsJsonResponse(Publish(subject, "x"), 404, kSubscriberNotFoundBody));
  EXPECT_TRUE(IsJsonResponse(Post("/api/subscribe", JoinBody("bad subject", "g")), 400,
                             kInvalidSubjectBody));
}

// --- Sharing one queue ---

TEST_F(QueueGroupsTest, EachMessageGoesToExactlyOneMember) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("grp.once", s);
    const std::string a = Join(subject, "workers");
    const std::string b = Join(subject, "workers");
    ASSERT_FALSE(a.empty());
    ASSERT_FALSE(b.empty());
    std::vector<std::string> all;
    for (int i = 1; i <= 10; ++i) {
      all.push_back(Numbered("m", i));
      PublishOk(subject, all.back());
    }
    EXPECT_EQ(HealthzPending(), 10) << "one copy for the group";
    // The seqs are the group queue's, whichever member fetches.
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, a, R"("max_messages":3)")), 200,
                       ExpectedBatchBody({"m1", "m2", "m3"}, a, 7, {1, 2, 3}, subject)));
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, b, R"("max_messages":100)")), 200,
                       ExpectedBatchBody(std::vector<std::string>(all.begin() + 3, all.end()), b, 0,
                                         {4, 5, 6, 7, 8, 9, 10}, subject)));
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, a, R"("max_messages":100)")), 200,
                       ExpectedBatchBody({}, a, 0, {}, subject)));
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, b, R"("max_messages":100)")), 200,
                       ExpectedBatchBody({}, b, 0, {}, subject)));
    PublishOk(subject, "m11");
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, b, R"("max_messages":1)")), 200,
                       ExpectedBatchBody({"m11"}, b, 0, {11}, subject)));
    EXPECT_EQ(HealthzPending(), 0);
  }
}

TEST_F(QueueGroupsTest, AGroupIsOneSubscriberInTheFanOut) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("grp.fanout", s);
    const std::string plain = Subscribe(subject);
    const std::string first_a = Join(subject, "first");
    const std::string first_b = Join(subject, "first");
    const std::string second = Join(subject, "second");
    ASSERT_FALSE(plain.empty());
    ASSERT_FALSE(first_a.empty());
    ASSERT_FALSE(first_b.empty());
    ASSERT_FALSE(second.empty());
    for (const char* data : {"a", "b", "c", "d"}) PublishOk(subject, data);
    EXPECT_EQ(HealthzPending(), 12) << "one copy for the plain subscriber and one per group";
    EXPECT_EQ(Fetch(subject, plain), (std::vector<std::string>{"a", "b", "c", "d"}));
    EXPECT_EQ(FetchBatch(subject, first_a, R"("max_messages":2)").data,
              (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(FetchBatch(subject, first_b, R"("max_messages":10)").data,
              (std::vector<std::string>{"c", "d"}));
    EXPECT_EQ(FetchBatch(subject, second, R"("max_messages":10)").data,
              (std::vector<std::string>{"a", "b", "c", "d"}));
    EXPECT_EQ(HealthzPending(), 0);
  }
}

TEST_F(QueueGroupsTest, AGroupCountsOnceAgainstTheSubjectsMaxPending) {
  ASSERT_NO_FATAL_FAILURE(StartBroker(MonitoredOptions({"--broker.max-pending=4"})));
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("grp.bound", s);
    std::vector<std::string> members;
    for (int i = 0; i < 3; ++i) members.push_back(Join(subject, "g"));
    for (const char* data : {"a", "b", "c", "d"}) PublishOk(subject, data);
    EXPECT_TRUE(IsJsonResponse(Publish(subject, "e"), 429, kOverflowBody));
    EXPECT_EQ(FetchBatch(subject, members[1], R"("max_messages":1)").data,
              std::vector<std::string>{"a"});
    PublishOk(subject, "f");
    EXPECT_TRUE(IsJsonResponse(Publish(subject, "g"), 429, kOverflowBody));
    EXPECT_EQ(FetchBatch(subject, members[2], R"("max_messages":10)").data,
              (std::vector<std::string>{"b", "c", "d", "f"}));
    // Beside a plain subscriber, two copies per publish.
    const std::string plain = Subscribe(subject);
    PublishOk(subject, "h");
    PublishOk(subject, "i");
    EXPECT_TRUE(IsJsonResponse(Publish(subject, "j"), 429, kOverflowBody));
    EXPECT_EQ(Fetch(subject, plain), (std::vector<std::string>{"h", "i"}));
    EXPECT_EQ(FetchBatch(subject, members[0], R"("max_messages":10)").data,
              (std::vector<std::string>{"h", "i"}));
  }
  EXPECT_EQ(HealthzPending(), 0);
}

// --- Leaving ---

TEST_F(QueueGroupsTest, TheQueueStaysWithTheMembersLeftAndGoesWithTheLast) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("grp.leave", s);
    const std::string a = Join(subject, "g");
    const std::string b = Join(subject, "g");
    ASSERT_FALSE(a.empty());
    ASSERT_FALSE(b.empty());
    // A subject whose only subscribers are a group takes publishes.
    PublishOk(subject, "x");
    PublishOk(subject, "y");
    EXPECT_TRUE(IsJsonResponse(Unsubscribe(subject, a), 200, kOkBody));
    EXPECT_EQ(HealthzPending(), 2) << "the queue stays with the member left";
    EXPECT_TRUE(IsJsonResponse(
        Post("/api/fetch", SubscriberBody(subject, a, R"("max_messages":10)")), 404, kBadIdBody));
    PublishOk(subject, "z");
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, b, R"("max_messages":10)")), 200,
                       ExpectedBatchBody({"x", "y", "z"}, b, 0, {1, 2, 3}, subject)));
    PublishOk(subject, "w");
    EXPECT_EQ(HealthzPending(), 1);
    EXPECT_TRUE(IsJsonResponse(Unsubscribe(subject, b), 200, kOkBody));
    EXPECT_EQ(HealthzPending(), 0) << "the last member out releases the queue";
    EXPECT_TRUE(IsJsonResponse(Publish(subject, "nobody"), 404, kSubscriberNotFoundBody));
    EXPECT_TRUE(IsJsonResponse(Unsubscribe(subject, b), 404, kBadIdBody));
    // A new group of the same name is a new queue, with options of its own.
    const std::string c = Join(subject, "g", R"("max_pending":1,"discard":"old")");
    ASSERT_FALSE(c.empty());
    PublishOk(subject, "v1");
    PublishOk(subject, "v2");
    const BatchReply reply = FetchBatch(subject, c, R"("max_messages":10)");
    EXPECT_EQ(reply.data, std::vector<std::string>{"v2"});
    EXPECT_TRUE(IsJsonResponse(Unsubscribe(subject, c), 200, kOkBody));
  }
  EXPECT_EQ(HealthzPending(), 0);
}

TEST_F(QueueGroupsTest, MembersExpireOnTheirOwnAndTheLastTakesTheQueue) {
  std::vector<std::string> staying;
  std::vector<std::string> expiring;
  for (int s = 0; s < kSubjects; ++s) {
    const std::string subject = SubjectName("grp.expire", s);
    expiring.push_back(Join(subject, "g", R"("inactive_threshold_ms":300)"));
    staying.push_back(Join(subject, "g"));  // never expires
    PublishOk(subject, "kept");
  }
  // Neither looked at meanwhile (an info would restart its clock).
  ASSERT_TRUE(MetricReaches("gophermq_subscribers_expired_total", kSubjects));
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("grp.expire", s);
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/info", SubscriberBody(subject, expiring[s])), 404, kBadIdBody));
    EXPECT_TRUE(IsJsonResponse(
        Post("/api/fetch", SubscriberBody(subject, staying[s], R"("max_messages":10)")), 200,
        ExpectedBatchBody({"kept"}, staying[s], 0, {1}, subject)));
  }
  // Every member expiring: the queue goes with the last.
  for (int s = 0; s < kSubjects; ++s) {
    const std::string subject = SubjectName("grp.expire.all", s);
    // Long enough that neither expires before the publish, even on a
    // machine that stalls a while.
    Join(subject, "g", R"("inactive_threshold_ms":2000)");
    Join(subject, "g", R"("inactive_threshold_ms":2500)");
    PublishOk(subject, "lost");
  }
  ASSERT_TRUE(MetricReaches("gophermq_subscribers_expired_total", 3 * kSubjects));
  EXPECT_EQ(HealthzPending(), 0);
  for (int s = 0; s < kSubjects; ++s) {
    EXPECT_TRUE(IsJsonResponse(Publish(SubjectName("grp.expire.all", s), "late"), 404,
                               kSubscriberNotFoundBody));
  }
}

// --- The queue's options ---

TEST_F(QueueGroupsTest, TheFirstMemberSetsTheQueuesOptions) {
  const std::string options =
      R"("max_pending":5,"max_pending_bytes":500,"discard":"old","ack_wait_ms":60000,)"
      R"("max_ack_pending":7,"max_deliver":3,"dead_letter_subject":"grp.options.dlq")";
  const std::vector<std::string> differing = {
      R"("max_pending":6)",
      R"("max_pending_bytes":501)",
      R"("discard":"new")",
      R"("ack_wait_ms":60001)",
      R"("max_ack_pending":8)",
      R"("max_deliver":4)",
      R"("dead_letter_subject":"grp.options.other")",
      R"("max_pending":5,"max_deliver":2)",
  };
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("grp.options", s);
    std::vector<std::string> members = {Join(subject, "g", options)};
    ASSERT_FALSE(members[0].empty());
    for (const std::string& fields : differing) {
      SCOPED_TRACE(fields);
      EXPECT_TRUE(IsJsonResponse(Post("/api/subscribe", JoinBody(subject, "g", fields)), 409,
                                 kGroupOptionsDifferBody));
    }
    // The same values, some of them, none of them, or a threshold of its own.
    members.push_back(Join(subject, "g", options));
    members.push_back(
        Join(subject, "g", R"("max_pending":5,"dead_letter_subject":"grp.options.dlq")"));
    members.push_back(Join(subject, "g"));
    members.push_back(Join(subject, "g", R"("inactive_threshold_ms":600000)"));
    for (const std::string& member : members) ASSERT_FALSE(member.empty());
    // Another group of the subject has options of its own.
    const std::string other = Join(subject, "h", R"("max_pending":1)");
    ASSERT_FALSE(other.empty());

    // The member that named nothing inherited ack mode.
    PublishOk(subject, "m");
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, members[3])), 200,
                               ExpectedAckFetchBody({"m"}, {1}, members[3], 0, {1}, subject)));
    EXPECT_TRUE(IsJsonResponse(Ack(subject, members[3], R"("seqs":[1])"), 200, AckedBody(1)));
    EXPECT_EQ(FetchBatch(subject, other, R"("max_messages":10)").data,
              std::vector<std::string>{"m"});

    // A plain group: naming ack mode differs from it.
    const std::string plain = Join(subject, "plain");
    ASSERT_FALSE(plain.empty());
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/subscribe", JoinBody(subject, "plain", R"("ack_wait_ms":1000)")),
                       409, kGroupOptionsDifferBody));

    // Once its last member is gone, the group may start over with new options.
    for (const std::string& member : members) {
      EXPECT_TRUE(IsJsonResponse(Unsubscribe(subject, member), 200, kOkBody));
    }
    const std::string fresh = Join(subject, "g", R"("max_pending":9)");
    ASSERT_FALSE(fresh.empty());
    // No refused join had made a member: with these gone, nobody is left.
    for (const std::string& id : {fresh, other, plain}) {
      EXPECT_TRUE(IsJsonResponse(Unsubscribe(subject, id), 200, kOkBody));
    }
    EXPECT_TRUE(IsJsonResponse(Publish(subject, "nobody"), 404, kSubscriberNotFoundBody));
  }
}

TEST_F(QueueGroupsTest, ALaterMemberInheritsTheQueuesBound) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("grp.inherit", s);
    const std::string first = Join(subject, "g", R"("max_pending":2,"discard":"old")");
    const std::string later = Join(subject, "g");
    ASSERT_FALSE(first.empty());
    ASSERT_FALSE(later.empty());
    for (const char* data : {"a", "b", "c"}) PublishOk(subject, data);
    EXPECT_EQ(FetchBatch(subject, later, R"("max_messages":10)").data,
              (std::vector<std::string>{"b", "c"}));
  }
  EXPECT_EQ(Metric("gophermq_messages_dropped_total{reason=\"discard_old\"}"), kSubjects);
}

// --- Info ---

TEST_F(QueueGroupsTest, AMembersInfoNamesItsGroupAndCountsTheSharedQueue) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("grp.info", s);
    const std::string a = Join(subject, "g", R"("ack_wait_ms":60000)");
    const std::string b = Join(subject, "g");
    const std::string plain = Join(subject, "p");
    ASSERT_FALSE(a.empty());
    ASSERT_FALSE(b.empty());
    ASSERT_FALSE(plain.empty());
    for (const char* data : {"abc", "de", "f"}) PublishOk(subject, data);
    SubscriberInfo info = GetInfo(subject, a, "g");
    EXPECT_EQ(info.inflight, 0u);
    EXPECT_EQ(info.pending, 3u);
    EXPECT_EQ(info.pending_bytes, 6u);
    EXPECT_EQ(info.waiting, 0u);
    EXPECT_EQ(GetInfo(subject, b, "g").pending, 3u) << "the queue is the group's";
    info = GetInfo(subject, plain, "p");
    EXPECT_EQ(info.pending, 3u);
    EXPECT_EQ(info.pending_bytes, 6u);

    EXPECT_EQ(FetchBatch(subject, a, R"("max_messages":2)", true).seqs,
              (std::vector<std::uint64_t>{1, 2}));
    info = GetInfo(subject, a, "g");
    EXPECT_EQ(info.inflight, 2u);
    EXPECT_EQ(info.pending, 1u);
    EXPECT_EQ(info.pending_bytes, 6u) << "in-flight payload is still held";
    EXPECT_EQ(GetInfo(subject, b, "g").pending, 1u);
    EXPECT_TRUE(IsJsonResponse(Ack(subject, a, R"("through":2)"), 200, AckedBody(2)));
    info = GetInfo(subject, a, "g");
    EXPECT_EQ(info.inflight, 0u);
    EXPECT_EQ(info.pending, 1u);
    EXPECT_EQ(info.pending_bytes, 1u);

    // The plain group's copy is untouched by the other group's fetch.
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, plain, R"("max_messages":1)")),
                       200, ExpectedBatchBody({"abc"}, plain, 2, {1}, subject)));
    info = GetInfo(subject, plain, "p");
    EXPECT_EQ(info.inflight, 0u);
    EXPECT_EQ(info.pending, 2u);
    EXPECT_EQ(info.pending_bytes, 3u);
  }
}

// --- Long-poll ---

TEST_F(QueueGroupsTest, OfTwoParkedMembersExactlyOneGetsAMessage) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("grp.parked", s);
    const std::string a = Join(subject, "g");
    const std::string b = Join(subject, "g");
    ASSERT_FALSE(a.empty());
    ASSERT_FALSE(b.empty());
    auto parked_a = SendFetch(subject, a, R"("wait_ms":20000)", kLongClientTimeout);
    ASSERT_TRUE(MetricReaches("gophermq_waiting_fetches", 1));
    EXPECT_EQ(GetInfo(subject, a, "g").waiting, 1u);
    auto parked_b = SendFetch(subject, b, R"("wait_ms":20000)", kLongClientTimeout);
    ASSERT_TRUE(MetricReaches("gophermq_waiting_fetches", 2));
    PublishOk(subject, "one");
    ASSERT_TRUE(MetricReaches("gophermq_waiting_fetches", 1)) << "one member woken, not both";
    PublishOk(subject, "two");
    ASSERT_TRUE(MetricReaches("gophermq_waiting_fetches", 0));
    std::multiset<std::string> received;
    for (auto* parked : {parked_a.get(), parked_b.get()}) {
      HttpResponse response;
      ASSERT_TRUE(parked->ReadResponse(&response)) << parked->error();
      const std::optional<BatchReply> reply = DecodeBatchReply(response.body, false);
      ASSERT_TRUE(response.status == 200 && reply && reply->data.size() == 1) << Describe(response);
      EXPECT_EQ(reply->id, parked == parked_a.get() ? a : b);
      EXPECT_EQ(reply->seqs, std::vector<std::uint64_t>{reply->data[0] == "one" ? 1u : 2u});
      received.insert(reply->data[0]);
    }
    EXPECT_EQ(received, (std::multiset<std::string>{"one", "two"}));
    EXPECT_EQ(HealthzPending(), 0);
  }
}

// --- Ack mode ---

TEST_F(QueueGroupsTest, InAckModeAnUnackedMessageGoesBackToTheGroup) {
  int redeliveries = 0;
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("grp.ack.back", s);
    const std::string a = Join(subject, "g", R"("ack_wait_ms":300)");
    const std::string b = Join(subject, "g");
    ASSERT_FALSE(a.empty());
    ASSERT_FALSE(b.empty());
    PublishOk(subject, "job");
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, a)), 200,
                               ExpectedAckFetchBody({"job"}, {1}, a, 0, {1}, subject)));
    // a never acks: once its deadline passes, another member gets it.
    const BatchReply back = FetchUntilSomething(subject, b);
    EXPECT_EQ(back.data, std::vector<std::string>{"job"});
    EXPECT_EQ(back.deliveries, std::vector<std::uint64_t>{2});
    EXPECT_EQ(back.seqs, std::vector<std::uint64_t>{1});
    redeliveries += 1 + AckSurely(subject, b, 1, "job", 2);
    EXPECT_EQ(HealthzPending(), 0);
  }
  EXPECT_EQ(Metric("gophermq_messages_redelivered_total"), redeliveries);
  EXPECT_EQ(Metric("gophermq_inflight_messages"), 0);
}

TEST_F(QueueGroupsTest, InAckModeAnyMemberAcksAndNacksOnTheGroupsQueue) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("grp.ack.any", s);
    const std::string c = Join(subject, "g", R"("ack_wait_ms":60000)");
    const std::string d = Join(subject, "g", R"("ack_wait_ms":60000)");
    ASSERT_FALSE(c.empty());
    ASSERT_FALSE(d.empty());
    for (const char* data : {"m1", "m2", "m3"}) PublishOk(subject, data);
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, c, R"("max_messages":1)")), 200,
                       ExpectedAckFetchBody({"m1"}, {1}, c, 2, {1}, subject)));
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, d, R"("max_messages":1)")), 200,
                       ExpectedAckFetchBody({"m2"}, {1}, d, 1, {2}, subject)));
    // The member that fetched acks it; then no member can ack it again.
    EXPECT_TRUE(IsJsonResponse(Ack(subject, c, R"("seqs":[1])"), 200, AckedBody(1)));
    EXPECT_TRUE(IsJsonResponse(Ack(subject, d, R"("seqs":[1])"), 200, AckedBody(0)));
    // A member acks what another fetched.
    EXPECT_TRUE(IsJsonResponse(Ack(subject, c, R"("seqs":[2])"), 200, AckedBody(1)));
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, d)), 200,
                               ExpectedAckFetchBody({"m3"}, {1}, d, 0, {3}, subject)));
    // A member nacks what another fetched: it goes back to the group.
    EXPECT_TRUE(IsJsonResponse(Post("/api/nack", SubscriberBody(subject, c, R"("seqs":[3])")), 200,
                               NackedBody(1)));
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, c)), 200,
                               ExpectedAckFetchBody({"m3"}, {2}, c, 0, {3}, subject)));
    EXPECT_TRUE(IsJsonResponse(Ack(subject, c, R"("through":3)"), 200, AckedBody(1)));
    EXPECT_EQ(HealthzPending(), 0);
  }
}

TEST_F(QueueGroupsTest, InAckModeAnAckThroughSettlesOnlyWhatItsMemberHolds) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = SubjectName("grp.ack.through", s);
    const std::string c = Join(subject, "g", R"("ack_wait_ms":60000)");
    const std::string d = Join(subject, "g");
    ASSERT_FALSE(c.empty());
    ASSERT_FALSE(d.empty());
    for (const char* data : {"m1", "m2", "m3", "m4"}) PublishOk(subject, data);
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, c, R"("max_messages":2)")), 200,
                       ExpectedAckFetchBody({"m1", "m2"}, {1, 1}, c, 2, {1, 2}, subject)));
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/fetch", SubscriberBody(subject, d, R"("max_messages":2)")), 200,
                       ExpectedAckFetchBody({"m3", "m4"}, {1, 1}, d, 0, {3, 4}, subject)));
    // d is done with its batch: its ack through 4 leaves c's 1 and 2 in
    // flight, as a worker that crashed would have left them.
    EXPECT_TRUE(IsJsonResponse(Ack(subject, d, R"("through":4)"), 200, AckedBody(2)));
    EXPECT_EQ(HealthzPending(), 2);
    EXPECT_TRUE(IsJsonResponse(Ack(subject, c, R"("through":4)"), 200, AckedBody(2)));
    EXPECT_EQ(HealthzPending(), 0);
  }
}

// --- Members in parallel ---

// Payload "<subject index>-<n>".
std::string Payload(int s, int n) { return Joined({std::to_string(s), "-", std::to_string(n)}); }

TEST_F(QueueGroupsTest, MembersInParallelThreadsReceiveEveryMessageExactlyOnce) {
  constexpr int kMembers = 3;
  constexpr int kPerSubject = 80;
  std::vector<std::string> subjects;
  std::vector<std::vector<std::string>> members(kSubjects);
  for (int s = 0; s < kSubjects; ++s) {
    subjects.push_back(SubjectName("grp.parallel", s));
    for (int m = 0; m < kMembers; ++m) {
      members[s].push_back(Join(subjects[s], "workers"));
      ASSERT_FALSE(members[s].back().empty());
    }
  }
  const std::uint16_t api_port = port();
  ErrorLog errors;
  std::mutex mutex;
  std::map<std::string, int> received;                // payload -> times
  std::map<std::pair<int, std::uint64_t>, int> seqs;  // (subject, seq) -> times
  std::atomic<int> received_count{0};
  std::atomic<bool> stop{false};
  std::vector<std::atomic<int>> per_member(kSubjects * kMembers);
  const auto deadline = Clock::now() + kThreadsDeadline;

  auto member = [&](int s, int m) {
    HttpClient client;
    if (!client.Connect(api_port)) {
      errors.Add(Joined({"member connect: ", client.error()}));
      return;
    }
    const std::string& id = members[s][m];
    while (!stop.load() && Clock::now() < deadline) {
      HttpResponse response;
      if (!client.Request("POST", "/api/fetch",
                          SubscriberBody(subjects[s], id, R"("wait_ms":100,"max_messages":7)"),
                          &response)) {
        errors.Add(Joined({"member fetch: ", client.error()}));
        return;
      }
      const std::optional<BatchReply> reply = DecodeBatchReply(response.body, false);
      if (response.status != 200 || !reply || reply->id != id) {
        errors.Add(Joined({"member fetch: ", Describe(response)}));
        return;
      }
      std::lock_guard lock(mutex);
      for (std::size_t i = 0; i < reply->data.size(); ++i) {
        ++received[reply->data[i]];
        ++seqs[{s, reply->seqs[i]}];
      }
      per_member[s * kMembers + m] += static_cast<int>(reply->data.size());
      received_count += static_cast<int>(reply->data.size());
    }
  };
  std::vector<std::thread> threads;
  for (int s = 0; s < kSubjects; ++s) {
    for (int m = 0; m < kMembers; ++m) threads.emplace_back(member, s, m);
  }
  // Publish while the members fetch.
  for (int n = 0; n < kPerSubject; ++n) {
    for (int s = 0; s < kSubjects; ++s) PublishOk(subjects[s], Payload(s, n));
  }
  const int total = kSubjects * kPerSubject;
  while (received_count.load() < total && Clock::now() < deadline && errors.count() == 0) {
    std::this_thread::sleep_for(kPollPause);
  }
  stop = true;
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(errors.count(), 0) << errors.Dump();

  EXPECT_EQ(received_count.load(), total);
  for (int s = 0; s < kSubjects; ++s) {
    for (int n = 0; n < kPerSubject; ++n) {
      EXPECT_EQ(received[Payload(s, n)], 1) << Payload(s, n) << " received by one member once";
    }
    for (std::uint64_t seq = 1; seq <= kPerSubject; ++seq) {
      EXPECT_EQ((seqs[{s, seq}]), 1) << "subject " << s << " seq " << seq;
    }
  }
  EXPECT_EQ(received.size(), static_cast<std::size_t>(total)) << "nothing foreign";
  EXPECT_EQ(HealthzPending(), 0);
  std::string shares;
  for (const std::atomic<int>& count : per_member) shares += Numbered(" ", count.load());
  std::printf("queue groups: messages per member:%s\n", shares.c_str());
  for (int s = 0; s < kSubjects; ++s) {
    for (int m = 0; m < kMembers; ++m) {
      EXPECT_TRUE(FetchBatch(subjects[s], members[s][m], R"("max_messages":100)").data.empty());
    }
  }
}

TEST_F(QueueGroupsTest, InParallelEveryMessageIsAckedExactlyOnceThoughOneMemberNeverAcks) {
  constexpr int kGoodMembers = 2;
  constexpr int kPerSubject = 40;
  // What the member that never acks takes before the others start: it must
  // come back to them.
  constexpr int kHeld = 5;
  std::vector<std::string> subjects;
  std::vector<std::vector<std::string>> good(kSubjects);
  std::vector<std::string> bad;
  for (int s = 0; s < kSubjects; ++s) {
    subjects.push_back(SubjectName("grp.acks.parallel", s));
    bad.push_back(Join(subjects[s], "workers", R"("ack_wait_ms":300)"));
    ASSERT_FALSE(bad.back().empty());
    for (int m = 0; m < kGoodMembers; ++m) {
      good[s].push_back(Join(subjects[s], "workers"));
      ASSERT_FALSE(good[s].back().empty());
    }
    for (int n = 0; n < kHeld; ++n) PublishOk(subjects[s], Payload(s, n));
    std::vector<std::string> held;
    for (int n = 0; n < kHeld; ++n) held.push_back(Payload(s, n));
    EXPECT_EQ(FetchBatch(subjects[s], bad[s], Numbered("\"max_messages\":", kHeld), true).data,
              held);
  }

  const std::uint16_t api_port = port();
  ErrorLog errors;
  std::mutex mutex;
  std::map<std::string, int> acked;                       // payload -> successful acks
  std::map<std::string, std::uint64_t> acked_deliveries;  // payload -> deliveries when acked
  std::atomic<int> acked_sum{0};                          // the sum of every "acked"
  std::atomic<int> bad_took{0};
  std::atomic<bool> publishing_done{false};
  std::atomic<bool> stop{false};
  const auto deadline = Clock::now() + kThreadsDeadline;

  auto good_member = [&](int s, int m) {
    HttpClient client;
    if (!client.Connect(api_port)) {
      errors.Add(Joined({"member connect: ", client.error()}));
      return;
    }
    const std::string& id = good[s][m];
    while (!stop.load() && Clock::now() < deadline) {
      HttpResponse response;
      if (!client.Request("POST", "/api/fetch",
                          SubscriberBody(subjects[s], id, R"("wait_ms":100,"max_messages":4)"),
                          &response)) {
        errors.Add(Joined({"member fetch: ", client.error()}));
        return;
      }
      const std::optional<BatchReply> reply = DecodeBatchReply(response.body, true);
      if (response.status != 200 || !reply || reply->id != id) {
        errors.Add(Joined({"member fetch: ", Describe(response)}));
        return;
      }
      for (std::size_t i = 0; i < reply->data.size(); ++i) {
        const std::string fields = Joined({"\"seqs\":[", std::to_string(reply->seqs[i]), "]"});
        if (!client.Request("POST", "/api/ack", SubscriberBody(subjects[s], id, fields),
                            &response)) {
          errors.Add(Joined({"member ack: ", client.error()}));
          return;
        }
        if (response.status == 200 && response.body == AckedBody(1)) {
          std::lock_guard lock(mutex);
          ++acked[reply->data[i]];
          acked_deliveries[reply->data[i]] = reply->deliveries[i];
          ++acked_sum;
        } else if (response.status != 200 || response.body != AckedBody(0)) {
          // 0: its deadline passed before the ack, and it went to another.
          errors.Add(Joined({"member ack: ", Describe(response)}));
          return;
        }
      }
    }
  };
  // Fetches like the others while the publishing lasts, and never acks.
  auto bad_member = [&](int s) {
    HttpClient client;
    if (!client.Connect(api_port)) {
      errors.Add(Joined({"bad member connect: ", client.error()}));
      return;
    }
    while (!publishing_done.load() && !stop.load() && Clock::now() < deadline) {
      HttpResponse response;
      if (!client.Request("POST", "/api/fetch",
                          SubscriberBody(subjects[s], bad[s], R"("wait_ms":100,"max_messages":2)"),
                          &response)) {
        errors.Add(Joined({"bad member fetch: ", client.error()}));
        return;
      }
      const std::optional<BatchReply> reply = DecodeBatchReply(response.body, true);
      if (response.status != 200 || !reply) {
        errors.Add(Joined({"bad member fetch: ", Describe(response)}));
        return;
      }
      bad_took += static_cast<int>(reply->data.size());
    }
  };
  std::vector<std::thread> threads;
  for (int s = 0; s < kSubjects; ++s) {
    threads.emplace_back(bad_member, s);
    for (int m = 0; m < kGoodMembers; ++m) threads.emplace_back(good_member, s, m);
  }
  for (int n = kHeld; n < kPerSubject; ++n) {
    for (int s = 0; s < kSubjects; ++s) PublishOk(subjects[s], Payload(s, n));
  }
  publishing_done = true;
  const int total = kSubjects * kPerSubject;
  while (acked_sum.load() < total && Clock::now() < deadline && errors.count() == 0) {
    std::this_thread::sleep_for(kPollPause);
  }
  stop = true;
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(errors.count(), 0) << errors.Dump();

  EXPECT_EQ(acked_sum.load(), total) << "the acked counts add up to what was published";
  for (int s = 0; s < kSubjects; ++s) {
    for (int n = 0; n < kPerSubject; ++n) {
      EXPECT_EQ(acked[Payload(s, n)], 1) << Payload(s, n) << " acked exactly once";
    }
    for (int n = 0; n < kHeld; ++n) {
      EXPECT_GE(acked_deliveries[Payload(s, n)], 2u)
          << Payload(s, n) << " was first handed to the member that never acks";
    }
  }
  EXPECT_EQ(acked.size(), static_cast<std::size_t>(total)) << "nothing foreign";
  EXPECT_EQ(HealthzPending(), 0);
  EXPECT_EQ(Metric("gophermq_inflight_messages"), 0);
  EXPECT_GE(Metric("gophermq_messages_redelivered_total"), kSubjects * kHeld);
  std::printf("queue groups: the members that never ack took %d messages\n", bad_took.load());
}

}  // namespace
}  // namespace gophermq::testing
