// WaitingFetches: the parked fetches of one shard, by subscriber (oldest
// first), by deadline (earliest first), by the connection their answer goes
// to, and the waiting counts it keeps on subscribers and subjects.
#include "gophermq/api/waiting_fetches.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace gophermq {
namespace {

class WaitingFetchesTest : public ::testing::Test {
 protected:
  Subscriber& subscribe(std::string_view subject) {
    const SubscriberId id = store_.subscribe(subject).id;
    return *store_.find(subject, id);
  }

  // A fetch call from `origin`'s connection `index`, told apart by its
  // answer sequence.
  static ShardCall call(std::uint64_t sequence, unsigned origin = 0, std::uint32_t index = 0,
                        std::uint32_t generation = 0) {
    ShardCall call;
    call.endpoint = Endpoint::fetch;
    call.origin_shard = static_cast<std::uint16_t>(origin);
    call.connection_index = index;
    call.connection_generation = generation;
    call.answer_sequence = sequence;
    return call;
  }

  PendingBudget budget_{1000};
  SubscriberIdSource ids_;
  StoreCensus census_{100, 100};
  SubjectStore store_{budget_, census_, ids_};
  WaitingFetches waiting_;
};

TEST_F(WaitingFetchesTest, ASubscribersFetchesAreTakenOldestFirst) {
  Subscriber& a = subscribe("s");
  Subscriber& b = subscribe("s");
  waiting_.park(a, call(1), 100);
  waiting_.park(b, call(2), 100);
  waiting_.park(a, call(3), 50);
  EXPECT_EQ(a.waiting_fetches, 2u);
  EXPECT_EQ(a.subject->waiting_subscribers, 2u);
  std::vector<Subscriber*> subscribers;
  waiting_.waiting_subscribers(*a.subject, subscribers);
  EXPECT_EQ(subscribers.size(), 2u);

  ShardCall taken;
  ASSERT_TRUE(waiting_.take_oldest(a, taken));
  EXPECT_EQ(taken.answer_sequence, 1u) << "parked first, though due later";
  ASSERT_TRUE(waiting_.take_oldest(a, taken));
  EXPECT_EQ(taken.answer_sequence, 3u);
  EXPECT_FALSE(waiting_.take_oldest(a, taken));
  EXPECT_EQ(a.waiting_fetches, 0u);
  EXPECT_EQ(a.subject->waiting_subscribers, 1u) << "b still waits";
  waiting_.waiting_subscribers(*a.subject, subscribers);
  EXPECT_EQ(subscribers, std::vector<Subscriber*>{&b});
  EXPECT_EQ(waiting_.size(), 1u);
}

TEST_F(WaitingFetchesTest, DeadlinesComeEarliestFirstAndSkipFetchesAnsweredEarly) {
  Subscriber& a = subscribe("s");
  Subscriber& b = subscribe("t");
  waiting_.park(a, call(1), 300);
  waiting_.park(b, call(2), 100);
  waiting_.park(a, call(3), 200);
  EXPECT_EQ(waiting_.next_deadline_ms(), 100u);
  ShardCall taken;
  ASSERT_TRUE(waiting_.take_oldest(b, taken));  // answered before its deadline
  EXPECT_EQ(waiting_.next_deadline_ms(), 200u);

  std::vector<std::uint64_t> due;
  waiting_.take_due(250, [&](Subscriber& subscriber, ShardCall& call) {
    EXPECT_EQ(&subscriber, &a);
    due.push_back(call.answer_sequence);
  });
  EXPECT_EQ(due, std::vector<std::uint64_t>{3});
  waiting_.take_due(1000,
                    [&](Subscriber&, ShardCall& call) { due.push_back(call.answer_sequence); });
  EXPECT_EQ(due, (std::vector<std::uint64_t>{3, 1}));
  EXPECT_TRUE(waiting_.empty());
  EXPECT_EQ(waiting_.next_deadline_ms(), UINT64_MAX);
  EXPECT_EQ(a.subject->waiting_subscribers, 0u);
}

TEST_F(WaitingFetchesTest, AConnectionsFetchesAreFoundByShardSlotAndGeneration) {
  Subscriber& a = subscribe("s");
  Subscriber& b = subscribe("t");
  waiting_.park(a, call(1, /*origin=*/1, /*index=*/7, /*generation=*/3), 100);
  waiting_.park(b, call(2, 1, 7, 3), 100);
  waiting_.park(a, call(3, 0, 7, 3), 100);  // the same slot on another shard
  waiting_.park(b, call(4, 1, 7, 2), 100);  // an older socket in the same slot
  std::vector<std::uint64_t> ended;
  waiting_.take_for_connection(
      1, 7, 3, [&](Subscriber&, ShardCall& call) { ended.push_back(call.answer_sequence); });
  std::sort(ended.begin(), ended.end());
  EXPECT_EQ(ended, (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(waiting_.size(), 2u);
}

TEST_F(WaitingFetchesTest, ManyFetchesAnsweredEarlyDoNotPileUpInTheDeadlineHeap) {
  Subscriber& a = subscribe("s");
  ShardCall taken;
  for (std::uint64_t i = 0; i < 100'000; ++i) {
    waiting_.park(a, call(i), 1'000'000 + i);
    ASSERT_TRUE(waiting_.take_oldest(a, taken));
  }
  EXPECT_LE(waiting_.deadlines_held(), 2 * 1024 + 2u) << "leftovers are dropped as they pile up";
  waiting_.park(a, call(7), 5);
  EXPECT_EQ(waiting_.next_deadline_ms(), 5u);
  std::size_t due = 0;
  waiting_.take_due(5, [&](Subscriber&, ShardCall&) { ++due; });
  EXPECT_EQ(due, 1u);
  EXPECT_EQ(waiting_.next_deadline_ms(), UINT64_MAX);
}

TEST_F(WaitingFetchesTest, TakeAllEmptiesEverything) {
  Subscriber& a = subscribe("s");
  Subscriber& b = subscribe("t");
  for (std::uint64_t i = 0; i < 10; ++i) waiting_.park(i % 2 ? a : b, call(i), 100 + i);
  std::size_t taken = 0;
  waiting_.take_all([&](Subscriber&, ShardCall&) { ++taken; });
  EXPECT_EQ(taken, 10u);
  EXPECT_EQ(a.waiting_fetches + b.waiting_fetches, 0u);
  EXPECT_EQ(a.subject->waiting_subscribers + b.subject->waiting_subscribers, 0u);
  EXPECT_EQ(waiting_.next_deadline_ms(), UINT64_MAX);
}

}  // namespace
}  // namespace gophermq
