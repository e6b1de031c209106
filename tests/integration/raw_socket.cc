#include "raw_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace gophermq::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

int RemainingMs(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 1000));
}

}  // namespace

bool RawSocket::Connect(std::uint16_t port, int receive_buffer) {
  Close();
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) return Fail("socket");
  if (receive_buffer > 0 &&
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer) != 0) {
    return Fail("SO_RCVBUF");
  }
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 &&
      errno != EINPROGRESS) {
    return Fail("connect");
  }
  pollfd pfd{fd_, POLLOUT, 0};
  if (::poll(&pfd, 1, 5000) != 1) {
    error_ = "connect timed out";
    return false;
  }
  int socket_error = 0;
  socklen_t length = sizeof socket_error;
  ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &socket_error, &length);
  if (socket_error != 0) {
    errno = socket_error;
    return Fail("connect");
  }
  return true;
}

std::size_t RawSocket::Send(std::string_view bytes, milliseconds stall) {
  std::size_t total = 0;
  while (fd_ >= 0 && total < bytes.size()) {
    const ssize_t sent = ::send(fd_, bytes.data() + total, bytes.size() - total, MSG_NOSIGNAL);
    if (sent > 0) {
      total += static_cast<std::size_t>(sent);
      continue;
    }
    if (sent < 0 && errno == EINTR) continue;
    if (sent < 0 && errno == EAGAIN) {
      pollfd pfd{fd_, POLLOUT, 0};
      const int ready = ::poll(&pfd, 1, static_cast<int>(stall.count()));
      if (ready == 0) {
        error_ = "send stalled";
        break;
      }
      continue;  // writable, or an error the next send reports
    }
    Fail("send");
    break;
  }
  return total;
}

bool RawSocket::WaitReadable(milliseconds timeout) {
  pollfd pfd{fd_, POLLIN, 0};
  return ::poll(&pfd, 1, static_cast<int>(timeout.count())) == 1;
}

RawSocket::End RawSocket::ReadToEnd(milliseconds timeout, std::string* received,
                                    std::atomic<std::size_t>* progress) {
  const Clock::time_point deadline = Clock::now() + timeout;
  char chunk[64 << 10];
  while (Clock::now() < deadline) {
    const ssize_t got = ::recv(fd_, chunk, sizeof chunk, 0);
    if (got > 0) {
      received->append(chunk, static_cast<std::size_t>(got));
      if (progress != nullptr) progress->store(received->size());
      continue;
    }
    if (got == 0) return End::eof;
    if (errno == EINTR) continue;
    if (errno == ECONNRESET) return End::reset;
    if (errno != EAGAIN) return End::error;
    pollfd pfd{fd_, POLLIN, 0};
    ::poll(&pfd, 1, RemainingMs(deadline));
  }
  return End::timeout;
}

bool RawSocket::ReadUntil(std::string_view marker, milliseconds timeout, std::string* received) {
  const Clock::time_point deadline = Clock::now() + timeout;
  char chunk[4096];
  while (received->find(marker) == std::string::npos) {
    if (Clock::now() >= deadline) return false;
    const ssize_t got = ::recv(fd_, chunk, sizeof chunk, 0);
    if (got > 0) {
      received->append(chunk, static_cast<std::size_t>(got));
    } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
      return false;
    } else {
      pollfd pfd{fd_, POLLIN, 0};
      ::poll(&pfd, 1, RemainingMs(deadline));
    }
  }
  return true;
}

RawSocket::Read RawSocket::ReadSome(milliseconds timeout, std::string* received) {
  const Clock::time_point deadline = Clock::now() + timeout;
  char chunk[16384];
  while (true) {
    const ssize_t got = ::recv(fd_, chunk, sizeof chunk, 0);
    if (got > 0) {
      received->append(chunk, static_cast<std::size_t>(got));
      return Read::bytes;
    }
    if (got == 0) return Read::eof;
    if (errno != EINTR && errno != EAGAIN) return Read::error;
    if (Clock::now() >= deadline) return Read::timeout;
    pollfd pfd{fd_, POLLIN, 0};
    ::poll(&pfd, 1, RemainingMs(deadline));
  }
}

bool RawSocket::ShutdownWrite() { return ::shutdown(fd_, SHUT_WR) == 0; }

void RawSocket::AbortiveClose() {
  if (fd_ < 0) return;
  const linger abort_now{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &abort_now, sizeof abort_now);
  Close();
}

void RawSocket::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RawSocket::Fail(std::string_view what) {
  error_number_ = errno;
  error_ = std::string(what) + ": " + std::strerror(errno);
  return false;
}

std::string_view EndName(RawSocket::End end) {
  switch (end) {
    case RawSocket::End::eof:
      return "EOF";
    case RawSocket::End::reset:
      return "reset";
    case RawSocket::End::error:
      return "error";
    case RawSocket::End::timeout:
      return "timeout (still open)";
  }
  return "?";
}

SplitStream SplitResponses(std::string_view stream) {
  SplitStream split;
  std::size_t at = 0;
  while (at < stream.size()) {
    const std::size_t head_end = stream.find("\r\n\r\n", at);
    if (head_end == std::string_view::npos) break;
    const std::string_view head = stream.substr(at, head_end - at);
    if (!head.starts_with("HTTP/1.1 ") || head.size() < 12) {
      split.problem = "not a status line: " + std::string(head.substr(0, 80));
      break;
    }
    RawResponse response;
    std::from_chars(head.data() + 9, head.data() + 12, response.status);
    std::size_t length = 0;
    bool has_length = false;
    std::size_t line_start = head.find("\r\n");
    while (line_start != std::string_view::npos && line_start < head.size()) {
      line_start += 2;
      std::size_t line_end = head.find("\r\n", line_start);
      if (line_end == std::string_view::npos) line_end = head.size();
      std::string line(head.substr(line_start, line_end - line_start));
      for (char& c : line) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (line.starts_with("content-length:")) {
        std::string_view digits = std::string_view(line).substr(15);
        while (!digits.empty() && digits.front() == ' ') digits.remove_prefix(1);
        has_length =
            std::from_chars(digits.data(), digits.data() + digits.size(), length).ec == std::errc();
      }
      line_start = line_end;
    }
    if (!has_length && response.status != 204) {
      split.problem =
          "a response without Content-Length, status " + std::to_string(response.status);
      break;
    }
    const std::size_t body_start = head_end + 4;
    if (stream.size() - body_start < length) break;  // cut short
    response.body = std::string(stream.substr(body_start, length));
    split.responses.push_back(std::move(response));
    at = body_start + length;
  }
  split.rest = stream.size() - at;
  return split;
}

}  // namespace gophermq::testing
