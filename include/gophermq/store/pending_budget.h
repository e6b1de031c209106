// The broker-wide budget of stored messages: their count against
// broker.max-pending, and their payload bytes against broker.max-pending-bytes
// (so a flood of large messages cannot exhaust memory). The one piece of
// state every shard shares.
//
// A shard does not touch it per publish: its Lease takes allowance from the
// budget in chunks and spends it with plain loads and stores on a cache line
// only that shard writes, no locked instruction. Near the limit the chunks
// shrink to exactly what a publish needs, and a publish that finds no room
// takes back every other lease's unspent allowance before it is refused:
// the 429 point stays exact.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>

#include "gophermq/store/shared_limit.h"

namespace gophermq {

class PendingBudget {
 public:
  class Lease;

  explicit PendingBudget(std::uint64_t max_pending, std::uint64_t max_pending_bytes =
                                                        std::numeric_limits<std::uint64_t>::max())
      : messages_(max_pending), bytes_(max_pending_bytes) {}
  PendingBudget(const PendingBudget&) = delete;
  PendingBudget& operator=(const PendingBudget&) = delete;

  // Reserves room for `count` more stored messages (one per subscriber a
  // publish fans out to) holding `bytes` of payload in all, straight from
  // the shared counters. Nothing is reserved when either limit would be
  // passed.
  bool try_reserve(std::uint64_t count, std::uint64_t bytes = 0);
  // Gives back what a fetch drained.
  void release(std::uint64_t count, std::uint64_t bytes = 0);

  // Stored now: what was reserved, less the leases' unspent allowance.
  std::uint64_t pending() const;
  std::uint64_t max_pending() const { return messages_.max(); }
  std::uint64_t pending_bytes() const;
  std::uint64_t max_pending_bytes() const { return bytes_.max(); }

 private:
  friend class Lease;
  // At most this many leases at once (one per shard; a shard count is capped
  // far below it by CPU_SETSIZE).
  static constexpr std::size_t kMaxLeases = 4096;

  // Takes back every lease's unspent allowance; true when there was any.
  bool reclaim_leases();
  // What `limit` counts, less the leases' unspent `allowance` of it.
  std::uint64_t stored(const SharedLimit& limit,
                       std::atomic<std::uint64_t> Lease::*allowance) const;

  SharedLimit messages_;
  SharedLimit bytes_;
  std::array<std::atomic<Lease*>, kMaxLeases> leases_{};
  // Slots a lease has ever held lie below this (a lease takes the first free
  // one): a walk over the leases, as every refusal makes, stops here instead
  // of reading all kMaxLeases.
  std::atomic<std::size_t> slots_used_{0};
  std::atomic<std::uint64_t> lease_count_{0};
};

// One shard's share of the budget. Only its shard reserves through it;
// other shards may take back its unspent allowance at any time.
//
// How a spend stays exact without a locked instruction: the owner announces
// it (spending_) and then checks that the lease still caches; a shard taking
// the allowance back first marks the lease revoking, then makes every thread
// of the process pass a full memory barrier (membarrier(2)), and then waits
// until no spend is announced. Either the owner's announcement is visible to
// it, or the owner sees the lease revoking and does not spend: the classic
// two-flag handshake, with the owner's half of the fence paid by the rare
// side. Without membarrier (an old kernel, a seccomp filter, or
// ThreadSanitizer, which cannot see it) both sides use sequentially
// consistent operations, the announcement a locked exchange.
class PendingBudget::Lease {
 public:
  // Allowance taken from the budget at once, while the budget has room for
  // many such chunks: one shared RMW per this many messages (or bytes).
  static constexpr std::uint64_t kChunkMessages = 1024;
  static constexpr std::uint64_t kChunkBytes = 1 << 20;

  explicit Lease(PendingBudget& budget);
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  // Gives the unspent allowance back. A lease outlives the threads that use
  // the budget (a shard's store lives as long as the broker).
  ~Lease();

  bool try_reserve(std::uint64_t count, std::uint64_t bytes);
  // What a fetch drained goes into the allowance while the lease caches (up
  // to two chunks), so a fetch writes no shared line either.
  void release(std::uint64_t count, std::uint64_t bytes);

 private:
  friend class PendingBudget;

  enum class State : std::uint8_t {
    caching,   // the owner spends its allowance with plain stores
    revoking,  // another shard is taking the allowance back
    direct,    // no allowance: the owner reserves from the budget itself
  };

  // The owner's announced spend: applies `change` to the allowance when the
  // lease still caches, and says whether it did.
  template <typename Change>
  bool while_announced(Change&& change);
  // Not enough allowance: what is left goes back, and the reservation, with
  // a chunk more far from the limit, comes from the budget.
  bool reserve_from_budget(std::uint64_t count, std::uint64_t bytes);
  // Takes `amount` from `limit`, and a chunk more far from it; the chunk
  // taken (0 near the limit), or nullopt when even `amount` does not fit.
  std::optional<std::uint64_t> take(SharedLimit& limit, std::uint64_t amount,
                                    std::uint64_t chunk) const;
  // The chunks take() gave beyond the reservation, as allowance.
  void keep(std::uint64_t messages, std::uint64_t bytes);
  // Another shard, in reclaim_leases(): the unspent allowance, taken.
  std::pair<std::uint64_t, std::uint64_t> revoke();

  PendingBudget& budget_;
  std::size_t slot_ = 0;
  // Unspent allowance, and the handshake, on this shard's own cache line.
  alignas(64) std::atomic<std::uint64_t> messages_{0};
  std::atomic<std::uint64_t> bytes_{0};
  std::atomic<bool> spending_{false};
  std::atomic<State> state_{State::direct};
};

}  // namespace gophermq
