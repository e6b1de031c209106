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

namespace gophermq {

class MessageArena {
 public:
  // Chunks start small, so a quiet subject takes little, and double while
  // the subject keeps them filled, up to this size (a power of two, which is
  // one of the allocator's own size classes).
  static constexpr std::size_t kFirstChunkBytes = 256;
  static constexpr std::size_t kLargestChunkBytes = 64 * 1024;

  MessageArena() = default;
  MessageArena(const MessageArena&) = delete;
  MessageArena& operator=(const MessageArena&) = delete;
  // Its messages may outlive it (a test holding one, say): a chunk with live
  // messages is freed by the last of them.
  ~MessageArena();

  // A copy of `payload` in the arena, with no holders yet.
  Message* create(std::string_view payload);

  // A chunk's header (laid out in message_arena.cc, where Message frees
  // into it).
  struct Chunk;
  // The chunk messages are added to now, for tests: null before the first.
  const Chunk* current_chunk() const { return current_; }

 private:
  Chunk* current_ = nullptr;
  std::size_t next_chunk_bytes_ = kFirstChunkBytes;
};

}  // namespace gophermq
