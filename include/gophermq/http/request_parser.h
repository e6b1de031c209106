// Parsing HTTP/1.1 requests off a connection's byte stream with llhttp.
//
// Requests are handed over zero-copy where they can be: a body that arrives
// whole inside one receive buffer is passed as a view into that buffer. Only
// what spans receive buffers (a partial request at a buffer's end, a chunked
// body) is copied into the parser's own storage.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "gophermq/byte_buffer.h"

namespace gophermq {

struct HttpRequest {
  llhttp_method_t method;
  std::string_view path;   // without the query string
  std::string_view query;  // after the '?', as sent (empty when none)
  const char* body;
  std::size_t body_size;
  std::size_t body_padded_capacity;  // readable bytes from `body` on (>= size + 64)
  bool chunked = false;              // the body came in chunks (Transfer-Encoding)
  bool keep_alive;                   // llhttp's reading of version and Connection
  bool http_1_0;
  // The Origin header, lower-cased, when it is read (see
  // RequestLimits::max_origin_bytes) and sent once; otherwise empty. A value
  // longer than the limit is cut one byte past it, so it equals no origin
  // within the limit.
  std::string_view origin;
};

// The limits of what one request may carry, each with its own answer.
struct RequestLimits {
  std::size_t max_header_bytes;  // request line + headers; over it: 431
  std::size_t max_body_bytes;    // over it: 413
  // The Origin bytes worth keeping (the longest origin CORS allows); 0: the
  // header is not looked for (CORS is off).
  std::size_t max_origin_bytes = 0;
};

enum class ParseStatus : std::uint8_t {
  ok,                 // everything fed was consumed; more may come
  stopped,            // a request without keep-alive ended the stream
  held,               // the sink asked to read no further for now (see hold())
  malformed,          // 400, then close
  headers_too_large,  // 431, then close
  body_too_large,     // 413, then close
};

// Receives what the parser finds, in stream order.
class RequestSink {
 public:
  virtual void on_request(const HttpRequest& request) = 0;
  // The client sent `Expect: 100-continue` and waits before sending its body.
  virtual void on_continue_expected() = 0;

 protected:
  ~RequestSink() = default;
};

class RequestParser {
 public:
  RequestParser(const RequestLimits& limits, RequestSink& sink);
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Parses `size` bytes; `padded_capacity` is how many bytes from `data` on
  // may be read (the buffer's padding included). The bytes need not outlive
  // the call: a partial request is copied before it returns.
  ParseStatus feed(const char* data, std::size_t size, std::size_t padded_capacity);

  // Back to the start of a stream, for a new connection: a parser that met
  // an error or a final request stays stopped until reset.
  void reset();

  // Back-pressure. Called by the sink while it takes a request: the parser
  // stops right after that request, and feed() returns `held`; the bytes
  // from held_at() to the end of that feed are not parsed, and are the
  // caller's to keep. resume() lets the next feed go on from there.
  void hold() { hold_requested_ = true; }
  const char* held_at() const { return held_at_; }
  void resume();

  // Whether a request has begun and not yet completed (for timeouts, close).
  bool in_request() const { return in_message_; }

 private:
  // Longer targets are never ours (404). Room for an absolute-form target
  // (`http://host:port/api/publish`), which proxies send.
  static constexpr std::size_t kMaxPath = 256;

  static int on_message_begin(llhttp_t* parser);
  static int on_method(llhttp_t* parser, const char* at, std::size_t length);
  static int on_url(llhttp_t* parser, const char* at, std::size_t length);
  static int on_header_field(llhttp_t* parser, const char* at, std::size_t length);
  static int on_header_field_complete(llhttp_t* parser);
  static int on_header_value(llhttp_t* parser, const char* at, std::size_t length);
  static int on_header_value_complete(llhttp_t* parser);
  static int on_headers_complete(llhttp_t* parser);
  static int on_body(llhttp_t* parser, const char* at, std::size_t length);
  static int on_message_complete(llhttp_t* parser);

  // One set of callbacks for every parser (llhttp keeps a pointer to it).
  static const llhttp_settings_t kSettings;

