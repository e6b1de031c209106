// What delivering messages costs the broker when its consumers long-poll,
// against when they poll; and what fetches that wait with nothing to take
// cost. wrk and k6 cannot hold a waiting fetch per connection at these
// rates, so this generator drives the sockets itself (one thread, epoll).
//
//   long_poll_load paced --port 8082 --pid 1234 [--consumer long-poll|poll]
//                  [--rate 20000] [--subjects 10] [--publishers 4] [--seconds 5]
//     Publishers send `rate` publishes a second in all, paced (open loop),
//     round-robin over the subjects; each subject has one subscriber, read
//     by one consumer connection that fetches again as soon as an answer
//     comes: with wait_ms (long-poll) or without (a poll loop). Every
//     message must arrive exactly once and in order. Prints the broker's CPU
//     time (all threads, /proc/<pid>/stat) per delivered message over the
//     publishing time, its publish included.
//
//   long_poll_load parked --port 8082 --metrics-port 9001 --pid 1234
//                  [--fetches 10000] [--seconds 10]
//     Opens `fetches` connections, each with a subscriber of its own subject
//     and one plain fetch done, then has each send a fetch that waits. The
//     resident memory they add, per waiting fetch, and the broker's CPU time
//     while they wait `seconds` (and, before, over as long with nothing
//     waiting) are printed. The broker must allow waits longer than that
//     (broker.max-fetch-wait).
//
// One RESULT line of key=value pairs, for tools/loadtest. Exits 1 on any
// answer other than 200, a message lost, repeated or out of order, or a
// connection lost.
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "load_client.h"

namespace {

using namespace gophermq::load;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string mode;
  BrokerTarget broker;
  bool long_poll = true;
  unsigned rate = 20000;
  unsigned subjects = 10;
  unsigned publishers = 4;
  unsigned seconds = 5;
  unsigned fetches = 10000;
};

Options parse_options(int argc, char** argv) {
  Options options;
  if (argc < 2) fail("usage: long_poll_load paced|parked --port P --pid PID [...]");
  options.mode = argv[1];
  if (options.mode != "paced" && options.mode != "parked") fail("unknown mode " + options.mode);
  if (options.mode == "parked") options.seconds = 10;
  parse_flags(argc, argv, 2, options.broker, [&](std::string_view flag, std::string_view value) {
    if (flag == "--consumer") {
      if (value != "long-poll" && value != "poll") fail("--consumer is long-poll or poll");
      options.long_poll = value == "long-poll";
    } else if (flag == "--rate") {
      options.rate = parse_number(flag, value, 1, 10'000'000);
    } else if (flag == "--subjects") {
      options.subjects = parse_number(flag, value, 1, 10000);
    } else if (flag == "--publishers") {
      options.publishers = parse_number(flag, value, 1, 1000);
    } else if (flag == "--seconds") {
      options.seconds = parse_number(flag, value, 1, 3600);
    } else if (flag == "--fetches") {
      options.fetches = parse_number(flag, value, 1, 1'000'000);
    } else {
      fail("unknown flag " + std::string(flag));
    }
  });
  if (options.broker.port == 0 || options.broker.pid == 0) fail("--port and --pid are required");
  if (options.mode == "parked" && options.broker.metrics_port == 0) {
    fail("parked needs --metrics-port");
  }
  return options;
}

double broker_cpu_seconds(long pid) {
  return stat_cpu_seconds("/proc/" + std::to_string(pid) + "/stat");
}

std::uint64_t broker_resident_bytes(long pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::stoull(line.substr(6)) * 1024;
  }
  fail("no VmRSS for the broker: has it ended?");
}

double waiting_fetches(std::uint16_t metrics_port) {
  int fd = connect_to(metrics_port);
  const std::string text =
      exchange(fd, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  close(fd);
  constexpr std::string_view kName = "\ngophermq_waiting_fetches ";
  const std::size_t at = text.find(kName);
  if (at == std::string::npos) fail("the broker reports no gophermq_waiting_fetches");
  return std::stod(text.substr(at + kName.size()));
}

// --- Non-blocking connections -------------------------------------------------

struct Connection {
  int fd = -1;
  std::string out;       // not yet taken by the kernel
  std::string received;  // not yet a whole response
  unsigned subject = 0;  // a consumer's subject
  std::uint64_t answers_owed = 0;
};

void make_non_blocking(int fd) {
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
    fail(std::string("fcntl: ") + std::strerror(errno));
  }
}

void flush(Connection& connection) {
  while (!connection.out.empty()) {
    ssize_t sent = send(connection.fd, connection.out.data(), connection.out.size(), MSG_NOSIGNAL);
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // EPOLLOUT resumes
    if (sent <= 0) fail(std::string("send: ") + std::strerror(errno));
    connection.out.erase(0, static_cast<std::size_t>(sent));
  }
}

