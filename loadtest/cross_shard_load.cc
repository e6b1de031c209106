// Measures what a cross-shard request costs the broker, against a local one.
//
// wrk cannot ask this: the kernel spreads connections over the shards'
// SO_REUSEPORT listeners by a hash of the client's address and port, so any
// subject is local on about half of wrk's connections and remote on the rest.
// This generator opens connections, finds out which shard accepted each (one
// GET /ready, then which shard's gophermq_shard_requests_total moved), and
// keeps only those on one shard, the home shard. Every request it then sends
// names either a subject the home shard owns (local: parsed, stored and
// answered on one shard) or a subject another shard owns (cross: the home
// shard parses and answers, the owner stores, through the SPSC queues). The
// broker's CPU time per request (all threads, from /proc/<pid>/stat) in the
// two kinds of phase gives the ratio. Phases alternate, local then cross,
// so drift on a shared machine falls on both.
//
//   cross_shard_load --port 8082 --metrics-port 9001 --pid 1234
//                    [--connections 50] [--seconds 5] [--rounds 3] [--payload-bytes 16]
//
// Prints one PHASE line per phase and one RESULT line per request kind
// (publish, fetch), as key=value pairs for tools/loadtest to read. Exits 1 on
// any answer other than 200, a lost connection, or a phase whose cross-shard
// call count is not what its kind says (0 local, one per request cross).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "gophermq/store/subject.h"
#include "load_client.h"

