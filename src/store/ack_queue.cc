#include "gophermq/store/ack_queue.h"

#include <algorithm>

namespace gophermq {

namespace {

// Done entries and stale deadlines kept beyond what is held before a
// compaction: a few are normal (acks arrive out of order).
constexpr std::size_t kKeepStale = 1024;

}  // namespace

AckQueue::~AckQueue() {
  for (Entry& held : entries_) {
    if (held.state != State::done) held.message->release();
  }
}

AckQueue::Entry* AckQueue::entry(Sequence sequence) {
  if (entries_.empty() || sequence < entries_.front().sequence || sequence > last_) return nullptr;
  const std::size_t guess = static_cast<std::size_t>(sequence - entries_.front().sequence);
  if (guess < entries_.size() && entries_[guess].sequence == sequence) return &entries_[guess];
  auto found =
      std::lower_bound(entries_.begin(), entries_.end(), sequence,
                       [](const Entry& held, Sequence wanted) { return held.sequence < wanted; });
  return found != entries_.end() && found->sequence == sequence ? &*found : nullptr;
}

void AckQueue::push(Message* message) {
  entries_.push_back(Entry{++last_, message});
  ++held_;
  bytes_ += message->payload().size();
}

void AckQueue::hand_out(std::uint64_t now_ms, std::size_t max_messages, std::uint64_t max_bytes,
                        std::uint32_t holder, std::vector<Delivery>& out) {
  std::uint64_t bytes = 0;
  const std::size_t first = out.size();
  const std::uint64_t due_ms = now_ms + settings_.ack_wait_ms;
  while (max_messages != 0 && in_flight_ < settings_.max_ack_pending) {
    // Lowest sequence first: a message to deliver again is always older
    // than one never delivered.
    Entry* taken;
    const bool again = !redeliverable_.empty();
    if (again) {
      taken = entry(*redeliverable_.begin());
    } else if (fresh_ <= last_) {
      taken = entry(fresh_);
    } else {
      break;
    }
    const std::uint64_t size = taken->message->payload().size();
    if (out.size() != first && bytes + size > max_bytes) break;
    if (again) {
      redeliverable_.erase(redeliverable_.begin());
    } else {
      ++fresh_;
    }
    bytes += size;
    --max_messages;
    taken->state = State::in_flight;
    taken->holder = holder;
    ++taken->deliveries;
    ++in_flight_;
    deadlines_.push_back({due_ms, taken->sequence, taken->deliveries});
    out.push_back({taken->sequence, taken->deliveries, taken->message});
  }
}

std::size_t AckQueue::ack(std::span<const Sequence> sequences, Released& released) {
  std::size_t acked = 0;
  for (Sequence sequence : sequences) {
    Entry* found = entry(sequence);
    if (found == nullptr || found->state != State::in_flight) continue;
    remove(*found, released);
    ++acked;
  }
  compact();
  return acked;
}

std::size_t AckQueue::ack_through(Sequence through, std::uint32_t holder, Released& released) {
  // Only what was handed out can be in flight: nothing from fresh_ on.
  const std::size_t acked = remove_scanning(
      [&](const Entry& held) { return held.sequence <= through && held.sequence < fresh_; },
      [holder](const Entry& held) {
        return held.state == State::in_flight && held.holder == holder;
      },
      released);
  compact();
  return acked;
}

std::size_t AckQueue::nack(std::span<const Sequence> sequences, std::uint64_t now_ms,
                           std::uint64_t delay_ms) {
  std::size_t nacked = 0;
  for (Sequence sequence : sequences) {
    Entry* found = entry(sequence);
    if (found == nullptr || found->state != State::in_flight) continue;
    found->state = State::delayed;
    --in_flight_;
    delays_.push({now_ms + delay_ms, sequence, found->deliveries});
    ++nacked;
  }
  return nacked;
}

void AckQueue::drop_oldest(std::size_t count, Released& released) {
  std::size_t dropped = 0;
  auto held = [&dropped](const Entry& entry) {
    if (entry.state == State::done) return false;
    ++dropped;
    return true;
  };
  remove_scanning([&](const Entry&) { return dropped != count; }, held, released);
  // The messages never handed out are the newest: those dropped were the
  // oldest of them.
  while (fresh_ <= last_) {
    const Entry* next = entry(fresh_);
    if (next != nullptr && next->state != State::done) break;
    ++fresh_;
  }
  compact();
}

std::uint64_t AckQueue::next_due_ms() const {
  std::uint64_t due = UINT64_MAX;
  if (!deadlines_.empty()) due = deadlines_.front().due_ms;
  if (!delays_.empty()) due = std::min(due, delays_.top().due_ms);
  return due;
}

AckQueue::Entry* AckQueue::next_expired(std::uint64_t now_ms) {
  while (!deadlines_.empty() && deadlines_.front().due_ms <= now_ms) {
    const Due due = deadlines_.front();
    deadlines_.pop_front();
    Entry* found = entry(due.sequence);
    // Still in flight from that same hand-out: its time is up.
    if (found != nullptr && found->state == State::in_flight &&
        found->deliveries == due.deliveries) {
      --in_flight_;
      found->state = State::delayed;  // on its way back, as after a nack
      return found;
    }
  }
  while (!delays_.empty() && delays_.top().due_ms <= now_ms) {
    const Due due = delays_.top();
    delays_.pop();
    Entry* found = entry(due.sequence);
    if (found != nullptr && found->state == State::delayed && found->deliveries == due.deliveries) {
      return found;
    }
  }
  return nullptr;
}

void AckQueue::make_available(Entry& entry) {
  entry.state = State::redeliverable;
  redeliverable_.insert(entry.sequence);
}

void AckQueue::remove(Entry& gone, Released& released) {
  if (gone.state == State::in_flight) --in_flight_;
  if (gone.state == State::redeliverable) redeliverable_.erase(gone.sequence);
  gone.state = State::done;
  const std::uint64_t size = gone.message->payload().size();
  --held_;
  bytes_ -= size;
  ++released.messages;
  if (gone.message->release()) released.freed_bytes += size;
  ++holes_;
  // The front goes once done: holes behind it wait for it, or for compact().
  while (!entries_.empty() && entries_.front().state == State::done) {
    entries_.pop_front();
    --holes_;
  }
}

void AckQueue::compact() {
  if (holes_ > held_ + kKeepStale) {
    std::erase_if(entries_, [](const Entry& held) { return held.state == State::done; });
    holes_ = 0;
  }
  if (deadlines_.size() > in_flight_ + kKeepStale) {
    std::erase_if(deadlines_, [this](const Due& due) {
      const Entry* found = entry(due.sequence);
      return found == nullptr || found->state != State::in_flight ||
             found->deliveries != due.deliveries;
    });
  }
}

}  // namespace gophermq