// Reads what has arrived; calls `on_response(connection, response)` for
// each whole one.
template <typename OnResponse>
void receive(Connection& connection, OnResponse&& on_response) {
  char chunk[65536];
  while (true) {
    ssize_t got = recv(connection.fd, chunk, sizeof chunk, 0);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (got <= 0) fail("the broker closed a connection");
    connection.received.append(chunk, static_cast<std::size_t>(got));
  }
  std::size_t used = 0;
  while (auto length = whole_response_length(std::string_view(connection.received).substr(used))) {
    on_response(connection, std::string_view(connection.received).substr(used, *length));
    used += *length;
  }
  connection.received.erase(0, used);
}

// --- paced ---------------------------------------------------------------------

std::string subject_name(unsigned subject) { return "longpoll." + std::to_string(subject); }

int run_paced(const Options& options) {
  std::vector<std::string> ids;
  {
    int fd = connect_to(options.broker.port);
    for (unsigned s = 0; s < options.subjects; ++s) ids.push_back(subscribe(fd, subject_name(s)));
    close(fd);
  }
  const std::string fetch_fields =
      options.long_poll ? ",\"wait_ms\":20000,\"max_messages\":1000" : "";
  auto fetch_request = [&](unsigned s) {
    return post("/api/fetch", "{\"subject\":\"" + subject_name(s) + "\",\"id\":\"" + ids[s] + "\"" +
                                  fetch_fields + "}");
  };

  int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  std::vector<Connection> connections(options.subjects + options.publishers);
  for (std::size_t i = 0; i < connections.size(); ++i) {
    connections[i].fd = connect_to(options.broker.port);
    make_non_blocking(connections[i].fd);
    epoll_event event{};
    event.events = EPOLLIN | EPOLLOUT | EPOLLET;
    event.data.u64 = i;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, connections[i].fd, &event) != 0) {
      fail(std::string("epoll_ctl: ") + std::strerror(errno));
    }
  }
  // Consumers first: each has a fetch out at all times.
  for (unsigned s = 0; s < options.subjects; ++s) {
    connections[s].subject = s;
    connections[s].out = fetch_request(s);
    flush(connections[s]);
  }

  std::vector<std::uint64_t> published(options.subjects, 0);  // answered 200
  std::vector<std::uint64_t> sent(options.subjects, 0);
  std::vector<std::uint64_t> delivered(options.subjects, 0);  // the next expected is this + 1
  std::uint64_t publishes_sent = 0, publishes_answered = 0, delivered_total = 0;
  std::uint64_t fetches = 0, empty_fetches = 0;

  auto on_consumer_answer = [&](Connection& connection, std::string_view response) {
    if (!is_200(response)) fail("a fetch was answered " + std::string(response.substr(9, 3)));
    ++fetches;
    const unsigned s = connection.subject;
    std::string_view body = response.substr(response.find("\r\n\r\n") + 4);
    std::size_t at = body.find("\"data\":[") + 8;
    std::size_t count = 0;
    while (body[at] == '"') {
      const std::size_t end = body.find('"', at + 1);
      const std::string_view item = body.substr(at + 1, end - at - 1);
      std::uint64_t number = 0;
      const std::size_t dash = item.find('-');
      std::from_chars(item.data() + dash + 1, item.data() + item.size(), number);
      if (number != delivered[s] + 1) {
        fail("subject " + std::to_string(s) + ": expected message " +
             std::to_string(delivered[s] + 1) + ", got " + std::string(item));
      }
      delivered[s] = number;
      ++count;
      at = end + 1;
      if (body[at] == ',') ++at;
    }
    delivered_total += count;
    if (count == 0) ++empty_fetches;
    connection.out += fetch_request(s);
    flush(connection);
  };
  auto on_publisher_answer = [&](Connection&, std::string_view response) {
    if (!is_200(response)) fail("a publish was answered " + std::string(response.substr(9, 3)));
    ++publishes_answered;
  };

  const auto start = Clock::now();
  const auto publish_until = start + std::chrono::seconds(options.seconds);
  const double cpu_start = broker_cpu_seconds(options.broker.pid);
  double cpu_end = -1;
  std::uint64_t delivered_at_end = 0;
  epoll_event events[256];
  auto drain_deadline = publish_until + std::chrono::seconds(20);
  while (true) {
    const auto now = Clock::now();
    if (now < publish_until) {
      const double elapsed = std::chrono::duration<double>(now - start).count();
      const auto due = static_cast<std::uint64_t>(elapsed * options.rate);
      while (publishes_sent < due) {
        const unsigned s = static_cast<unsigned>(publishes_sent % options.subjects);
        // One publisher per subject, so its messages are stored in the
        // order they are numbered.
        Connection& publisher = connections[options.subjects + s % options.publishers];
        publisher.out +=
            post("/api/publish", "{\"subject\":\"" + subject_name(s) + "\",\"data\":\"" +
                                     std::to_string(s) + "-" + std::to_string(++sent[s]) + "\"}");
        ++publishes_sent;
      }
      for (std::size_t i = options.subjects; i < connections.size(); ++i) flush(connections[i]);
    } else if (cpu_end < 0) {
      cpu_end = broker_cpu_seconds(options.broker.pid);
      delivered_at_end = delivered_total;
    } else if (publishes_answered == publishes_sent && delivered_total == publishes_sent) {
      break;
    } else if (now > drain_deadline) {
      fail("after publishing, " + std::to_string(publishes_sent - delivered_total) +
           " messages never arrived");
    }
    const int ready = epoll_wait(epoll_fd, events, 256, 1);
    if (ready < 0 && errno != EINTR) fail(std::string("epoll_wait: ") + std::strerror(errno));
    for (int e = 0; e < ready; ++e) {
      Connection& connection = connections[events[e].data.u64];
      if (events[e].events & EPOLLOUT) flush(connection);
      if (events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (events[e].data.u64 < options.subjects) {
          receive(connection, on_consumer_answer);
        } else {
          receive(connection, on_publisher_answer);
        }
      }
    }
  }
  for (Connection& connection : connections) close(connection.fd);
  close(epoll_fd);
  const double cpu = cpu_end - cpu_start;
  std::printf(
      "RESULT mode=paced consumer=%s rate=%u seconds=%u subjects=%u published=%llu "
      "delivered=%llu fetches=%llu empty_fetches=%llu cpu_seconds=%.3f "
      "cpu_us_per_message=%.2f\n",
      options.long_poll ? "long-poll" : "poll", options.rate, options.seconds, options.subjects,
      static_cast<unsigned long long>(publishes_sent),
      static_cast<unsigned long long>(delivered_at_end), static_cast<unsigned long long>(fetches),
      static_cast<unsigned long long>(empty_fetches), cpu,
      delivered_at_end ? cpu * 1e6 / static_cast<double>(delivered_at_end) : 0.0);
  return 0;
}

