// The cross-shard channels: one bounded SPSC queue per ordered pair of
// shards, and for each shard a mailbox saying how to wake it.
//
// Waking without busy polling: a shard about to sleep sets `sleeping` with an
// exchange, then looks at its queues once more; a producer publishes, then
// reads `sleeping` with a read-modify-write (fetch_add of 0). Both are
// acq_rel RMWs of one atomic, so one of them comes first in its modification
// order: either the producer reads 1 and wakes the sleeper, or the sleeper's
// exchange reads from the producer's RMW and so sees what it published. A
// published call never waits on a sleeper (the Dekker pattern, without
// fences, which ThreadSanitizer cannot check).
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "gophermq/shard_call.h"
#include "gophermq/spsc_queue.h"

namespace gophermq {

struct ShardMailbox {
  alignas(64) std::atomic<unsigned> sleeping{0};
  std::atomic<int> ring_fd{-1};  // target of MSG_RING wake-ups
  int event_fd = -1;             // wake-ups without MSG_RING, and the stop signal
};

class CrossShardMatrix {
 public:
  // Every shard has this many slots for the calls it sends, split evenly
  // between its queues to the other shards: memory grows with the shard
  // count, not with its square (n - 1 queues of 128-byte calls per shard:
  // at most 1 MiB each, however many shards).
  static constexpr std::size_t kOutgoingSlotsPerShard = 8192;
  // Each queue holds at least this many calls (fewer would make every burst
  // wait for room) and at most this many (more buys no throughput).
  static constexpr std::size_t kMinQueueCapacity = 64;
  static constexpr std::size_t kMaxQueueCapacity = 4096;
  // The capacity of each queue for `shards` shards: a power of two.
  static std::size_t queue_capacity_for(unsigned shards);

  // `queue_capacity` 0 picks queue_capacity_for(shards); tests pass a small
  // one to reach back-pressure quickly.
  explicit CrossShardMatrix(unsigned shards, std::size_t queue_capacity = 0);
  ~CrossShardMatrix();

  unsigned shard_count() const { return shards_; }
  std::size_t queue_capacity() const { return queue_capacity_; }
  SpscQueue<ShardCall>& queue(unsigned from, unsigned to) { return *queues_[from * shards_ + to]; }
  ShardMailbox& mailbox(unsigned shard) { return mailboxes_[shard]; }

  // Wakes a shard through its eventfd (from any thread: a syscall, so only
  // for the fallback path and for stopping).
  void wake_by_event_fd(unsigned shard);

 private:
  unsigned shards_;
  std::size_t queue_capacity_;
  // Every queue's slots, in one anonymous mapping: pages are faulted in only
  // where calls were staged, so idle RSS stays O(shards).
  void* slot_memory_ = nullptr;
  std::size_t slot_memory_bytes_ = 0;
  std::vector<std::unique_ptr<SpscQueue<ShardCall>>> queues_;  // null on the diagonal
  std::unique_ptr<ShardMailbox[]> mailboxes_;
};

}  // namespace gophermq
