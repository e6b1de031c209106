#include "gophermq/store/pending_budget.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <stdexcept>
#include <thread>
#include <vector>

#include "gophermq/sanitizers.h"

namespace gophermq {
namespace {

// Whether this process uses membarrier(2)'s expedited barrier (Linux 4.14;
// a seccomp filter may forbid it): registered once, at start. Not under
// ThreadSanitizer, which cannot see that barrier: there both sides of the
// handshake are sequentially consistent operations it understands.
const bool kMembarrier =
    !kThreadSanitizer &&
    syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;

}  // namespace

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
  // First every caching lease is marked, then one barrier serves them all.
  std::vector<Lease*> revoking;
  const std::size_t slots = slots_used_.load(std::memory_order_acquire);
  for (std::size_t slot = 0; slot < slots; ++slot) {
    Lease* lease = leases_[slot].load(std::memory_order_acquire);
    if (lease == nullptr) continue;
    Lease::State caching = Lease::State::caching;
    if (lease->state_.compare_exchange_strong(caching, Lease::State::revoking,
                                              std::memory_order_seq_cst)) {
      revoking.push_back(lease);
    }
  }
  if (revoking.empty()) return false;
  // Every thread of the process passes a full barrier before this returns
  // (one that sleeps passed one when it was switched out). Without it, the
  // compare-and-swap above is the reclaimer's half of the fence.
  if (kMembarrier) syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
  bool any = false;
  for (Lease* lease : revoking) {
    const auto [messages, bytes] = lease->revoke();
    if (messages != 0) messages_.subtract(messages);
    if (bytes != 0) bytes_.subtract(bytes);
    any = any || messages != 0 || bytes != 0;
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

template <typename Change>
bool PendingBudget::Lease::while_announced(Change&& change) {
  if (state_.load(std::memory_order_relaxed) != State::caching) return false;
  if (kMembarrier) {
    // Only the compiler may not reorder the announcement and the check: a
    // reclaimer's membarrier orders the CPU.
    spending_.store(true, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);
  } else {
    spending_.exchange(true, std::memory_order_seq_cst);  // a locked RMW: a full barrier
  }
  const bool changed = state_.load(std::memory_order_seq_cst) == State::caching && change();
  spending_.store(false, std::memory_order_release);
  return changed;
}

bool PendingBudget::Lease::try_reserve(std::uint64_t count, std::uint64_t bytes) {
  const bool spent = while_announced([&] {
    const std::uint64_t messages = messages_.load(std::memory_order_relaxed);
    const std::uint64_t payload = bytes_.load(std::memory_order_relaxed);
    if (messages < count || payload < bytes) return false;
    messages_.store(messages - count, std::memory_order_relaxed);
    bytes_.store(payload - bytes, std::memory_order_relaxed);
    return true;
  });
  return spent || reserve_from_budget(count, bytes);
}

void PendingBudget::Lease::release(std::uint64_t count, std::uint64_t bytes) {
  const bool kept = while_announced([&] {
    const std::uint64_t messages = messages_.load(std::memory_order_relaxed) + count;
    const std::uint64_t payload = bytes_.load(std::memory_order_relaxed) + bytes;
    if (messages > 2 * kChunkMessages || payload > 2 * kChunkBytes) return false;
    messages_.store(messages, std::memory_order_relaxed);
    bytes_.store(payload, std::memory_order_relaxed);
    return true;
  });
  if (!kept) budget_.release(count, bytes);
}

bool PendingBudget::Lease::reserve_from_budget(std::uint64_t count, std::uint64_t bytes) {
  // What is left goes back first, so no lease ever sits on more than a chunk.
  while_announced([&] {
    budget_.messages_.subtract(messages_.load(std::memory_order_relaxed));
    budget_.bytes_.subtract(bytes_.load(std::memory_order_relaxed));
    messages_.store(0, std::memory_order_relaxed);
    bytes_.store(0, std::memory_order_relaxed);
    return true;
  });
  for (int attempt = 0; attempt < 2; ++attempt) {
    // The messages first, then the bytes.
    if (const std::optional<std::uint64_t> messages =
            take(budget_.messages_, count, kChunkMessages)) {
      if (const std::optional<std::uint64_t> payload = take(budget_.bytes_, bytes, kChunkBytes)) {
        keep(*messages, *payload);
        return true;
      }
      budget_.messages_.subtract(count + *messages);
    }
    // No room: unless other leases held some back, this is the limit.
    if (!budget_.reclaim_leases()) return false;
  }
  return false;
}

std::optional<std::uint64_t> PendingBudget::Lease::take(SharedLimit& limit, std::uint64_t amount,
                                                        std::uint64_t chunk) const {
  if (amount > limit.max()) return std::nullopt;  // never fits (and amount + chunk could wrap)
  // Far from the limit (room for a chunk per lease left over): a chunk more
  // than needed. Near it: exactly what is needed, so no lease sits on much
  // allowance another shard could be refused for.
  const std::uint64_t leases = budget_.lease_count_.load(std::memory_order_relaxed);
  if (limit.try_add_leaving(amount + chunk, chunk * leases)) return chunk;
  if (limit.try_add(amount)) return 0;
  return std::nullopt;
}

void PendingBudget::Lease::keep(std::uint64_t messages, std::uint64_t bytes) {
  if (messages == 0 && bytes == 0) return;
  const bool kept = while_announced([&] {
    messages_.store(messages_.load(std::memory_order_relaxed) + messages,
                    std::memory_order_relaxed);
    bytes_.store(bytes_.load(std::memory_order_relaxed) + bytes, std::memory_order_relaxed);
    return true;
  });
  if (kept) return;
  if (state_.load(std::memory_order_acquire) == State::direct) {
    // Nobody else touches a lease that does not cache: it caches again.
    messages_.store(messages, std::memory_order_relaxed);
    bytes_.store(bytes, std::memory_order_relaxed);
    state_.store(State::caching, std::memory_order_release);
    return;
  }
  // Being revoked: the chunk goes back with the rest.
  budget_.messages_.subtract(messages);
  budget_.bytes_.subtract(bytes);
}

std::pair<std::uint64_t, std::uint64_t> PendingBudget::Lease::revoke() {
  // Past the barrier, a spend the owner announced is visible here; one it
  // announces later sees the lease revoking. Wait for the one in progress.
  while (spending_.load(std::memory_order_seq_cst)) std::this_thread::yield();
  const std::uint64_t messages = messages_.exchange(0, std::memory_order_relaxed);
  const std::uint64_t bytes = bytes_.exchange(0, std::memory_order_relaxed);
  state_.store(State::direct, std::memory_order_release);
  return {messages, bytes};
}

}  // namespace gophermq
