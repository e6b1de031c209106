// CrossShardMatrix: the queues between shards, sized per shard rather than
// per pair.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstddef>
#include <utility>
#include <vector>

#include "gophermq/cross_shard.h"
#include "gophermq/cross_shard_link.h"

namespace gophermq {
namespace {

ShardCall publish_call(std::uint64_t sequence) {
  ShardCall call{};
  call.endpoint = Endpoint::publish;
  call.answer_sequence = sequence;
  return call;
}

TEST(CrossShardMatrix, QueueCapacityShrinksAsShardsGrowSoEachShardHoldsABoundedNumberOfSlots) {
  EXPECT_EQ(CrossShardMatrix::queue_capacity_for(1), CrossShardMatrix::kMaxQueueCapacity);
  EXPECT_EQ(CrossShardMatrix::queue_capacity_for(2), 4096u);
  EXPECT_EQ(CrossShardMatrix::queue_capacity_for(16), 512u);
  EXPECT_EQ(CrossShardMatrix::queue_capacity_for(64), 128u);
  EXPECT_EQ(CrossShardMatrix::queue_capacity_for(128), 64u);
  EXPECT_EQ(CrossShardMatrix::queue_capacity_for(1024), CrossShardMatrix::kMinQueueCapacity);
  for (unsigned shards = 2; shards <= 256; ++shards) {
    const std::size_t capacity = CrossShardMatrix::queue_capacity_for(shards);
    EXPECT_EQ(capacity & (capacity - 1), 0u) << shards << " shards: not a power of two";
    if (capacity > CrossShardMatrix::kMinQueueCapacity) {
      EXPECT_LE(capacity * (shards - 1), CrossShardMatrix::kOutgoingSlotsPerShard) << shards;
    }
  }
}

TEST(CrossShardMatrix, EveryOrderedPairHasItsOwnQueueOfTheChosenCapacity) {
  CrossShardMatrix matrix(3, 4);
  EXPECT_EQ(matrix.queue_capacity(), 4u);
  for (unsigned from = 0; from < 3; ++from) {
    for (unsigned to = 0; to < 3; ++to) {
      if (from == to) continue;
      EXPECT_EQ(matrix.queue(from, to).capacity(), 4u);
    }
  }
  ASSERT_TRUE(matrix.queue(0, 1).try_stage(publish_call(7)));
  matrix.queue(0, 1).publish();
  EXPECT_FALSE(matrix.queue(1, 0).has_published_items());
  EXPECT_FALSE(matrix.queue(0, 2).has_published_items());
  std::uint64_t seen = 0;
  EXPECT_EQ(matrix.queue(0, 1).consume([&](ShardCall&& call) { seen = call.answer_sequence; }), 1u);
  EXPECT_EQ(seen, 7u);
}

TEST(CrossShardMatrix, AFullQueueRefusesTheNextCallUntilTheConsumerTakesOne) {
  CrossShardMatrix matrix(2, 8);
  for (std::uint64_t i = 0; i < 8; ++i) ASSERT_TRUE(matrix.queue(0, 1).try_stage(publish_call(i)));
  EXPECT_FALSE(matrix.queue(0, 1).try_stage(publish_call(8)));  // back-pressure, not a drop
  matrix.queue(0, 1).publish();
  std::uint64_t next = 0;
  EXPECT_EQ(matrix.queue(0, 1).consume(
                [&](ShardCall&& call) { EXPECT_EQ(call.answer_sequence, next++); }, 1),
            1u);
  EXPECT_TRUE(matrix.queue(0, 1).try_stage(publish_call(8)));
}

// Back-pressure end to end: a shard sends more calls than the queue holds;
// the rest wait, in order, and go in as the owner takes calls out. Nothing is
// dropped, nothing overtakes, and each wait is counted.
TEST(CrossShardLink, CallsBeyondTheQueuesCapacityWaitInOrderAndAllArrive) {
  CrossShardMatrix matrix(2, 4);
  ShardMetrics metrics0, metrics1;
  CrossShardLink sender(0, matrix, metrics0, nullptr);
  CrossShardLink owner(1, matrix, metrics1, nullptr);
  constexpr std::uint64_t kCalls = 50;
  for (std::uint64_t i = 0; i < kCalls; ++i) sender.send(1, publish_call(i));
  EXPECT_EQ(sender.calls_waiting(), kCalls - 4);
  EXPECT_EQ(metrics0.cross_shard_queue_full.read(), kCalls - 4);

  std::vector<std::uint64_t> received;
  int turns = 0;
  for (bool waiting = true; waiting || owner.has_incoming(); ++turns) {
    ASSERT_LT(turns, 100) << "calls stopped moving";
    waiting = sender.flush();
    owner.drain([&](ShardCall&& call) { received.push_back(call.answer_sequence); });
  }
  ASSERT_EQ(received.size(), kCalls);
  for (std::uint64_t i = 0; i < kCalls; ++i) EXPECT_EQ(received[i], i);
  EXPECT_EQ(sender.calls_waiting(), 0u);
  EXPECT_GT(turns, 1) << "a queue of 4 cannot carry 50 calls in one turn";
}

TEST(CrossShardLink, NothingIsVisibleToTheOwnerUntilFlushed) {
  CrossShardMatrix matrix(2, 8);
  ShardMetrics metrics0, metrics1;
  CrossShardLink sender(0, matrix, metrics0, nullptr);
  CrossShardLink owner(1, matrix, metrics1, nullptr);
  sender.send(1, publish_call(1));
  EXPECT_FALSE(owner.has_incoming());
  EXPECT_FALSE(sender.flush());
  EXPECT_TRUE(owner.has_incoming());
  EXPECT_FALSE(sender.has_incoming());
  EXPECT_EQ(owner.drain([](ShardCall&&) {}), 1u);
}

TEST(CrossShardLink, ASleepingOwnerIsWokenThroughItsEventFdWithoutARing) {
  CrossShardMatrix matrix(2, 8);
  ShardMetrics metrics0, metrics1;
  CrossShardLink sender(0, matrix, metrics0, nullptr);
  CrossShardLink owner(1, matrix, metrics1, nullptr);
  std::uint64_t count = 0;
  // Awake: a publish needs no wake-up.
  sender.send(1, publish_call(1));
  sender.flush();
  EXPECT_LT(::read(matrix.mailbox(1).event_fd, &count, sizeof count), 0);
  owner.drain([](ShardCall&&) {});
  // Asleep: the producer's RMW sees the announcement and rings the eventfd.
  owner.announce_sleep();
  sender.send(1, publish_call(2));
  sender.flush();
  ASSERT_EQ(::read(matrix.mailbox(1).event_fd, &count, sizeof count),
            static_cast<ssize_t>(sizeof count));
  EXPECT_EQ(count, 1u);
  owner.woke();
}

}  // namespace
}  // namespace gophermq
