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
#include <string_view>

#include "gophermq/byte_buffer.h"

namespace gophermq {

struct HttpRequest {
  llhttp_method_t method;
  std::string_view path;  // without the query string
  const char* body;
  std::size_t body_size;
  std::size_t body_padded_capacity;  // readable bytes from `body` on (>= size + 64)
  bool keep_alive;                   // llhttp's reading of version and Connection
  bool http_1_0;
};

// The limits of what one request may carry, each with its own answer.
struct RequestLimits {
  std::size_t max_header_bytes;  // request line + headers; over it: 431
  std::size_t max_body_bytes;    // over it: 413
};

enum class ParseStatus : std::uint8_t {
  ok,                 // everything fed was consumed; more may come
  stopped,            // a request without keep-alive ended the stream
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

  // Whether a request has begun and not yet completed (for timeouts, close).
  bool in_request() const { return in_message_; }

 private:
  // Longer targets are never ours (404). Room for an absolute-form target
  // (`http://host:port/api/publish`), which proxies send.
  static constexpr std::size_t kMaxPath = 256;

  static int on_message_begin(llhttp_t* parser);
  static int on_url(llhttp_t* parser, const char* at, std::size_t length);
  static int on_header_field(llhttp_t* parser, const char* at, std::size_t length);
  static int on_header_value(llhttp_t* parser, const char* at, std::size_t length);
  static int on_header_value_complete(llhttp_t* parser);
  static int on_headers_complete(llhttp_t* parser);
  static int on_body(llhttp_t* parser, const char* at, std::size_t length);
  static int on_message_complete(llhttp_t* parser);

  // Counts the request head's bytes as they pass, from the last mark up to
  // `end`: spans of the stream rather than callback lengths, so whitespace
  // llhttp skips counts too, and however the stream is cut the total is the
  // same. False once the head is over its limit.
  bool count_head_bytes(const char* at, const char* end);
  int fail(ParseStatus status);

  llhttp_settings_t settings_;
  llhttp_t parser_;
  RequestLimits limits_;
  RequestSink& sink_;
  ParseStatus failure_ = ParseStatus::ok;

  // The chunk being fed: body views into it are valid until feed() returns.
  const char* chunk_padded_end_ = nullptr;

  bool in_message_ = false;
  bool headers_done_ = false;
  std::size_t header_bytes_ = 0;
  const char* head_mark_ = nullptr;  // head bytes before this are counted
  char path_[kMaxPath];
  std::size_t path_size_ = 0;
  bool path_overflow_ = false;
  bool path_done_ = false;  // a '?' ended the path; the query is ignored

  // The one header we act on is Expect. Names and values are collected as
  // they stream in (lower-cased, bounded), so a header split across receive
  // buffers is still recognised.
  char field_[8];
  std::size_t field_size_ = 0;
  char value_[16];
  std::size_t value_size_ = 0;
  bool in_value_ = false;
  bool expects_continue_ = false;

  // The body: a view into the current chunk while it is contiguous there,
  // otherwise (chunked encoding, or spanning chunks) a copy in body_.
  const char* body_view_ = nullptr;
  std::size_t body_view_size_ = 0;
  ByteBuffer body_;
  std::size_t body_size_ = 0;
};

}  // namespace gophermq
