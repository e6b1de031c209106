// A published message, stored once and shared by its subject's log and the
// queues of the subscribers with bounds of their own. Its header and payload are one allocation.
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
  // A message is created with no holders; the owner shard sets the count when
  // it fans the message out. The creating shard may differ from the owner
  // (cross-shard publish): mimalloc frees across threads without locks.
  static Message* create(std::string_view payload) {
    void* memory = std::malloc(sizeof(Message) + payload.size());
    if (memory == nullptr) throw std::bad_alloc();
    auto* message = new (memory) Message(static_cast<std::uint32_t>(payload.size()));
    // An absent "data" is an empty view with no pointer: memcpy must not see it.
    if (!payload.empty()) std::memcpy(message->bytes(), payload.data(), payload.size());
    return message;
  }
  static void destroy(Message* message) { std::free(message); }
  struct Deleter {
    void operator()(Message* message) const { destroy(message); }
  };

  std::string_view payload() const { return {bytes(), size_}; }

  // Only the owner shard touches the holder count, so it is a plain integer.
  void set_holders(std::uint32_t holders) { holders_ = holders; }
  std::uint32_t holders() const { return holders_; }
  // Drops one holder; frees the message when it was the last, and says so.
  bool release() {
    if (--holders_ != 0) return false;
    destroy(this);
    return true;
  }

 private:
  explicit Message(std::uint32_t size) : size_(size) {}
  char* bytes() { return reinterpret_cast<char*>(this + 1); }
  const char* bytes() const { return reinterpret_cast<const char*>(this + 1); }

  std::uint32_t holders_ = 0;
  std::uint32_t size_;
};
static_assert(sizeof(Message) == 8, "the per-message header is part of the memory target");

// A message not yet handed to a store (in flight between shards).
using MessagePtr = std::unique_ptr<Message, Message::Deleter>;

}  // namespace gophermq
