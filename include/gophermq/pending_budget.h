// The broker-wide count of stored messages against max-pending: the one piece
// of state every shard shares (a single atomic, touched once per publish and
// once per non-empty fetch).
#pragma once

#include <atomic>
#include <cstdint>

namespace gophermq {

class PendingBudget {
 public:
  explicit PendingBudget(std::uint64_t max_pending) : max_pending_(max_pending) {}

  // Reserves room for `count` more stored messages (one per subscriber a
  // publish fans out to). A compare-exchange rather than add-then-undo: two
  // publishes racing near the limit never both fail when one of them fits.
  bool try_reserve(std::uint64_t count) {
    std::uint64_t current = pending_.load(std::memory_order_relaxed);
    do {
      if (count > max_pending_ || current > max_pending_ - count) return false;
    } while (!pending_.compare_exchange_weak(current, current + count, std::memory_order_relaxed));
    return true;
  }
  // Gives back what a fetch drained.
  void release(std::uint64_t count) { pending_.fetch_sub(count, std::memory_order_relaxed); }

  std::uint64_t pending() const { return pending_.load(std::memory_order_relaxed); }
  std::uint64_t max_pending() const { return max_pending_; }

 private:
  alignas(64) std::atomic<std::uint64_t> pending_{0};  // own cache line: every shard writes it
  const std::uint64_t max_pending_;
};

}  // namespace gophermq
