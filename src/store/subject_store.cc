#include "gophermq/store/subject_store.h"

#include <algorithm>
#include <cstdlib>
#include <functional>
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

Subscription SubjectStore::subscribe(std::string_view subject,
                                     std::uint64_t inactive_threshold_ms) {
  SubjectEntry* existing = subjects_.find(subject);
  if (existing != nullptr && existing->live >= limits_.max_subscribers_per_subject) {
    return {SubscribeOutcome::too_many_subscribers, {}};
  }
  if (!census_.subscribers.try_add(1)) return {SubscribeOutcome::too_many_subscribers, {}};
  if (existing == nullptr && !census_.subjects.try_add(1)) {
    census_.subscribers.subtract(1);
    return {SubscribeOutcome::too_many_subjects, {}};
  }
  bool added = false;
  SubjectEntry& entry = existing != nullptr ? *existing : subjects_.find_or_add(subject, added);
  if (added) gauges_.subjects.add();

  // Ids of one subject's live subscribers are unique by construction: their
  // slots differ (max-subscribers-per-subject keeps slots within 32 bits). A
  // reused slot's new id differs from the old one in its random part.
  std::uint32_t slot = static_cast<std::uint32_t>(entry.subscribers.size());
  if (!entry.free_slots.empty()) {
    slot = entry.free_slots.back();
    entry.free_slots.pop_back();
  } else {
    entry.subscribers.emplace_back();
  }
  auto subscriber = std::make_unique<Subscriber>();
  subscriber->id = ids_.next(slot);
  subscriber->subject = &entry;
  subscriber->inactive_threshold_ms = inactive_threshold_ms;
  subscriber->last_active_ms = now_ms_;
  if (inactive_threshold_ms != 0) {
    expiry_checks_.push_back(
        {now_ms_ + inactive_threshold_ms, std::string(subject), subscriber->id});
    std::push_heap(expiry_checks_.begin(), expiry_checks_.end(), std::greater<>{});
  }
  const SubscriberId id = subscriber->id;
  entry.subscribers[slot] = std::move(subscriber);
  ++entry.live;
  ++subscriber_count_;
  gauges_.subscribers.add();
  return {SubscribeOutcome::subscribed, id};
}

void SubjectStore::append(SubjectEntry& entry, Message* message) {
  message->set_holders(static_cast<std::uint32_t>(entry.live));
  for (auto& subscriber : entry.subscribers) {
    if (subscriber) subscriber->queue.push(message);
  }
}

PublishOutcome SubjectStore::admit(std::string_view subject, std::uint64_t bytes,
                                   SubjectEntry*& entry) {
  entry = subjects_.find(subject);
  if (entry == nullptr || entry->live == 0) return PublishOutcome::no_subscriber;
  const std::uint64_t fan_out = entry->live;
  // The subject's own bounds first: a full subject is refused without
  // touching the broker-wide budget, and never fills it for the others.
  // (The sums cannot wrap: counts stay below 2^62, bytes below 2^50.)
  if (entry->pending + fan_out > limits_.max_pending_per_subject ||
      entry->pending_bytes + bytes > limits_.max_pending_bytes_per_subject) {
    return PublishOutcome::subject_overflow;
  }
  if (!budget_.try_reserve(fan_out, bytes)) return PublishOutcome::overflow;
  entry->pending += fan_out;
  entry->pending_bytes += bytes;
  return PublishOutcome::stored;
}

PublishOutcome SubjectStore::publish(std::string_view subject, std::string_view payload) {
  // Reserve before allocating: a refused publish costs no allocation.
  SubjectEntry* entry;
  const PublishOutcome outcome = admit(subject, payload.size(), entry);
  if (outcome == PublishOutcome::stored) append(*entry, Message::create(payload));
  return outcome;
}

PublishOutcome SubjectStore::publish(std::string_view subject, MessagePtr message) {
  SubjectEntry* entry;
  const PublishOutcome outcome = admit(subject, message->payload().size(), entry);
  if (outcome == PublishOutcome::stored) append(*entry, message.release());
  return outcome;
}

Subscriber* SubjectStore::find(std::string_view subject, const SubscriberId& id) {
  SubjectEntry* entry = subjects_.find(subject);
  if (entry == nullptr) return nullptr;
  const std::uint32_t slot = id.slot();
  if (slot >= entry->subscribers.size()) return nullptr;
  Subscriber* subscriber = entry->subscribers[slot].get();
  // The whole id must match: the slot alone is no proof of having been given it.
  return subscriber != nullptr && subscriber->id == id ? subscriber : nullptr;
}

std::size_t SubjectStore::expire_idle() {
  std::size_t expired = 0;
  while (!expiry_checks_.empty() && expiry_checks_.front().due_ms <= now_ms_) {
    std::pop_heap(expiry_checks_.begin(), expiry_checks_.end(), std::greater<>{});
    ExpiryCheck check = std::move(expiry_checks_.back());
    expiry_checks_.pop_back();
    Subscriber* subscriber = find(check.subject, check.id);
    if (subscriber == nullptr) {  // unsubscribed meanwhile
      if (stale_expiry_checks_ > 0) --stale_expiry_checks_;
      continue;
    }
    const std::uint64_t due = subscriber->last_active_ms + subscriber->inactive_threshold_ms;
    if (due > now_ms_) {
      check.due_ms = due;
      expiry_checks_.push_back(std::move(check));
      std::push_heap(expiry_checks_.begin(), expiry_checks_.end(), std::greater<>{});
      continue;
    }
    remove(*subscriber, check.subject);
    ++expired;
  }
  return expired;
}

void SubjectStore::drop_stale_expiry_checks() {
  std::erase_if(expiry_checks_, [this](const ExpiryCheck& check) {
    return find(check.subject, check.id) == nullptr;
  });
  std::make_heap(expiry_checks_.begin(), expiry_checks_.end(), std::greater<>{});
  stale_expiry_checks_ = 0;
}

bool SubjectStore::unsubscribe(std::string_view subject, const SubscriberId& id) {
  Subscriber* subscriber = find(subject, id);
  if (subscriber == nullptr) return false;
  const bool had_check = subscriber->inactive_threshold_ms != 0;
  remove(*subscriber, subject);
  // Its expiry check stays in the heap until due: once most of the heap is
  // such leftovers (subscribes and unsubscribes in a loop, say), they go.
  if (had_check && ++stale_expiry_checks_ > kKeepStaleExpiryChecks &&
      stale_expiry_checks_ * 2 > expiry_checks_.size()) {
    drop_stale_expiry_checks();
  }
  return true;
}

void SubjectStore::remove(Subscriber& subscriber, std::string_view subject) {
  drain(subscriber, subscriber.queue.size());
  SubjectEntry& entry = *subscriber.subject;
  const std::uint32_t slot = subscriber.id.slot();
  entry.subscribers[slot].reset();  // `subscriber` is gone from here on
  entry.free_slots.push_back(slot);
  --entry.live;
  --subscriber_count_;
  gauges_.subscribers.subtract(1);
  census_.subscribers.subtract(1);
  if (entry.live == 0) {
    // Nothing is left in the entry: its messages went with the queues.
    subjects_.erase(subject);
    gauges_.subjects.subtract(1);
    census_.subjects.subtract(1);
  }
}

void SubjectStore::drain(Subscriber& subscriber, std::size_t count) {
  if (count == 0) return;
  const std::uint64_t freed = subscriber.queue.drain_front(count);
  subscriber.subject->pending -= count;
  subscriber.subject->pending_bytes -= freed;
  budget_.release(count, freed);
}

}  // namespace gophermq
