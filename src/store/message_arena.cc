#include "gophermq/store/message_arena.h"

#include <algorithm>
#include <cstdlib>
#include <new>

namespace gophermq {

// A chunk's header; its messages follow it.
struct MessageArena::Chunk {
  std::uint32_t live = 0;  // messages placed here and not yet freed
  std::uint32_t used;      // bytes from the chunk's start, header included
  std::uint32_t capacity;  // bytes, header included
  bool sealed = false;     // its arena moved on: the last message frees it
  // The arena's, which a message freed after its arena still tells.
  PendingAges* ages;
};
static_assert(sizeof(MessageArena::Chunk) % alignof(Message) == 0);

namespace {

constexpr std::uint32_t kHeaderBytes = sizeof(MessageArena::Chunk);

}  // namespace

void Message::free_in_chunk() {
  auto* chunk =
      reinterpret_cast<MessageArena::Chunk*>(reinterpret_cast<char*>(this) - chunk_offset_);
  if (chunk->ages != nullptr) chunk->ages->freed(stored_s_);
  if (--chunk->live != 0) return;
  if (chunk->sealed) {
    std::free(chunk);
  } else {
    chunk->used = kHeaderBytes;  // the arena's current chunk, empty: reused from its start
  }
}

MessageArena::~MessageArena() {
  if (current_ == nullptr) return;
  if (current_->live == 0) {
    std::free(current_);
  } else {
    current_->sealed = true;
  }
}

Message* MessageArena::create(std::string_view payload, std::uint32_t stored_s) {
  const std::size_t bytes = Message::footprint(payload.size());
  if (current_ == nullptr || current_->capacity - current_->used < bytes) {
    // A new chunk: twice the last while the subject fills them, and always
    // large enough for this message (one larger than the largest chunk gets
    // a chunk of its own size).
    const std::size_t capacity = std::max(next_chunk_bytes_, kHeaderBytes + bytes);
    void* memory = std::malloc(capacity);
    if (memory == nullptr) throw std::bad_alloc();
    auto* chunk = new (memory) Chunk;
    chunk->used = kHeaderBytes;
    chunk->capacity = static_cast<std::uint32_t>(capacity);
    chunk->ages = ages_;
    if (current_ != nullptr) {
      if (current_->live == 0) {
        std::free(current_);
      } else {
        current_->sealed = true;
      }
    }
    current_ = chunk;
    next_chunk_bytes_ = std::min(next_chunk_bytes_ * 2, kLargestChunkBytes);
  }
  const std::uint32_t offset = current_->used;
  current_->used += static_cast<std::uint32_t>(bytes);
  ++current_->live;
  if (ages_ != nullptr) ages_->stored(stored_s);
  return Message::place(reinterpret_cast<char*>(current_) + offset, payload, offset, stored_s);
}

}  // namespace gophermq
