#include "load_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace gophermq::load {

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, message.c_str());
  std::exit(1);
}

unsigned parse_number(std::string_view flag, std::string_view text, unsigned at_least,
                      unsigned at_most) {
  unsigned value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || value < at_least ||
      value > at_most) {
    fail(std::string(flag) + " must be a whole number from " + std::to_string(at_least) + " to " +
         std::to_string(at_most) + ", got '" + std::string(text) + "'");
  }
  return value;
}

bool PacedFlags::take(std::string_view flag, std::string_view value) {
  if (flag == "--server") {
    nchan = choice(flag, value, {"gophermq", "nchan"}) == 1;
  } else if (flag == "--rate") {
    rate = parse_number(flag, value, 1, 10'000'000);
  } else if (flag == "--publishers") {
    publishers = parse_number(flag, value, 1, 1000);
  } else if (flag == "--seconds") {
    seconds = parse_number(flag, value, 1, 3600);
  } else {
    return false;
  }
  return true;
}

std::size_t choice(std::string_view flag, std::string_view value,
                   std::initializer_list<std::string_view> choices) {
  std::string names;
  std::size_t index = 0;
  for (std::string_view name : choices) {
    if (value == name) return index;
    if (++index > 1) names += index == choices.size() ? " or " : ", ";
    names += name;
  }
  fail(std::string(flag) + " is " + names);
}

std::string read_mode(int argc, char** argv, std::string_view program,
                      std::initializer_list<std::string_view> modes) {
  std::string names;
  for (std::string_view name : modes) names.append(names.empty() ? "" : "|").append(name);
  if (argc < 2) fail("usage: " + std::string(program) + " " + names + " --port P --pid PID [...]");
  const std::string mode = argv[1];
  if (std::find(modes.begin(), modes.end(), mode) == modes.end()) fail("unknown mode " + mode);
  return mode;
}

