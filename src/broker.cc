#include "gophermq/broker.h"

#include <sched.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <latch>
#include <memory>
#include <thread>
#include <vector>

#include "gophermq/allocator.h"
#include "gophermq/http/cors.h"
#include "gophermq/io/listener.h"
#include "gophermq/log.h"
#include "gophermq/metrics/monitoring_server.h"
#include "gophermq/net/connection_table.h"
#include "gophermq/shard/cross_shard.h"
#include "gophermq/shard/shard.h"
#include "gophermq/store/pending_budget.h"
#include "gophermq_version.h"

namespace gophermq {
namespace {

// The CPUs this process may run on (taskset, cgroup cpusets), in order.
std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
  }
  return cpus;
}

// Every connection is a descriptor: take all the kernel allows us. Returns
// the limit now in force (logged once the broker is up, so that a failed
// start stays one line).
std::uint64_t raise_open_files_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return limit.rlim_cur;
}

// Every connection is a descriptor: past the open-files limit accepts fail,
// and clients wait in the backlog with no answer, not even the 503. So
// broker.max-connections is held under that limit, with room for the
// broker's own descriptors (a ring, an eventfd and a listener per shard, the
// monitoring port's connections) and for refusals, each of which holds one
// while its 503 goes out and it lingers: up to kMostLingeringRefusals a
// shard where the limit allows, otherwise an eighth of what is left.
struct DescriptorBudget {
  std::uint64_t max_connections;
  std::uint64_t lingering_refusals;  // per shard
};

DescriptorBudget budget_descriptors(std::uint64_t max_connections, std::uint64_t open_files_limit,
                                    unsigned shard_count) {
  const std::uint64_t shards = shard_count;
  const std::uint64_t own = 64 + 4 * shards;
  if (open_files_limit == 0) return {max_connections, kMostLingeringRefusals};
  const std::uint64_t left = open_files_limit > own ? open_files_limit - own : 0;
  if (max_connections + kMostLingeringRefusals * shards <= left) {
    return {max_connections, kMostLingeringRefusals};
  }
  const std::uint64_t lingering =
      std::min<std::uint64_t>(kMostLingeringRefusals, left / (8 * shards));
  const std::uint64_t fit = std::max<std::uint64_t>(1, left - lingering * shards);
  return {std::min(max_connections, fit), lingering};
}

const char* signal_name(int signal_number) {
  switch (signal_number) {
    case SIGINT:
      return "SIGINT";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "SIGTERM";
  }
}

// The features in use (`present`) or the ones the kernel lacks (!present),
// comma-separated.
std::string features_text(const EventLoop::Features& f, bool present) {
  std::string text;
  auto add = [&](bool on, const char* name) {
    if (on != present) return;
    if (!text.empty()) text += ',';
    text += name;
  };
  add(f.single_issuer, "single_issuer");
  add(f.defer_taskrun, "defer_taskrun");
  add(f.multishot_accept, "multishot_accept");
  add(f.provided_buffers, "provided_buffers");
  add(f.multishot_receive, "multishot_receive");
  add(f.msg_ring, "msg_ring");
  return text;
}

}  // namespace

