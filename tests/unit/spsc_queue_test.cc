// SpscQueue: the bounded single-producer single-consumer queue between shards.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gophermq/shard/spsc_queue.h"

namespace gophermq {
namespace {

// Takes everything published, in order.
template <typename T>
std::vector<T> consume_all(SpscQueue<T>& queue, std::size_t max = static_cast<std::size_t>(-1)) {
  std::vector<T> taken;
  queue.consume([&](T&& item) { taken.push_back(std::move(item)); }, max);
  return taken;
}

TEST(SpscQueue, CapacityIsRoundedUpToAPowerOfTwo) {
  EXPECT_EQ(SpscQueue<int>(0).capacity(), 2u);
  EXPECT_EQ(SpscQueue<int>(1).capacity(), 2u);
  EXPECT_EQ(SpscQueue<int>(2).capacity(), 2u);
  EXPECT_EQ(SpscQueue<int>(3).capacity(), 4u);
  EXPECT_EQ(SpscQueue<int>(4).capacity(), 4u);
  EXPECT_EQ(SpscQueue<int>(5).capacity(), 8u);
  EXPECT_EQ(SpscQueue<int>(1000).capacity(), 1024u);
  EXPECT_EQ(SpscQueue<int>(1024).capacity(), 1024u);
  EXPECT_EQ(SpscQueue<int>(1025).capacity(), 2048u);
}

TEST(SpscQueue, HoldsExactlyItsCapacity) {
  SpscQueue<int> queue(5);  // 8 slots
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(queue.try_stage(int{i})) << i;
  EXPECT_FALSE(queue.try_stage(8));
  // Still full once published: publishing frees nothing.
  queue.publish();
  EXPECT_FALSE(queue.try_stage(8));
}

TEST(SpscQueue, TryStageSucceedsAgainAfterConsume) {
  SpscQueue<int> queue(4);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(queue.try_stage(int{i}));
  ASSERT_FALSE(queue.try_stage(4));
  queue.publish();
  EXPECT_EQ(consume_all(queue, 1), std::vector<int>{0});
  // Exactly one slot came free.
  EXPECT_TRUE(queue.try_stage(4));
  EXPECT_FALSE(queue.try_stage(5));
  queue.publish();
  // The consumer's cached view of the tail ends at 3, but everything
  // published before the call is taken: a consumer told "calls are waiting"
  // (the doorbell) must not leave any behind.
  EXPECT_EQ(consume_all(queue), (std::vector<int>{1, 2, 3, 4}));
  EXPECT_TRUE(consume_all(queue).empty());
}

TEST(SpscQueue, StagedItemsAreInvisibleUntilPublished) {
  SpscQueue<int> queue(8);
  ASSERT_TRUE(queue.try_stage(1));
  ASSERT_TRUE(queue.try_stage(2));
  EXPECT_FALSE(queue.has_published_items());
  EXPECT_TRUE(consume_all(queue).empty());

  EXPECT_TRUE(queue.publish());
  EXPECT_TRUE(queue.has_published_items());
  ASSERT_TRUE(queue.try_stage(3));  // staged after the publish: not visible yet
  EXPECT_EQ(consume_all(queue), (std::vector<int>{1, 2}));
  EXPECT_FALSE(queue.has_published_items());

  EXPECT_TRUE(queue.publish());
  EXPECT_EQ(consume_all(queue), std::vector<int>{3});
}

TEST(SpscQueue, PublishReportsWhetherAnythingWasNew) {
  SpscQueue<int> queue(4);
  EXPECT_FALSE(queue.publish());
  ASSERT_TRUE(queue.try_stage(1));
  EXPECT_TRUE(queue.publish());
  EXPECT_FALSE(queue.publish());
}

TEST(SpscQueue, ConsumeOnAnEmptyQueueTakesNothing) {
  SpscQueue<int> queue(4);
  int calls = 0;
  EXPECT_EQ(queue.consume([&](int&&) { ++calls; }), 0u);
  EXPECT_EQ(calls, 0);
}

TEST(SpscQueue, KeepsFifoOrderAcrossWrapAround) {
  SpscQueue<int> queue(4);
  int next_in = 0;
  int next_out = 0;
  // 3 in, 3 out, many times: the indices wrap the 4 slots again and again.
  for (int round = 0; round < 100; ++round) {
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(queue.try_stage(int{next_in++}));
    queue.publish();
    for (int value : consume_all(queue)) EXPECT_EQ(value, next_out++);
  }
  EXPECT_EQ(next_out, 300);
}

TEST(SpscQueue, ConsumeTakesAtMostMax) {
  SpscQueue<int> queue(16);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(queue.try_stage(int{i}));
  queue.publish();
  EXPECT_EQ(consume_all(queue, 3), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(consume_all(queue, 0), std::vector<int>{});
  EXPECT_EQ(consume_all(queue, 4), (std::vector<int>{3, 4, 5, 6}));
  EXPECT_EQ(consume_all(queue, 100), (std::vector<int>{7, 8, 9}));
  EXPECT_TRUE(consume_all(queue).empty());
}

TEST(SpscQueue, ConsumeReturnsTheCount) {
  SpscQueue<int> queue(8);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(queue.try_stage(int{i}));
  queue.publish();
  EXPECT_EQ(queue.consume([](int&&) {}, 2), 2u);
  EXPECT_EQ(queue.consume([](int&&) {}), 3u);
}

TEST(SpscQueue, CarriesMoveOnlyItems) {
  SpscQueue<std::unique_ptr<std::string>> queue(4);
  auto item = std::make_unique<std::string>("payload");
  ASSERT_TRUE(queue.try_stage(std::move(item)));
  EXPECT_EQ(item, nullptr);  // moved in
  queue.publish();
  std::unique_ptr<std::string> out;
  queue.consume([&](std::unique_ptr<std::string>&& taken) { out = std::move(taken); });
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(*out, "payload");
}

TEST(SpscQueue, AFailedStageLeavesTheItemWithTheCaller) {
  // Back-pressure: the caller keeps the item and retries later.
  SpscQueue<std::unique_ptr<int>> queue(2);
  ASSERT_TRUE(queue.try_stage(std::make_unique<int>(1)));
  ASSERT_TRUE(queue.try_stage(std::make_unique<int>(2)));
  auto third = std::make_unique<int>(3);
  EXPECT_FALSE(queue.try_stage(std::move(third)));
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(*third, 3);
}

// Counts live instances, so leaks and double destruction show.
struct Tracked {
  static inline int live = 0;
  static inline int constructed = 0;
  int value;
  bool moved_from = false;

  explicit Tracked(int v) : value(v) {
    ++live;
    ++constructed;
  }
  Tracked(Tracked&& other) noexcept : value(other.value) {
    other.moved_from = true;
    ++live;
    ++constructed;
  }
  Tracked(const Tracked&) = delete;
  Tracked& operator=(const Tracked&) = delete;
  ~Tracked() { --live; }
};

class SpscQueueLifetimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Tracked::live = 0;
    Tracked::constructed = 0;
  }
};

TEST_F(SpscQueueLifetimeTest, ConsumeDestroysEachItemOnce) {
  {
    SpscQueue<Tracked> queue(8);
    for (int i = 0; i < 6; ++i) ASSERT_TRUE(queue.try_stage(Tracked(i)));
    EXPECT_EQ(Tracked::live, 6);  // the temporaries are gone; the slots hold 6
    queue.publish();
    std::vector<int> values;
    queue.consume([&](Tracked&& item) { values.push_back(item.value); });
    EXPECT_EQ(values, (std::vector<int>{0, 1, 2, 3, 4, 5}));
    EXPECT_EQ(Tracked::live, 0);
  }
  EXPECT_EQ(Tracked::live, 0);
}

TEST_F(SpscQueueLifetimeTest, DestructorDestroysPublishedAndStagedItems) {
  {
    SpscQueue<Tracked> queue(8);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(queue.try_stage(Tracked(i)));
    queue.publish();
    for (int i = 3; i < 5; ++i) ASSERT_TRUE(queue.try_stage(Tracked(i)));  // never published
    EXPECT_EQ(Tracked::live, 5);
  }
  EXPECT_EQ(Tracked::live, 0);
}

TEST_F(SpscQueueLifetimeTest, DestructorDestroysItemsLeftAfterAPartialConsume) {
  // A consume capped by `max` leaves the consumer's cached tail behind the
  // real one; items published after it must still be destroyed.
  {
    SpscQueue<Tracked> queue(8);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(queue.try_stage(Tracked(i)));
    queue.publish();
    EXPECT_EQ(queue.consume([](Tracked&&) {}, 1), 1u);
    for (int i = 3; i < 5; ++i) ASSERT_TRUE(queue.try_stage(Tracked(i)));
    queue.publish();
    EXPECT_EQ(Tracked::live, 4);
  }
  EXPECT_EQ(Tracked::live, 0) << "items left in the queue were not destroyed";
}

TEST_F(SpscQueueLifetimeTest, DestructorFreesUniquePtrsLeftInTheQueue) {
  // Under ASan/LSan a leak here fails the run as well.
  static int deleted = 0;
  deleted = 0;
  struct CountingDelete {
    void operator()(int* p) const {
      ++deleted;
      delete p;
    }
  };
  using Ptr = std::unique_ptr<int, CountingDelete>;
  {
    SpscQueue<Ptr> queue(4);
    ASSERT_TRUE(queue.try_stage(Ptr(new int(1))));
    ASSERT_TRUE(queue.try_stage(Ptr(new int(2))));
    queue.publish();
    ASSERT_TRUE(queue.try_stage(Ptr(new int(3))));
  }
  EXPECT_EQ(deleted, 3);
}

// Producer and consumer on two threads: every number arrives once, in order.
// The producer stages in batches and publishes each batch, retrying on a full
// queue; the consumer takes in batches of varying size.
//
// On a busy machine the two threads may get a CPU only now and then, so a
// fixed deadline would measure the machine, not the queue: the test fails
// only when nothing moves for 30 s (a lost item or a lost publish stalls it
// for good). A waiting side spins a while before it yields its CPU, so the
// two threads overlap on two CPUs instead of handing over one slice at a time.
void run_two_thread_stress(std::size_t capacity, std::uint64_t count) {
  using Clock = std::chrono::steady_clock;
  constexpr auto kStall = std::chrono::seconds(30);
  constexpr int kSpinsBeforeYield = 256;
  SpscQueue<std::uint64_t> queue(capacity);
  std::atomic<bool> stalled{false};

  std::thread producer([&] {
    std::uint64_t next = 0;
    std::uint64_t batch = 1;
    auto last_progress = Clock::now();
    int idle = 0;
    while (next < count) {
      bool full = false;
      const std::uint64_t before = next;
      for (std::uint64_t staged = 0; staged < batch && next < count; ++staged) {
        std::uint64_t item = next;
        if (!queue.try_stage(std::move(item))) {
          full = true;  // back-pressure: publish what we have, retry later
          break;
        }
        ++next;
      }
      queue.publish();
      batch = batch % 61 + 1;
      if (next != before) {
        last_progress = Clock::now();
        idle = 0;
      } else if (stalled.load(std::memory_order_relaxed) || Clock::now() - last_progress > kStall) {
        stalled = true;
        return;
      }
      if (full && ++idle % kSpinsBeforeYield == 0) std::this_thread::yield();
    }
  });

  std::uint64_t expected = 0;
  std::uint64_t received = 0;
  std::uint64_t out_of_order = 0;
  std::size_t max = 1;
  auto last_progress = Clock::now();
  int idle = 0;
  while (received < count) {
    std::size_t taken = queue.consume(
        [&](std::uint64_t&& value) {
          if (value != expected) ++out_of_order;
          expected = value + 1;
          ++received;
        },
        max);
    max = max % 97 + 1;
    if (taken != 0) {
      last_progress = Clock::now();
      idle = 0;
      continue;
    }
    if (stalled.load(std::memory_order_relaxed) || Clock::now() - last_progress > kStall) {
      stalled = true;
      break;
    }
    if (++idle % kSpinsBeforeYield == 0) std::this_thread::yield();
  }
  producer.join();

  ASSERT_FALSE(stalled.load()) << "no progress for 30 s at " << expected << " of " << count;
  EXPECT_EQ(out_of_order, 0u);
  EXPECT_EQ(received, count);
  EXPECT_EQ(expected, count);
  EXPECT_FALSE(queue.has_published_items());
}

TEST(SpscQueueStress, TwoThreadsTwoMillionItems) { run_two_thread_stress(1024, 2'000'000); }

// A queue of 4 wraps around 500,000 times and is full at almost every stage.
TEST(SpscQueueStress, TwoThreadsTinyCapacity) { run_two_thread_stress(4, 2'000'000); }

}  // namespace
}  // namespace gophermq
