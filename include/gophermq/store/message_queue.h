// A subscriber's own queue of pending messages, for a subscriber with bounds
// of its own (the others read their subject's log).
#pragma once

#include <cstddef>
#include <cstdint>

#include "gophermq/store/message.h"

namespace gophermq {

// Oldest first: a power-of-two ring of pointers (8 bytes a message; the
// payload lives once, in the shared Message).
class MessageQueue {
 public:
  MessageQueue() = default;
  MessageQueue(const MessageQueue&) = delete;
  MessageQueue& operator=(const MessageQueue&) = delete;
  ~MessageQueue();

  void push(Message* message);
  std::size_t size() const { return static_cast<std::size_t>(tail_ - head_); }
  bool empty() const { return head_ == tail_; }
  // Payload bytes of the messages held.
  std::uint64_t bytes() const { return bytes_; }
  // Messages ever pushed: the newest one's sequence number.
  std::uint64_t pushed() const { return pushed_; }

  // The `index`-th oldest.
  const Message& at(std::size_t index) const { return *slots_[(head_ + index) & mask_]; }

  // How many of the oldest messages fit in `max_bytes` of payload: at least
  // one, so a message larger than the bound still goes, alone.
  std::size_t count_within(std::uint64_t max_bytes) const;

  // Visits the `count` oldest messages, oldest first.
  template <typename Visit>
  void for_each(std::size_t count, Visit&& visit) const {
    for (std::uint64_t i = head_; i != head_ + count; ++i) visit(*slots_[i & mask_]);
  }
  template <typename Visit>
  void for_each(Visit&& visit) const {
    for_each(size(), visit);
  }
  // Releases the `count` oldest messages (the caller already used them);
  // returns the payload bytes of those that no other queue held, now freed.
  std::uint64_t drain_front(std::size_t count);
  void drain() { drain_front(size()); }

 private:
  Message** slots_ = nullptr;
  std::uint64_t mask_ = 0;  // capacity - 1; capacity 0 while slots_ is null
  std::uint64_t head_ = 0;
  std::uint64_t tail_ = 0;
  std::uint64_t bytes_ = 0;
  std::uint64_t pushed_ = 0;
};

}  // namespace gophermq
