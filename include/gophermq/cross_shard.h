// The cross-shard channels: one bounded SPSC queue per ordered pair of
// shards, and for each shard a mailbox saying how to wake it.
//
// Waking without busy polling: a shard about to sleep sets `sleeping`, then
// looks at its queues once more; a producer publishes, then looks at
// `sleeping`. With a full fence on both sides at least one of them sees the
// other (the Dekker pattern), so a published call never waits on a sleeper.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "gophermq/shard_call.h"
#include "gophermq/spsc_queue.h"

namespace gophermq {

struct ShardMailbox {
  alignas(64) std::atomic<bool> sleeping{false};
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
