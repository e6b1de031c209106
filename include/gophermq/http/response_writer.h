// Writing HTTP/1.1 responses (status line, headers, body), and the answers
// the HTTP layer gives on its own: to a request it could not read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "gophermq/byte_buffer.h"
#include "gophermq/http/request_parser.h"

namespace gophermq {

// How a response is framed, decided when its request was read (a cross-shard
// request carries it to the owner and back, so it stays a few bytes).
struct ResponseStyle {
  bool keep_alive = true;
  bool http_1_0 = false;
  bool head = false;  // HEAD: headers only
  // The request's Origin is allowed (CorsOrigins::match()): 0 for none, else
  // which allowed origin, whose Access-Control-Allow-Origin the answer carries.
  std::uint8_t cors = 0;
};
// The framing of an answer after which the connection closes.
inline constexpr ResponseStyle kClosingStyle{false, false, false, 0};

// Sent when a client waits on `Expect: 100-continue` before its body.
inline constexpr std::string_view kContinueResponse = "HTTP/1.1 100 Continue\r\n\r\n";

// The bodies of the answers below the API: the request never reached it.
namespace protocol_body {
inline constexpr std::string_view kMalformedRequest = "{\"message\":\"malformed request\"}\n";
inline constexpr std::string_view kBodyTooLarge = "{\"message\":\"request body too large\"}\n";
inline constexpr std::string_view kHeadersTooLarge =
    "{\"message\":\"request headers too large\"}\n";
inline constexpr std::string_view kRequestTimeout = "{\"message\":\"request timeout\"}\n";
inline constexpr std::string_view kTooManyConnections = "{\"message\":\"too many connections\"}\n";
}  // namespace protocol_body

// Status line and headers for a JSON body of `content_length` bytes; the
// caller appends the body (unless style.head).
void append_response_head(ByteBuffer& out, std::uint16_t status, std::size_t content_length,
                          const ResponseStyle& style, std::string_view extra_headers = {});

// A whole response with a fixed JSON body.
void append_response(ByteBuffer& out, std::uint16_t status, std::string_view body,
                     const ResponseStyle& style, std::string_view extra_headers = {});

// The framing nearly every request asks for: HTTP/1.1, kept alive, not HEAD,
// no CORS.
inline bool is_plain(const ResponseStyle& style) {
  return style.keep_alive && !style.http_1_0 && !style.head && style.cors == 0;
}

// An answer whose status and body never change (a publish's 200 or 429),
// framed once in the plain style: appending it is then one copy, where
// append_response() makes seven. Any other style is framed as
// append_response() frames it. `body` must outlive it (the bodies are
// constants).
class FixedAnswer {
 public:
  FixedAnswer(std::uint16_t status, std::string_view body);
  void append_to(ByteBuffer& out, const ResponseStyle& style) const {
    if (is_plain(style)) {
      out.append(plain_);
    } else {
      append_response(out, status_, body_, style);
    }
  }

 private:
  std::uint16_t status_;
  std::string_view body_;
  std::string plain_;
};

// 204 No Content: no body, no Content-Type, no Content-Length.
void append_no_content(ByteBuffer& out, const ResponseStyle& style,
                       std::string_view extra_headers = {});

// Server-Sent Events (api-extensions.md §8): a 200 whose body is open-ended,
// chunked on HTTP/1.1 (on HTTP/1.0 the body ends with the connection).
void append_event_stream_head(ByteBuffer& out, const ResponseStyle& style);
// Events (whole ones) as the next piece of an event stream's body.
void append_event_chunk(ByteBuffer& out, std::string_view events, const ResponseStyle& style);
// The end of an event stream's body (nothing on HTTP/1.0).
void append_event_stream_end(ByteBuffer& out, const ResponseStyle& style);

// The answer to a stream the parser gave up on (400, 413 or 431), after
// which the connection closes: nothing past a protocol error can be trusted.
// Returns its status; 0 (and nothing written) for a status that is no error.
std::uint16_t append_protocol_error(ByteBuffer& out, ParseStatus status);

}  // namespace gophermq
