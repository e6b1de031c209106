#include "gophermq/store/subject_store.h"

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

void MessageQueue::drain_front(std::size_t count) {
  for (std::uint64_t end = head_ + count; head_ != end; ++head_) {
    Message* message = slots_[head_ & mask_];
    bytes_ -= message->payload().size();
    message->release();
  }
  if (head_ != tail_) return;
  head_ = tail_ = 0;
  // A queue that once held a burst gives its ring back once empty, so memory
  // returns to its resting level after the burst is fetched.
  if (mask_ + 1 > 1024) {
    std::free(slots_);
    slots_ = nullptr;
    mask_ = 0;
  }
}

SubscriberId SubjectStore::subscribe(std::string_view subject) {
  bool added = false;
  SubjectEntry& entry = subjects_.find_or_add(subject, added);
  if (added) gauges_.subjects.add();

  // Ids of one subject are unique by construction: their slots differ. (Four
  // billion subscribers of one subject would need hundreds of GiB first.)
  auto subscriber = std::make_unique<Subscriber>();
  subscriber->id = ids_.next(static_cast<std::uint32_t>(entry.subscribers.size()));
  const SubscriberId id = subscriber->id;
  entry.subscribers.push_back(std::move(subscriber));
  ++subscriber_count_;
  gauges_.subscribers.add();
  return id;
}

void SubjectStore::append(SubjectEntry& entry, Message* message) {
  message->set_holders(static_cast<std::uint32_t>(entry.subscribers.size()));
  for (auto& subscriber : entry.subscribers) subscriber->queue.push(message);
}

PublishOutcome SubjectStore::publish(std::string_view subject, std::string_view payload) {
  SubjectEntry* entry = subjects_.find(subject);
  if (entry == nullptr || entry->subscribers.empty()) return PublishOutcome::no_subscriber;
  // Reserve before allocating: a refused publish costs no allocation.
  const std::size_t fan_out = entry->subscribers.size();
  if (!budget_.try_reserve(fan_out, payload.size() * fan_out)) return PublishOutcome::overflow;
  append(*entry, Message::create(payload));
  return PublishOutcome::stored;
}

PublishOutcome SubjectStore::publish(std::string_view subject, MessagePtr message) {
  SubjectEntry* entry = subjects_.find(subject);
  if (entry == nullptr || entry->subscribers.empty()) return PublishOutcome::no_subscriber;
  const std::size_t fan_out = entry->subscribers.size();
  if (!budget_.try_reserve(fan_out, message->payload().size() * fan_out)) {
    return PublishOutcome::overflow;
  }
  append(*entry, message.release());
  return PublishOutcome::stored;
}

Subscriber* SubjectStore::find(std::string_view subject, const SubscriberId& id) {
  SubjectEntry* entry = subjects_.find(subject);
  if (entry == nullptr) return nullptr;
  const std::uint32_t slot = id.slot();
  if (slot >= entry->subscribers.size()) return nullptr;
  Subscriber* subscriber = entry->subscribers[slot].get();
  // The whole id must match: the slot alone is no proof of having been given it.
  return subscriber->id == id ? subscriber : nullptr;
}

void SubjectStore::drain(Subscriber& subscriber, std::size_t count) {
  if (count == 0) return;
  const std::uint64_t bytes_before = subscriber.queue.bytes();
  subscriber.queue.drain_front(count);
  budget_.release(count, bytes_before - subscriber.queue.bytes());
}

}  // namespace gophermq
