// What the load generators in loadtest/ share: blocking HTTP/1.1 over
// loopback for set-up and metrics, the broker's CPU time from /proc, and
// flag parsing. Not for the measured load itself, which each generator
// drives its own way (non-blocking, over epoll).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gophermq::load {

// Prints "<program>: <message>" and exits 1.
[[noreturn]] void fail(const std::string& message);

// `text` as a whole number in [at_least, at_most], or fail() naming `flag`.
unsigned parse_number(std::string_view flag, std::string_view text, unsigned at_least,
                      unsigned at_most);

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

// A blocking connection to 127.0.0.1:port (TCP_NODELAY), every wait on it
// bounded by 10 s.
int connect_to(std::uint16_t port);

// The value of header `name` (lower case) in a response's head, its name
// matched whatever its case, leading spaces cut; empty when absent.
std::string_view header_value(std::string_view head, std::string_view name);

// The length of the first whole response in `bytes` (head and a
// Content-Length body), or nothing while more is needed.
std::optional<std::size_t> whole_response_length(std::string_view bytes);

bool is_200(std::string_view response);

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

}  // namespace gophermq::load
