// broker.max-pending: the original's count of stored messages per subject. A
// publish reserves one per subscriber it reaches; a refused publish stores
// nothing; a fetch gives back what it drains. Behind it stands a
// broker-wide count (broker.max-pending-total).
#include <string>
#include <vector>

#include "test_support.h"

namespace gophermq::testing {
namespace {

// Each test starts its broker with the max-pending it needs.
class OverflowTest : public BrokerTest {
 protected:
  std::optional<BrokerOptions> Options() const override { return std::nullopt; }

  void StartWithMaxPending(int max_pending) {
    BrokerOptions options;
    options.flags.push_back("--broker.max-pending=" + std::to_string(max_pending));
    StartBroker(options);
  }
};

TEST_F(OverflowTest, SingleSubscriberOverflowsAfterMaxPendingAndStoresNothing) {
  ASSERT_NO_FATAL_FAILURE(StartWithMaxPending(5));
  const std::string id = Subscribe("over");
  std::vector<std::string> sent;
  for (int i = 0; i < 5; ++i) {
    sent.push_back(Numbered("m", i));
    PublishOk("over", sent.back());
  }
  // The sixth would take the count to 6 > 5.
  EXPECT_TRUE(IsJsonResponse(Publish("over", "refused"), 429, kOverflowBody));
  EXPECT_TRUE(IsJsonResponse(Publish("over", "refused again"), 429, kOverflowBody));
  EXPECT_EQ(Fetch("over", id), sent);  // the refused ones were not stored
  // The fetch gave the room back.
  PublishOk("over", "after drain");
  EXPECT_EQ(Fetch("over", id), std::vector<std::string>{"after drain"});
}

TEST_F(OverflowTest, RefillsExactlyToTheLimitAfterEachDrain) {
  ASSERT_NO_FATAL_FAILURE(StartWithMaxPending(3));
  const std::string id = Subscribe("cycle");
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE(round);
    for (int i = 0; i < 3; ++i) PublishOk("cycle", std::to_string(i));
    EXPECT_TRUE(IsJsonResponse(Publish("cycle", "x"), 429, kOverflowBody));
    EXPECT_EQ(Fetch("cycle", id).size(), 3u);
  }
}

TEST_F(OverflowTest, PublishReservesOnePerSubscriber) {
  ASSERT_NO_FATAL_FAILURE(StartWithMaxPending(5));
  const std::string a = Subscribe("three");
  const std::string b = Subscribe("three");
  const std::string c = Subscribe("three");
  PublishOk("three", "first");  // count 3
  // 3 + 3 = 6 > 5: refused, and not delivered to any of the three.
  EXPECT_TRUE(IsJsonResponse(Publish("three", "second"), 429, kOverflowBody));
  EXPECT_EQ(Fetch("three", a), std::vector<std::string>{"first"});  // count 2
  PublishOk("three", "third");                                      // 2 + 3 = 5, allowed
  EXPECT_TRUE(IsJsonResponse(Publish("three", "fourth"), 429, kOverflowBody));  // 8 > 5
  EXPECT_EQ(Fetch("three", a), std::vector<std::string>{"third"});
  EXPECT_EQ(Fetch("three", b), (std::vector<std::string>{"first", "third"}));
  EXPECT_EQ(Fetch("three", c), (std::vector<std::string>{"first", "third"}));
}

TEST_F(OverflowTest, FanOutLargerThanMaxPendingIsAlwaysRefused) {
  ASSERT_NO_FATAL_FAILURE(StartWithMaxPending(2));
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(Subscribe("wide"));
  EXPECT_TRUE(IsJsonResponse(Publish("wide", "never"), 429, kOverflowBody));
  for (const std::string& id : ids) EXPECT_TRUE(Fetch("wide", id).empty());
  // The refused reservation was given back: a 1-subscriber subject still has room for 2.
  const std::string narrow = Subscribe("narrow");
  PublishOk("narrow", "1");
  PublishOk("narrow", "2");
  EXPECT_TRUE(IsJsonResponse(Publish("narrow", "3"), 429, kOverflowBody));
  EXPECT_EQ(Fetch("narrow", narrow), (std::vector<std::string>{"1", "2"}));
}

// The issue this fixed: a subscriber that never fetches filled the
// broker-wide count, and from then on a publish to any subject got 429.
TEST_F(OverflowTest, ASubjectFilledByAStaleSubscriberDoesNotStopOtherSubjects) {
  ASSERT_NO_FATAL_FAILURE(StartWithMaxPending(3));
  const std::string stale = Subscribe("stale.never.fetches");
  for (int i = 0; i < 3; ++i) PublishOk("stale.never.fetches", Numbered("m", i));
  EXPECT_TRUE(IsJsonResponse(Publish("stale.never.fetches", "over"), 429, kOverflowBody));
  // Subjects on both shards, each with a live subscriber, publish as usual.
  for (int i = 0; i < 20; ++i) {
    const std::string subject = Numbered("live.s", i);
    const std::string id = Subscribe(subject);
    for (int j = 0; j < 3; ++j) PublishOk(subject, Numbered("m", j));
    EXPECT_TRUE(IsJsonResponse(Publish(subject, "over"), 429, kOverflowBody)) << subject;
    EXPECT_EQ(Fetch(subject, id).size(), 3u) << subject;
  }
  EXPECT_EQ(Fetch("stale.never.fetches", stale).size(), 3u);
}

// broker.max-pending-total: the broker-wide count behind the subjects'.
TEST_F(OverflowTest, MaxPendingTotalIsBrokerWideAcrossSubjectsAndShards) {
  constexpr int kSubjects = 20;  // enough that both shards own some
  BrokerOptions options;
  options.flags = {"--broker.max-pending=5", Numbered("--broker.max-pending-total=", kSubjects)};
  ASSERT_NO_FATAL_FAILURE(StartBroker(options));
  std::vector<std::string> subjects, ids;
  for (int i = 0; i < kSubjects; ++i) {
    subjects.push_back(Numbered("wide.s", i));
    ids.push_back(Subscribe(subjects.back()));
  }
  for (const std::string& subject : subjects) PublishOk(subject, "fill");
  // The broker is full, though no subject is: every one is refused, on
  // whichever shard it lives.
  for (const std::string& subject : subjects) {
    EXPECT_TRUE(IsJsonResponse(Publish(subject, "over"), 429, kOverflowBody)) << subject;
  }
  // Draining one subject frees one slot, usable by any other subject.
  EXPECT_EQ(Fetch(subjects[0], ids[0]), std::vector<std::string>{"fill"});
  PublishOk(subjects[kSubjects - 1], "reused");
  EXPECT_TRUE(IsJsonResponse(Publish(subjects[1], "over"), 429, kOverflowBody));
  EXPECT_EQ(Fetch(subjects[kSubjects - 1], ids[kSubjects - 1]),
            (std::vector<std::string>{"fill", "reused"}));
}

TEST_F(OverflowTest, FailedPublishesDoNotCount) {
  ASSERT_NO_FATAL_FAILURE(StartWithMaxPending(2));
  const std::string id = Subscribe("count");
  // None of these stores anything, so none may use up room.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Publish("nobody", "x").status, 404);
    EXPECT_EQ(Publish("bad subject", "x").status, 400);
    EXPECT_EQ(Post("/api/publish", "{\"subject\":\"count\",\"data\":1}").status, 400);
  }
  PublishOk("count", "1");
  PublishOk("count", "2");
  EXPECT_TRUE(IsJsonResponse(Publish("count", "3"), 429, kOverflowBody));
  // Fetching an empty queue and bad fetches give nothing back either.
  const std::string other = Subscribe("count.other");
  EXPECT_TRUE(Fetch("count.other", other).empty());
  EXPECT_EQ(Post("/api/fetch", FetchBody("count", "nope")).status, 404);
  EXPECT_TRUE(IsJsonResponse(Publish("count", "3"), 429, kOverflowBody));
  EXPECT_EQ(Fetch("count", id), (std::vector<std::string>{"1", "2"}));
}

}  // namespace
}  // namespace gophermq::testing
