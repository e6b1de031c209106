// One shard's end of the cross-shard queues. send() stages a call for its
// owner, or keeps it waiting, in order, while that queue is full
// (back-pressure, never a drop); flush() moves waiting calls in as room
// allows, publishes every queue that got calls, rings their owners'
// doorbells and wakes those that sleep; drain() takes what the other shards
// sent, from the queues the doorbell names. The protocol is in
// cross_shard.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "gophermq/io/event_loop.h"
#include "gophermq/metrics/metrics.h"
#include "gophermq/shard/cross_shard.h"
#include "gophermq/shard/shard_call.h"

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
  // Hands the calls other shards sent (up to kCallsDrainedPerTurn from each
  // queue) to `take(ShardCall&&)`; returns how many. Reads only the queues
  // the doorbell named, or that were not emptied last time.
  template <typename Take>
  std::size_t drain(Take&& take) {
    collect_doorbell();
    std::size_t taken = 0;
    for (unsigned word = 0; word < to_drain_.size(); ++word) {
      std::uint64_t bits = to_drain_[word];
      while (bits != 0) {
        const unsigned bit = static_cast<unsigned>(__builtin_ctzll(bits));
        bits &= bits - 1;
        const unsigned from = word * ShardMailbox::kShardsPerWord + bit;
        const std::size_t got = matrix_.queue(from, id_).consume(take, kCallsDrainedPerTurn);
        // A full batch may have left calls behind: look again next time.
        if (got < kCallsDrainedPerTurn) to_drain_[word] &= ~(std::uint64_t{1} << bit);
        taken += got;
      }
    }
    return taken;
  }
  // Every queue, whatever the doorbell says: the last drain at shutdown.
  template <typename Take>
  std::size_t drain_all(Take&& take) {
    std::size_t taken = 0;
    for (unsigned from = 0; from < shard_count_; ++from) {
      if (from != id_) taken += matrix_.queue(from, id_).consume(take);
    }
    return taken;
  }

  // Calls waiting for room in full queues, all destinations together.
  std::size_t calls_waiting() const { return calls_waiting_; }

  // Rings the sleep bit of this shard's doorbell. True when it may sleep:
  // no producer rang since the last drain (else the next drain takes it).
  bool prepare_sleep();

 private:
  void collect_doorbell();
  void ring(unsigned shard);
  void wake(unsigned shard);

  const unsigned id_;
  const unsigned shard_count_;
  CrossShardMatrix& matrix_;
  ShardMailbox& mailbox_;
  ShardMetrics& metrics_;
  EventLoop* loop_;
  std::vector<std::deque<ShardCall>> waiting_;  // per destination, in order
  std::vector<bool> published_to_;
  std::vector<std::uint64_t> to_drain_;  // queues to read, by doorbell word
  std::size_t calls_waiting_ = 0;
};

}  // namespace gophermq
