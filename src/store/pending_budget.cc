#include "gophermq/store/pending_budget.h"

#include <stdexcept>

namespace gophermq {

bool PendingBudget::try_reserve(std::uint64_t count, std::uint64_t bytes) {
  if (!messages_.try_add(count)) return false;
  if (bytes_.try_add(bytes)) return true;
  messages_.subtract(count);
  return false;
}

void PendingBudget::release(std::uint64_t count, std::uint64_t bytes) {
  messages_.subtract(count);
  bytes_.subtract(bytes);
}

std::uint64_t PendingBudget::stored(const SharedLimit& limit,
                                    std::atomic<std::uint64_t> Lease::*allowance) const {
  std::uint64_t unspent = 0;
  const std::size_t slots = slots_used_.load(std::memory_order_acquire);
  for (std::size_t slot = 0; slot < slots; ++slot) {
    if (const Lease* lease = leases_[slot].load(std::memory_order_acquire)) {
      unspent += (lease->*allowance).load(std::memory_order_relaxed);
    }
  }
  const std::uint64_t used = limit.value();
  return used > unspent ? used - unspent : 0;  // the reads race; never negative
}

std::uint64_t PendingBudget::pending() const { return stored(messages_, &Lease::messages_); }

std::uint64_t PendingBudget::pending_bytes() const { return stored(bytes_, &Lease::bytes_); }

bool PendingBudget::reclaim_leases() {
  bool any = false;
  const std::size_t slots = slots_used_.load(std::memory_order_acquire);
  for (std::size_t slot = 0; slot < slots; ++slot) {
    Lease* lease = leases_[slot].load(std::memory_order_acquire);
    if (lease == nullptr) continue;
    // An exchange, so the owner's concurrent spend (a compare-exchange) sees
    // the allowance gone instead of spending it twice.
    if (const std::uint64_t messages = lease->messages_.exchange(0, std::memory_order_relaxed)) {
      messages_.subtract(messages);
      any = true;
    }
    if (const std::uint64_t bytes = lease->bytes_.exchange(0, std::memory_order_relaxed)) {
      bytes_.subtract(bytes);
      any = true;
    }
  }
  return any;
}

PendingBudget::Lease::Lease(PendingBudget& budget) : budget_(budget) {
  for (slot_ = 0; slot_ < kMaxLeases; ++slot_) {
    Lease* empty = nullptr;
    if (budget_.leases_[slot_].compare_exchange_strong(empty, this, std::memory_order_acq_rel)) {
      budget_.lease_count_.fetch_add(1, std::memory_order_relaxed);
      std::size_t used = budget_.slots_used_.load(std::memory_order_relaxed);
      while (used <= slot_ && !budget_.slots_used_.compare_exchange_weak(
                                  used, slot_ + 1, std::memory_order_release)) {
      }
      return;
    }
  }
  throw std::length_error("too many leases on one pending budget");
}

PendingBudget::Lease::~Lease() {
  budget_.leases_[slot_].store(nullptr, std::memory_order_release);
  budget_.lease_count_.fetch_sub(1, std::memory_order_relaxed);
  budget_.messages_.subtract(messages_.exchange(0));
  budget_.bytes_.subtract(bytes_.exchange(0));
}

bool PendingBudget::Lease::spend(std::atomic<std::uint64_t>& allowance, std::uint64_t amount) {
  std::uint64_t current = allowance.load(std::memory_order_relaxed);
  do {
    if (current < amount) return false;
  } while (!allowance.compare_exchange_weak(current, current - amount, std::memory_order_relaxed));
  return true;
}

bool PendingBudget::Lease::refill(SharedLimit& limit, std::atomic<std::uint64_t>& allowance,
                                  std::uint64_t amount, std::uint64_t chunk) {
  if (amount > limit.max()) return false;  // never fits (and amount + chunk could wrap)
  // Far from the limit (room for a chunk per lease left over): take a chunk
  // more than needed. Near it: exactly what is needed, so no lease sits on
  // much allowance another shard could be refused for.
  const std::uint64_t leases = budget_.lease_count_.load(std::memory_order_relaxed);
  if (limit.try_add_leaving(amount + chunk, chunk * leases)) {
    allowance.fetch_add(chunk, std::memory_order_relaxed);
    return true;
  }
  return limit.try_add(amount);
}

bool PendingBudget::Lease::try_reserve(std::uint64_t count, std::uint64_t bytes) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool have_messages = spend(messages_, count);
    const bool have_bytes = have_messages && spend(bytes_, bytes);
    if (have_bytes) return true;
    if (have_messages) messages_.fetch_add(count, std::memory_order_relaxed);
    // Short locally: from the budget, the messages first.
    if (refill(budget_.messages_, messages_, count, kChunkMessages)) {
      if (refill(budget_.bytes_, bytes_, bytes, kChunkBytes)) return true;
      budget_.messages_.subtract(count);
    }
    // No room: unless other leases held some back, this is the limit.
    if (!budget_.reclaim_leases()) return false;
  }
  return false;
}

}  // namespace gophermq
