// A count that every shard may add to, against a fixed bound: taking room
// either fits whole or takes nothing. Kept on its own cache line, since
// every shard writes it.
#pragma once

#include <atomic>
#include <cstdint>

namespace gophermq {

class SharedLimit {
 public:
  explicit SharedLimit(std::uint64_t max) : max_(max) {}
  SharedLimit(const SharedLimit&) = delete;
  SharedLimit& operator=(const SharedLimit&) = delete;

  // Adds `amount` unless the count would pass the bound. A compare-exchange
  // rather than add-then-undo: two adds racing near the bound never both
  // fail when one of them fits.
  bool try_add(std::uint64_t amount) { return amount <= max_ && try_add_below(amount, max_); }
  // Adds `amount` if that leaves at least `reserve` of the bound unclaimed.
  bool try_add_leaving(std::uint64_t amount, std::uint64_t reserve) {
    if (amount > max_ || reserve > max_ - amount) return false;
    return try_add_below(amount, max_ - reserve);
  }
  void subtract(std::uint64_t amount) { used_.fetch_sub(amount, std::memory_order_relaxed); }
  std::uint64_t value() const { return used_.load(std::memory_order_relaxed); }
  std::uint64_t max() const { return max_; }

 private:
  // Adds `amount` (at most `ceiling`) unless the total would pass `ceiling`.
  bool try_add_below(std::uint64_t amount, std::uint64_t ceiling) {
    std::uint64_t current = used_.load(std::memory_order_relaxed);
    do {
      if (current > ceiling - amount) return false;
    } while (!used_.compare_exchange_weak(current, current + amount, std::memory_order_relaxed));
    return true;
  }

  alignas(64) std::atomic<std::uint64_t> used_{0};
  const std::uint64_t max_;
};

}  // namespace gophermq
