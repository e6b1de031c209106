// A raw non-blocking TCP socket, for what HttpClient hides: socket options set
// before connecting, sends that give up when the peer stops reading,
// half-close, abortive close, and reading until the peer closes; and the
// splitting of what was read into responses, where a response cut short is
// seen as exactly that.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gophermq::testing {

// One thread may send while another reads (Send and ReadToEnd share no state).
class RawSocket {
 public:
  enum class End { eof, reset, error, timeout };

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

  // Appends everything received to `received` until EOF, a reset, another
  // error or the timeout, and says which ended it. `progress`, when given,
  // follows received->size() for other threads.
  End ReadToEnd(std::chrono::milliseconds timeout, std::string* received,
                std::atomic<std::size_t>* progress = nullptr);

  // Appends what is received to `received` until it holds `marker`; false at
  // EOF, an error or the timeout.
  bool ReadUntil(std::string_view marker, std::chrono::milliseconds timeout, std::string* received);
  // Appends what one receive brings to `received`, waiting up to `timeout`
  // for it; says whether bytes came, or what came instead.
  enum class Read { bytes, eof, error, timeout };
  Read ReadSome(std::chrono::milliseconds timeout, std::string* received);

  bool ShutdownWrite();
  // Closes with SO_LINGER {1, 0}: the kernel sends a RST instead of a FIN.
  void AbortiveClose();
  void Close();

  // The last failure of Connect or Send, in words and as an errno value.
  const std::string& error() const { return error_; }
  int error_number() const { return error_number_; }

 private:
  bool Fail(std::string_view what);

  int fd_ = -1;
  std::string error_;
  int error_number_ = 0;
};

std::string_view EndName(RawSocket::End end);

struct RawResponse {
  int status = 0;
  std::string body;
};

// A byte stream split into whole Content-Length-framed HTTP/1.1 responses.
struct SplitStream {
  std::vector<RawResponse> responses;
  std::size_t rest = 0;  // bytes after the last whole response (one cut short)
  std::string problem;   // set when the stream is not HTTP/1.1 responses at all
};

SplitStream SplitResponses(std::string_view stream);

}  // namespace gophermq::testing
