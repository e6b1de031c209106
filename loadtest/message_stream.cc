#include "message_stream.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <limits>

namespace gophermq::load {

namespace {

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

void parse_stream_flags(
    int argc, char** argv, StreamOptions& options,
    const std::function<void(std::string_view flag, std::string_view value)>& other) {
  BrokerTarget server;
  parse_flags(argc, argv, 1, server, [&](std::string_view flag, std::string_view value) {
    if (flag == "--publishers") {
      options.publishers = parse_number(flag, value, 1, 1000);
    } else if (flag == "--rate") {
      options.rate = parse_number(flag, value, 0, 100'000'000);
    } else if (flag == "--window") {
      options.window = parse_number(flag, value, 0, 100'000'000);
    } else if (flag == "--seconds") {
      options.seconds = parse_number(flag, value, 1, 3600);
    } else if (flag == "--payload-bytes") {
      options.payload_bytes = parse_number(flag, value, 1, 1 << 20);
    } else {
      other(flag, value);
    }
  });
  if (server.port == 0 || server.pid == 0) fail("--port and --pid are required");
  options.port = server.port;
  options.server_pid = server.pid;
  if (options.rate == 0 && options.window == 0) options.window = 20000;
}

StreamRun run_stream(const StreamOptions& options, const StreamProtocol& protocol) {
  const int epoll_fd = new_epoll();
  // Connection 0 subscribes; 1 ... publishers publish.
  std::vector<StreamConnection> connections(1 + options.publishers);
  for (std::size_t i = 0; i < connections.size(); ++i) {
    connections[i].fd = connect_to(options.port);
    protocol.open(connections[i].fd, static_cast<unsigned>(i));
    watch(epoll_fd, connections[i].fd, i);
  }
  if (protocol.start_subscriber) {
    protocol.start_subscriber(connections[0].out);
    flush(connections[0]);
  }

  std::vector<std::uint64_t> next_number(options.publishers, 1);
  StreamRun run;
  const PacedClock clock(options.rate, options.seconds, std::chrono::seconds(20));
  const double cpu_start = server_cpu(options.server_pid);
  epoll_event events[64];
  while (true) {
    const auto now = Clock::now();
    if (clock.publishing(now)) {
      // What may be out by now: the pace's share of the time so far, and
      // never more than `window` messages ahead of the subscriber.
      std::uint64_t target = std::numeric_limits<std::uint64_t>::max();
      if (options.rate != 0) target = clock.due(now);
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
    } else if (clock.drain_over(now)) {
      fail("20 s after publishing ended, " + std::to_string(run.published - protocol.delivered()) +
           " of " + std::to_string(run.published) + " messages were not delivered");
    }
    const int ready = wait_for_events(epoll_fd, events, 64, 1);
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
  run.seconds = clock.seconds();
  for (StreamConnection& connection : connections) close(connection.fd);
  close(epoll_fd);
  return run;
}

}  // namespace gophermq::load