namespace {

using namespace gophermq::load;

struct Options {
  BrokerTarget broker;
  unsigned connections = 50;
  unsigned seconds = 5;
  unsigned rounds = 3;
  unsigned payload_bytes = 16;
};

Options parse_options(int argc, char** argv) {
  Options options;
  parse_flags(argc, argv, 1, options.broker, [&](std::string_view flag, std::string_view value) {
    if (flag == "--connections") {
      options.connections = parse_number(flag, value, 1, 10000);
    } else if (flag == "--seconds") {
      options.seconds = parse_number(flag, value, 1, 3600);
    } else if (flag == "--rounds") {
      options.rounds = parse_number(flag, value, 1, 100);
    } else if (flag == "--payload-bytes") {
      options.payload_bytes = parse_number(flag, value, 0, 1 << 20);
    } else {
      fail("unknown flag " + std::string(flag));
    }
  });
  if (options.broker.port == 0 || options.broker.metrics_port == 0 || options.broker.pid == 0) {
    fail("--port, --metrics-port and --pid are required");
  }
  return options;
}

// Each shard's gophermq_shard_requests_total and gophermq_cross_shard_calls_total.
struct BrokerCounters {
  std::vector<std::uint64_t> shard_requests;
  std::uint64_t cross_shard_calls = 0;
};

BrokerCounters scrape(std::uint16_t metrics_port) {
  int fd = connect_to(metrics_port);
  std::string text =
      exchange(fd, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  close(fd);
  BrokerCounters counters;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    constexpr std::string_view kShard = "gophermq_shard_requests_total{shard=\"";
    constexpr std::string_view kCross = "gophermq_cross_shard_calls_total ";
    if (line.starts_with(kShard)) {
      unsigned shard = std::stoul(line.substr(kShard.size()));
      if (counters.shard_requests.size() <= shard) counters.shard_requests.resize(shard + 1);
      counters.shard_requests[shard] = std::stoull(line.substr(line.rfind(' ') + 1));
    } else if (line.starts_with(kCross)) {
      counters.cross_shard_calls = std::stoull(line.substr(kCross.size()));
    }
  }
  if (counters.shard_requests.size() < 2) {
    fail("the broker reports fewer than two shards: run it with --broker.cores=2 or more");
  }
  return counters;
}

// The broker's CPU time so far: all threads (the process's own stat), and
// each shard's thread (named "shard-N" by the broker) apart.
struct BrokerCpu {
  double total = 0;
  std::vector<double> by_shard;
};

BrokerCpu broker_cpu(long pid, unsigned shards) {
  const std::string process = "/proc/" + std::to_string(pid);
  BrokerCpu cpu;
  cpu.total = stat_cpu_seconds(process + "/stat");
  cpu.by_shard.assign(shards, 0);
  for (const auto& task : std::filesystem::directory_iterator(process + "/task")) {
    std::ifstream comm_file(task.path() / "comm");
    std::string comm;
    std::getline(comm_file, comm);
    unsigned shard = 0;
    if (!comm.starts_with("shard-")) continue;
    auto [end, error] = std::from_chars(comm.data() + 6, comm.data() + comm.size(), shard);
    if (error == std::errc{} && shard < shards) {
      cpu.by_shard[shard] = stat_cpu_seconds(task.path() / "stat");
    }
  }
  return cpu;
}

// --- Set-up ------------------------------------------------------------------

// Connections the home shard accepted, and the shard count.
struct HomeConnections {
  std::vector<int> fds;
  unsigned shards = 0;
};

HomeConnections open_home_connections(const Options& options, unsigned home_shard) {
  HomeConnections home;
  BrokerCounters before = scrape(options.broker.metrics_port);
  home.shards = static_cast<unsigned>(before.shard_requests.size());
  const std::string ready = "GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  const unsigned attempts = 40 * options.connections * home.shards;
  for (unsigned attempt = 0; attempt < attempts && home.fds.size() < options.connections;
       ++attempt) {
    int fd = connect_to(options.broker.port);
    exchange(fd, ready);
    BrokerCounters after = scrape(options.broker.metrics_port);
    int served_by = -1;
    for (unsigned shard = 0; shard < home.shards; ++shard) {
      if (after.shard_requests[shard] != before.shard_requests[shard]) {
        if (served_by >= 0) fail("another client is using the broker: counts moved on two shards");
        served_by = static_cast<int>(shard);
      }
    }
    if (served_by < 0) fail("no shard counted the probe request");
    if (served_by == static_cast<int>(home_shard)) {
      home.fds.push_back(fd);
    } else {
      close(fd);
    }
    before = after;
  }
  if (home.fds.size() < options.connections) {
    fail("only " + std::to_string(home.fds.size()) + " of " + std::to_string(attempts) +
         " connections reached shard " + std::to_string(home_shard));
  }
  return home;
}

// The first subject "<stem>.N" that `shard` owns.
std::string subject_owned_by(std::string_view stem, unsigned shard, unsigned shards) {
  for (unsigned n = 0;; ++n) {
    std::string subject = std::string(stem) + "." + std::to_string(n);
    if (gophermq::owner_shard(subject, shards) == shard) return subject;
  }
}

// --- Load ----------------------------------------------------------------------

struct Connection {
  int fd = -1;
  std::string received;
  bool awaiting_answer = false;
};

struct PhaseResult {
  std::uint64_t requests = 0;
  double seconds = 0;
  BrokerCpu cpu;  // spent during the phase
  std::uint64_t cross_shard_calls = 0;
};

// The sockets block (for at most SO_SNDTIMEO), and a request is far smaller
// than a socket buffer: it goes out whole or the run fails.
void send_request(Connection& connection, std::string_view request) {
  send_whole(connection.fd, request);
  connection.awaiting_answer = true;
}

// Closed loop: every connection keeps one request in flight for `seconds`,
// then the answers still owed are read, so the CPU time and the count cover
// the same requests.
PhaseResult run_phase(const Options& options, unsigned shards, std::vector<Connection>& connections,
                      const std::string& request) {
  const int epoll_fd = new_epoll();
  for (Connection& connection : connections) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.ptr = &connection;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, connection.fd, &event) != 0) {
      fail(std::string("epoll_ctl: ") + std::strerror(errno));
    }
  }

  PhaseResult result;
  const std::uint64_t calls_before = scrape(options.broker.metrics_port).cross_shard_calls;
  const BrokerCpu cpu_before = broker_cpu(options.broker.pid, shards);
  const Clock::time_point start = Clock::now();
  const Clock::time_point stop_sending = start + std::chrono::seconds(options.seconds);
  const Clock::time_point give_up = stop_sending + std::chrono::seconds(10);
  for (Connection& connection : connections) send_request(connection, request);
  std::size_t in_flight = connections.size();
  bool sending = true;
  epoll_event events[256];
  char chunk[65536];
  while (in_flight > 0) {
    Clock::time_point now = Clock::now();
    if (now >= give_up) fail("answers still missing 10 s after the phase ended");
    sending = sending && now < stop_sending;
    const int ready = wait_for_events(epoll_fd, events, 256, 100);
    for (int i = 0; i < ready; ++i) {
      Connection& connection = *static_cast<Connection*>(events[i].data.ptr);
      ssize_t received = recv(connection.fd, chunk, sizeof chunk, MSG_DONTWAIT);
      if (received < 0 && errno == EAGAIN) continue;
      if (received <= 0) fail("the broker closed a connection");
      connection.received.append(chunk, static_cast<std::size_t>(received));
      while (auto length = whole_response_length(connection.received)) {
        if (!connection.awaiting_answer) fail("an answer came that no request asked for");
        if (!is_200(connection.received)) {
          fail("the broker answered: " + connection.received.substr(0, *length));
        }
        connection.received.erase(0, *length);
        connection.awaiting_answer = false;
        ++result.requests;
        if (sending) {
          send_request(connection, request);
        } else {
          --in_flight;
        }
      }
    }
  }
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  result.cpu = broker_cpu(options.broker.pid, shards);
  result.cpu.total -= cpu_before.total;
  for (unsigned shard = 0; shard < shards; ++shard) {
    result.cpu.by_shard[shard] -= cpu_before.by_shard[shard];
  }
  result.cross_shard_calls = scrape(options.broker.metrics_port).cross_shard_calls - calls_before;
  close(epoll_fd);
  return result;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  std::size_t middle = values.size() / 2;
  return values.size() % 2 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse_options(argc, argv);
  constexpr unsigned kHomeShard = 0;
  HomeConnections home = open_home_connections(options, kHomeShard);
  constexpr unsigned kRemoteShard = 1;
  // Publish: to a subscriber that never fetches, so its queue grows (at a
  // flat cost per message). Fetch: for a subscriber nothing is published to,
  // so each answer is an empty list: the fetch path itself.
  const std::string publish_local = subject_owned_by("load.publish", kHomeShard, home.shards);
  const std::string publish_cross = subject_owned_by("load.publish", kRemoteShard, home.shards);
  const std::string fetch_local = subject_owned_by("load.fetch", kHomeShard, home.shards);
  const std::string fetch_cross = subject_owned_by("load.fetch", kRemoteShard, home.shards);
  const int setup_fd = home.fds.front();
  subscribe(setup_fd, publish_local);
  subscribe(setup_fd, publish_cross);
  const std::string fetch_local_id = subscribe(setup_fd, fetch_local);
  const std::string fetch_cross_id = subscribe(setup_fd, fetch_cross);
  std::printf("SETUP shards=%u home_shard=%u remote_shard=%u connections=%zu\n", home.shards,
              kHomeShard, kRemoteShard, home.fds.size());

  std::vector<Connection> connections(home.fds.size());
  for (std::size_t i = 0; i < home.fds.size(); ++i) connections[i].fd = home.fds[i];

  const std::string data(options.payload_bytes, 'x');
  auto publish = [&](const std::string& subject) {
    return post("/api/publish", "{\"subject\":\"" + subject + "\",\"data\":\"" + data + "\"}");
  };
  auto fetch = [&](const std::string& subject, const std::string& id) {
    return post("/api/fetch", "{\"subject\":\"" + subject + "\",\"id\":\"" + id + "\"}");
  };
  struct RequestKind {
    const char* name;
    std::string local;
    std::string cross;
  };
  const RequestKind kinds[] = {
      {"publish", publish(publish_local), publish(publish_cross)},
      {"fetch", fetch(fetch_local, fetch_local_id), fetch(fetch_cross, fetch_cross_id)},
  };

  for (const RequestKind& kind : kinds) {
    // Per kind of phase (local, cross): CPU µs per request, all threads and
    // by shard, and requests per second, one value per round.
    struct Figures {
      std::vector<double> cpu_us, home_us, other_us, rps;
    } figures[2];
    for (unsigned round = 1; round <= options.rounds; ++round) {
      for (bool cross : {false, true}) {
        PhaseResult phase =
            run_phase(options, home.shards, connections, cross ? kind.cross : kind.local);
        const std::uint64_t expected_calls = cross ? phase.requests : 0;
        if (phase.cross_shard_calls != expected_calls) {
          fail(std::string(kind.name) + (cross ? " cross" : " local") +
               " phase: " + std::to_string(phase.cross_shard_calls) + " cross-shard calls for " +
               std::to_string(phase.requests) + " requests (expected " +
               std::to_string(expected_calls) + ")");
        }
        const double per_request_us = 1e6 / static_cast<double>(phase.requests);
        Figures& kept = figures[cross];
        kept.cpu_us.push_back(phase.cpu.total * per_request_us);
        kept.home_us.push_back(phase.cpu.by_shard[kHomeShard] * per_request_us);
        kept.other_us.push_back(phase.cpu.by_shard[kRemoteShard] * per_request_us);
        kept.rps.push_back(static_cast<double>(phase.requests) / phase.seconds);
        std::printf(
            "PHASE request=%s kind=%s round=%u requests=%llu seconds=%.2f rps=%.0f "
            "cpu_us=%.3f home_shard_cpu_us=%.3f other_shard_cpu_us=%.3f "
            "cross_shard_calls=%llu\n",
            kind.name, cross ? "cross" : "local", round,
            static_cast<unsigned long long>(phase.requests), phase.seconds, kept.rps.back(),
            kept.cpu_us.back(), kept.home_us.back(), kept.other_us.back(),
            static_cast<unsigned long long>(phase.cross_shard_calls));
        std::fflush(stdout);
      }
    }
    const Figures& local = figures[0];
    const Figures& cross = figures[1];
    std::printf(
        "RESULT request=%s local_rps=%.0f cross_rps=%.0f local_cpu_us=%.3f "
        "cross_cpu_us=%.3f cross_home_shard_cpu_us=%.3f cross_other_shard_cpu_us=%.3f "
        "ratio=%.3f\n",
        kind.name, median(local.rps), median(cross.rps), median(local.cpu_us), median(cross.cpu_us),
        median(cross.home_us), median(cross.other_us), median(cross.cpu_us) / median(local.cpu_us));
    std::fflush(stdout);
  }
  for (Connection& connection : connections) close(connection.fd);
  return 0;
}
