// A small blocking HTTP/1.1 client over a raw TCP socket, for black-box tests.
//
// It sends whatever bytes a test gives it (so a test can send malformed or
// pipelined requests) and reads responses one at a time, in order. Every read
// is bounded by the client's timeout: a broker that never answers fails the
// test instead of hanging it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gophermq::testing {

struct HttpResponse {
  std::string version;  // "HTTP/1.1"
  int status = 0;       // 0 when no response could be read
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;  // in received order
  std::string body;                                          // de-chunked
  bool chunked = false;          // the body came with Transfer-Encoding: chunked
  bool close_delimited = false;  // no length: the body ran until the peer closed

  // The first header with this name (case-insensitive), or nullptr.
  const std::string* Header(std::string_view name) const;
  // The header's media type, lower-cased, without parameters ("application/json").
  std::string MediaType() const;
};

class HttpClient {
 public:
  // How long a read or a write waits, unless the client is given a timeout.
  static constexpr std::chrono::milliseconds kDefaultTimeout{5'000};

  explicit HttpClient(std::chrono::milliseconds timeout = kDefaultTimeout);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Connects to 127.0.0.1:port. False (see error()) when it cannot.
  bool Connect(std::uint16_t port);
  void Close();
  bool connected() const { return fd_ >= 0; }

  // Writes all bytes. Safe to call from one other thread while this thread is
  // inside ReadResponse (they share only the socket), which lets a test send a
  // large pipelined batch without both sides blocking on full buffers.
  bool SendRaw(std::string_view bytes);

  // Reads the next response (an interim 1xx response counts as one).
  bool ReadResponse(HttpResponse* response);

  // Sends one request and reads its response.
  bool Request(std::string_view method, std::string_view path, std::string_view body,
               HttpResponse* response, std::string_view extra_headers = {});

  // True when the peer closes the connection (EOF or reset) within the timeout
  // without sending any further byte.
  bool WaitForClose();

  // Why the last call failed, with what was read so far.
  const std::string& error() const { return error_; }

  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }

 private:
  using Deadline = std::chrono::steady_clock::time_point;
  bool Fail(std::string message);
  // Appends at least one received byte to buffer_; false on timeout, EOF or error.
  bool Fill(Deadline deadline);
  bool ReadLine(std::string* line, Deadline deadline);
  bool ReadExactly(std::size_t count, std::string* out, Deadline deadline);
  bool ReadChunkedBody(std::string* body, Deadline deadline);

  int fd_ = -1;
  std::chrono::milliseconds timeout_;
  std::string buffer_;  // received, not yet consumed from pos_
  std::size_t pos_ = 0;
  bool eof_ = false;
  std::string error_;
};

// "METHOD path HTTP/1.1" with Host, the extra headers (each ending in "\r\n"),
// and Content-Length for a non-empty body or any POST/PUT.
std::string FormatRequest(std::string_view method, std::string_view path, std::string_view body,
                          std::string_view extra_headers = {},
                          std::string_view version = "HTTP/1.1");

// A JSON string literal for `text`: quotes, backslashes and control characters
// escaped, every other byte as is.
std::string JsonQuote(std::string_view text);

}  // namespace gophermq::testing
