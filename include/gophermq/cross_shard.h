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
  CrossShardMatrix(unsigned shards, std::size_t queue_capacity);
  ~CrossShardMatrix();

  unsigned shard_count() const { return shards_; }
  SpscQueue<ShardCall>& queue(unsigned from, unsigned to) { return *queues_[from * shards_ + to]; }
  ShardMailbox& mailbox(unsigned shard) { return mailboxes_[shard]; }

  // Wakes a shard through its eventfd (from any thread: a syscall, so only
  // for the fallback path and for stopping).
  void wake_by_event_fd(unsigned shard);

 private:
  unsigned shards_;
  std::vector<std::unique_ptr<SpscQueue<ShardCall>>> queues_;  // null on the diagonal
  std::unique_ptr<ShardMailbox[]> mailboxes_;
};

}  // namespace gophermq
