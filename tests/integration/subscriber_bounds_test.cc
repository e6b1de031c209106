// A subscriber's own bounds (api-extensions.md §2): max_pending,
// max_pending_bytes and discard on subscribe. Past them it drops messages
// for itself alone, counted in gophermq_messages_dropped_total{reason}; a
// publish never fails because of them. Subjects on both shards, so the
// options also travel with a subscribe another shard owns.
#include <string>
#include <vector>

#include "test_support.h"

namespace gophermq::testing {
namespace {

class SubscriberBoundsTest : public BrokerTest {
 protected:
  std::optional<BrokerOptions> Options() const override {
    return MonitoredOptions({"--broker.max-pending=6"});  // per subject
  }

  double Dropped(std::string_view reason) {
    return Metric(Joined({"gophermq_messages_dropped_total{reason=\"", reason, "\"}"}));
  }

  // Publishes "<subject>.<i>" for i in [from, to), each answered 200.
  void PublishNumbered(const std::string& subject, int from, int to) {
    for (int i = from; i < to; ++i) PublishOk(subject, Numbered(subject + ".", i));
  }
  std::vector<std::string> NumberedFrom(const std::string& subject, int from, int to) {
    std::vector<std::string> out;
    for (int i = from; i < to; ++i) out.push_back(Numbered(subject + ".", i));
    return out;
  }
};

TEST_F(SubscriberBoundsTest, DiscardNewAndOldKeepExactlyTheRightMessages) {
  double expected_new = 0;
  double expected_old = 0;
  for (int s = 0; s < 4; ++s) {  // subjects on both shards
    const std::string subject = Numbered("bounded.s", s);
    const std::string oldest = SubscribeWith(subject, R"("max_pending":3)");
    const std::string newest = SubscribeWith(subject, R"("max_pending":3,"discard":"old")");
    ASSERT_FALSE(oldest.empty());
    ASSERT_FALSE(newest.empty());
    // Ten publishes: far past the subject's own bound of six copies, yet
    // every one is stored, since each subscriber makes room for itself.
    PublishNumbered(subject, 0, 10);
    EXPECT_EQ(Fetch(subject, oldest), NumberedFrom(subject, 0, 3))
        << "discard new: the first three";
    EXPECT_EQ(Fetch(subject, newest), NumberedFrom(subject, 7, 10))
        << "discard old: the last three";
    expected_new += 7;
    expected_old += 7;
    // Emptied, each takes the next ones again.
    PublishNumbered(subject, 10, 12);
    EXPECT_EQ(Fetch(subject, oldest), NumberedFrom(subject, 10, 12));
    EXPECT_EQ(Fetch(subject, newest), NumberedFrom(subject, 10, 12));
  }
  EXPECT_EQ(Dropped("discard_new"), expected_new);
  EXPECT_EQ(Dropped("discard_old"), expected_old);
}

TEST_F(SubscriberBoundsTest, AByteBoundCountsPayloadBytes) {
  const std::string id = SubscribeWith("bytes", R"("max_pending_bytes":10,"discard":"old")");
  for (std::string payload : {"aaaa", "bbbb", "cccc", "dd"}) PublishOk("bytes", payload);
  EXPECT_EQ(Fetch("bytes", id), (std::vector<std::string>{"bbbb", "cccc", "dd"}));
}

TEST_F(SubscriberBoundsTest, APlainSubscriberBesideABoundedOneStillFillsTheSubject) {
  const std::string bounded = SubscribeWith("mixed", R"("max_pending":2,"discard":"old")");
  const std::string plain = Subscribe("mixed");
  // Two copies per publish until the bounded one is full, then one more each
  // (the plain subscriber's) up to the subject's six: 2 + 2 + 1 + 1 = 6.
  PublishNumbered("mixed", 0, 4);
  EXPECT_TRUE(IsJsonResponse(Publish("mixed", "refused"), 429, kOverflowBody));
  EXPECT_EQ(Fetch("mixed", plain), NumberedFrom("mixed", 0, 4));
  EXPECT_EQ(Fetch("mixed", bounded), NumberedFrom("mixed", 2, 4))
      << "the refused publish dropped nothing";
}

TEST_F(SubscriberBoundsTest, OutOfRangeBoundsAreAnInvalidBody) {
  for (std::string fields :
       {R"("max_pending":0)", R"("max_pending":-1)", R"("max_pending":"3")", R"("max_pending":1.5)",
        R"("max_pending_bytes":0)", R"("discard":"oldest")", R"("discard":3)", R"("discard":"")",
        R"("discard":"NEW")"}) {
    EXPECT_TRUE(IsJsonResponse(Post("/api/subscribe", R"({"subject":"s",)" + fields + "}"), 400,
                               kInvalidBodyBody))
        << fields;
  }
  // null leaves a field unset, as Go does; "new" is the default spelled out.
  EXPECT_FALSE(SubscribeWith("s", R"("max_pending":null,"discard":"new")").empty());
}

// Thousands of messages behind subscribers: the subject's log and a bounded
// subscriber's own queue grow past a ring's 1,024 slots into segments, and
// give them back as they are fetched. Every message comes out once, in
// order, whether a fetch stops at a segment's edge or not.
class LongBacklogTest : public BrokerTest {
 protected:
  std::optional<BrokerOptions> Options() const override { return MonitoredOptions({}); }

