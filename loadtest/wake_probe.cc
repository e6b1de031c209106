// wake_probe: does a sleeping shard always wake when another shard queues
// work for it? A reproducer for lost wake-ups, with the shards' own protocol.
//
// One thread plays a shard with nothing to do: it announces that it sleeps
// (an acq_rel exchange on `sleeping`), looks once more for work, and sleeps
// in its EventLoop for up to a second. Another thread plays a producer: it
// publishes work (a release increment), reads `sleeping` with an RMW, and
// when the sleeper announced sleep it wakes it, by MSG_RING from its own
// ring or by writing the sleeper's eventfd, which a read is armed on. Each
// round's wake-up latency is measured; a wake-up that never arrives shows
// as a sleep that ran into its one-second timeout. The broker's 100 ms idle
// wake-up (kIdleWakeMicros) would hide exactly that, so the probe does not
// have one.
//
//   build/loadtest/wake_probe [ROUNDS] [msg_ring|eventfd] [auto|basic]
//
// Prints the latency percentiles and the count of rounds slower than 50 ms
// (lost wake-ups); exits 1 if there was any.
#include <sys/eventfd.h>
#include <unistd.h>

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
#include "gophermq/event_loop.h"

namespace {

using gophermq::Completion;
using gophermq::EventLoop;
using gophermq::make_tag;
using gophermq::monotonic_ns;
using gophermq::Operation;

constexpr unsigned kSleepMicros = 1'000'000;
constexpr std::uint64_t kLostAfterNs = 50'000'000;

struct Shared {
  alignas(64) std::atomic<unsigned> sleeping{0};
  alignas(64) std::atomic<std::uint64_t> published{0};
  std::atomic<std::uint64_t> published_at_ns{0};
  std::atomic<std::uint64_t> taken{0};  // rounds the sleeper has seen
  std::atomic<int> ring_fd{-1};
  std::atomic<bool> ready{false};
  std::atomic<bool> done{false};
  int event_fd = -1;
};

void arm_eventfd_read(EventLoop& loop, int event_fd, std::uint64_t& target) {
  io_uring_sqe* sqe = loop.next_sqe();
  io_uring_prep_read(sqe, event_fd, &target, sizeof target, 0);
  io_uring_sqe_set_data64(sqe, make_tag(Operation::stop_signal, 0));
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t rounds = argc > 1 ? std::stoull(argv[1]) : 20'000;
  const bool use_msg_ring = argc > 2 ? std::strcmp(argv[2], "eventfd") != 0 : true;
  const bool basic = argc > 3 && std::strcmp(argv[3], "basic") == 0;

  Shared shared;
  shared.event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  std::vector<std::uint64_t> latencies;
  latencies.reserve(rounds);
  std::string error;

  std::thread sleeper([&] {
    EventLoop loop;
    error = loop.start(64, basic);
    if (error.empty() && use_msg_ring && !loop.features().msg_ring) error = "no MSG_RING here";
    if (!error.empty()) {
      shared.done.store(true);
      shared.ready.store(true);
      return;
    }
    std::uint64_t event_value = 0;
    arm_eventfd_read(loop, shared.event_fd, event_value);
    shared.ring_fd.store(loop.ring_fd());
    shared.ready.store(true);
    std::uint64_t seen = 0;
    while (seen < rounds) {
      shared.sleeping.exchange(1, std::memory_order_acq_rel);
      const bool work = shared.published.load(std::memory_order_acquire) != seen;
      loop.submit_and_wait(!work, kSleepMicros);
      shared.sleeping.store(0, std::memory_order_relaxed);
      loop.for_each_completion([&](const Completion& completion) {
        if (completion.operation == Operation::stop_signal) {
          arm_eventfd_read(loop, shared.event_fd, event_value);
        }
      });
      const std::uint64_t now = monotonic_ns();
      const std::uint64_t published = shared.published.load(std::memory_order_acquire);
      if (published != seen) {
        latencies.push_back(now - shared.published_at_ns.load(std::memory_order_relaxed));
        seen = published;
        shared.taken.store(seen, std::memory_order_release);
      }
    }
    shared.done.store(true);
  });

  std::thread producer([&] {
    while (!shared.ready.load()) std::this_thread::yield();
    EventLoop loop;
    if (!error.empty() || !loop.start(64, basic).empty()) return;
    std::uint64_t published = 0;
    while (!shared.done.load(std::memory_order_relaxed) && published < rounds) {
      // Let the sleeper get to sleep (or nearly: the racy window is the point).
      const std::uint64_t pause_ns = (published * 7919) % 200'000;
      const std::uint64_t until = monotonic_ns() + pause_ns;
      while (monotonic_ns() < until) {
      }
      // One round at a time: wait until the sleeper took the last one.
      shared.published_at_ns.store(monotonic_ns(), std::memory_order_relaxed);
      shared.published.store(++published, std::memory_order_release);
      if (shared.sleeping.fetch_add(0, std::memory_order_acq_rel) != 0) {
        if (use_msg_ring) {
          loop.prepare_wake(shared.ring_fd.load(), 0);
          loop.submit_and_wait(false, 0);
          loop.for_each_completion([&](const Completion& completion) {
            std::fprintf(stderr, "MSG_RING failed: %s\n", std::strerror(-completion.result));
          });
        } else {
          std::uint64_t one = 1;
          [[maybe_unused]] ssize_t written = write(shared.event_fd, &one, sizeof one);
        }
      }
      while (shared.taken.load(std::memory_order_acquire) < published &&
             !shared.done.load(std::memory_order_acquire)) {
        std::this_thread::yield();
      }
    }
  });

  producer.join();
  sleeper.join();
  close(shared.event_fd);
  if (!error.empty()) {
    std::fprintf(stderr, "wake_probe: %s\n", error.c_str());
    return 2;
  }
  std::vector<std::uint64_t> sorted = latencies;
  std::sort(sorted.begin(), sorted.end());
  auto at = [&](double q) { return sorted[static_cast<std::size_t>(q * (sorted.size() - 1))]; };
  const auto lost = static_cast<std::size_t>(std::count_if(
      sorted.begin(), sorted.end(), [](std::uint64_t ns) { return ns > kLostAfterNs; }));
  std::printf("%s, %s ring: %zu rounds, wake-up p50 %.1f us, p99 %.1f us, max %.1f us, lost %zu\n",
              use_msg_ring ? "MSG_RING" : "eventfd", basic ? "basic" : "auto", sorted.size(),
              at(0.5) / 1e3, at(0.99) / 1e3, sorted.back() / 1e3, lost);
  return lost == 0 ? 0 : 1;
}
