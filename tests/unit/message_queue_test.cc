// MessageQueue: a subscriber's own queue, oldest first, however long.
#include "gophermq/store/message_queue.h"

#include <gtest/gtest.h>

#include <string>

namespace gophermq {
namespace {

constexpr std::uint64_t kSegment = SequenceSlots<false>::kSegmentSlots;

std::string label(std::uint64_t n) {
  std::string out = "m";  // (appended, not "m" + ...: GCC 12 warns about that one)
  out += std::to_string(n);
  return out;
}

TEST(MessageQueue, KeepsOrderAcrossSegmentsWhereverItsHeadSat) {
  for (const std::uint64_t offset :
       {std::uint64_t{0}, std::uint64_t{1}, kSegment / 2 + 3, kSegment - 1}) {
    SCOPED_TRACE(offset);
    MessageQueue queue;
    std::uint64_t pushed = 0;
    auto push = [&] {
      Message* message = Message::create(label(pushed++));
      message->set_holders(1);
      queue.push(message);
    };
    std::uint64_t first_bytes = 0;
    for (std::uint64_t i = 0; i < offset; ++i) {
      first_bytes += label(i).size();
      push();
    }
    EXPECT_EQ(queue.drain_front(offset), first_bytes) << "held by the queue alone: freed";
    const std::uint64_t count = 4 * kSegment + 9;
    for (std::uint64_t i = 0; i < count; ++i) push();
    ASSERT_EQ(queue.size(), count);
    EXPECT_EQ(queue.pushed(), offset + count);
    EXPECT_LE(queue.slots(), count + 2 * kSegment);
    bool in_order = true;
    std::uint64_t seen = 0;
    queue.for_each([&](const Message& message) {
      in_order = in_order && message.payload() == label(offset + seen);
      ++seen;
    });
    EXPECT_TRUE(in_order);
    EXPECT_EQ(seen, count);
    EXPECT_EQ(queue.at(kSegment + 5).payload(), label(offset + kSegment + 5));
    // Drained in steps that straddle the segments' edges, it holds fewer
    // segments as it goes, and none at the end.
    std::size_t last_slots = queue.slots();
    while (!queue.empty()) {
      EXPECT_EQ(queue.at(0).payload(), label(offset + count - queue.size()));
      queue.drain_front(std::min<std::size_t>(queue.size(), 700));
      EXPECT_LE(queue.slots(), last_slots);
      last_slots = queue.slots();
    }
    EXPECT_EQ(queue.slots(), 0u);
    EXPECT_EQ(queue.bytes(), 0u);
  }
}

TEST(MessageQueue, CountWithinAddsUpAcrossSegments) {
  MessageQueue queue;
  for (std::uint64_t i = 0; i < 3 * kSegment; ++i) {
    Message* message = Message::create(std::string(10, 'x'));
    message->set_holders(1);
    queue.push(message);
  }
  EXPECT_EQ(queue.bytes(), 30 * kSegment);
  EXPECT_EQ(queue.count_within(10 * (kSegment + 3)), kSegment + 3);
  EXPECT_EQ(queue.count_within(5), 1u) << "one message larger than the bound goes alone";
  EXPECT_EQ(queue.count_within(1'000'000), 3 * kSegment);
}

}  // namespace
}  // namespace gophermq
