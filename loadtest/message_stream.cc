#include "message_stream.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <limits>

namespace gophermq::load {

namespace {

using Clock = std::chrono::steady_clock;

void make_non_blocking(int fd) {
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
    fail(std::string("fcntl: ") + std::strerror(errno));
  }
}

void flush(StreamConnection& connection) {
  while (!connection.out.empty()) {
    ssize_t sent = send(connection.fd, connection.out.data(), connection.out.size(), MSG_NOSIGNAL);
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // EPOLLOUT resumes
    if (sent <= 0) fail(std::string("send: ") + std::strerror(errno));
    connection.out.erase(0, static_cast<std::size_t>(sent));
  }
}

// Reads everything the kernel holds for the connection (edge-triggered
// epoll reports it once).
void read_available(StreamConnection& connection) {
  char chunk[65536];
  while (true) {
    ssize_t got = recv(connection.fd, chunk, sizeof chunk, 0);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) fail("the server closed a connection");
    connection.received.append(chunk, static_cast<std::size_t>(got));
  }
}

double server_cpu(long pid) { return stat_cpu_seconds("/proc/" + std::to_string(pid) + "/stat"); }

}  // namespace

void append_numbered_payload(std::string& out, unsigned publisher, std::uint64_t number,
                             unsigned bytes) {
  char digits[24];
  const auto [end, error] = std::to_chars(digits, digits + sizeof digits, number);
  const std::string prefix = std::to_string(publisher) + "-";
  const std::size_t length = static_cast<std::size_t>(end - digits);
  if (prefix.size() + length > bytes) {
    fail("a payload of " + std::to_string(bytes) + " bytes is too short for message " + prefix +
         std::string(digits, length));
  }
  out += prefix;
  out.append(bytes - prefix.size() - length, '0');
  out.append(digits, length);
}

void DeliveryCheck::take(std::string_view payload) {
  const std::size_t dash = payload.find('-');
  unsigned publisher = 0;
  std::uint64_t number = 0;
  const auto [publisher_end, publisher_error] =
      std::from_chars(payload.data(), payload.data() + std::min(dash, payload.size()), publisher);
  const auto [number_end, number_error] =
      dash == std::string_view::npos
          ? std::from_chars_result{nullptr, std::errc::invalid_argument}
          : std::from_chars(payload.data() + dash + 1, payload.data() + payload.size(), number);
  if (publisher_error != std::errc{} || number_error != std::errc{} ||
      number_end != payload.data() + payload.size() || publisher >= last_.size()) {
    fail("a message that is not ours: '" + std::string(payload) + "'");
  }
  if (number != last_[publisher] + 1) {
    fail("publisher " + std::to_string(publisher) + ": expected message " +
         std::to_string(last_[publisher] + 1) + ", got " + std::to_string(number) +
         (number <= last_[publisher] ? " (a repeat)" : " (one lost or out of order)"));
  }
  last_[publisher] = number;
  ++delivered_;
}

double StreamRun::cpu_us_per_message() const {
  return published ? cpu_seconds * 1e6 / static_cast<double>(published) : 0.0;
}

double StreamRun::messages_per_second() const {
  return seconds > 0 ? static_cast<double>(published) / seconds : 0.0;
}

StreamRun run_stream(const StreamOptions& options, const StreamProtocol& protocol) {
  int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) fail(std::string("epoll_create1: ") + std::strerror(errno));
  // Connection 0 subscribes; 1 ... publishers publish.
  std::vector<StreamConnection> connections(1 + options.publishers);
  for (std::size_t i = 0; i < connections.size(); ++i) {
    connections[i].fd = connect_to(options.port);
    protocol.open(connections[i].fd, static_cast<unsigned>(i));
    make_non_blocking(connections[i].fd);
    epoll_event event{};
    event.events = EPOLLIN | EPOLLOUT | EPOLLET;
    event.data.u64 = i;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, connections[i].fd, &event) != 0) {
      fail(std::string("epoll_ctl: ") + std::strerror(errno));
    }
  }
  if (protocol.start_subscriber) {
    protocol.start_subscriber(connections[0].out);
    flush(connections[0]);
  }

  std::vector<std::uint64_t> next_number(options.publishers, 1);
  StreamRun run;
  const auto start = Clock::now();
  const auto publish_until = start + std::chrono::seconds(options.seconds);
  const auto drain_deadline = publish_until + std::chrono::seconds(20);
  const double cpu_start = server_cpu(options.server_pid);
  epoll_event events[64];
  while (true) {
    const auto now = Clock::now();
    if (now < publish_until) {
      // What may be out by now: the pace's share of the time so far, and
      // never more than `window` messages ahead of the subscriber.
      std::uint64_t target = std::numeric_limits<std::uint64_t>::max();
      if (options.rate != 0) {
        const double elapsed = std::chrono::duration<double>(now - start).count();
        target = static_cast<std::uint64_t>(elapsed * static_cast<double>(options.rate));
      }
      if (options.window != 0) target = std::min(target, protocol.delivered() + options.window);
      while (run.published + options.batch <= target) {
        const auto publisher = static_cast<unsigned>(run.batches % options.publishers);
        protocol.publish(publisher, next_number[publisher], options.batch,
                         connections[1 + publisher].out);
        next_number[publisher] += options.batch;
        run.published += options.batch;
        ++run.batches;
      }
      for (std::size_t i = 1; i < connections.size(); ++i) flush(connections[i]);
    } else if (protocol.delivered() == run.published && protocol.unanswered() == 0) {
      break;
    } else if (now > drain_deadline) {
      fail("20 s after publishing ended, " + std::to_string(run.published - protocol.delivered()) +
           " of " + std::to_string(run.published) + " messages were not delivered");
    }
    const int ready = epoll_wait(epoll_fd, events, 64, 1);
    if (ready < 0 && errno != EINTR) fail(std::string("epoll_wait: ") + std::strerror(errno));
    for (int e = 0; e < ready; ++e) {
      const auto index = static_cast<unsigned>(events[e].data.u64);
      StreamConnection& connection = connections[index];
      if (events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        read_available(connection);
        if (index == 0) {
          protocol.on_subscriber_bytes(connection);
        } else {
          protocol.on_publisher_bytes(index - 1, connection);
        }
      }
      flush(connection);
    }
  }
  run.cpu_seconds = server_cpu(options.server_pid) - cpu_start;
  run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (StreamConnection& connection : connections) close(connection.fd);
  close(epoll_fd);
  return run;
}

}  // namespace gophermq::load
