#include "gophermq/shard/cross_shard_link.h"

#include <atomic>
#include <utility>

namespace gophermq {

CrossShardLink::CrossShardLink(unsigned shard_id, CrossShardMatrix& matrix, ShardMetrics& metrics,
                               EventLoop* loop)
    : id_(shard_id),
      shard_count_(matrix.shard_count()),
      matrix_(matrix),
      mailbox_(matrix.mailbox(shard_id)),
      metrics_(metrics),
      loop_(loop),
      waiting_(shard_count_),
      published_to_(shard_count_, false),
      to_drain_(matrix.doorbell_words(), 0) {}

void CrossShardLink::send(unsigned to, ShardCall&& call) {
  bytes_sent_ += carried_bytes(call);
  std::deque<ShardCall>& waiting = waiting_[to];
  // Calls already waiting go first: order between two shards is kept.
  if (waiting.empty() && matrix_.queue(id_, to).try_stage(std::move(call))) return;
  metrics_.cross_shard_queue_full.add();
  waiting.push_back(std::move(call));
  ++calls_waiting_;
}

bool CrossShardLink::flush() {
  bool still_waiting = false;
  for (unsigned to = 0; to < shard_count_; ++to) {
    if (to == id_) continue;
    SpscQueue<ShardCall>& queue = matrix_.queue(id_, to);
    std::deque<ShardCall>& waiting = waiting_[to];
    while (!waiting.empty() && queue.try_stage(std::move(waiting.front()))) {
      waiting.pop_front();
      --calls_waiting_;
    }
    still_waiting |= !waiting.empty();
    published_to_[to] = queue.publish();
  }
  for (unsigned to = 0; to < shard_count_; ++to) {
    if (published_to_[to]) ring(to);
  }
  return still_waiting;
}

void CrossShardLink::ring(unsigned shard) {
  // After the queue's release store: the owner's exchange of this word then
  // sees the calls (see cross_shard.h).
  DoorbellWord& word = matrix_.mailbox(shard).doorbell[ShardMailbox::word_of(id_)];
  const std::uint64_t before =
      word.bits.fetch_or(ShardMailbox::bit_of(id_), std::memory_order_acq_rel);
  if (before & ShardMailbox::kAsleep) wake(shard);
}

void CrossShardLink::wake(unsigned shard) {
  if (loop_ != nullptr && loop_->features().msg_ring) {
    loop_->prepare_wake(matrix_.mailbox(shard).ring_fd.load(std::memory_order_relaxed), shard);
  } else {
    matrix_.wake_by_event_fd(shard);
  }
}

void CrossShardLink::collect_doorbell() {
  bytes_taken_seen_ = mailbox_.taken.bytes.load(std::memory_order_relaxed);
  for (unsigned word = 0; word < to_drain_.size(); ++word) {
    // Also clears the sleep bit: we are awake.
    to_drain_[word] |= mailbox_.doorbell[word].bits.exchange(0, std::memory_order_acq_rel) &
                       ~ShardMailbox::kAsleep;
  }
}

bool CrossShardLink::prepare_sleep() {
  bool quiet = true;
  for (unsigned word = 0; word < to_drain_.size(); ++word) {
    const std::uint64_t before =
        mailbox_.doorbell[word].bits.fetch_or(ShardMailbox::kAsleep, std::memory_order_acq_rel);
    to_drain_[word] |= before & ~ShardMailbox::kAsleep;
    quiet &= to_drain_[word] == 0;
  }
  return quiet;
}

}  // namespace gophermq
