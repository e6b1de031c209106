// The queue of a subscriber, or a queue group, in ack mode
// (api-extensions.md §5): a message stays until it is acknowledged. A fetch
// hands messages out, lowest sequence first among those available; each is
// then in flight until an ack, a nack (available again, now or after a
// delay), or its deadline (ack_wait after it was handed out: available
// again, or past max_deliver deliveries, dead). Every message held, in
// flight or not, counts against the bounds.
//
// No timer per message: deadlines are kept in hand-out order (ack_wait is
// the queue's own, so they only grow) and nack delays in a heap; the owner
// asks next_due_ms() and calls expire() when it comes.
#pragma once

#include <cstdint>
#include <deque>
#include <queue>
#include <set>
#include <span>
#include <vector>

#include "gophermq/store/message.h"

namespace gophermq {

class AckQueue {
 public:
  using Sequence = std::uint64_t;

  struct Settings {
    std::uint64_t ack_wait_ms = 30'000;  // > 0
    std::uint64_t max_ack_pending = 1000;
    std::uint64_t max_deliver = 0;  // 0: unlimited
  };

  // A message handed out by a fetch.
  struct Delivery {
    Sequence sequence;
    std::uint32_t deliveries;  // 1 the first time, 2 the second, ...
    const Message* message;
  };

  // What left the queue: messages acked, dropped or dead, and the payload
  // bytes freed with them (of messages no other queue held).
  struct Released {
    std::uint64_t messages = 0;
    std::uint64_t freed_bytes = 0;
  };

  explicit AckQueue(const Settings& settings) : settings_(settings) {}
  AckQueue(const AckQueue&) = delete;
  AckQueue& operator=(const AckQueue&) = delete;
  ~AckQueue();

  const Settings& settings() const { return settings_; }

  // Appends a message; its sequence is the next one (1 for the first).
  void push(Message* message);

  // Messages held: in flight, available or waiting out a nack's delay.
  std::size_t size() const { return held_; }
  std::size_t in_flight() const { return in_flight_; }
  // Messages a fetch could take now, max_ack_pending aside.
  std::size_t available() const { return redeliverable_.size() + (last_ + 1 - fresh_); }
  // Whether a fetch would hand out at least one message now.
  bool can_hand_out() const { return in_flight_ < settings_.max_ack_pending && available() != 0; }
  // Payload bytes of the messages held.
  std::uint64_t bytes() const { return bytes_; }
  // Entries kept, holes of messages gone included (for tests).
  std::size_t entries_kept() const { return entries_.size(); }
  // The sequence of the newest message pushed (0 before the first).
  Sequence last_sequence() const { return last_; }

  // Visits the messages held, oldest first, while `visit(message)` returns
  // true.
  template <typename Visit>
  void visit_held(Visit&& visit) const {
    for (const Entry& held : entries_) {
      if (held.state != State::done && !visit(*held.message)) return;
    }
  }

  // Hands out up to `max_messages` available messages, lowest sequence
  // first, while they fit `max_bytes` (at least one when any is available)
  // and in-flight messages stay within max_ack_pending. Each is in flight
  // until now_ms + ack_wait, held by `holder` (a queue group's member; 0
  // for a subscriber's own queue).
  void hand_out(std::uint64_t now_ms, std::size_t max_messages, std::uint64_t max_bytes,
                std::uint32_t holder, std::vector<Delivery>& out);

  // Acknowledges the in-flight messages among `sequences` (others are
  // ignored); returns how many.
  std::size_t ack(std::span<const Sequence> sequences, Released& released);
  // Acknowledges every message in flight with `holder` up to `through`
  // (so a group member's ack never settles what another member holds);
  // returns how many.
  std::size_t ack_through(Sequence through, std::uint32_t holder, Released& released);
  // Makes the in-flight messages among `sequences` available again after
  // `delay_ms` (at the next expire() when 0); returns how many.
  std::size_t nack(std::span<const Sequence> sequences, std::uint64_t now_ms,
                   std::uint64_t delay_ms);
  // Removes the `count` oldest messages held, in flight or not: a full
  // queue that discards its oldest makes room. A later ack of one is
  // ignored.
  void drop_oldest(std::size_t count, Released& released);

  // When the next deadline or nack delay ends; UINT64_MAX when none.
  std::uint64_t next_due_ms() const;
  // Deadlines and nack delays passed by now_ms: those messages are
  // available again, or, delivered max_deliver times already, go to
  // `dead(message)` and leave the queue. Returns how many became available.
  template <typename Dead>
  std::size_t expire(std::uint64_t now_ms, Dead&& dead, Released& released) {
    std::size_t redelivered = 0;
    while (Entry* expired = next_expired(now_ms)) {
      if (settings_.max_deliver != 0 && expired->deliveries >= settings_.max_deliver) {
        dead(*expired->message);
        remove(*expired, released);
        continue;
      }
      make_available(*expired);
      ++redelivered;
    }
    return redelivered;
  }

 private:
  enum class State : std::uint8_t { fresh, in_flight, delayed, redeliverable, done };
  struct Entry {
    Sequence sequence;
    Message* message;
    std::uint32_t deliveries = 0;
    std::uint32_t holder = 0;  // while in flight: who it was handed to
    State state = State::fresh;
  };
  // When an in-flight message's deadline, or a nack's delay, ends; stale
  // (and skipped) once the message has moved on since.
  struct Due {
    std::uint64_t due_ms;
    Sequence sequence;
    std::uint32_t deliveries;
    bool operator>(const Due& other) const { return due_ms > other.due_ms; }
  };

  // The entry of `sequence`, done or not; null when it is not held.
  Entry* entry(Sequence sequence);
  // The next message whose deadline or delay has passed and is still
  // current (no longer in flight, for a deadline); null when none.
  Entry* next_expired(std::uint64_t now_ms);
  void make_available(Entry& entry);
  // A message leaves the queue (acked, dropped or dead).
  void remove(Entry& entry, Released& released);
  // Scans the entries oldest first while `go_on(entry)`, removing those
  // `take(entry)` names; returns how many it removed.
  template <typename GoOn, typename Take>
  std::size_t remove_scanning(GoOn&& go_on, Take&& take, Released& released) {
    std::size_t removed = 0;
    for (std::size_t i = 0; i < entries_.size() && go_on(entries_[i]);) {
      if (!take(entries_[i])) {
        ++i;
        continue;
      }
      // Removing the front pops it, and the holes behind it: `i` then names
      // the next entry already.
      const bool front = i == 0;
      remove(entries_[i], released);
      ++removed;
      if (!front) ++i;
    }
    return removed;
  }
  // Drops done entries and stale deadlines once they outnumber what is
  // held, so a message that is never acked while later ones are keeps
  // memory bounded by what is held, not by what passed through.
  void compact();

  Settings settings_;
  // The messages from the oldest held on, by sequence; a done one (acked,
  // dead, dropped) stays as a hole until the front reaches it or compact()
  // takes it. Until a compaction the sequences follow each other, so a
  // lookup is an index; after one it is a binary search.
  std::deque<Entry> entries_;
  std::size_t holes_ = 0;
  Sequence last_ = 0;
  Sequence fresh_ = 1;  // the oldest never handed out; last_ + 1 when none
  std::set<Sequence> redeliverable_;
  std::deque<Due> deadlines_;  // in hand-out order, so by due time
  std::priority_queue<Due, std::vector<Due>, std::greater<>> delays_;
  std::size_t held_ = 0;
  std::size_t in_flight_ = 0;
  std::uint64_t bytes_ = 0;
};

}  // namespace gophermq
