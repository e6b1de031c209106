// One client connection on a shard: its HTTP parser, and its responses kept
// in request order.
//
// Ordering: a pipelined request for a subject owned by another shard is
// answered later than the local request after it. Responses therefore go
// straight to the output only while nothing earlier is outstanding; otherwise
// each waits in a slot until those before it are done.
#pragma once

#include <cstdint>
#include <deque>

#include "gophermq/byte_buffer.h"
#include "gophermq/request_parser.h"

namespace gophermq {

class Connection;

// Where complete requests go (the shard).
class RequestHandler {
 public:
  virtual void handle(Connection& connection, const HttpRequest& request) = 0;

 protected:
  ~RequestHandler() = default;
};

class Connection final : public RequestSink {
 public:
  Connection(std::uint32_t index, const RequestLimits& limits, RequestHandler& handler);

  std::uint32_t index() const { return index_; }
  std::uint32_t generation() const { return generation_; }

  // Takes a freshly accepted socket (the object is reused across sockets).
  void open(int fd);
  // Forgets the socket once it is closed and nothing refers to it; bumps the
  // generation so late answers addressed to the old socket are recognised.
  void reset();

  ParseStatus feed(const char* data, std::size_t size, std::size_t padded_capacity) {
    return parser_.feed(data, size, padded_capacity);
  }
  // A request has begun arriving and is not complete yet.
  bool in_request() const { return parser_.in_request(); }
  std::uint64_t requests_read() const { return requests_read_; }

  // --- Responses, in request order ---
  // The buffer for a response that is complete now.
  ByteBuffer& response_buffer();
  // A place for a response that will come later; returns its sequence.
  std::uint64_t reserve_response();
  // The buffer for the reserved response `sequence`; call finish_response()
  // once it is written.
  ByteBuffer& reserved_buffer(std::uint64_t sequence);
  void finish_response(std::uint64_t sequence);
  // Answers reserved and not yet finished.
  std::size_t responses_outstanding() const { return slots_.size(); }

  // --- Output: `output` fills while `sending` is on the wire ---
  ByteBuffer output;
  ByteBuffer sending;
  std::size_t sending_offset = 0;
  // Answers in each: the unsent-bytes bound is for answers piling up unread,
  // never for one large answer going out.
  std::uint32_t answers_in_output = 0;
  std::uint32_t answers_sending = 0;

  // --- I/O state, kept by the shard ---
  int fd = -1;
  bool receive_armed = false;    // a receive is in the kernel
  bool send_in_flight = false;   // a send is in the kernel
  bool close_submitted = false;  // the socket's close is in the kernel
  bool queued_for_send = false;  // on the shard's list of connections to flush
  // No more requests will be read: the peer closed, a request ended
  // keep-alive, or a protocol error. The socket closes once every answer is
  // sent.
  bool closing = false;
  // Answers can no longer reach the client (send failed, or it was cut off
  // for not reading): they are dropped instead of sent.
  bool discard_output = false;
  // The client closed its side, or the socket failed: nothing more to read.
  bool peer_closed = false;
  // Our FIN is sent; input is read and dropped until the client closes.
  bool write_shut = false;
  std::uint64_t linger_started_ms = 0;
  // Receive buffer when the kernel has no provided-buffer rings.
  ByteBuffer receive_buffer;

  // --- Timing, on the shard's loop-turn clock (milliseconds) ---
  std::uint64_t last_activity_ms = 0;    // last bytes in, or out
  std::uint64_t request_started_ms = 0;  // the request now arriving; 0 when none

 private:
  void on_request(const HttpRequest& request) override;
  void on_continue_expected() override;
  void release_finished_slots();

  struct Slot {
    bool finished = false;
    ByteBuffer bytes;
  };

  std::uint32_t index_;
  std::uint32_t generation_ = 0;
  RequestHandler& handler_;
  RequestParser parser_;
  std::deque<Slot> slots_;
  std::uint64_t first_slot_sequence_ = 0;
  std::uint64_t requests_read_ = 0;
};

}  // namespace gophermq
