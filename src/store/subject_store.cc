#include "gophermq/store/subject_store.h"

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <new>
#include <utility>

#include "gophermq/store/wildcard_message.h"

namespace gophermq {

DeliveryQueue::DeliveryQueue(const QueueOptions& options)
    : bounds(options.bounds), dead_letter_subject(options.dead_letter_subject) {
  if (options.uses_acks()) acks = std::make_unique<AckQueue>(options.acks);
}

bool SubjectStore::same_options(const SubscribeOptions& options, const QueueOptions& group) {
  using Named = SubscribeOptions::Named;
  const QueueOptions& asked = options.queue;
  auto differs = [&](Named field, bool same) { return (options.named & field) != 0 && !same; };
  return !(
      differs(Named::max_pending, asked.bounds.max_pending == group.bounds.max_pending) ||
      differs(Named::max_pending_bytes,
              asked.bounds.max_pending_bytes == group.bounds.max_pending_bytes) ||
      differs(Named::discard, asked.bounds.discard == group.bounds.discard) ||
      differs(Named::ack_wait, asked.acks.ack_wait_ms == group.acks.ack_wait_ms) ||
      differs(Named::max_ack_pending, asked.acks.max_ack_pending == group.acks.max_ack_pending) ||
      differs(Named::max_deliver, asked.acks.max_deliver == group.acks.max_deliver) ||
      differs(Named::dead_letter_subject, asked.dead_letter_subject == group.dead_letter_subject));
}

Subscription SubjectStore::subscribe(std::string_view subject, const SubscribeOptions& options) {
  SubjectTable<SubjectEntry>& table = options.wildcard ? patterns_ : subjects_;
  SubjectEntry* existing = table.find(subject);
  if (existing != nullptr && existing->live >= limits_.max_subscribers_per_subject) {
    return {SubscribeOutcome::too_many_subscribers, {}};
  }
  QueueGroup* group = nullptr;
  if (existing != nullptr && !options.group.empty()) {
    auto found = existing->groups.find(options.group);
    if (found != existing->groups.end()) {
      group = found->second.get();
      if (!same_options(options, group->options))
        return {SubscribeOutcome::group_options_differ, {}};
    }
  }
  if (!census_.subscribers.try_add(1)) return {SubscribeOutcome::too_many_subscribers, {}};
  if (existing == nullptr && !census_.subjects.try_add(1)) {
    census_.subscribers.subtract(1);
    return {SubscribeOutcome::too_many_subjects, {}};
  }
  bool added = false;
  SubjectEntry& entry = existing != nullptr ? *existing : table.find_or_add(subject, added, ages_);
  if (added) {
    gauges_.subjects.add();
    if (options.wildcard) {
      entry.pattern = true;
      pattern_changes_.push_back({true, std::string(subject)});
    }
  }

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
  if (!options.group.empty()) {
    if (group == nullptr) {  // its first member: the group takes its options
      auto [placed, inserted] =
          entry.groups.emplace(options.group, std::make_unique<QueueGroup>(options.queue));
      group = placed->second.get();
      group->name = placed->first;
      add_fed(entry, group->queue);
    }
    ++group->members;
    subscriber->group = group;
    subscriber->member = ++group->last_member;
    subscriber->queue = &group->queue;
  } else if (options.queue.bounds.any() || options.queue.uses_acks()) {
    subscriber->own = std::make_unique<DeliveryQueue>(options.queue);
    subscriber->queue = subscriber->own.get();
    add_fed(entry, *subscriber->queue);
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

void SubjectStore::add_fed(SubjectEntry& entry, DeliveryQueue& queue) {
  queue.index = static_cast<std::uint32_t>(entry.fed.size());
  entry.fed.push_back(&queue);
  if (queue.acks) {
    queue.ack_ticket = next_ack_ticket_++;
    ack_queues_.emplace(queue.ack_ticket, AckQueueRef{&queue, &entry});
  }
}

std::uint64_t SubjectStore::drop_oldest(DeliveryQueue& queue, std::size_t count) {
  if (count == 0) return 0;
  if (!queue.acks) return queue.messages.drain_front(count);
  AckQueue::Released released;
  const std::size_t in_flight = queue.acks->in_flight();
  queue.acks->drop_oldest(count, released);
  gauges_.inflight.subtract(in_flight - queue.acks->in_flight());
  return released.freed_bytes;
}

SubjectStore::Intake SubjectStore::intake(const DeliveryQueue& queue, std::uint64_t bytes) {
  const SubscriberBounds& bounds = queue.bounds;
  const std::uint64_t max_count = bounds.max_pending != 0 ? bounds.max_pending : UINT64_MAX;
  const std::uint64_t max_bytes =
      bounds.max_pending_bytes != 0 ? bounds.max_pending_bytes : UINT64_MAX;
  const std::size_t size = queue.size();
  if (size < max_count && queue.bytes() + bytes <= max_bytes) return {true, 0};
  // Full. A message larger than the byte bound never fits, whatever goes.
  if (bounds.discard == Discard::new_messages || bytes > max_bytes) return {false, 0};
  // Its oldest go until the new one fits both bounds.
  const std::size_t by_count = size >= max_count ? size - (max_count - 1) : 0;
  std::size_t drop = 0;
  std::uint64_t kept_bytes = queue.bytes();
  queue.visit_oldest([&](const Message& message) {
    if (drop >= by_count && kept_bytes + bytes <= max_bytes) return false;
    kept_bytes -= message.payload().size();
    ++drop;
    return true;
  });
  return {true, drop};
}

PublishOutcome SubjectStore::publish(std::string_view subject, std::string_view payload) {
  return publish_to(subjects_.find(subject), payload);
}

PublishOutcome SubjectStore::publish_to_pattern(std::string_view pattern, std::string_view framed) {
  return publish_to(patterns_.find(pattern), framed);
}

void SubjectStore::take_pattern_changes(std::vector<PatternChange>& into) {
  into.clear();
  std::swap(into, pattern_changes_);
}

PublishOutcome SubjectStore::publish_to(SubjectEntry* entry, std::string_view payload) {
  if (entry == nullptr || entry->live == 0) return PublishOutcome::no_subscriber;
  if (entry->fed.empty()) return publish_to_log(*entry, payload);

  const PublishPlan plan = plan_publish(*entry, payload.size());
  // The subject's own bounds first: a full subject is refused without
  // touching the broker-wide budget, and never fills it for the others.
  // (The sums cannot wrap: counts stay below 2^62, bytes below 2^50.)
  if (entry->pending + plan.takers > limits_.max_pending_per_subject + plan.dropping ||
      entry->pending_bytes + plan.stored_bytes >
          limits_.max_pending_bytes_per_subject + plan.freeing_bytes) {
    return PublishOutcome::subject_overflow;
  }
  const std::uint64_t reserved_count =
      plan.takers > plan.dropping ? plan.takers - plan.dropping : 0;
  const std::uint64_t reserved_bytes =
      plan.stored_bytes > plan.freeing_bytes ? plan.stored_bytes - plan.freeing_bytes : 0;
  if (!budget_.try_reserve(reserved_count, reserved_bytes)) return PublishOutcome::overflow;
  const NetChange change = store_planned(*entry, payload, plan);
  // What was reserved beyond what is held now goes back.
  // (A fall in the held count, from drops, gives back more than this
  // publish reserved: modular arithmetic makes that come out right.)
  budget_.release(reserved_count - static_cast<std::uint64_t>(change.count),
                  reserved_bytes - static_cast<std::uint64_t>(change.bytes));
  return PublishOutcome::stored;
}

PublishOutcome SubjectStore::publish_batch(std::string_view subject,
                                           std::span<const std::string_view> payloads) {
  if (payloads.size() == 1) return publish(subject, payloads.front());
  SubjectEntry* entry = subjects_.find(subject);
  if (entry == nullptr || entry->live == 0) return PublishOutcome::no_subscriber;
  // All or nothing: the batch is checked, and its budget reserved, as if
  // every subscriber kept every message. That is exact when all are plain
  // (the usual case); with bounded ones, whose drops could make room, it may
  // refuse a batch that would have fitted, never store one that does not.
  std::uint64_t total_bytes = 0;
  for (std::string_view payload : payloads) total_bytes += payload.size();
  const std::uint64_t count = (entry->log.readers() + entry->fed.size()) * payloads.size();
  if (entry->pending + count > limits_.max_pending_per_subject ||
      entry->pending_bytes + total_bytes > limits_.max_pending_bytes_per_subject) {
    return PublishOutcome::subject_overflow;
  }
  if (!budget_.try_reserve(count, total_bytes)) return PublishOutcome::overflow;
  NetChange stored{0, 0};
  for (std::string_view payload : payloads) {
    const NetChange change =
        entry->fed.empty() ? store_in_log(*entry, payload)
                           : store_planned(*entry, payload, plan_publish(*entry, payload.size()));
    stored.count += change.count;
    stored.bytes += change.bytes;
  }
  budget_.release(count - static_cast<std::uint64_t>(stored.count),
                  total_bytes - static_cast<std::uint64_t>(stored.bytes));
  return PublishOutcome::stored;
}

SubjectStore::PublishPlan SubjectStore::plan_publish(const SubjectEntry& entry,
                                                     std::uint64_t bytes) {
  // Who takes it: every plain subscriber, through the log, and each fed
  // queue that has room or makes room by dropping its oldest. Dropped messages
  // free their bytes when no one else holds them (a lower estimate: two
  // subscribers dropping the same message count it as kept).
  PublishPlan plan{};
  intakes_.clear();
  for (const DeliveryQueue* queue : entry.fed) {
    const Intake intake = SubjectStore::intake(*queue, bytes);
    intakes_.push_back(intake);
    plan.bounded_takers += intake.take;
    plan.dropping += intake.drop_oldest;
    std::size_t left = intake.drop_oldest;
    queue->visit_oldest([&](const Message& message) {
      if (left == 0) return false;
      --left;
      if (message.holders() == 1) plan.freeing_bytes += message.payload().size();
      return true;
    });
  }
  plan.takers = entry.log.readers() + plan.bounded_takers;
  plan.stored_bytes = plan.takers != 0 ? bytes : 0;
  return plan;
}

SubjectStore::NetChange SubjectStore::store_planned(SubjectEntry& entry, std::string_view payload,
                                                    const PublishPlan& plan) {
  const bool in_log = entry.log.readers() != 0;
  std::uint64_t freed = 0;
  // Allocated only now that someone takes it: a refused publish costs none.
  Message* message = plan.takers != 0 ? entry.arena.create(payload, now_s()) : nullptr;
  if (message != nullptr) {
    message->set_holders(static_cast<std::uint32_t>(plan.bounded_takers + in_log));
    if (in_log) entry.log.append(message);
  }
  for (std::size_t i = 0; i != intakes_.size(); ++i) {
    DeliveryQueue& own = *entry.fed[i];
    const Intake intake = intakes_[i];
    if (intake.drop_oldest != 0) {
      freed += drop_oldest(own, intake.drop_oldest);
      gauges_.messages_dropped[static_cast<std::size_t>(DropReason::discard_old)].add(
          intake.drop_oldest);
    }
    if (intake.take) {
      own.push(message);
    } else {
      const DropReason reason = own.bounds.discard == Discard::new_messages
                                    ? DropReason::discard_new
                                    : DropReason::discard_old;
      gauges_.messages_dropped[static_cast<std::size_t>(reason)].add();
    }
  }
  entry.pending = entry.pending + plan.takers - plan.dropping;
  entry.pending_bytes = entry.pending_bytes + plan.stored_bytes - freed;
  if (entry.waiting_subscribers != 0) mark_woken(entry);
  return {static_cast<std::int64_t>(plan.takers) - static_cast<std::int64_t>(plan.dropping),
          static_cast<std::int64_t>(plan.stored_bytes) - static_cast<std::int64_t>(freed)};
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
  store_in_log(entry, payload);
  return PublishOutcome::stored;
}

SubjectStore::NetChange SubjectStore::store_in_log(SubjectEntry& entry, std::string_view payload) {
  const std::uint64_t takers = entry.log.readers();
  Message* message = entry.arena.create(payload, now_s());
  message->set_holders(1);
  entry.log.append(message);
  entry.pending += takers;
  entry.pending_bytes += payload.size();
  if (entry.waiting_subscribers != 0) mark_woken(entry);
  return {static_cast<std::int64_t>(takers), static_cast<std::int64_t>(payload.size())};
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

Subscriber* SubjectStore::find(std::string_view subject, const SubscriberId& id) {
  if (Subscriber* subscriber = find_in(subjects_, subject, id)) return subscriber;
  // Only a shard that holds patterns pays for the second look.
  return patterns_.size() != 0 ? find_in(patterns_, subject, id) : nullptr;
}

Subscriber* SubjectStore::find_in(SubjectTable<SubjectEntry>& table, std::string_view subject,
                                  const SubscriberId& id) {
  SubjectEntry* entry = table.find(subject);
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
    // One with a fetch waiting, or a stream, is active: looked at again a
    // threshold later.
    const std::uint64_t due =
        (subscriber->waiting_fetches != 0 || subscriber->streamed ? now_ms_
                                                                  : subscriber->last_active_ms) +
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
  SubjectEntry& entry = *subscriber.subject;
  if (subscriber.group != nullptr) {
    // The group's queue stays with its other members; it goes with the last.
    QueueGroup& group = *subscriber.group;
    if (--group.members == 0) {
      release_queue(entry, group.queue);
      entry.groups.erase(entry.groups.find(group.name));
    }
  } else if (subscriber.own) {
    release_queue(entry, *subscriber.own);
  } else {
    drain(subscriber);
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
    if (entry.pattern) {
      pattern_changes_.push_back({false, std::string(subject)});
      patterns_.erase(subject);
    } else {
      subjects_.erase(subject);
    }
    gauges_.subjects.subtract(1);
    census_.subjects.subtract(1);
  }
}

void SubjectStore::release_queue(SubjectEntry& entry, DeliveryQueue& queue) {
  const std::size_t held = queue.size();
  const std::uint64_t freed = drop_oldest(queue, held);
  entry.pending -= held;
  entry.pending_bytes -= freed;
  budget_.release(held, freed);
  // Out of the list: the last one takes its place.
  DeliveryQueue* last = entry.fed.back();
  last->index = queue.index;
  entry.fed[queue.index] = last;
  entry.fed.pop_back();
  // Its entries in the deadline heap are stale from now on.
  if (queue.acks) ack_queues_.erase(queue.ack_ticket);
}

void SubjectStore::drain(Subscriber& subscriber, std::size_t count) {
  if (count == 0) return;
  std::uint64_t freed;
  if (subscriber.queue != nullptr) {
    freed = subscriber.queue->messages.drain_front(count);
  } else {
    const SubjectLog::Sequence from = subscriber.cursor;
    subscriber.cursor += count;
    freed = subscriber.subject->log.advance(from, subscriber.cursor);
  }
  subscriber.subject->pending -= count;
  subscriber.subject->pending_bytes -= freed;
  budget_.release(count, freed);
}

void SubjectStore::hand_out(Subscriber& subscriber, std::size_t max_messages,
                            std::uint64_t max_bytes, std::vector<AckQueue::Delivery>& out) {
  DeliveryQueue& queue = *subscriber.queue;
  const std::size_t first = out.size();
  queue.acks->hand_out(now_ms_, max_messages, max_bytes, subscriber.member, out);
  gauges_.inflight.add(out.size() - first);
  for (std::size_t i = first; i != out.size(); ++i) {
    if (out[i].deliveries > 1) gauges_.redelivered.add();
  }
  schedule(queue);
}

std::size_t SubjectStore::ack(Subscriber& subscriber, std::span<const std::uint64_t> sequences,
                              std::uint64_t through) {
  AckQueue& queue = *subscriber.queue->acks;
  const std::size_t in_flight = queue.in_flight();
  AckQueue::Released released;
  std::size_t acked = queue.ack(sequences, released);
  if (through != kNoThrough) acked += queue.ack_through(through, subscriber.member, released);
  account(*subscriber.subject, released, in_flight, queue);
  return acked;
}

std::size_t SubjectStore::nack(Subscriber& subscriber, std::span<const std::uint64_t> sequences,
                               std::uint64_t delay_ms) {
  DeliveryQueue& queue = *subscriber.queue;
  const std::size_t nacked = queue.acks->nack(sequences, now_ms_, delay_ms);
  gauges_.inflight.subtract(nacked);
  schedule(queue);
  return nacked;
}

void SubjectStore::account(SubjectEntry& entry, const AckQueue::Released& released,
                           std::size_t in_flight_before, const AckQueue& queue) {
  gauges_.inflight.subtract(in_flight_before - queue.in_flight());
  entry.pending -= released.messages;
  entry.pending_bytes -= released.freed_bytes;
  budget_.release(released.messages, released.freed_bytes);
  // Room under max_ack_pending, where there was none: a fetch waiting for
  // it may take what is available now.
  const bool was_full = in_flight_before >= queue.settings().max_ack_pending;
  if (was_full && queue.can_hand_out() && entry.waiting_subscribers != 0) mark_woken(entry);
}

void SubjectStore::schedule(DeliveryQueue& queue) {
  const std::uint64_t due_ms = queue.acks->next_due_ms();
  if (due_ms >= queue.scheduled_due_ms) return;
  queue.scheduled_due_ms = due_ms;
  // Entries left behind by earlier times, or by queues gone, are skipped
  // when they come up; once they outnumber the live queues they go.
  if (ack_dues_.size() > 2 * ack_queues_.size() + kKeepStaleExpiryChecks) {
    std::erase_if(ack_dues_, [this](const AckDue& due) {
      auto found = ack_queues_.find(due.ticket);
      return found == ack_queues_.end() || found->second.queue->scheduled_due_ms != due.due_ms;
    });
    std::make_heap(ack_dues_.begin(), ack_dues_.end(), std::greater<>{});
  }
  ack_dues_.push_back({due_ms, queue.ack_ticket});
  std::push_heap(ack_dues_.begin(), ack_dues_.end(), std::greater<>{});
}

void SubjectStore::expire_acks(std::vector<DeadLetter>& dead) {
  // The queues due now come off the heap first: expiring one reschedules
  // it, which pushes onto the heap.
  ack_dues_now_.clear();
  while (!ack_dues_.empty() && ack_dues_.front().due_ms <= now_ms_) {
    std::pop_heap(ack_dues_.begin(), ack_dues_.end(), std::greater<>{});
    ack_dues_now_.push_back(ack_dues_.back());
    ack_dues_.pop_back();
  }
  for (const AckDue& due : ack_dues_now_) {
    auto found = ack_queues_.find(due.ticket);
    if (found == ack_queues_.end()) continue;  // the queue is gone
    DeliveryQueue& queue = *found->second.queue;
    if (queue.scheduled_due_ms > now_ms_) continue;  // expired already by an earlier entry
    SubjectEntry& entry = *found->second.subject;
    AckQueue& acks = *queue.acks;
    queue.scheduled_due_ms = UINT64_MAX;
    const std::size_t in_flight = acks.in_flight();
    AckQueue::Released released;
    const std::size_t available = acks.expire(
        now_ms_,
        [&](const Message& message) {
          gauges_.dead_lettered.add();
          if (!queue.dead_letter_subject.empty()) {
            // A wildcard subscriber's message goes on as its data alone.
            const std::string_view data = entry.pattern
                                              ? unframe_wildcard_message(message.payload()).data
                                              : message.payload();
            dead.push_back({queue.dead_letter_subject, MessagePtr(Message::create(data))});
          }
        },
        released);
    account(entry, released, in_flight, acks);
    if (available != 0 && entry.waiting_subscribers != 0) mark_woken(entry);
    schedule(queue);
  }
}

}  // namespace gophermq
