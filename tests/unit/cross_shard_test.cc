// CrossShardMatrix: the queues between shards, sized per shard rather than
// per pair.
#include <gtest/gtest.h>

#include <cstddef>
#include <utility>

#include "gophermq/cross_shard.h"

namespace gophermq {
namespace {

ShardCall publish_call(std::uint64_t sequence) {
  ShardCall call{};
  call.kind = CallKind::publish;
  call.response_sequence = sequence;
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
  EXPECT_EQ(matrix.queue(0, 1).consume([&](ShardCall&& call) { seen = call.response_sequence; }),
            1u);
  EXPECT_EQ(seen, 7u);
}

TEST(CrossShardMatrix, AFullQueueRefusesTheNextCallUntilTheConsumerTakesOne) {
  CrossShardMatrix matrix(2, 8);
  for (std::uint64_t i = 0; i < 8; ++i) ASSERT_TRUE(matrix.queue(0, 1).try_stage(publish_call(i)));
  EXPECT_FALSE(matrix.queue(0, 1).try_stage(publish_call(8)));  // back-pressure, not a drop
  matrix.queue(0, 1).publish();
  std::uint64_t next = 0;
  EXPECT_EQ(matrix.queue(0, 1).consume(
                [&](ShardCall&& call) { EXPECT_EQ(call.response_sequence, next++); }, 1),
            1u);
  EXPECT_TRUE(matrix.queue(0, 1).try_stage(publish_call(8)));
}

}  // namespace
}  // namespace gophermq
