#include "gophermq/cross_shard_link.h"

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
      published_to_(shard_count_, false) {}

void CrossShardLink::send(unsigned to, ShardCall&& call) {
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
    if (published_to_[to]) wake(to);
  }
  return still_waiting;
}

void CrossShardLink::wake(unsigned shard) {
  ShardMailbox& mailbox = matrix_.mailbox(shard);
  // Pairs with the sleeper's exchange (see cross_shard.h).
  if (mailbox.sleeping.fetch_add(0, std::memory_order_acq_rel) == 0) return;
  if (loop_ != nullptr && loop_->features().msg_ring) {
    loop_->prepare_wake(mailbox.ring_fd.load(std::memory_order_relaxed), shard);
  } else {
    matrix_.wake_by_event_fd(shard);
  }
}

bool CrossShardLink::has_incoming() const {
  for (unsigned from = 0; from < shard_count_; ++from) {
    if (from != id_ && matrix_.queue(from, id_).has_published_items()) return true;
  }
  return false;
}

}  // namespace gophermq
