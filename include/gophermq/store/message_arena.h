// Where a subject's messages live: chunks allocated in publish order, each
// holding many messages back to back, freed when its last message goes. A
// message costs its payload plus a 16-byte header, not the allocator's next
// size class (a 1 KiB payload with a header of its own would take mimalloc's
// 1,280-byte class). Messages leave a subject's log in publish order, so its
// chunks empty in that order too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gophermq/store/message.h"
#include "gophermq/store/pending_ages.h"

namespace gophermq {

class MessageArena {
 public:
  // Chunks start small, so a quiet subject takes little, and double while
  // the subject keeps them filled, up to this size (a power of two, which is
  // one of the allocator's own size classes).
  static constexpr std::size_t kFirstChunkBytes = 256;
  static constexpr std::size_t kLargestChunkBytes = 64 * 1024;

  // Counts each message it stores in `ages` until the message is freed;
  // null for none (tests).
  explicit MessageArena(PendingAges* ages = nullptr) : ages_(ages) {}
  MessageArena(const MessageArena&) = delete;
  MessageArena& operator=(const MessageArena&) = delete;
  // Its messages may outlive it (a test holding one, say): a chunk with live
  // messages is freed by the last of them. They must not outlive `ages`,
  // which each tells when it is freed.
  ~MessageArena();

  // A copy of `payload` in the arena, stored in second `stored_s` of the
  // shard's clock, with no holders yet.
  Message* create(std::string_view payload, std::uint32_t stored_s);

  // A chunk's header (laid out in message_arena.cc, where Message frees
  // into it).
  struct Chunk;
  // The chunk messages are added to now, for tests: null before the first.
  const Chunk* current_chunk() const { return current_; }

 private:
  PendingAges* ages_;
  Chunk* current_ = nullptr;
  std::size_t next_chunk_bytes_ = kFirstChunkBytes;
};

}  // namespace gophermq
