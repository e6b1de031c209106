// What the load generators in loadtest/ share: blocking HTTP/1.1 over
// loopback for set-up and metrics, the broker's CPU time from /proc, flag
// parsing, and the pieces of a non-blocking connection over edge-triggered
// epoll (each generator drives its measured load its own way with them).
#pragma once

#include <sys/epoll.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace gophermq::load {

// What the generators time their runs with.
using Clock = std::chrono::steady_clock;

// Prints "<program>: <message>" and exits 1.
[[noreturn]] void fail(const std::string& message);

// `text` as a whole number in [at_least, at_most], or fail() naming `flag`.
unsigned parse_number(std::string_view flag, std::string_view text, unsigned at_least,
                      unsigned at_most);

// Which of `choices` the value of `flag` is (its index); fail()s naming them
// ("--consumer is long-poll or poll") when it is none of them.
std::size_t choice(std::string_view flag, std::string_view value,
                   std::initializer_list<std::string_view> choices);

// The mode, argv[1], which must be one of `modes`; fail()s with the usage of
// `program` when there is none.
std::string read_mode(int argc, char** argv, std::string_view program,
                      std::initializer_list<std::string_view> modes);

// The broker a generator loads and measures.
struct BrokerTarget {
  std::uint16_t port = 0;          // --port
  std::uint16_t metrics_port = 0;  // --metrics-port
  long pid = 0;                    // --pid, for its CPU time
};

// Reads `--flag value` pairs from argv[first] on: the broker's own flags
// into `target`, every other one to `other(flag, value)`, which fail()s on
// one it does not know.
template <typename Other>
void parse_flags(int argc, char** argv, int first, BrokerTarget& target, Other&& other) {
  for (int i = first; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) fail("missing value after " + std::string(flag));
    const std::string_view value = argv[++i];
    if (flag == "--port") {
      target.port = static_cast<std::uint16_t>(parse_number(flag, value, 1, 65535));
    } else if (flag == "--metrics-port") {
      target.metrics_port = static_cast<std::uint16_t>(parse_number(flag, value, 1, 65535));
    } else if (flag == "--pid") {
      target.pid = parse_number(flag, value, 1, 1u << 30);
    } else {
      other(flag, value);
    }
  }
}

// What a generator with modes that paces (open loop) its publishes against
// the broker or nchan takes from its command line: the mode, the server,
// --server gophermq|nchan, --rate, --publishers, --seconds. A generator's
// options derive from it and set their own default rate.
struct PacedFlags {
  std::string mode;
  BrokerTarget server;
  bool nchan = false;       // --server nchan
  unsigned rate = 0;        // publishes a second, in all
  unsigned publishers = 4;  // connections
  unsigned seconds = 5;     // of publishing
  // Takes `flag` (and its value) when it is one of these; false otherwise.
  bool take(std::string_view flag, std::string_view value);
};

// Reads `--flag value` pairs from argv[2] on (after the mode) into `flags`,
// every one that is not PacedFlags' own to `other(flag, value)`; fail()s
// without --port and --pid.
template <typename Other>
void parse_paced_flags(int argc, char** argv, PacedFlags& flags, Other&& other) {
  parse_flags(argc, argv, 2, flags.server, [&](std::string_view flag, std::string_view value) {
    if (!flags.take(flag, value)) other(flag, value);
  });
  if (flags.server.port == 0 || flags.server.pid == 0) fail("--port and --pid are required");
}

