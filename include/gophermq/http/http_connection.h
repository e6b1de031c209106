// The HTTP side of one client connection: its parser, its answers kept in
// request order, and the back-pressure that keeps what it owes bounded.
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

// Back-pressure per connection. A client's requests are read only while the
// connection owes little: past either bound its requests wait unread (TCP
// then slows the client down) until it has taken enough of its answers, down
// to half of each bound. Nothing is cut and nothing dropped: answers whose
// messages were taken from their queues always go out.
struct PipelineLimits {
  std::size_t max_unsent_bytes;  // answers' bytes not yet taken by the kernel
  std::size_t max_answers_owed;  // requests read and not yet sent an answer
};

class HttpConnection;

// An answer may always carry this much (or one message, if larger), however
// much is owed: a consumer of small messages still gets them in batches.
inline constexpr std::uint64_t kLeastAnswerRoom = 64 << 10;

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
  // Message bytes the next answer may carry (a fetch's; the rest stays
  // queued) without the shard's connections together owing more than their
  // bound. Each connection's own bound (PipelineLimits) holds its requests
  // back instead, so one answer past it still goes whole.
  virtual std::uint64_t answer_room() const = 0;

 protected:
  ~Answers() = default;
};

class HttpConnection final : public RequestSink, public Answers {
 public:
  // `out` is the socket's outgoing bytes, where finished answers go;
  // `shard_unsent` what every connection of the shard owes together.
  HttpConnection(std::uint32_t index, const RequestLimits& limits, const PipelineLimits& pipeline,
                 const UnsentTotal& shard_unsent, RequestHandler& handler, OutgoingBytes& out);
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // The connection table's slot this belongs to.
  std::uint32_t index() const { return index_; }

  // Back to the start of a stream, for a new socket in this slot.
  void reset();

  // Bytes received. While input is held they are kept, unread, for resume().
  ParseStatus feed(const char* data, std::size_t size, std::size_t padded_capacity);
  // Requests are not being read: the connection owes too much (see
  // PipelineLimits). The connection should stop receiving until resume()
  // has read everything held back.
  bool input_held() const { return input_held_; }
  // Bytes received while held, kept unread.
  std::size_t held_bytes() const { return held_input_.size(); }
  // The client has taken answers: reads what was held back, if the
  // connection now owes little enough. The status is that of the parse.
  ParseStatus resume();
  // Reads no request after the one being handled until the client takes an
  // answer, whatever the connection owes: for pressure from elsewhere (the
  // shard's calls to other shards backing up).
  void hold_input() { parser_.hold(); }
  // A request has begun arriving and is not complete yet.
  bool in_request() const { return parser_.in_request(); }
  std::uint64_t requests_read() const { return requests_read_; }

  // --- Answers, in request order ---
  // The buffer for an answer that is complete now.
  ByteBuffer& answer_now() override;
  // A place for an answer that will come later; returns its sequence.
  // `reserved_bytes` (as large as the answer may be) count as owed until it
  // comes, so answers on their way count against the bound too: what a
  // connection owes stays within max_unsent_bytes and one more answer.
  std::uint64_t reserve_answer(std::uint64_t reserved_bytes = 0);
  ByteBuffer& reserved_buffer(std::uint64_t sequence) override;
  void finish_answer(std::uint64_t sequence) override;
  void hand_over(std::uint64_t sequence, ByteBuffer&& whole_answer) override;
  std::uint64_t answer_room() const override;
  // Answers reserved and not yet finished.
  std::size_t answers_outstanding() const { return slots_.size(); }

  // An event stream's request (api-extensions.md §8), whose answer was
  // reserved as `sequence`: nothing after it is read, and its answer goes
  // out piece by piece as it is written into reserved_buffer(), in its turn
  // after the answers before it, until finish_answer() ends it.
  void begin_event_stream(std::uint64_t sequence);

 private:
  void on_request(const HttpRequest& request) override;
  void on_continue_expected() override;
  // Parses, and notes a hold the parser stopped for.
  ParseStatus read(const char* data, std::size_t size, std::size_t padded_capacity);
  // Answers read and not yet handed to the kernel, 100 Continue aside.
  std::size_t answers_owed() const {
    return slots_.size() + out_.answers_in_output + out_.answers_sending;
  }
  // Bytes owed: unsent, and reserved for answers still to come.
  std::uint64_t bytes_owed() const { return out_.owed(); }
  // The reserved answer `sequence` has come: its reservation ends.
  void release_reservation(std::uint64_t sequence);
  void release_finished_slots();
  // Moves `answer` into the output (copies it there when small).
  void emit(ByteBuffer& answer);

  struct Slot {
    bool finished = false;
    ByteBuffer bytes;
    bool interim = false;    // a 100 Continue, which is not the request's answer
    bool streaming = false;  // an event stream: sent as written, once it is first
    std::uint64_t reserved_bytes = 0;
  };

  std::uint32_t index_;
  PipelineLimits pipeline_;
  const UnsentTotal& shard_unsent_;
  RequestHandler& handler_;
  OutgoingBytes& out_;
  RequestParser parser_;
  std::deque<Slot> slots_;
  std::uint64_t first_slot_sequence_ = 0;
  std::uint64_t requests_read_ = 0;
  bool input_held_ = false;
  bool event_stream_ = false;  // see begin_event_stream(): held for good
  // What arrived after the request the parser stopped at, unread.
  ByteBuffer held_input_;
};

}  // namespace gophermq