int connect_to(std::uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(std::string("socket: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    fail("connect to port " + std::to_string(port) + ": " + std::strerror(errno));
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // Every wait on the broker is bounded: a hung broker fails the run.
  timeval limit{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  return fd;
}

std::string_view header_value(std::string_view head, std::string_view name) {
  for (std::size_t line = head.find("\r\n"); line != std::string_view::npos;
       line = head.find("\r\n", line + 2)) {
    std::string_view rest = head.substr(line + 2);
    if (rest.size() <= name.size() || rest[name.size()] != ':') continue;
    bool matches = std::equal(name.begin(), name.end(), rest.begin(), [](char a, char b) {
      return a == (b >= 'A' && b <= 'Z' ? static_cast<char>(b - 'A' + 'a') : b);
    });
    if (!matches) continue;
    std::string_view value = rest.substr(name.size() + 1);
    value = value.substr(0, value.find("\r\n"));
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    return value;
  }
  return {};
}

std::optional<std::size_t> whole_response_length(std::string_view bytes) {
  std::size_t head_end = bytes.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return std::nullopt;
  std::size_t body_bytes = 0;
  // The head with its last line's end, so that every line ends in "\r\n".
  std::string_view length = header_value(bytes.substr(0, head_end + 2), "content-length");
  std::from_chars(length.data(), length.data() + length.size(), body_bytes);
  if (bytes.size() < head_end + 4 + body_bytes) return std::nullopt;
  return head_end + 4 + body_bytes;
}

std::string_view status_of(std::string_view response) { return response.substr(9, 3); }

std::string_view body_of(std::string_view response) {
  return response.substr(response.find("\r\n\r\n") + 4);
}

bool is_200(std::string_view response) { return status_of(response) == "200"; }

void send_whole(int fd, std::string_view request) {
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    fail(std::string("send: ") + std::strerror(errno));
  }
}

std::string exchange(int fd, std::string_view request) {
  send_whole(fd, request);
  std::string bytes;
  char chunk[16384];
  while (true) {
    if (auto length = whole_response_length(bytes)) return bytes.substr(0, *length);
    ssize_t received = recv(fd, chunk, sizeof chunk, 0);
    if (received <= 0) fail("the broker closed a connection or did not answer within 10 s");
    bytes.append(chunk, static_cast<std::size_t>(received));
  }
}

std::string post(std::string_view path, std::string_view body) {
  return "POST " + std::string(path) +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

std::string subscribe(int fd, const std::string& subject, std::string_view fields) {
  std::string body = "{\"subject\":\"" + subject + "\"";
  if (!fields.empty()) body.append(",").append(fields);
  std::string answer = exchange(fd, post("/api/subscribe", body + "}"));
  std::size_t key = answer.find("\"id\":\"");
  if (!is_200(answer) || key == std::string::npos) fail("subscribe failed: " + answer);
  std::size_t start = key + 6;
  return answer.substr(start, answer.find('"', start) - start);
}

double metric_value(std::uint16_t metrics_port, std::string_view name) {
  int fd = connect_to(metrics_port);
  const std::string text =
      exchange(fd, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  close(fd);
  std::string key(1, '\n');
  key.append(name).append(" ");
  const std::size_t at = text.find(key);
  if (at == std::string::npos) fail("the broker reports no " + std::string(name));
  return std::stod(text.substr(at + key.size()));
}

// The fields after the command name (which may hold spaces) start with
// state, field 3; utime and stime are fields 14 and 15.
double stat_cpu_seconds(const std::string& path) {
  std::ifstream file(path);
  std::string stat;
  if (!std::getline(file, stat)) fail("cannot read " + path + ": has the broker ended?");
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string field;
  double ticks = 0;
  for (int number = 3; number <= 15 && fields >> field; ++number) {
    if (number >= 14) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double server_cpu_seconds(long pid) {
  double total = stat_cpu_seconds("/proc/" + std::to_string(pid) + "/stat");
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
    const std::string name = entry.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream file(entry.path() / "stat");
    std::string stat;
    if (!std::getline(file, stat)) continue;  // it ended meanwhile
    // After the command name: state, then the parent's pid.
    const std::size_t after = stat.rfind(')');
    long parent = 0;
    if (after == std::string::npos || after + 4 >= stat.size()) continue;
    const char* start = stat.data() + after + 4;
    std::from_chars(start, stat.data() + stat.size(), parent);
    if (parent == pid) total += stat_cpu_seconds(entry.path() / "stat");
  }
  return total;
}

std::uint64_t resident_bytes(long pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::stoull(line.substr(6)) * 1024;
  }
  fail("no VmRSS for process " + std::to_string(pid) + ": has it ended?");
}

void make_non_blocking(int fd) {
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
    fail(std::string("fcntl: ") + std::strerror(errno));
  }
}

int new_epoll() {
  const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) fail(std::string("epoll_create1: ") + std::strerror(errno));
  return epoll_fd;
}

void watch(int epoll_fd, int fd, std::uint64_t index) {
  make_non_blocking(fd);
  epoll_event event{};
  event.events = EPOLLIN | EPOLLOUT | EPOLLET;
  event.data.u64 = index;
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
    fail(std::string("epoll_ctl: ") + std::strerror(errno));
  }
}

int wait_for_events(int epoll_fd, epoll_event* events, int most, int timeout_ms) {
  const int ready = epoll_wait(epoll_fd, events, most, timeout_ms);
  if (ready < 0 && errno != EINTR) fail(std::string("epoll_wait: ") + std::strerror(errno));
  return ready < 0 ? 0 : ready;
}

void flush(StreamConnection& connection) {
  while (!connection.out.empty()) {
    const ssize_t sent =
        send(connection.fd, connection.out.data(), connection.out.size(), MSG_NOSIGNAL);
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // EPOLLOUT resumes
    if (sent <= 0) fail(std::string("send: ") + std::strerror(errno));
    connection.out.erase(0, static_cast<std::size_t>(sent));
  }
}

void read_available(StreamConnection& connection, std::string_view what) {
  char chunk[65536];
  while (true) {
    const ssize_t got = recv(connection.fd, chunk, sizeof chunk, 0);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) fail("the server closed " + std::string(what));
    connection.received.append(chunk, static_cast<std::size_t>(got));
  }
}

}  // namespace gophermq::load
