// The broker-wide budget of stored messages: their count against
// broker.max-pending, and their payload bytes against broker.max-pending-bytes
// (so a flood of large messages cannot exhaust memory). The one piece of
// state every shard shares: touched once per publish and once per non-empty
// fetch.
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>

namespace gophermq {

class PendingBudget {
 public:
  explicit PendingBudget(std::uint64_t max_pending, std::uint64_t max_pending_bytes =
                                                        std::numeric_limits<std::uint64_t>::max())
      : messages_(max_pending), bytes_(max_pending_bytes) {}

  // Reserves room for `count` more stored messages (one per subscriber a
  // publish fans out to) holding `bytes` of payload in all. Nothing is
  // reserved when either limit would be passed.
  bool try_reserve(std::uint64_t count, std::uint64_t bytes = 0) {
    if (!messages_.try_add(count)) return false;
    if (bytes_.try_add(bytes)) return true;
    messages_.subtract(count);
    return false;
  }
  // Gives back what a fetch drained.
  void release(std::uint64_t count, std::uint64_t bytes = 0) {
    messages_.subtract(count);
    bytes_.subtract(bytes);
  }

  std::uint64_t pending() const { return messages_.value(); }
  std::uint64_t max_pending() const { return messages_.max; }
  std::uint64_t pending_bytes() const { return bytes_.value(); }
  std::uint64_t max_pending_bytes() const { return bytes_.max; }

 private:
  struct Limit {
    explicit Limit(std::uint64_t limit) : max(limit) {}
    // A compare-exchange rather than add-then-undo: two publishes racing
    // near the limit never both fail when one of them fits.
    bool try_add(std::uint64_t amount) {
      std::uint64_t current = used.load(std::memory_order_relaxed);
      do {
        if (amount > max || current > max - amount) return false;
      } while (!used.compare_exchange_weak(current, current + amount, std::memory_order_relaxed));
      return true;
    }
    void subtract(std::uint64_t amount) { used.fetch_sub(amount, std::memory_order_relaxed); }
    std::uint64_t value() const { return used.load(std::memory_order_relaxed); }

    alignas(64) std::atomic<std::uint64_t> used{0};  // own cache line: every shard writes it
    const std::uint64_t max;
  };
  Limit messages_;
  Limit bytes_;
};

}  // namespace gophermq
