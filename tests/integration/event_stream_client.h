// A client of GET /api/stream (api-extensions.md §8) over a raw socket: it
// reads the answer's head, then takes the chunked body apart as it arrives,
// checking its framing, into Server-Sent Events read as EventSource reads
// them.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "raw_socket.h"

namespace gophermq::testing {

struct StreamEvent {
  std::string id;        // the `id:` field; "" when none
  std::string data;      // the `data:` lines joined with LF
  bool comment = false;  // comment lines alone (a heartbeat)
};

class EventStreamClient {
 public:
  static constexpr std::chrono::milliseconds kTimeout{10'000};

  // `receive_buffer` (SO_RCVBUF, before connecting): non-zero keeps the
  // window the broker sees that small.
  explicit EventStreamClient(int receive_buffer = 0) : receive_buffer_(receive_buffer) {}

  // Sends `GET <target>` (path and query) and reads the answer's head;
  // true on 200 with a chunked body. Otherwise status() and, for a JSON
  // error, its body in error_body().
  // `extra_headers`: whole lines, each ending in CRLF.
  bool Open(std::uint16_t port, std::string_view target, std::string_view version = "HTTP/1.1",
            std::string_view extra_headers = {});
  int status() const { return status_; }
  // The head's field `name` (any case), "" when absent.
  std::string Header(std::string_view name) const;
  const std::string& error_body() const { return error_body_; }
  const std::string& error() const { return error_; }

  // The next event, heartbeats skipped unless `comments`; nullopt when the
  // stream ended, broke, or nothing came within `timeout`.
  std::optional<StreamEvent> Next(std::chrono::milliseconds timeout = kTimeout,
                                  bool comments = false);
  // The next `count` events (fewer when the stream ends or stalls first).
  std::vector<StreamEvent> Take(std::size_t count, std::chrono::milliseconds timeout = kTimeout);
  // Reads on until the connection closes: true when the body ended with
  // its last chunk first (events still unread are dropped).
  bool EndsCleanly(std::chrono::milliseconds timeout = kTimeout);
  // Bytes of events received (the de-chunked body).
  std::size_t body_bytes() const { return body_bytes_; }
  // Chunks of the body received that carried something (each is one batch
  // of events the broker sent together).
  std::size_t data_chunks() const { return data_chunks_; }

  RawSocket& socket() { return socket_; }

 private:
  // One receive, then whatever of it completes chunks into body_. False at
  // EOF, an error, bad framing or the deadline.
  bool Fill(std::chrono::steady_clock::time_point deadline);
  // Takes whole chunks out of raw_; false on bad framing.
  bool Dechunk();

  int receive_buffer_;
  RawSocket socket_;
  int status_ = 0;
  std::string head_;
  std::string error_body_;
  std::string error_;
  std::string raw_;   // received, not yet de-chunked
  std::string body_;  // de-chunked, not yet parsed into events
  std::size_t body_bytes_ = 0;
  std::size_t data_chunks_ = 0;
  bool chunked_ = true;
  bool last_chunk_ = false;  // the 0-size chunk came
  bool closed_ = false;      // EOF came
};

}  // namespace gophermq::testing
