#include "gophermq/store/subject_store.h"

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <new>
#include <utility>

namespace gophermq {

Subscription SubjectStore::subscribe(std::string_view subject, const SubscribeOptions& options) {
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
  if (options.bounds.any()) {
    subscriber->own = std::make_unique<OwnQueue>();
    subscriber->own->bounds = options.bounds;
    subscriber->own->index = static_cast<std::uint32_t>(entry.bounded.size());
    entry.bounded.push_back(subscriber.get());
  } else {
    subscriber->cursor = entry.log.add_reader();
    subscriber->sequence_base = subscriber->cursor - 1;
  }
  subscriber->inactive_threshold_ms = options.inactive_threshold_ms;
  subscriber->last_active_ms = now_ms_;
  if (options.inactive_threshold_ms != 0) {
    expiry_checks_.push_back(
        {now_ms_ + options.inactive_threshold_ms, std::string(subject), subscriber->id});
    std::push_heap(expiry_checks_.begin(), expiry_checks_.end(), std::greater<>{});
  }
  const SubscriberId id = subscriber->id;
  entry.subscribers[slot] = std::move(subscriber);
  ++entry.live;
  ++subscriber_count_;
  gauges_.subscribers.add();
  return {SubscribeOutcome::subscribed, id};
}

SubjectStore::Intake SubjectStore::intake(const OwnQueue& queue, std::uint64_t bytes) {
  const SubscriberBounds& bounds = queue.bounds;
  const std::uint64_t max_count = bounds.max_pending != 0 ? bounds.max_pending : UINT64_MAX;
  const std::uint64_t max_bytes =
      bounds.max_pending_bytes != 0 ? bounds.max_pending_bytes : UINT64_MAX;
  const MessageQueue& messages = queue.messages;
  if (messages.size() < max_count && messages.bytes() + bytes <= max_bytes) return {true, 0};
  // Full. A message larger than the byte bound never fits, whatever goes.
  if (bounds.discard == Discard::new_messages || bytes > max_bytes) return {false, 0};
  // Its oldest go until the new one fits both bounds.
  std::size_t drop = messages.size() >= max_count ? messages.size() - (max_count - 1) : 0;
  std::uint64_t kept_bytes = messages.bytes();
  for (std::size_t i = 0; i != drop; ++i) kept_bytes -= messages.at(i).payload().size();
  while (kept_bytes + bytes > max_bytes) kept_bytes -= messages.at(drop++).payload().size();
  return {true, drop};
}

PublishOutcome SubjectStore::publish(std::string_view subject, std::string_view payload) {
  const std::uint64_t bytes = payload.size();
  SubjectEntry* entry = subjects_.find(subject);
  if (entry == nullptr || entry->live == 0) return PublishOutcome::no_subscriber;
  if (entry->bounded.empty()) return publish_to_log(*entry, payload);

  // Who takes it: every plain subscriber, through the log, and each bounded
  // one that has room or makes room by dropping its oldest. Dropped messages
  // free their bytes when no one else holds them (a lower estimate: two
  // subscribers dropping the same message count it as kept).
  const bool in_log = entry->log.readers() != 0;
  std::uint64_t bounded_takers = 0;
  std::uint64_t dropping = 0;
  std::uint64_t freeing_bytes = 0;
  intakes_.clear();
  for (const Subscriber* bounded : entry->bounded) {
    const Intake plan = intake(*bounded->own, bytes);
    intakes_.push_back(plan);
    bounded_takers += plan.take;
    dropping += plan.drop_oldest;
    bounded->own->messages.for_each(plan.drop_oldest, [&](const Message& message) {
      if (message.holders() == 1) freeing_bytes += message.payload().size();
    });
  }
  const std::uint64_t takers = entry->log.readers() + bounded_takers;
  const std::uint64_t stored_bytes = takers != 0 ? bytes : 0;

  // The subject's own bounds first: a full subject is refused without
  // touching the broker-wide budget, and never fills it for the others.
  // (The sums cannot wrap: counts stay below 2^62, bytes below 2^50.)
  if (entry->pending + takers > limits_.max_pending_per_subject + dropping ||
      entry->pending_bytes + stored_bytes > limits_.max_pending_bytes_per_subject + freeing_bytes) {
    return PublishOutcome::subject_overflow;
  }
  const std::uint64_t reserved_count = takers > dropping ? takers - dropping : 0;
  const std::uint64_t reserved_bytes =
      stored_bytes > freeing_bytes ? stored_bytes - freeing_bytes : 0;
  if (!budget_.try_reserve(reserved_count, reserved_bytes)) return PublishOutcome::overflow;

  std::uint64_t freed = 0;
  // Allocated only now that someone takes it: a refused publish costs none.
  Message* message = takers != 0 ? entry->arena.create(payload) : nullptr;
  if (message != nullptr) {
    message->set_holders(static_cast<std::uint32_t>(bounded_takers + in_log));
    if (in_log) entry->log.append(message);
  }
  for (std::size_t i = 0; i != intakes_.size(); ++i) {
    OwnQueue& own = *entry->bounded[i]->own;
    const Intake plan = intakes_[i];
    if (plan.drop_oldest != 0) {
      freed += own.messages.drain_front(plan.drop_oldest);
      gauges_.messages_dropped[static_cast<std::size_t>(DropReason::discard_old)].add(
          plan.drop_oldest);
    }
    if (plan.take) {
      own.messages.push(message);
    } else {
      const DropReason reason = own.bounds.discard == Discard::new_messages
                                    ? DropReason::discard_new
                                    : DropReason::discard_old;
      gauges_.messages_dropped[static_cast<std::size_t>(reason)].add();
    }
  }
  entry->pending = entry->pending + takers - dropping;
  entry->pending_bytes = entry->pending_bytes + stored_bytes - freed;
  // What was reserved beyond what is held now goes back.
  budget_.release(dropping > takers ? dropping - takers : 0, reserved_bytes + freed - stored_bytes);
  if (entry->waiting_subscribers != 0) mark_woken(*entry);
  return PublishOutcome::stored;
}

PublishOutcome SubjectStore::publish_to_log(SubjectEntry& entry, std::string_view payload) {
  // Only plain subscribers: nothing to plan, nothing dropped, nothing freed.
  const std::uint64_t takers = entry.log.readers();
  const std::uint64_t bytes = payload.size();
  if (entry.pending + takers > limits_.max_pending_per_subject ||
      entry.pending_bytes + bytes > limits_.max_pending_bytes_per_subject) {
    return PublishOutcome::subject_overflow;
  }
  if (!budget_.try_reserve(takers, bytes)) return PublishOutcome::overflow;
  Message* message = entry.arena.create(payload);
  message->set_holders(1);
  entry.log.append(message);
  entry.pending += takers;
  entry.pending_bytes += bytes;
  if (entry.waiting_subscribers != 0) mark_woken(entry);
  return PublishOutcome::stored;
}

void SubjectStore::mark_woken(SubjectEntry& entry) {
  if (entry.woken) return;
  entry.woken = true;
  woken_.push_back(&entry);
}

void SubjectStore::take_woken(std::vector<SubjectEntry*>& into) {
  for (SubjectEntry* entry : woken_) entry->woken = false;
  into.clear();
  std::swap(into, woken_);
}

PublishOutcome SubjectStore::publish(std::string_view subject, MessagePtr message) {
  return publish(subject, message->payload());
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
    // One with a fetch waiting is active: looked at again a threshold later.
    const std::uint64_t due =
        (subscriber->waiting_fetches != 0 ? now_ms_ : subscriber->last_active_ms) +
        subscriber->inactive_threshold_ms;
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
  drain(subscriber);
  SubjectEntry& entry = *subscriber.subject;
  if (subscriber.own) {
    // Out of the bounded list: the last one takes its place.
    Subscriber* last = entry.bounded.back();
    last->own->index = subscriber.own->index;
    entry.bounded[subscriber.own->index] = last;
    entry.bounded.pop_back();
  } else {
    entry.log.remove_reader(subscriber.cursor);  // drained: frees nothing more
  }
  const std::uint32_t slot = subscriber.id.slot();
  entry.subscribers[slot].reset();  // `subscriber` is gone from here on
  entry.free_slots.push_back(slot);
  --entry.live;
  --subscriber_count_;
  gauges_.subscribers.subtract(1);
  census_.subscribers.subtract(1);
  if (entry.live == 0) {
    // Nothing is left in the entry: its messages went with its subscribers.
    if (entry.woken) std::erase(woken_, &entry);
    subjects_.erase(subject);
    gauges_.subjects.subtract(1);
    census_.subjects.subtract(1);
  }
}

void SubjectStore::drain(Subscriber& subscriber, std::size_t count) {
  if (count == 0) return;
  std::uint64_t freed;
  if (subscriber.own) {
    freed = subscriber.own->messages.drain_front(count);
  } else {
    const SubjectLog::Sequence from = subscriber.cursor;
    subscriber.cursor += count;
    freed = subscriber.subject->log.advance(from, subscriber.cursor);
  }
  subscriber.subject->pending -= count;
  subscriber.subject->pending_bytes -= freed;
  budget_.release(count, freed);
}

}  // namespace gophermq
