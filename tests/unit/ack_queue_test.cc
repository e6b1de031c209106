// AckQueue: a subscriber's queue in ack mode (api-extensions.md §5). Hand
// out lowest first within max_ack_pending and the byte bound; ack by
// sequence or through one; nack with a delay; deadlines that make a
// message available again or, past max_deliver, dead; and the counts.
#include "gophermq/store/ack_queue.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gophermq {
namespace {

class AckQueueTest : public ::testing::Test {
 protected:
  // Pushes messages "m1".."m<count>" (each with one holder: the queue).
  void push(AckQueue& queue, int count) {
    for (int i = 0; i < count; ++i) {
      Message* message = Message::create(payload(++pushed_));
      message->set_holders(1);
      queue.push(message);
    }
  }
  // Hands out up to `most`, as "<seq>:<deliveries>" strings.
  static std::vector<std::string> take(AckQueue& queue, std::uint64_t now_ms, std::size_t most,
                                       std::uint64_t max_bytes = UINT64_MAX,
                                       std::uint32_t holder = 0) {
    std::vector<AckQueue::Delivery> out;
    queue.hand_out(now_ms, most, max_bytes, holder, out);
    std::vector<std::string> taken;
    for (const AckQueue::Delivery& d : out) {
      EXPECT_EQ(d.message->payload(), payload(d.sequence));
      std::string seen = std::to_string(d.sequence);
      seen += ':';
      seen += std::to_string(d.deliveries);
      taken.push_back(std::move(seen));
    }
    return taken;
  }
  // "m<n>", the payload of the n-th message pushed (built by appends: GCC
  // 12 warns falsely of an overlapping copy in `"m" + std::to_string(n)`).
  static std::string payload(std::uint64_t n) {
    std::string text = "m";
    text += std::to_string(n);
    return text;
  }
  using Strings = std::vector<std::string>;
  int pushed_ = 0;
};

TEST_F(AckQueueTest, HandsOutLowestFirstAndKeepsMessagesUntilAcked) {
  AckQueue queue({.ack_wait_ms = 1000});
  push(queue, 5);
  EXPECT_EQ(take(queue, 0, 2), (Strings{"1:1", "2:1"}));
  EXPECT_EQ(queue.in_flight(), 2u);
  EXPECT_EQ(queue.size(), 5u) << "in flight still counts as held";
  EXPECT_EQ(queue.available(), 3u);
  AckQueue::Released released;
  const AckQueue::Sequence acks[] = {2, 2, 9, 4};  // a repeat, unknown, not in flight
  EXPECT_EQ(queue.ack(acks, released), 1u);
  EXPECT_EQ(released.messages, 1u);
  EXPECT_EQ(released.freed_bytes, 2u);
  EXPECT_EQ(queue.size(), 4u);
  EXPECT_EQ(take(queue, 0, 10), (Strings{"3:1", "4:1", "5:1"}));
  EXPECT_EQ(queue.ack_through(4, 0, released), 3u) << "1, 3 and 4";
  EXPECT_EQ(queue.size(), 1u);
  EXPECT_EQ(queue.bytes(), 2u);
  EXPECT_EQ(queue.ack_through(100, 0, released), 1u);
  EXPECT_EQ(queue.size(), 0u);
  EXPECT_EQ(queue.in_flight(), 0u);
}

TEST_F(AckQueueTest, InFlightStaysWithinMaxAckPendingAndTheByteBound) {
  AckQueue queue({.ack_wait_ms = 1000, .max_ack_pending = 3});
  push(queue, 10);
  EXPECT_EQ(take(queue, 0, 2), (Strings{"1:1", "2:1"}));
  EXPECT_EQ(take(queue, 0, 10), (Strings{"3:1"})) << "max_ack_pending 3";
  EXPECT_TRUE(take(queue, 0, 10).empty());
  AckQueue::Released released;
  queue.ack_through(3, 0, released);
  // Two bytes each: 5 bytes take two; 1 byte still takes one.
  EXPECT_EQ(take(queue, 0, 10, 5), (Strings{"4:1", "5:1"}));
  EXPECT_EQ(take(queue, 0, 10, 1), (Strings{"6:1"}));
}

TEST_F(AckQueueTest, ADeadlineMakesAMessageAvailableAgainBeforeNewerOnes) {
  AckQueue queue({.ack_wait_ms = 1000});
  push(queue, 3);
  EXPECT_EQ(take(queue, 0, 2), (Strings{"1:1", "2:1"}));
  EXPECT_EQ(queue.next_due_ms(), 1000u);
  AckQueue::Released released;
  const AckQueue::Sequence one[] = {1};
  queue.ack(one, released);
  auto never_dead = [](const Message&) { FAIL() << "nothing is past max_deliver"; };
  EXPECT_EQ(queue.expire(999, never_dead, released), 0u);
  EXPECT_EQ(queue.expire(1000, never_dead, released), 1u) << "2 only: 1 was acked";
  EXPECT_EQ(queue.in_flight(), 0u);
  EXPECT_EQ(take(queue, 1000, 10), (Strings{"2:2", "3:1"}));
  EXPECT_EQ(queue.next_due_ms(), 2000u);
}

TEST_F(AckQueueTest, ANackMakesAMessageAvailableAfterItsDelay) {
  AckQueue queue({.ack_wait_ms = 10'000});
  push(queue, 2);
  take(queue, 0, 2);
  const AckQueue::Sequence both[] = {1, 2, 7};
  EXPECT_EQ(queue.nack(both, 100, 500), 2u);
  EXPECT_EQ(queue.in_flight(), 0u);
  EXPECT_TRUE(take(queue, 100, 10).empty()) << "still delayed";
  EXPECT_EQ(queue.next_due_ms(), 600u) << "the delay, not the old deadline";
  AckQueue::Released released;
  auto never_dead = [](const Message&) { FAIL(); };
  EXPECT_EQ(queue.expire(600, never_dead, released), 2u);
  EXPECT_EQ(take(queue, 600, 1), (Strings{"1:2"}));
  // A nack without delay: available at the next expire.
  const AckQueue::Sequence first[] = {1};
  EXPECT_EQ(queue.nack(first, 700, 0), 1u);
  EXPECT_EQ(queue.expire(700, never_dead, released), 1u);
  EXPECT_EQ(take(queue, 700, 10), (Strings{"1:3", "2:2"}));
  // The old deadlines of those deliveries come and change nothing.
  EXPECT_EQ(queue.expire(10'000, never_dead, released), 0u);
  EXPECT_EQ(queue.in_flight(), 2u);
}

TEST_F(AckQueueTest, PastMaxDeliverAMessageIsDeadAndLeaves) {
  AckQueue queue({.ack_wait_ms = 100, .max_ack_pending = 1000, .max_deliver = 2});
  push(queue, 2);
  std::vector<std::string> dead;
  auto to_dead = [&](const Message& message) { dead.emplace_back(message.payload()); };
  AckQueue::Released released;
  EXPECT_EQ(take(queue, 0, 10), (Strings{"1:1", "2:1"}));
  const AckQueue::Sequence two[] = {2};
  queue.ack(two, released);
  queue.expire(100, to_dead, released);
  EXPECT_EQ(take(queue, 100, 10), (Strings{"1:2"}));
  EXPECT_EQ(queue.expire(200, to_dead, released), 0u);
  EXPECT_EQ(dead, Strings{"m1"});
  EXPECT_EQ(queue.size(), 0u);
  EXPECT_EQ(released.messages, 2u) << "one acked, one dead";
  EXPECT_TRUE(take(queue, 200, 10).empty());
}

TEST_F(AckQueueTest, DroppingTheOldestTakesInFlightAndFreshAlike) {
  AckQueue queue({.ack_wait_ms = 1000});
  push(queue, 5);
  EXPECT_EQ(take(queue, 0, 2), (Strings{"1:1", "2:1"}));
  const AckQueue::Sequence second[] = {2};
  AckQueue::Released released;
  queue.ack(second, released);
  queue.drop_oldest(2, released);  // 1 (in flight) and 3 (never handed out)
  EXPECT_EQ(released.messages, 3u);
  EXPECT_EQ(queue.size(), 2u);
  EXPECT_EQ(queue.in_flight(), 0u);
  const AckQueue::Sequence first[] = {1};
  EXPECT_EQ(queue.ack(first, released), 0u) << "a dropped message cannot be acked";
  EXPECT_EQ(take(queue, 0, 10), (Strings{"4:1", "5:1"}));
}

TEST_F(AckQueueTest, AMessageNeverAckedKeepsNoHolesBehindIt) {
  // The oldest is handed out and never acked while many after it are: the
  // queue compacts, and every lookup still finds the right message.
  AckQueue queue({.ack_wait_ms = 1'000'000, .max_ack_pending = 1'000'000});
  push(queue, 5000);
  EXPECT_EQ(take(queue, 0, 1), (Strings{"1:1"}));
  std::vector<std::string> rest = take(queue, 0, 10'000);
  ASSERT_EQ(rest.size(), 4999u);
  AckQueue::Released released;
  std::vector<AckQueue::Sequence> evens;
  for (AckQueue::Sequence sequence = 2; sequence <= 5000; sequence += 2) evens.push_back(sequence);
  EXPECT_EQ(queue.ack(evens, released), 2500u);
  EXPECT_EQ(queue.ack(evens, released), 0u) << "acked already";
  std::vector<AckQueue::Sequence> odds;
  for (AckQueue::Sequence sequence = 3; sequence < 3000; sequence += 2) odds.push_back(sequence);
  EXPECT_EQ(queue.ack(odds, released), 1499u);
  EXPECT_EQ(queue.size(), 1001u);
  EXPECT_LT(queue.entries_kept(), 2100u) << "the holes went";
  const AckQueue::Sequence some[] = {4999, 3, 2, 1};
  EXPECT_EQ(queue.ack(some, released), 2u);
  EXPECT_EQ(queue.ack_through(4001, 0, released), 501u) << "the odd ones from 3001 to 4001";
  EXPECT_EQ(queue.size(), 498u) << "the odd ones from 4003 to 4997";
  EXPECT_EQ(queue.ack_through(5000, 0, released), 498u);
  EXPECT_EQ(queue.size(), 0u);
  EXPECT_EQ(queue.in_flight(), 0u);
  push(queue, 1);
  EXPECT_EQ(take(queue, 0, 10), (Strings{"5001:1"}));
}

TEST_F(AckQueueTest, AckingThroughSettlesOnlyWhatItsHolderHolds) {
  // Two members of a group: an ack through N by one leaves the other's
  // in-flight messages alone; acks by sequence settle anyone's.
  AckQueue queue({.ack_wait_ms = 1000});
  push(queue, 4);
  EXPECT_EQ(take(queue, 0, 2, UINT64_MAX, 1), (Strings{"1:1", "2:1"}));
  EXPECT_EQ(take(queue, 0, 2, UINT64_MAX, 2), (Strings{"3:1", "4:1"}));
  AckQueue::Released released;
  EXPECT_EQ(queue.ack_through(4, 2, released), 2u) << "3 and 4, member 2's";
  EXPECT_EQ(queue.in_flight(), 2u);
  const AckQueue::Sequence first[] = {1};
  EXPECT_EQ(queue.ack(first, released), 1u);
  EXPECT_EQ(queue.ack_through(4, 1, released), 1u);
  EXPECT_EQ(queue.size(), 0u);
}

TEST_F(AckQueueTest, ItsDestructorReleasesWhatItHolds) {
  Message* shared = Message::create("shared");
  shared->set_holders(2);  // the queue, and another queue
  {
    AckQueue queue({.ack_wait_ms = 100});
    push(queue, 3);
    queue.push(shared);
    take(queue, 0, 2);
  }
  EXPECT_EQ(shared->holders(), 1u);
  Message::destroy(shared);
}

}  // namespace
}  // namespace gophermq
