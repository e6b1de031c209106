#include "raw_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
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

RawSocket::End RawSocket::ReadToEnd(milliseconds timeout, std::string* received) {
  const Clock::time_point deadline = Clock::now() + timeout;
  char chunk[64 << 10];
  while (Clock::now() < deadline) {
    const ssize_t got = ::recv(fd_, chunk, sizeof chunk, 0);
    if (got > 0) {
      received->append(chunk, static_cast<std::size_t>(got));
      continue;
    }
    if (got == 0) return End::eof;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      Fail("recv");
      return End::reset;
    }
    pollfd pfd{fd_, POLLIN, 0};
    ::poll(&pfd, 1, RemainingMs(deadline));
  }
  return End::timeout;
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
  error_ = std::string(what) + ": " + std::strerror(errno);
  return false;
}

std::string_view EndName(RawSocket::End end) {
  switch (end) {
    case RawSocket::End::eof:
      return "EOF";
    case RawSocket::End::reset:
      return "reset";
    case RawSocket::End::timeout:
      return "timeout (still open)";
  }
  return "?";
}

}  // namespace gophermq::testing
