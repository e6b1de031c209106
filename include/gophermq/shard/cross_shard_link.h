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
#include <type_traits>
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
  // queue) to `take(ShardCall&&)`, which may return false to take no more
  // from that queue this time; returns how many. Reads only the queues
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
        bool stopped = false;
        const std::size_t got = consume_counted(from, take, kCallsDrainedPerTurn, stopped);
        // A full batch, or one `take` stopped, may have left calls behind:
        // look again next time.
        if (got < kCallsDrainedPerTurn && !stopped) to_drain_[word] &= ~(std::uint64_t{1} << bit);
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
      bool stopped = false;
      if (from != id_) taken += consume_counted(from, take, SIZE_MAX, stopped);
    }
    return taken;
  }

  // Calls waiting for room in full queues, all destinations together.
  std::size_t calls_waiting() const { return calls_waiting_; }
  // Bytes this shard's calls carry (see carried_bytes()) that the other
  // shards had not taken at the last drain(), waiting or queued: what it
  // holds for them. (Read once per drain: the word it reads is written by
  // every other shard.)
  std::uint64_t bytes_in_flight() const { return bytes_sent_ - bytes_taken_seen_; }

  // Rings the sleep bit of this shard's doorbell. True when it may sleep:
  // no producer rang since the last drain (else the next drain takes it).
  bool prepare_sleep();

 private:
  // Up to `most` calls from `from`'s queue to `take`, or until `take` says
  // stop (returns false; `stopped` then says so); tells `from` how many
  // bytes they carried.
  template <typename Take>
  std::size_t consume_counted(unsigned from, Take& take, std::size_t most, bool& stopped) {
    std::uint64_t bytes = 0;
    const std::size_t got = matrix_.queue(from, id_).consume(
        [&](ShardCall&& call) {
          bytes += carried_bytes(call);
          if constexpr (std::is_same_v<std::invoke_result_t<Take&, ShardCall&&>, bool>) {
            stopped = !take(std::move(call));
          } else {
            take(std::move(call));
          }
          return !stopped;
        },
        most);
    if (bytes != 0) {
      matrix_.mailbox(from).taken.bytes.fetch_add(bytes, std::memory_order_relaxed);
    }
    return got;
  }
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
  std::uint64_t bytes_sent_ = 0;        // carried by every call sent, ever
  std::uint64_t bytes_taken_seen_ = 0;  // mailbox_.taken as the last drain read it
};

}  // namespace gophermq
