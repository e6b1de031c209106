// wake_probe: does a sleeping shard always wake when another shard queues
// work for it? A reproducer for lost wake-ups, running the shards' own
// protocol (CrossShardLink over a CrossShardMatrix, see cross_shard.h) on
// the shards' own EventLoop.
//
// One thread plays a shard with nothing to do: it drains its queues, rings
// its sleep bit and, when no call came meanwhile, sleeps in its EventLoop
// for up to a second, with a read armed on its eventfd as a shard has.
// Another thread plays a shard sending one call at a time: it sends, flushes
// (which wakes the sleeper by MSG_RING or by its eventfd), and waits for the
// call to be taken. Each round's wake-up latency is measured; a wake-up that
// never arrives shows as a round that ran into the one-second sleep. The
// broker's 100 ms idle wake-up (kIdleWakeMicros) would hide exactly that,
// so the probe has none.
//
//   build/loadtest/wake_probe [ROUNDS] [auto|basic]
//
// `basic` uses only the oldest io_uring features, as --broker.io-uring=basic
// does (no MSG_RING: wake-ups go through the eventfd). Prints the latency
// percentiles and the count of rounds slower than 50 ms (lost wake-ups);
// exits 1 if there was any.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "gophermq/clock.h"
#include "gophermq/io/event_loop.h"
#include "gophermq/metrics/metrics.h"
#include "gophermq/shard/cross_shard.h"
#include "gophermq/shard/cross_shard_link.h"

namespace {

using namespace gophermq;

constexpr unsigned kSleepMicros = 1'000'000;
constexpr std::uint64_t kLostAfterNs = 50'000'000;

void arm_eventfd_read(EventLoop& loop, int event_fd, std::uint64_t& target) {
  io_uring_sqe* sqe = loop.next_sqe();
  io_uring_prep_read(sqe, event_fd, &target, sizeof target, 0);
  io_uring_sqe_set_data64(sqe, make_tag(Operation::stop_signal, 0));
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t rounds = argc > 1 ? std::stoull(argv[1]) : 20'000;
  const bool basic = argc > 2 && std::strcmp(argv[2], "basic") == 0;

  CrossShardMatrix matrix(2);
  std::atomic<bool> sleeper_ready{false};
  std::atomic<std::uint64_t> taken{0};  // rounds the sleeper has seen
  std::atomic<bool> failed{false};
  std::vector<std::uint64_t> latencies;
  latencies.reserve(rounds);

  std::thread sleeper([&] {
    EventLoop loop;
    if (!loop.start(64, basic).empty()) {
      failed.store(true);
      sleeper_ready.store(true);
      return;
    }
    ShardMetrics metrics;
    CrossShardLink link(1, matrix, metrics, &loop);
    matrix.mailbox(1).ring_fd.store(loop.ring_fd());
    std::uint64_t event_value = 0;
    arm_eventfd_read(loop, matrix.mailbox(1).event_fd, event_value);
    sleeper_ready.store(true);
    std::uint64_t seen = 0;
    while (seen < rounds && !failed.load(std::memory_order_relaxed)) {
      loop.for_each_completion([&](const Completion& completion) {
        if (completion.operation == Operation::stop_signal) {
          arm_eventfd_read(loop, matrix.mailbox(1).event_fd, event_value);
        }
      });
      const std::size_t calls = link.drain([&](ShardCall&& call) {
        latencies.push_back(monotonic_ns() - call.started_ns);
        ++seen;
      });
      if (calls != 0) taken.store(seen, std::memory_order_release);
      loop.submit_and_wait(calls == 0 && link.prepare_sleep(), kSleepMicros);
    }
  });

  std::thread producer([&] {
    while (!sleeper_ready.load()) std::this_thread::yield();
    EventLoop loop;
    if (failed.load() || !loop.start(64, basic).empty()) {
      failed.store(true);
      return;
    }
    ShardMetrics metrics;
    CrossShardLink link(0, matrix, metrics, &loop);
    for (std::uint64_t round = 1; round <= rounds; ++round) {
      // Let the sleeper get to sleep, or nearly: the racy window is the point.
      const std::uint64_t until = monotonic_ns() + (round * 7919) % 200'000;
      while (monotonic_ns() < until) {
      }
      ShardCall call{};
      call.endpoint = Endpoint::publish_async;
      call.started_ns = monotonic_ns();
      link.send(1, std::move(call));
      link.flush();
      loop.submit_and_wait(false, 0);  // the MSG_RING goes out
      loop.for_each_completion([&](const Completion& completion) {
        std::fprintf(stderr, "MSG_RING failed: %s\n", std::strerror(-completion.result));
      });
      while (taken.load(std::memory_order_acquire) < round) std::this_thread::yield();
    }
  });

  producer.join();
  sleeper.join();
  if (failed.load()) {
    std::fprintf(stderr, "wake_probe: could not set up io_uring\n");
    return 2;
  }
  std::vector<std::uint64_t> sorted = latencies;
  std::sort(sorted.begin(), sorted.end());
  auto at = [&](double q) { return sorted[static_cast<std::size_t>(q * (sorted.size() - 1))]; };
  const auto lost = static_cast<std::size_t>(std::count_if(
      sorted.begin(), sorted.end(), [](std::uint64_t ns) { return ns > kLostAfterNs; }));
  std::printf("%s ring: %zu rounds, wake-up p50 %.1f us, p99 %.1f us, max %.1f us, lost %zu\n",
              basic ? "basic (eventfd)" : "auto (MSG_RING)", sorted.size(), at(0.5) / 1e3,
              at(0.99) / 1e3, sorted.back() / 1e3, lost);
  return lost == 0 ? 0 : 1;
}
