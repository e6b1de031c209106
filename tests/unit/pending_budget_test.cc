// PendingBudget::Lease: a shard's share of the broker-wide budget, spent
// without touching the shared counters, and given up when another shard
// would otherwise be refused.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "gophermq/store/pending_budget.h"

namespace gophermq {
namespace {

using Lease = PendingBudget::Lease;

TEST(PendingBudgetLease, ReservesExactlyUpToMaxAcrossLeases) {
  PendingBudget budget(10);
  Lease a(budget), b(budget);
  EXPECT_TRUE(a.try_reserve(4, 0));
  EXPECT_TRUE(b.try_reserve(6, 0));
  EXPECT_EQ(budget.pending(), 10u);
  EXPECT_FALSE(a.try_reserve(1, 0));
  EXPECT_FALSE(b.try_reserve(1, 0));
  a.release(3, 0);
  EXPECT_FALSE(b.try_reserve(4, 0));
  EXPECT_TRUE(b.try_reserve(3, 0));
  EXPECT_EQ(budget.pending(), 10u);
}

TEST(PendingBudgetLease, FarFromTheLimitALeaseTakesAChunkAndSpendsItLocally) {
  PendingBudget budget(1'000'000);
  Lease lease(budget);
  ASSERT_TRUE(lease.try_reserve(1, 16));
  // One message is pending; the chunk behind it is allowance, not pending.
  EXPECT_EQ(budget.pending(), 1u);
  EXPECT_EQ(budget.pending_bytes(), 16u);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(lease.try_reserve(1, 16));
  EXPECT_EQ(budget.pending(), 101u);
  EXPECT_EQ(budget.pending_bytes(), 101u * 16);
}

TEST(PendingBudgetLease, AnotherLeasesUnspentAllowanceIsTakenBackBeforeARefusal) {
  // The first lease takes a chunk far from the limit; the second then needs
  // everything that is left, which is only there once that chunk comes back.
  constexpr std::uint64_t kMax = 1'000'000;
  PendingBudget budget(kMax);
  Lease first(budget), second(budget);
  ASSERT_TRUE(first.try_reserve(1, 0));
  EXPECT_TRUE(second.try_reserve(kMax - 1, 0));
  EXPECT_EQ(budget.pending(), kMax);
  EXPECT_FALSE(first.try_reserve(1, 0));
  EXPECT_FALSE(second.try_reserve(1, 0));
}

TEST(PendingBudgetLease, ARevokedLeaseCachesAgainOnceThereIsRoom) {
  constexpr std::uint64_t kMax = 1'000'000;
  PendingBudget budget(kMax);
  Lease first(budget), second(budget);
  ASSERT_TRUE(first.try_reserve(1, 0));          // caches a chunk
  ASSERT_TRUE(second.try_reserve(kMax - 1, 0));  // revokes it
  EXPECT_FALSE(first.try_reserve(1, 0));
  second.release(kMax - 1, 0);
  // Far from the limit again: the first takes a chunk, spends from it, and
  // only what it stored counts.
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(first.try_reserve(1, 0));
  EXPECT_EQ(budget.pending(), 101u);
  // And it gives that chunk up again for the other.
  EXPECT_TRUE(second.try_reserve(kMax - 101, 0));
  EXPECT_FALSE(first.try_reserve(1, 0));
  EXPECT_EQ(budget.pending(), kMax);
}

TEST(PendingBudgetLease, ALeaseBehindAnEmptySlotIsStillReclaimed) {
  // Refusals walk only the slots leases have held, and leases come and go:
  // with the first slot empty again, the lease in the third must be reached
  // (two leases live, but three slots used).
  constexpr std::uint64_t kMax = 1'000'000;
  PendingBudget budget(kMax);
  auto gone = std::make_unique<Lease>(budget);
  Lease kept(budget);
  Lease last(budget);
  gone.reset();
  ASSERT_TRUE(last.try_reserve(1, 0));  // and a chunk it does not spend
  EXPECT_TRUE(kept.try_reserve(kMax - 1, 0));
  EXPECT_EQ(budget.pending(), kMax);
  EXPECT_FALSE(last.try_reserve(1, 0));
}

TEST(PendingBudgetLease, TheByteLimitIsExactToo) {
  PendingBudget budget(1'000'000, 64 << 20);
  Lease first(budget), second(budget);
  ASSERT_TRUE(first.try_reserve(1, 100));
  EXPECT_TRUE(second.try_reserve(1, (64 << 20) - 100));
  EXPECT_FALSE(first.try_reserve(1, 1));
  EXPECT_EQ(budget.pending_bytes(), std::uint64_t{64} << 20);
  // A refused reservation holds nothing back: the message count is intact.
  EXPECT_EQ(budget.pending(), 2u);
}

TEST(PendingBudgetLease, AHugeCountNeverFitsAndWrapsNothing) {
  PendingBudget budget(10, 1000);
  Lease lease(budget);
  EXPECT_FALSE(lease.try_reserve(UINT64_MAX, 0));
  EXPECT_FALSE(lease.try_reserve(1, UINT64_MAX));
  EXPECT_EQ(budget.pending(), 0u);
  EXPECT_TRUE(lease.try_reserve(10, 0));
}

TEST(PendingBudgetLease, ADestroyedLeaseGivesItsAllowanceBack) {
  PendingBudget budget(1'000'000);
  {
    Lease lease(budget);
    ASSERT_TRUE(lease.try_reserve(1, 0));
  }
  // Its one message is still stored (a fetch would release it); its chunk
  // came back, so someone else can have all the rest.
  Lease other(budget);
  EXPECT_TRUE(other.try_reserve(1'000'000 - 1, 0));
  EXPECT_FALSE(other.try_reserve(1, 0));
}

// Four threads, each with its own lease as each shard has, reserve 1 to 5
// messages at a time against `max` and release them again, each holding at
// most `most_held` reservations and releasing one every `release_every`
// iterations besides: what they hold at once never passes `max`, and all of
// it comes back.
void ExpectLeasesNeverHoldMoreThanMax(std::uint64_t max, std::size_t most_held, int release_every,
                                      int iterations) {
  constexpr int kThreads = 4;
  PendingBudget budget(max);
  std::atomic<std::uint64_t> held{0};
  std::atomic<std::uint64_t> max_held{0};
  std::atomic<std::uint64_t> successes{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Lease lease(budget);
      std::vector<std::uint64_t> mine;
      for (int i = 0; i < iterations; ++i) {
        const std::uint64_t count = 1 + static_cast<std::uint64_t>((i + t) % 5);
        if (lease.try_reserve(count, count * 10)) {
          successes.fetch_add(1, std::memory_order_relaxed);
          const std::uint64_t now = held.fetch_add(count) + count;
          std::uint64_t seen = max_held.load();
          while (now > seen && !max_held.compare_exchange_weak(seen, now)) {
          }
          mine.push_back(count);
        }
        if (mine.size() > most_held || (i % release_every == 0 && !mine.empty())) {
          held.fetch_sub(mine.back());
          lease.release(mine.back(), mine.back() * 10);
          mine.pop_back();
        }
      }
      for (std::uint64_t count : mine) {
        held.fetch_sub(count);
        lease.release(count, count * 10);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_LE(max_held.load(), max);
  EXPECT_GT(successes.load(), 0u);
  EXPECT_EQ(budget.pending(), 0u);
  EXPECT_EQ(budget.pending_bytes(), 0u);
}

TEST(PendingBudgetLease, ConcurrentLeasesNeverHoldMoreThanMax) {
  // Near the limit all the time: no lease caches.
  ExpectLeasesNeverHoldMoreThanMax(64, 3, 7, 100'000);
}

TEST(PendingBudgetLease, ConcurrentLeasesRevokedWhileTheySpendNeverHoldMoreThanMax) {
  // Far enough from the limit that leases cache chunks and spend them
  // without a locked instruction, near enough (up to 400 reservations, 2,000
  // messages, per thread) that the others keep taking them back.
  ExpectLeasesNeverHoldMoreThanMax(6000, 400, 3, 200'000);
}

TEST(PendingBudgetLease, AnAllowanceTakenBackMidSpendIsNeverSpentTwice) {
  // One lease spends from its cached chunk as fast as it can while another
  // fills the budget to the limit over and over, each time taking that
  // chunk back: a spend racing the take-back must either come before it or
  // see the lease revoked. Were both to win, the budget would count less
  // than was reserved, and end below zero once everything is released. (The
  // window is a few instructions wide: this stresses the handshake, which
  // the reasoning in pending_budget.h is what makes right.)
  constexpr std::uint64_t kMax = 100'000;
  constexpr int kRounds = 20'000;
  // Each round waits for the spender to cache again; on a busy machine that
  // takes a scheduler's time slice, so the rounds stop at a deadline too.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  PendingBudget budget(kMax);
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> spends{0};
  std::thread spender([&] {
    Lease lease(budget);
    while (!done.load(std::memory_order_relaxed)) {
      if (lease.try_reserve(1, 1)) {
        spends.fetch_add(1, std::memory_order_relaxed);
        lease.release(1, 1);
      }
    }
  });
  {
    Lease filler(budget);
    for (int round = 0; round < kRounds && std::chrono::steady_clock::now() < deadline; ++round) {
      // The spender caches a chunk again before each round takes it back.
      const std::uint64_t before = spends.load();
      while (spends.load() < before + 2 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
      if (filler.try_reserve(kMax - 1, kMax - 1)) filler.release(kMax - 1, kMax - 1);
    }
  }
  done = true;
  spender.join();
  EXPECT_EQ(budget.pending(), 0u);
  EXPECT_EQ(budget.pending_bytes(), 0u);
}

}  // namespace
}  // namespace gophermq
