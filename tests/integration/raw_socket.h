// A raw non-blocking TCP socket, for what HttpClient hides: socket options set
// before connecting, sends that give up when the peer stops reading,
// half-close, abortive close, and reading until the peer closes.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace gophermq::testing {

class RawSocket {
 public:
  enum class End { eof, reset, timeout };

  RawSocket() = default;
  ~RawSocket() { Close(); }
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;

  // Connects to 127.0.0.1:port. A non-zero `receive_buffer` is set with
  // SO_RCVBUF before connecting, so the window the peer sees stays that small.
  bool Connect(std::uint16_t port, int receive_buffer = 0);

  // Sends `bytes` until all are sent, the send fails, or the peer takes
  // nothing for `stall`. Returns how many bytes were sent.
  std::size_t Send(std::string_view bytes,
                   std::chrono::milliseconds stall = std::chrono::seconds(5));
  bool SendAll(std::string_view bytes) { return Send(bytes) == bytes.size(); }

  // Waits until a byte (or EOF) can be read.
  bool WaitReadable(std::chrono::milliseconds timeout);

  // Appends everything received to `received` until EOF, an error (a reset)
  // or the timeout, and says which ended it.
  End ReadToEnd(std::chrono::milliseconds timeout, std::string* received);

  bool ShutdownWrite();
  // Closes with SO_LINGER {1, 0}: the kernel sends a RST instead of a FIN.
  void AbortiveClose();
  void Close();

  const std::string& error() const { return error_; }

 private:
  bool Fail(std::string_view what);

  int fd_ = -1;
  std::string error_;
};

std::string_view EndName(RawSocket::End end);

}  // namespace gophermq::testing
