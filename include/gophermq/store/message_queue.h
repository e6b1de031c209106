// A subscriber's own queue of pending messages, for a subscriber with bounds
// of its own (the others read their subject's log).
#pragma once

#include <cstddef>
#include <cstdint>

#include "gophermq/store/message.h"
#include "gophermq/store/sequence_slots.h"

namespace gophermq {

// Oldest first: a pointer a message (8 bytes; the payload lives once, in the
// shared Message), in SequenceSlots, so a long queue is never copied.
class MessageQueue {
 public:
  MessageQueue() = default;
  MessageQueue(const MessageQueue&) = delete;
  MessageQueue& operator=(const MessageQueue&) = delete;
  ~MessageQueue();

  void push(Message* message);
  std::size_t size() const { return slots_.size(); }
  bool empty() const { return size() == 0; }
  // Payload bytes of the messages held.
  std::uint64_t bytes() const { return bytes_; }
  // Messages ever pushed: the newest one's sequence number.
  std::uint64_t pushed() const { return pushed_; }

  // The `index`-th oldest.
  const Message& at(std::size_t index) const { return *slots_.message(slots_.begin() + index); }

  // How many of the oldest messages fit in `max_bytes` of payload: at least
  // one, so a message larger than the bound still goes, alone.
  std::size_t count_within(std::uint64_t max_bytes) const;

  // Visits the `count` oldest messages, oldest first.
  template <typename Visit>
  void for_each(std::size_t count, Visit&& visit) const {
    const std::uint64_t first = slots_.begin();
    for (std::uint64_t i = first; i != first + count; ++i) visit(*slots_.message(i));
  }
  template <typename Visit>
  void for_each(Visit&& visit) const {
    for_each(size(), visit);
  }
  // Releases the `count` oldest messages (the caller already used them);
  // returns the payload bytes of those that no other queue held, now freed.
  std::uint64_t drain_front(std::size_t count);
  void drain() { drain_front(size()); }

  // Message slots allocated now, used or not: for tests of what a queue
  // gives back.
  std::size_t slots() const { return slots_.slots(); }

 private:
  SequenceSlots<false> slots_;
  std::uint64_t bytes_ = 0;
  std::uint64_t pushed_ = 0;
};

}  // namespace gophermq