  // The bytes llhttp consumes without reporting them in a span (the line
  // ends of head and chunked body above all) are checked here, from the
  // mark on: at each span, at the end of each feed, and up to the blank line
  // that ends a head or a chunked body. Positions in the stream rather than
  // callback lengths, so however the stream is cut the same bytes are
  // checked and counted.
  //
  // The first byte in [from, to) that breaks a rule, or nullptr.
  const char* check_unreported(const char* from, const char* to);
  // Checks and passes the bytes up to just past the next blank line, which
  // llhttp has consumed when it reports the end of a head or chunked body.
  ParseStatus pass_blank_line();
  // Moves the mark to `to`, counting the bytes passed while in a head.
  ParseStatus advance(const char* to);
  // The answer to a framing error at `at`, or at a byte before it that breaks
  // a rule: 431 if the head is over its limit before that, as it is when the
  // stream is cut there; 400 otherwise.
  ParseStatus malformed_at(const char* at);
  // The answer to an error llhttp found itself.
  ParseStatus refused_by_llhttp();
  // A span of the head or trailers: checks what llhttp skipped before it.
  ParseStatus take_span(const char* at, std::size_t length);
  int fail(ParseStatus status);
  std::span<char> origin_buffer() { return {origin_.get(), limits_.max_origin_bytes + 1}; }

  enum class Header : std::uint8_t { other, host, expect, transfer_encoding, origin };

  llhttp_t parser_;
  RequestLimits limits_;
  RequestSink& sink_;
  ParseStatus failure_ = ParseStatus::ok;
  bool hold_requested_ = false;
  const char* held_at_ = nullptr;

  // The chunk being fed: body views into it are valid until feed() returns.
  const char* chunk_end_ = nullptr;
  const char* chunk_padded_end_ = nullptr;
  const char* mark_ = nullptr;  // bytes of this chunk before it are checked

  // Where the check of unreported bytes stands: a LineState (request_parser.cc).
  std::uint8_t line_;

  bool in_message_ = false;
  bool in_head_ = false;  // from the method to the blank line after the headers
  std::size_t header_bytes_ = 0;
  char path_[kMaxPath];
  std::size_t path_size_ = 0;
  bool path_overflow_ = false;
  bool path_done_ = false;  // a '?' or '#' ended the path
  bool in_query_ = false;   // the target's bytes now are its query
  // The query, copied as it streams in (it is bounded by the head's limit);
  // only a GET of /api/stream reads it.
  ByteBuffer query_;

  // The headers we act on or check. Names and values are collected as they
  // stream in (bounded; values lower-cased), so a header split across
  // receive buffers is still recognised. field_size_ is the length of the
  // name being reported, whole (0 once it has ended); field_at_ its start,
  // in the chunk being parsed or, once that chunk has ended, in field_.
  char field_[24];
  const char* field_at_ = field_;
  std::size_t field_size_ = 0;
  char value_[16];
  std::size_t value_size_ = 0;
  Header header_ = Header::other;
  bool expects_continue_ = false;
  std::size_t hosts_ = 0;  // Host fields
  std::size_t transfer_encodings_ = 0;
  bool chunked_coding_ = false;  // the last Transfer-Encoding said exactly "chunked"
  // The Origin header's value, collected like value_ into a buffer of
  // limits_.max_origin_bytes + 1 (none without CORS: no allocation, no look).
  std::unique_ptr<char[]> origin_;
  std::size_t origin_size_ = 0;
  std::size_t origins_ = 0;  // Origin fields

  // The body: a view into the current chunk while it is contiguous there,
  // otherwise (chunked encoding, or spanning chunks) a copy in body_.
  const char* body_view_ = nullptr;
  std::size_t body_view_size_ = 0;
  ByteBuffer body_;
  std::size_t body_size_ = 0;
  // A chunked body's framing: its size lines with their extensions, the
  // line ends after its chunks, its trailers. At most the head's limit plus
  // kFramingPerByte bytes for each byte of data (a body of one-byte chunks
  // takes five), so a client cannot stream endless extension or trailer
  // bytes through a shard where a body of them would be refused. The room
  // grows only with data reported, so the bound does not depend on where
  // receive buffers end.
  static constexpr std::size_t kFramingPerByte = 8;
  // Adds `bytes` of framing; body_too_large past the room.
  [[gnu::noinline]] ParseStatus count_framing(std::size_t bytes);
  std::size_t framing_bytes_ = 0;
};

}  // namespace gophermq
