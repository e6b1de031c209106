// EventLoop on rings far too small for the work: every entry still reaches
// the kernel, in order, a linked pair is never cut, and a completion queue
// that overflows loses nothing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <vector>

#include "gophermq/io/event_loop.h"

namespace gophermq {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPatience = std::chrono::seconds(10);

void prepare_nop(EventLoop& loop, std::uint32_t index) {
  io_uring_sqe* sqe = loop.next_sqe();
  io_uring_prep_nop(sqe);
  io_uring_sqe_set_data64(sqe, make_tag(Operation::cancel, index));
}

// Reaps until `done` says so or the patience runs out; returns whether done.
template <typename Done>
bool reap_until(EventLoop& loop, std::vector<Completion>& seen, Done&& done) {
  const auto deadline = Clock::now() + kPatience;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    loop.submit_and_wait(true, 10'000);
    loop.for_each_completion([&](const Completion& completion) { seen.push_back(completion); });
  }
  return true;
}

TEST(EventLoopTest, ThousandsOfEntriesOnAFourEntryRingAllCompleteOnceInOrder) {
  EventLoop loop;
  ASSERT_EQ(loop.start(4, false), "");
  constexpr std::uint32_t kEntries = 5000;
  // No reaping while they are prepared: the submission queue fills every
  // four entries and the completion queue (16) overflows long before the end.
  for (std::uint32_t i = 0; i < kEntries; ++i) prepare_nop(loop, i);
  std::vector<Completion> seen;
  ASSERT_TRUE(reap_until(loop, seen, [&] { return seen.size() >= kEntries; }))
      << seen.size() << " of " << kEntries << " completions";
  ASSERT_EQ(seen.size(), kEntries);
  // NOPs complete as they are submitted, so order in = order out: nothing
  // was reordered, dropped or doubled on the way.
  for (std::uint32_t i = 0; i < kEntries; ++i) {
    ASSERT_EQ(seen[i].index, i);
    ASSERT_EQ(seen[i].result, 0);
  }
  EXPECT_EQ(loop.backlog_size(), 0u);
  EXPECT_EQ(loop.lost_completions(), 0u);
}

TEST(EventLoopTest, ALinkedPairIsNeverCutByASubmitWhenTheRingIsAlmostFull) {
  EventLoop loop;
  ASSERT_EQ(loop.start(4, false), "");
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  // Three of the four submission entries taken: one left, the pair needs two.
  for (std::uint32_t i = 0; i < 3; ++i) prepare_nop(loop, i);
  char byte = 0;
  auto [read, after] = loop.next_sqe_pair();
  io_uring_prep_read(read, pipe_fds[0], &byte, 1, 0);
  read->flags |= IOSQE_IO_HARDLINK;
  io_uring_sqe_set_data64(read, make_tag(Operation::receive, 100));
  io_uring_prep_nop(after);
  io_uring_sqe_set_data64(after, make_tag(Operation::cancel, 101));

  std::vector<Completion> seen;
  ASSERT_TRUE(reap_until(loop, seen, [&] { return seen.size() >= 3; }));
  // A NOP completes inside the submit that carries it: had the link been
  // cut, the second of the pair would be here already.
  for (const Completion& completion : seen) EXPECT_LT(completion.index, 3u);

  ASSERT_EQ(::write(pipe_fds[1], "x", 1), 1);
  ASSERT_TRUE(reap_until(loop, seen, [&] { return seen.size() >= 5; }));
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen[3].index, 100u);  // the read first, then what it links to
  EXPECT_EQ(seen[3].result, 1);
  EXPECT_EQ(seen[4].index, 101u);
  EXPECT_EQ(seen[4].result, 0);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

TEST(EventLoopTest, LinkedPairsPreparedFasterThanTheRingTakesThemAllRunLinked) {
  EventLoop loop;
  ASSERT_EQ(loop.start(2, false), "");
  constexpr std::uint32_t kPairs = 500;
  for (std::uint32_t i = 0; i < kPairs; ++i) {
    auto [first, second] = loop.next_sqe_pair();
    io_uring_prep_nop(first);
    first->flags |= IOSQE_IO_HARDLINK;
    io_uring_sqe_set_data64(first, make_tag(Operation::cancel, 2 * i));
    io_uring_prep_nop(second);
    io_uring_sqe_set_data64(second, make_tag(Operation::cancel, 2 * i + 1));
  }
  std::vector<Completion> seen;
  ASSERT_TRUE(reap_until(loop, seen, [&] { return seen.size() >= 2 * kPairs; }));
  ASSERT_EQ(seen.size(), 2 * kPairs);
  // Each entry once; within a pair, the linked second after its first (a
  // link runs its follower after the head, so pairs may interleave).
  std::vector<int> position(2 * kPairs, -1);
  for (std::size_t at = 0; at < seen.size(); ++at) {
    ASSERT_LT(seen[at].index, 2 * kPairs);
    ASSERT_EQ(position[seen[at].index], -1) << "completed twice: " << seen[at].index;
    position[seen[at].index] = static_cast<int>(at);
  }
  for (std::uint32_t i = 0; i < kPairs; ++i) EXPECT_LT(position[2 * i], position[2 * i + 1]) << i;
}

}  // namespace
}  // namespace gophermq
