// A published message, stored once and shared by its subject's log and the
// queues of the subscribers with bounds of their own. Its header and payload
// are contiguous: in a chunk of its subject's MessageArena once stored, or an
// allocation of its own while it travels between shards.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>

namespace gophermq {

class Message {
 public:
  // A message of its own allocation, with no holders: one on its way to
  // the owner shard, which copies it into the subject's arena. mimalloc
  // frees it across threads without locks.
  static Message* create(std::string_view payload) {
    void* memory = std::malloc(sizeof(Message) + payload.size());
    if (memory == nullptr) throw std::bad_alloc();
    return new (memory) Message(payload, 0);
  }
  static void destroy(Message* message) { std::free(message); }
  struct Deleter {
    void operator()(Message* message) const { destroy(message); }
  };

  // Bytes a message of `payload_size` takes in an arena chunk: its header
  // and payload, rounded up to keep the next header aligned.
  static constexpr std::size_t footprint(std::size_t payload_size) {
    return (sizeof(Message) + payload_size + alignof(Message) - 1) & ~(alignof(Message) - 1);
  }
  // Builds a message at `memory`, footprint(payload.size()) bytes that are
  // `chunk_offset` bytes into their arena chunk (see MessageArena), stored
  // in second `stored_s`.
  static Message* place(void* memory, std::string_view payload, std::uint32_t chunk_offset,
                        std::uint32_t stored_s) {
    Message* message = new (memory) Message(payload, chunk_offset);
    message->stored_s_ = stored_s;
    return message;
  }

  std::string_view payload() const { return {bytes(), size_}; }

  // Only the owner shard touches the holder count, so it is a plain integer.
  void set_holders(std::uint32_t holders) { holders_ = holders; }
  std::uint32_t holders() const { return holders_; }
  // Drops one holder; frees the message when it was the last, and says so.
  bool release() {
    if (--holders_ != 0) return false;
    if (chunk_offset_ == 0) {
      destroy(this);
    } else {
      free_in_chunk();
    }
    return true;
  }

 private:
  Message(std::string_view payload, std::uint32_t chunk_offset)
      : size_(static_cast<std::uint32_t>(payload.size())), chunk_offset_(chunk_offset) {
    // An absent "data" is an empty view with no pointer: memcpy must not see it.
    if (!payload.empty()) std::memcpy(bytes(), payload.data(), payload.size());
  }
  char* bytes() { return reinterpret_cast<char*>(this + 1); }
  const char* bytes() const { return reinterpret_cast<const char*>(this + 1); }
  // Tells its arena chunk one message fewer is live (message_arena.cc).
  void free_in_chunk();

  std::uint32_t holders_ = 0;
  std::uint32_t size_;
  // Where its chunk starts, this many bytes before it; 0 for a message of
  // its own allocation.
  std::uint32_t chunk_offset_;
  // When it was stored, in whole seconds of the monotonic clock (for
  // gophermq_oldest_pending_age_seconds; 32 bits last 136 years of uptime).
  // Set once, where it is placed: its arena counted it by this second, and
  // uncounts it by the same when it is freed.
  std::uint32_t stored_s_ = 0;
};
static_assert(sizeof(Message) == 16, "the per-message header is part of the memory target");

// A message not yet handed to a store (in flight between shards).
using MessagePtr = std::unique_ptr<Message, Message::Deleter>;

}  // namespace gophermq
