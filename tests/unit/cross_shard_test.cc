// CrossShardMatrix: the queues between shards, sized per shard rather than
// per pair.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "gophermq/shard/cross_shard.h"
#include "gophermq/shard/cross_shard_link.h"

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
  for (bool waiting = true; waiting || received.size() < kCalls; ++turns) {
    ASSERT_LT(turns, 100) << "calls stopped moving";
    waiting = sender.flush();
    owner.drain([&](ShardCall&& call) { received.push_back(call.answer_sequence); });
  }
  ASSERT_EQ(received.size(), kCalls);
  for (std::uint64_t i = 0; i < kCalls; ++i) EXPECT_EQ(received[i], i);
  EXPECT_EQ(sender.calls_waiting(), 0u);
  EXPECT_GT(turns, 1) << "a queue of 4 cannot carry 50 calls in one turn";
  EXPECT_EQ(owner.drain([](ShardCall&&) {}), 0u);
}

TEST(CrossShardLink, BytesInFlightCountWhatCallsCarryUntilTheOwnerTakesThem) {
  CrossShardMatrix matrix(3, 4);
  ShardMetrics metrics0, metrics1, metrics2;
  CrossShardLink sender(0, matrix, metrics0, nullptr);
  CrossShardLink owner(1, matrix, metrics1, nullptr);
  CrossShardLink other(2, matrix, metrics2, nullptr);
  // What the sender sees of its calls taken, read as it drains its own.
  auto in_flight = [&] {
    sender.drain([](ShardCall&&) {});
    return sender.bytes_in_flight();
  };
  const std::string payload(1000, 'p');
  // Ten to shard 1 (four queued, six waiting), one to shard 2.
  for (int i = 0; i < 10; ++i) {
    ShardCall call = publish_call(i);
    call.message.reset(Message::create(payload));
    sender.send(1, std::move(call));
  }
  ShardCall answer = publish_call(10);
  answer.answer.append("an answer of 22 bytes.");
  sender.send(2, std::move(answer));
  EXPECT_EQ(sender.bytes_in_flight(), 10'000u + 22u);
  sender.flush();
  EXPECT_EQ(in_flight(), 10'022u) << "queued is not yet taken";
  EXPECT_EQ(owner.drain([](ShardCall&&) {}), 4u);
  EXPECT_EQ(sender.bytes_in_flight(), 10'022u) << "seen at the sender's next drain";
  EXPECT_EQ(in_flight(), 6'022u);
  EXPECT_EQ(other.drain([](ShardCall&&) {}), 1u);
  EXPECT_EQ(in_flight(), 6'000u);
  for (int turn = 0; in_flight() != 0; ++turn) {
    ASSERT_LT(turn, 10) << "calls stopped moving";
    sender.flush();
    owner.drain([](ShardCall&&) {});
  }
  owner.drain([](ShardCall&&) {});
  EXPECT_EQ(owner.bytes_in_flight(), 0u) << "each shard counts its own calls only";
}

TEST(CrossShardLink, ATakeThatSaysStopLeavesTheRestForTheNextDrainWithoutANewRing) {
  CrossShardMatrix matrix(2, 8);
  ShardMetrics metrics0, metrics1;
  CrossShardLink sender(0, matrix, metrics0, nullptr);
  CrossShardLink owner(1, matrix, metrics1, nullptr);
  for (std::uint64_t i = 0; i < 5; ++i) sender.send(1, publish_call(i));
  sender.flush();
  std::vector<std::uint64_t> received;
  auto take_two = [&](ShardCall&& call) {
    received.push_back(call.answer_sequence);
    return received.size() % 2 != 0;  // stops after every second call
  };
  EXPECT_EQ(owner.drain(take_two), 2u);
  EXPECT_EQ(owner.drain(take_two), 2u) << "no ring since: the queue was left marked";
  EXPECT_EQ(owner.drain(take_two), 1u);
  EXPECT_EQ(owner.drain(take_two), 0u);
  EXPECT_EQ(received, (std::vector<std::uint64_t>{0, 1, 2, 3, 4}));
}

TEST(CrossShardLink, NothingReachesTheOwnerUntilFlushed) {
  CrossShardMatrix matrix(3, 8);
  ShardMetrics metrics0, metrics1, metrics2;
  CrossShardLink sender(0, matrix, metrics0, nullptr);
  CrossShardLink owner(1, matrix, metrics1, nullptr);
  CrossShardLink bystander(2, matrix, metrics2, nullptr);
  sender.send(1, publish_call(1));
  EXPECT_EQ(owner.drain([](ShardCall&&) {}), 0u);
  EXPECT_FALSE(sender.flush());
  EXPECT_EQ(bystander.drain([](ShardCall&&) {}), 0u);
  EXPECT_EQ(owner.drain([](ShardCall&&) {}), 1u);
}

// More calls than one drain takes from a queue: the rest are taken by the
// next drain, though the producer did not ring again.
TEST(CrossShardLink, AQueueLeftNonEmptyByADrainIsDrainedNextTimeWithoutANewRing) {
  constexpr std::size_t kCalls = CrossShardLink::kCallsDrainedPerTurn + 10;
  CrossShardMatrix matrix(2, 1024);
  ShardMetrics metrics0, metrics1;
  CrossShardLink sender(0, matrix, metrics0, nullptr);
  CrossShardLink owner(1, matrix, metrics1, nullptr);
  for (std::uint64_t i = 0; i < kCalls; ++i) sender.send(1, publish_call(i));
  sender.flush();
  EXPECT_EQ(owner.drain([](ShardCall&&) {}), CrossShardLink::kCallsDrainedPerTurn);
  EXPECT_FALSE(owner.prepare_sleep()) << "calls are left: no sleep";
  EXPECT_EQ(owner.drain([](ShardCall&&) {}), 10u);
  EXPECT_TRUE(owner.prepare_sleep());
}

TEST(CrossShardLink, ASleepingOwnerIsWokenThroughItsEventFdWithoutARing) {
  CrossShardMatrix matrix(2, 8);
  ShardMetrics metrics0, metrics1;
  CrossShardLink sender(0, matrix, metrics0, nullptr);
  CrossShardLink owner(1, matrix, metrics1, nullptr);
  std::uint64_t count = 0;
  // Awake: a call needs no wake-up.
  sender.send(1, publish_call(1));
  sender.flush();
  EXPECT_LT(::read(matrix.mailbox(1).event_fd, &count, sizeof count), 0);
  // A call that came before the sleep: the owner does not sleep.
  EXPECT_FALSE(owner.prepare_sleep());
  EXPECT_EQ(owner.drain([](ShardCall&&) {}), 1u);
  // Asleep: the producer's ring sees the sleep bit and wakes the owner.
  ASSERT_TRUE(owner.prepare_sleep());
  sender.send(1, publish_call(2));
  sender.flush();
  ASSERT_EQ(::read(matrix.mailbox(1).event_fd, &count, sizeof count),
            static_cast<ssize_t>(sizeof count));
  EXPECT_EQ(count, 1u);
  EXPECT_EQ(owner.drain([](ShardCall&&) {}), 1u);
  // Awake again (the drain cleared the sleep bit): no more wake-ups.
  sender.send(1, publish_call(3));
  sender.flush();
  EXPECT_LT(::read(matrix.mailbox(1).event_fd, &count, sizeof count), 0);
}

TEST(CrossShardLink, DoorbellsOfShardsBeyondTheFirstWordWork) {
  // Shards 0 and 70 sit in different doorbell words of shard 1's mailbox.
  CrossShardMatrix matrix(72, 64);
  ShardMetrics metrics0, metrics1, metrics70;
  CrossShardLink first(0, matrix, metrics0, nullptr);
  CrossShardLink owner(1, matrix, metrics1, nullptr);
  CrossShardLink far(70, matrix, metrics70, nullptr);
  ASSERT_TRUE(owner.prepare_sleep());
  far.send(1, publish_call(70));
  far.flush();
  first.send(1, publish_call(0));
  first.flush();
  std::vector<std::uint64_t> received;
  EXPECT_EQ(owner.drain([&](ShardCall&& call) { received.push_back(call.answer_sequence); }), 2u);
  EXPECT_EQ(received, (std::vector<std::uint64_t>{0, 70}));
}

}  // namespace
}  // namespace gophermq