int run_broker(const Config& given_config) {
  log::set_level(given_config.log_level);

  // Signals are taken by this thread alone, with sigwait: shard threads
  // inherit the blocked mask. SIGPIPE never kills us (sends also pass
  // MSG_NOSIGNAL). SIGHUP (a closed terminal; there is no reload) stops the
  // broker as SIGTERM does, rather than killing it with what it holds;
  // unless it is ignored (nohup): sigwait would take even an ignored one.
  signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  struct sigaction hangup {};
  if (sigaction(SIGHUP, nullptr, &hangup) == 0 && hangup.sa_handler != SIG_IGN) {
    sigaddset(&stop_signals, SIGHUP);
  }
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::vector<int> cpus = allowed_cpus();
  const unsigned shard_count = given_config.shards != 0
                                   ? given_config.shards
                                   : static_cast<unsigned>(std::max<std::size_t>(1, cpus.size()));

  const std::uint64_t open_files_limit = raise_open_files_limit();
  Config config = given_config;

  Listeners listeners = open_listeners(config.api, shard_count);
  if (!listeners.error.empty()) {
    log::error("cannot start", {{"error", listeners.error}});
    return 1;
  }
  MonitoringServer monitoring;
  if (config.monitoring_enabled) {
    std::string error = monitoring.listen(config.monitoring);
    if (!error.empty()) {
      log::error("cannot start", {{"error", error}});
      close_listeners(listeners);
      return 1;
    }
  }

  const DescriptorBudget descriptors =
      budget_descriptors(config.max_connections, open_files_limit, shard_count);
  config.max_connections = descriptors.max_connections;

  // Before any shard exists: shards only read it.
  install_cors_origins(CorsOrigins(config.cors_origins));
  PendingBudget budget(pending_total_bound(config), config.max_pending_bytes);
  StoreCensus census(config.max_subscribers, config.max_subjects);
  CrossShardMatrix matrix(shard_count);
  std::atomic<bool> stop_requested{false};
  std::latch rings_ready(shard_count);
  std::latch go(1);
  std::atomic<unsigned> shards_with_connections{shard_count};
  std::atomic<unsigned> shards_with_calls{shard_count};
  std::atomic<std::uint64_t> open_connections{0};
  ShardEnvironment environment{config,
                               budget,
                               census,
                               matrix,
                               stop_requested,
                               rings_ready,
                               go,
                               std::chrono::steady_clock::now(),
                               shards_with_connections,
                               shards_with_calls,
                               open_connections,
                               descriptors.lingering_refusals};

  std::vector<std::unique_ptr<Shard>> shards;
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < shard_count; ++i) {
    // More shards than CPUs (broker.cores above the mask) share CPUs in turn.
    int cpu = cpus.empty() ? -1 : cpus[i % cpus.size()];
    shards.push_back(std::make_unique<Shard>(i, cpu, listeners.fds[i], environment));
  }
  std::atomic<unsigned> shards_running{shard_count};
  for (auto& shard : shards) {
    threads.emplace_back([&shard, &shards_running] {
      shard->run();
      shards_running.fetch_sub(1);
    });
  }

  rings_ready.wait();
  std::string start_error;
  for (auto& shard : shards) {
    if (!shard->start_error().empty()) start_error = shard->start_error();
  }
  if (!start_error.empty()) stop_requested.store(true);
  go.count_down();

  int exit_code = 0;
  if (!start_error.empty()) {
    log::error("cannot start", {{"error", start_error}});
    exit_code = 1;
  } else {
    if (config.monitoring_enabled) {
      MetricsSources sources;
      sources.budget = &budget;
      for (auto& shard : shards) {
        sources.shards.push_back(&shard->metrics());
        sources.stores.push_back(&shard->store_gauges());
      }
      monitoring.start(std::move(sources));
    }
    const bool basic_io_uring = config.io_uring == IoUringMode::basic;
    const std::string in_use = features_text(shards[0]->features(), true);
    const std::string missing = features_text(shards[0]->features(), false);
    if (!basic_io_uring && !missing.empty()) {
      log::warn("io_uring fallback: this kernel lacks some features; slower paths are used",
                {{"missing", missing}});
    }
    // Said once the start has worked: a failed start stays one line.
    if (config.max_connections < given_config.max_connections) {
      log::warn(
          "broker.max-connections lowered to fit the open-files limit (raise it: ulimit -n, "
          "LimitNOFILE)",
          {{"max_connections", std::to_string(given_config.max_connections)},
           {"lowered_to", std::to_string(config.max_connections)},
           {"open_files_limit", std::to_string(open_files_limit)}});
    }
    log::info("listening",
              {{"api_port", std::to_string(listeners.port)},
               {"metrics_port",
                config.monitoring_enabled ? std::to_string(monitoring.port()) : std::string("off")},
               {"shards", std::to_string(shard_count)},
               {"max_pending", std::to_string(config.max_pending)},
               {"io_uring", basic_io_uring ? "basic" : in_use},
               {"allocator", allocator_name()},
               {"open_files_limit", std::to_string(open_files_limit)},
               {"version", GOPHERMQ_VERSION}});
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    log::info("stopping", {{"signal", signal_name(signal_number)}});
    stop_requested.store(true);
    for (unsigned i = 0; i < shard_count; ++i) matrix.wake_by_event_fd(i);
  }
  // Ctrl-C again while the shards finish: the operator will not wait for
  // broker.shutdown-timeout. Exit now, what is unanswered dropped. (A
  // repeated SIGTERM, from a supervisor or a script, keeps the drain.)
  sigset_t interrupt;
  sigemptyset(&interrupt);
  sigaddset(&interrupt, SIGINT);
  while (shards_running.load() != 0) {
    const timespec poll_interval{0, 50'000'000};
    if (sigtimedwait(&interrupt, nullptr, &poll_interval) == SIGINT) {
      log::warn("stopping at once: SIGINT again");
      std::_Exit(1);
    }
  }
  for (auto& thread : threads) thread.join();
  monitoring.stop();
  close_listeners(listeners);
  return exit_code;
}

}  // namespace gophermq
