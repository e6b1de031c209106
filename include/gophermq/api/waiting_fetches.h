// Fetches waiting for messages (long-poll, api-extensions.md §3), kept on the
// shard that owns their subject, whichever shard the client's connection is
// on: each is the fetch's call, parked until a publish feeds its subscriber,
// its deadline passes, its client goes, or the broker stops.
//
// Nothing runs per waiting fetch while it waits: deadlines sit in one heap
// per shard, looked at once a loop turn (the loop sleeps until the earliest),
// and a publish looks only at the subscribers of its own subject that wait.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "gophermq/shard/shard_call.h"
#include "gophermq/store/subject_store.h"

namespace gophermq {

class WaitingFetches {
 public:
  // Parks `call`, a fetch of `subscriber` with nothing to take, until
  // `deadline_ms` at the latest. Keeps subscriber.waiting_fetches and its
  // subject's waiting_subscribers current.
  void park(Subscriber& subscriber, ShardCall&& call, std::uint64_t deadline_ms);

  std::size_t size() const { return parked_.size(); }
  bool empty() const { return parked_.empty(); }
  // Deadlines in the heap, those of fetches answered early included.
  std::size_t deadlines_held() const { return deadlines_.size(); }
  // When the earliest deadline falls; UINT64_MAX when nothing waits.
  std::uint64_t next_deadline_ms();

  // The subscribers of `entry` that have fetches waiting, into `out` (a
  // copy: answering them changes the list; `out` keeps its memory).
  void waiting_subscribers(const SubjectEntry& entry, std::vector<Subscriber*>& out) const;

  // Takes the oldest waiting fetch of `subscriber` out into `call`; false
  // when it has none.
  bool take_oldest(Subscriber& subscriber, ShardCall& call);

  // Takes out, one by one, the fetches: past their deadline at `now_ms`
  // (earliest first); whose answer goes to one connection of `origin_shard`;
  // or all of them. Each goes to `answer(subscriber, call)`.
  template <typename Answer>
  void take_due(std::uint64_t now_ms, Answer&& answer) {
    ShardCall call;
    while (Subscriber* subscriber = take_next_due(now_ms, call)) answer(*subscriber, call);
  }
  template <typename Answer>
  void take_for_connection(unsigned origin_shard, std::uint32_t index, std::uint32_t generation,
                           Answer&& answer) {
    ShardCall call;
    while (Subscriber* subscriber =
               take_one_for_connection(origin_shard, index, generation, call)) {
      answer(*subscriber, call);
    }
  }
  template <typename Answer>
  void take_all(Answer&& answer) {
    ShardCall call;
    while (!parked_.empty()) {
      Subscriber* subscriber = take(parked_.begin()->first, call, true);
      answer(*subscriber, call);
    }
  }

 private:
  using Ticket = std::uint64_t;
  struct Parked {
    Subscriber* subscriber;
    ShardCall call;
  };
  struct Deadline {
    std::uint64_t due_ms;
    Ticket ticket;
    bool operator>(const Deadline& other) const { return due_ms > other.due_ms; }
  };
  // The connection an answer goes to: its shard and slot (the generation is
  // checked on the call).
  static std::uint64_t connection_key(unsigned origin_shard, std::uint32_t index) {
    return std::uint64_t{origin_shard} << 32 | index;
  }

  // Removes the fetch `ticket` from every index (its deadline from the heap
  // later, when `deadline_in_heap`); returns its subscriber.
  Subscriber* take(Ticket ticket, ShardCall& call, bool deadline_in_heap);
  Subscriber* take_next_due(std::uint64_t now_ms, ShardCall& call);
  Subscriber* take_one_for_connection(unsigned origin_shard, std::uint32_t index,
                                      std::uint32_t generation, ShardCall& call);

  Ticket next_ticket_ = 1;
  std::unordered_map<Ticket, Parked> parked_;
  // Each waiting subscriber's fetches, oldest first.
  std::unordered_map<const Subscriber*, std::vector<Ticket>> by_subscriber_;
  // Each subject's waiting subscribers.
  std::unordered_map<const SubjectEntry*, std::vector<Subscriber*>> by_subject_;
  std::unordered_multimap<std::uint64_t, Ticket> by_connection_;
  // A min-heap; a ticket answered before its deadline stays until it comes
  // up, and is skipped then, or until such leftovers are most of the heap.
  std::vector<Deadline> deadlines_;
  std::size_t stale_deadlines_ = 0;
};

}  // namespace gophermq
