// MessageArena: messages packed into chunks in publish order, each chunk
// freed when its last message goes, the current one reused once empty.
// LeakSanitizer (the ASan build) checks that every chunk is freed.
#include "gophermq/store/message_arena.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gophermq {
namespace {

Message* Held(MessageArena& arena, std::string_view payload) {
  Message* message = arena.create(payload, 0);
  message->set_holders(1);
  return message;
}

TEST(MessageArena, MessagesSitBackToBackWithTheirPayloads) {
  MessageArena arena;
  Message* first = Held(arena, "one");
  Message* second = Held(arena, "three");
  Message* empty = Held(arena, "");
  EXPECT_EQ(first->payload(), "one");
  EXPECT_EQ(second->payload(), "three");
  EXPECT_EQ(empty->payload(), "");
  // Each takes its header and payload, rounded up to the header's alignment.
  EXPECT_EQ(reinterpret_cast<char*>(second) - reinterpret_cast<char*>(first),
            static_cast<std::ptrdiff_t>(Message::footprint(3)));
  EXPECT_EQ(Message::footprint(3), 20u);
  EXPECT_EQ(Message::footprint(1024), 1040u) << "no size class: 1 KiB costs 16 bytes more";
  for (Message* message : {first, second, empty}) EXPECT_TRUE(message->release());
}

TEST(MessageArena, AnEmptiedCurrentChunkIsReusedFromItsStart) {
  MessageArena arena;
  Message* message = Held(arena, "a");
  const MessageArena::Chunk* chunk = arena.current_chunk();
  void* where = message;
  message->release();
  // Consumers that keep up: one chunk, the same bytes, over and over.
  for (int i = 0; i < 1000; ++i) {
    message = Held(arena, "b");
    ASSERT_EQ(static_cast<void*>(message), where);
    ASSERT_EQ(arena.current_chunk(), chunk);
    message->release();
  }
}

TEST(MessageArena, ChunksGrowWhileFilledAndEachGoesWithItsLastMessage) {
  MessageArena arena;
  // 64 KiB of 1 KiB messages: several chunks, doubling.
  std::vector<Message*> messages;
  std::vector<const MessageArena::Chunk*> chunks;
  for (int i = 0; i < 64; ++i) {
    messages.push_back(Held(arena, std::string(1024, static_cast<char>('a' + i % 26))));
    if (chunks.empty() || chunks.back() != arena.current_chunk()) {
      chunks.push_back(arena.current_chunk());
    }
  }
  EXPECT_GT(chunks.size(), 2u);
  EXPECT_LT(chunks.size(), 10u) << "chunks double up to 64 KiB";
  for (int i = 0; i < 64; ++i) {
    EXPECT_EQ(messages[i]->payload(), std::string(1024, static_cast<char>('a' + i % 26))) << i;
  }
  // Freed oldest first, as a log frees them: sealed chunks go as they empty
  // (LeakSanitizer would see any that did not, ASan any freed too early).
  for (Message* message : messages) message->release();
}

TEST(MessageArena, AMessageLargerThanTheLargestChunkGetsAChunkOfItsOwn) {
  MessageArena arena;
  Message* small = Held(arena, "small");
  const std::string big(MessageArena::kLargestChunkBytes * 3, 'x');
  Message* large = Held(arena, big);
  EXPECT_EQ(large->payload(), big);
  Message* after = Held(arena, "after");
  EXPECT_EQ(after->payload(), "after");
  large->release();
  small->release();
  after->release();
}

TEST(MessageArena, MessagesMayOutliveTheirArena) {
  Message* survivor;
  {
    MessageArena arena;
    survivor = Held(arena, "survivor");
    Held(arena, "gone")->release();
  }
  EXPECT_EQ(survivor->payload(), "survivor");
  EXPECT_TRUE(survivor->release()) << "its chunk is freed with it";
}

TEST(MessageArena, OutOfOrderFreesKeepOtherMessagesIntact) {
  // A bounded subscriber may hold an old message while newer ones go.
  MessageArena arena;
  std::vector<Message*> messages;
  for (int i = 0; i < 500; ++i) messages.push_back(Held(arena, std::to_string(i)));
  for (int i = 0; i < 500; i += 2) messages[i]->release();
  for (int i = 1; i < 500; i += 2) {
    EXPECT_EQ(messages[i]->payload(), std::to_string(i));
    messages[i]->release();
  }
}

}  // namespace
}  // namespace gophermq
