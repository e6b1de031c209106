// The HTTP side of one client connection: its parser, and its answers kept
// in request order.
//
// Ordering: a pipelined request for a subject owned by another shard is
// answered later than the local request after it. Answers therefore go
// straight to the output only while nothing earlier is outstanding;
// otherwise each waits in a slot until those before it are done.
#pragma once

#include <cstdint>
#include <deque>

#include "gophermq/byte_buffer.h"
#include "gophermq/http/request_parser.h"
#include "gophermq/net/connection.h"

namespace gophermq {

class HttpConnection;

// Where complete requests go (the shard).
class RequestHandler {
 public:
  virtual void handle(HttpConnection& connection, const HttpRequest& request) = 0;

 protected:
  ~RequestHandler() = default;
};

// Where the API writes its answers, in request order, without knowing about
// connections (HttpConnection is one).
class Answers {
 public:
  // The buffer for an answer that is complete now.
  virtual ByteBuffer& answer_now() = 0;
  // A reserved answer (see HttpConnection::reserve_answer()): written into
  // its buffer and then finished, or handed over whole.
  virtual ByteBuffer& reserved_buffer(std::uint64_t sequence) = 0;
  virtual void finish_answer(std::uint64_t sequence) = 0;
  // Moved, not copied, into the output (unless small): a large fetch answer
  // framed on another shard reaches the socket as it is, gathered after
  // whatever is before it.
  virtual void hand_over(std::uint64_t sequence, ByteBuffer&& whole_answer) = 0;

 protected:
  ~Answers() = default;
};

class HttpConnection final : public RequestSink, public Answers {
 public:
  // `out` is the socket's outgoing bytes, where finished answers go.
  HttpConnection(std::uint32_t index, const RequestLimits& limits, RequestHandler& handler,
                 OutgoingBytes& out);
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // The connection table's slot this belongs to.
  std::uint32_t index() const { return index_; }

  // Back to the start of a stream, for a new socket in this slot.
  void reset();

  ParseStatus feed(const char* data, std::size_t size, std::size_t padded_capacity) {
    return parser_.feed(data, size, padded_capacity);
  }
  // A request has begun arriving and is not complete yet.
  bool in_request() const { return parser_.in_request(); }
  std::uint64_t requests_read() const { return requests_read_; }

  // --- Answers, in request order ---
  // The buffer for an answer that is complete now.
  ByteBuffer& answer_now() override;
  // A place for an answer that will come later; returns its sequence.
  std::uint64_t reserve_answer();
  ByteBuffer& reserved_buffer(std::uint64_t sequence) override;
  void finish_answer(std::uint64_t sequence) override;
  void hand_over(std::uint64_t sequence, ByteBuffer&& whole_answer) override;
  // Answers reserved and not yet finished.
  std::size_t answers_outstanding() const { return slots_.size(); }

 private:
  void on_request(const HttpRequest& request) override;
  void on_continue_expected() override;
  void release_finished_slots();
  // Moves `answer` into the output (copies it there when small).
  void emit(ByteBuffer& answer);

  struct Slot {
    bool finished = false;
    ByteBuffer bytes;
  };

  std::uint32_t index_;
  RequestHandler& handler_;
  OutgoingBytes& out_;
  RequestParser parser_;
  std::deque<Slot> slots_;
  std::uint64_t first_slot_sequence_ = 0;
  std::uint64_t requests_read_ = 0;
};

}  // namespace gophermq
