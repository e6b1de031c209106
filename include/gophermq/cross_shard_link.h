// One shard's end of the cross-shard queues. send() stages a call for its
// owner, or keeps it waiting, in order, while that queue is full
// (back-pressure, never a drop); flush() moves waiting calls in as room
// allows, publishes every queue that got calls and wakes each destination
// that sleeps; drain() takes what the other shards sent. The sleep protocol
// itself is in cross_shard.h.
#pragma once

#include <cstddef>
#include <deque>
#include <vector>

#include "gophermq/cross_shard.h"
#include "gophermq/event_loop.h"
#include "gophermq/metrics.h"
#include "gophermq/shard_call.h"

namespace gophermq {

class CrossShardLink {
 public:
  // Calls taken from each other shard's queue per drain(), so a busy
  // neighbour cannot starve this shard's own connections.
  static constexpr std::size_t kCallsDrainedPerTurn = 256;

  // `loop` wakes other shards by MSG_RING where it can; without one (or
  // without the feature) they are woken through their eventfd.
  CrossShardLink(unsigned shard_id, CrossShardMatrix& matrix, ShardMetrics& metrics,
                 EventLoop* loop);

  void send(unsigned to, ShardCall&& call);
  // Returns whether calls still wait for room.
  bool flush();
  // Hands every call another shard sent (up to kCallsDrainedPerTurn from
  // each) to `take(ShardCall&&)`; returns how many.
  template <typename Take>
  std::size_t drain(Take&& take) {
    std::size_t taken = 0;
    for (unsigned from = 0; from < shard_count_; ++from) {
      if (from != id_) taken += matrix_.queue(from, id_).consume(take, kCallsDrainedPerTurn);
    }
    return taken;
  }

  // Calls waiting for room in full queues, all destinations together.
  std::size_t calls_waiting() const { return calls_waiting_; }

  // The sleeper's half of the protocol: announce the sleep, then look once
  // more; clear it on waking.
  void announce_sleep() { mailbox_.sleeping.exchange(1, std::memory_order_acq_rel); }
  bool has_incoming() const;
  void woke() { mailbox_.sleeping.store(0, std::memory_order_relaxed); }

 private:
  void wake(unsigned shard);

  const unsigned id_;
  const unsigned shard_count_;
  CrossShardMatrix& matrix_;
  ShardMailbox& mailbox_;
  ShardMetrics& metrics_;
  EventLoop* loop_;
  std::vector<std::deque<ShardCall>> waiting_;  // per destination, in order
  std::vector<bool> published_to_;
  std::size_t calls_waiting_ = 0;
};

}  // namespace gophermq