// --- parked --------------------------------------------------------------------

int run_parked(const Options& options) {
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_cur < options.fetches + 64) {
    files.rlim_cur = std::min<rlim_t>(files.rlim_max, options.fetches + 64);
    setrlimit(RLIMIT_NOFILE, &files);
  }
  std::vector<int> fds;
  std::vector<std::string> fetch_bodies;
  for (unsigned k = 0; k < options.fetches; ++k) {
    const int fd = connect_to(options.broker.port);
    const std::string subject = "parked." + std::to_string(k);
    const std::string body =
        "{\"subject\":\"" + subject + "\",\"id\":\"" + subscribe(fd, subject) + "\"";
    if (!is_200(exchange(fd, post("/api/fetch", body + "}")))) fail("a plain fetch failed");
    fds.push_back(fd);
    fetch_bodies.push_back(body + ",\"wait_ms\":" + std::to_string((options.seconds + 30) * 1000) +
                           "}");
  }
  // The broker's own idle cost first (its loop wakes a few times a second),
  // with the same connections open and nothing waiting.
  const double idle_before = broker_cpu_seconds(options.broker.pid);
  std::this_thread::sleep_for(std::chrono::seconds(options.seconds));
  const double idle_cpu = broker_cpu_seconds(options.broker.pid) - idle_before;
  const std::uint64_t resident_before = broker_resident_bytes(options.broker.pid);
  for (unsigned k = 0; k < options.fetches; ++k) {
    const std::string request = post("/api/fetch", fetch_bodies[k]);
    if (send(fds[k], request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
      fail(std::string("send: ") + std::strerror(errno));
    }
  }
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (waiting_fetches(options.broker.metrics_port) != options.fetches) {
    if (Clock::now() > deadline) fail("the fetches did not all wait within 60 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::uint64_t resident_after = broker_resident_bytes(options.broker.pid);
  const double cpu_before = broker_cpu_seconds(options.broker.pid);
  std::this_thread::sleep_for(std::chrono::seconds(options.seconds));
  const double cpu_after = broker_cpu_seconds(options.broker.pid);
  if (waiting_fetches(options.broker.metrics_port) != options.fetches) {
    fail("fetches stopped waiting before their time");
  }
  for (int fd : fds) close(fd);
  const double per_fetch =
      (static_cast<double>(resident_after) - static_cast<double>(resident_before)) /
      options.fetches;
  std::printf(
      "RESULT mode=parked fetches=%u seconds=%u resident_before=%llu resident_after=%llu "
      "bytes_per_waiting_fetch=%.0f cpu_seconds_idle=%.3f cpu_seconds_while_waiting=%.3f\n",
      options.fetches, options.seconds, static_cast<unsigned long long>(resident_before),
      static_cast<unsigned long long>(resident_after), per_fetch, idle_cpu, cpu_after - cpu_before);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse_options(argc, argv);
  return options.mode == "paced" ? run_paced(options) : run_parked(options);
}
