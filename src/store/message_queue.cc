#include "gophermq/store/message_queue.h"

#include <cstdlib>
#include <new>

namespace gophermq {

MessageQueue::~MessageQueue() {
  drain();
  std::free(slots_);
}

void MessageQueue::push(Message* message) {
  if (size() == (slots_ == nullptr ? 0 : mask_ + 1)) {
    // Full: double, unwrapping the ring into the front of the new array.
    std::uint64_t capacity = slots_ == nullptr ? 8 : (mask_ + 1) * 2;
    auto* grown = static_cast<Message**>(std::malloc(capacity * sizeof(Message*)));
    if (grown == nullptr) throw std::bad_alloc();
    std::size_t count = 0;
    for (std::uint64_t i = head_; i != tail_; ++i) grown[count++] = slots_[i & mask_];
    std::free(slots_);
    slots_ = grown;
    mask_ = capacity - 1;
    head_ = 0;
    tail_ = count;
  }
  slots_[tail_++ & mask_] = message;
  bytes_ += message->payload().size();
  ++pushed_;
}

std::size_t MessageQueue::count_within(std::uint64_t max_bytes) const {
  if (bytes_ <= max_bytes) return size();
  std::uint64_t bytes = 0;
  std::size_t count = 0;
  for (std::uint64_t i = head_; i != tail_; ++i, ++count) {
    bytes += slots_[i & mask_]->payload().size();
    if (bytes > max_bytes) return count == 0 ? 1 : count;
  }
  return count;
}

std::uint64_t MessageQueue::drain_front(std::size_t count) {
  std::uint64_t freed = 0;
  for (std::uint64_t end = head_ + count; head_ != end; ++head_) {
    Message* message = slots_[head_ & mask_];
    const std::size_t size = message->payload().size();
    bytes_ -= size;
    if (message->release()) freed += size;
  }
  if (head_ != tail_) return freed;
  head_ = tail_ = 0;
  // A queue that once held a burst gives its ring back once empty, so memory
  // returns to its resting level after the burst is fetched.
  if (mask_ + 1 > 1024) {
    std::free(slots_);
    slots_ = nullptr;
    mask_ = 0;
  }
  return freed;
}

}  // namespace gophermq
