#include "gophermq/store/message_queue.h"

namespace gophermq {

MessageQueue::~MessageQueue() { drain(); }

void MessageQueue::push(Message* message) {
  slots_.message(slots_.push_back()) = message;
  bytes_ += message->payload().size();
  ++pushed_;
}

std::size_t MessageQueue::count_within(std::uint64_t max_bytes) const {
  if (bytes_ <= max_bytes) return size();
  std::uint64_t bytes = 0;
  std::size_t count = 0;
  for (std::uint64_t i = slots_.begin(); i != slots_.end(); ++i, ++count) {
    bytes += slots_.message(i)->payload().size();
    if (bytes > max_bytes) return count == 0 ? 1 : count;
  }
  return count;
}

std::uint64_t MessageQueue::drain_front(std::size_t count) {
  std::uint64_t freed = 0;
  for (std::size_t i = 0; i < count; ++i) {
    Message* message = slots_.message(slots_.begin());
    const std::size_t payload = message->payload().size();
    bytes_ -= payload;
    if (message->release()) freed += payload;
    slots_.pop_front();
  }
  return freed;
}

}  // namespace gophermq
