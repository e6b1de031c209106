// The cross-shard channels: one bounded SPSC queue per ordered pair of
// shards, and for each shard a mailbox: a doorbell saying which queues have
// calls for it, and how to wake it.
//
// The doorbell: a word per 63 shards; shard i's bit is bit i % 63 of word
// i / 63, and bit 63 of every word says the owner sleeps. A producer
// publishes its queue, then sets its bit with a fetch_or; the consumer takes
// every word with one exchange per turn, so it reads only the queues that
// have calls instead of looking at all of them. Before sleeping, the
// consumer sets the sleep bit in each word with a fetch_or: if the old value
// had a producer's bit, there is work and it does not sleep; otherwise any
// producer's later fetch_or sees the sleep bit and wakes it. All of this is
// RMWs on one word, so one of the two always sees the other (no fences,
// which ThreadSanitizer cannot check), and a published call never waits on
// a sleeper.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "gophermq/shard/shard_call.h"
#include "gophermq/shard/spsc_queue.h"

namespace gophermq {

struct alignas(64) DoorbellWord {
  std::atomic<std::uint64_t> bits{0};
};

struct alignas(64) TakenBytes {
  std::atomic<std::uint64_t> bytes{0};
};

struct ShardMailbox {
  static constexpr unsigned kShardsPerWord = 63;
  static constexpr std::uint64_t kAsleep = std::uint64_t{1} << 63;
  static unsigned word_of(unsigned shard) { return shard / kShardsPerWord; }
  static std::uint64_t bit_of(unsigned shard) { return std::uint64_t{1} << shard % kShardsPerWord; }

  std::unique_ptr<DoorbellWord[]> doorbell;  // (shards + 62) / 63 words
  // Bytes of this shard's calls the other shards have taken (see
  // CrossShardLink::bytes_in_flight()); each adds once per drained batch.
  TakenBytes taken;
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
  unsigned doorbell_words() const {
    return (shards_ + ShardMailbox::kShardsPerWord - 1) / ShardMailbox::kShardsPerWord;
  }
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