// The clock of a paced (open-loop) run, started when it is made: `rate`
// publishes a second for `seconds`, then at most `drain` more for the last
// deliveries.
class PacedClock {
 public:
  PacedClock(std::uint64_t rate, unsigned seconds, Clock::duration drain)
      : rate_(rate),
        start_(Clock::now()),
        publish_until_(start_ + std::chrono::seconds(seconds)),
        drain_deadline_(publish_until_ + drain) {}
  bool publishing(Clock::time_point now) const { return now < publish_until_; }
  bool drain_over(Clock::time_point now) const { return now > drain_deadline_; }
  // The publishes due by `now`: the rate's share of the time so far.
  std::uint64_t due(Clock::time_point now) const {
    return static_cast<std::uint64_t>(std::chrono::duration<double>(now - start_).count() *
                                      static_cast<double>(rate_));
  }
  // Seconds since the start.
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  std::uint64_t rate_;
  Clock::time_point start_, publish_until_, drain_deadline_;
};

// A blocking connection to 127.0.0.1:port (TCP_NODELAY), every wait on it
// bounded by 10 s.
int connect_to(std::uint16_t port);

// The value of header `name` (lower case) in a response's head, its name
// matched whatever its case, leading spaces cut; empty when absent.
std::string_view header_value(std::string_view head, std::string_view name);

// The length of the first whole response in `bytes` (head and a
// Content-Length body), or nothing while more is needed.
std::optional<std::size_t> whole_response_length(std::string_view bytes);

// A response's status code ("200") and its body (after the head).
std::string_view status_of(std::string_view response);
std::string_view body_of(std::string_view response);

bool is_200(std::string_view response);

// Sends all of `request` on a blocking connection; fail()s if it cannot.
void send_whole(int fd, std::string_view request);

// Sends `request` and reads one whole response.
std::string exchange(int fd, std::string_view request);

// A POST of a JSON body.
std::string post(std::string_view path, std::string_view body);

// Subscribes to `subject` over `fd`; the id. `fields`, when given, are
// more members of the body (`"group":"g","ack_wait_ms":1000`).
std::string subscribe(int fd, const std::string& subject, std::string_view fields = {});

// The value of a metric without labels (`gophermq_waiting_fetches`) from
// the monitoring port's /metrics; fail()s when it is absent.
double metric_value(std::uint16_t metrics_port, std::string_view name);

// utime + stime from a /proc/<pid>[/task/<tid>]/stat file, in seconds.
double stat_cpu_seconds(const std::string& path);

// User + system time of a process and of its children (nginx's workers
// under their master), in seconds.
double server_cpu_seconds(long pid);

// The resident set of a process (VmRSS), in bytes; fail()s when it is gone.
std::uint64_t resident_bytes(long pid);

// --- Non-blocking connections -------------------------------------------------

// A connection driven without blocking.
struct StreamConnection {
  int fd = -1;
  std::string out;       // not yet taken by the kernel
  std::string received;  // read, not yet consumed (a partial response, say)
};

void make_non_blocking(int fd);

// A new epoll instance; fail()s when there is none.
int new_epoll();

// Makes `fd` non-blocking and adds it to `epoll_fd`, edge-triggered for
// reading and writing, with `index` as its event data (data.u64).
void watch(int epoll_fd, int fd, std::uint64_t index);

// Waits at most `timeout_ms` for events on `epoll_fd`; how many came (0
// when a signal interrupted the wait).
int wait_for_events(int epoll_fd, epoll_event* events, int most, int timeout_ms);

// Writes what it can of `connection.out`; the rest waits for EPOLLOUT.
void flush(StreamConnection& connection);

// Reads everything the kernel holds for the connection into
// `connection.received` (edge-triggered epoll reports it once); fail()s with
// "the server closed <what>" when the connection is gone.
void read_available(StreamConnection& connection, std::string_view what = "a connection");

// Calls `on_response(response)` for each whole HTTP response at the front of
// `connection.received`, and drops them from it.
template <typename OnResponse>
void take_responses(StreamConnection& connection, OnResponse&& on_response) {
  const std::string_view bytes = connection.received;
  std::size_t used = 0;
  while (auto length = whole_response_length(bytes.substr(used))) {
    on_response(bytes.substr(used, *length));
    used += *length;
  }
  connection.received.erase(0, used);
}

}  // namespace gophermq::load