  // A fetch of at most `max_messages`; its "pending" must count what is
  // left.
  std::vector<std::string> FetchAtMost(const std::string& subject, const std::string& id,
                                       int max_messages, std::uint64_t pending_before) {
    const HttpResponse response = Post(
        "/api/fetch",
        SubscriberBody(subject, id, Joined({R"("max_messages":)", std::to_string(max_messages)})));
    const std::optional<JsonObject> reply = DecodeJsonObject(response.body);
    std::vector<std::string> data;
    std::uint64_t pending = 0;
    if (response.status != 200 || !reply || !GetField(reply->string_arrays, "data", &data) ||
        !GetField(reply->numbers, "pending", &pending)) {
      ADD_FAILURE() << "fetch " << subject << " " << id << ":\n" << Describe(response);
      return {};
    }
    EXPECT_EQ(pending + data.size(), pending_before);
    return data;
  }
};

TEST_F(LongBacklogTest, ThousandsPendingComeOutOnceAndInOrder) {
  constexpr int kMessages = 2500;
  for (int s = 0; s < 4; ++s) {  // subjects on both shards
    const std::string subject = Numbered("backlog.s", s);
    SCOPED_TRACE(subject);
    const std::string plain = Subscribe(subject);
    const std::string bounded = SubscribeWith(subject, R"("max_pending":2000,"discard":"old")");
    ASSERT_FALSE(plain.empty());
    ASSERT_FALSE(bounded.empty());
    // In batches of 500, one subject each.
    for (int from = 0; from < kMessages; from += 500) {
      std::string body = R"({"subject":)" + JsonQuote(subject) + R"(,"data":[)";
      for (int i = from; i < from + 500; ++i) {
        if (i != from) body += ',';
        body += JsonQuote(Numbered(subject + ".", i));
      }
      body += "]}";
      ASSERT_EQ(Post("/api/publish/batch", body).status, 200);
    }
    // The plain subscriber has all of them; the bounded one the last 2,000.
    std::vector<std::string> taken;
    for (int fetches = 0; fetches < 10 && static_cast<int>(taken.size()) < kMessages; ++fetches) {
      for (std::string& message : FetchAtMost(subject, plain, 700, kMessages - taken.size())) {
        taken.push_back(std::move(message));
      }
    }
    std::vector<std::string> expected;
    for (int i = 0; i < kMessages; ++i) expected.push_back(Numbered(subject + ".", i));
    EXPECT_EQ(taken, expected);
    taken.clear();
    for (int fetches = 0; fetches < 10 && taken.size() < 2000; ++fetches) {
      for (std::string& message : FetchAtMost(subject, bounded, 333, 2000 - taken.size())) {
        taken.push_back(std::move(message));
      }
    }
    expected.erase(expected.begin(), expected.begin() + (kMessages - 2000));
    EXPECT_EQ(taken, expected) << "discard old: the last 2,000";
    EXPECT_TRUE(Fetch(subject, plain).empty());
    EXPECT_TRUE(Fetch(subject, bounded).empty());
    // Emptied, each takes new messages as before.
    PublishOk(subject, "after");
    EXPECT_EQ(Fetch(subject, plain), std::vector<std::string>{"after"});
    EXPECT_EQ(Fetch(subject, bounded), std::vector<std::string>{"after"});
  }
}

}  // namespace
}  // namespace gophermq::testing
