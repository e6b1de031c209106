#include "gophermq/http/response_writer.h"

#include <charconv>
#include <cstring>

#include "gophermq/http/cors.h"

namespace gophermq {
namespace {

std::string_view status_line(std::uint16_t status) {
  switch (status) {
    case 200:
      return "HTTP/1.1 200 OK\r\n";
    case 204:
      return "HTTP/1.1 204 No Content\r\n";
    case 400:
      return "HTTP/1.1 400 Bad Request\r\n";
    case 404:
      return "HTTP/1.1 404 Not Found\r\n";
    case 405:
      return "HTTP/1.1 405 Method Not Allowed\r\n";
    case 408:
      return "HTTP/1.1 408 Request Timeout\r\n";
    case 409:
      return "HTTP/1.1 409 Conflict\r\n";
    case 413:
      return "HTTP/1.1 413 Payload Too Large\r\n";
    case 429:
      return "HTTP/1.1 429 Too Many Requests\r\n";
    case 431:
      return "HTTP/1.1 431 Request Header Fields Too Large\r\n";
    case 503:
      return "HTTP/1.1 503 Service Unavailable\r\n";
    default:
      return "HTTP/1.1 500 Internal Server Error\r\n";
  }
}

// HTTP/1.1 keeps connections open unless told; HTTP/1.0 closes them unless
// told. Say only what differs from the version's default.
std::string_view connection_header(const ResponseStyle& style) {
  if (!style.keep_alive) return "Connection: close\r\n";
  if (style.http_1_0) return "Connection: keep-alive\r\n";
  return {};
}

// The table is looked at only for an answer to an allowed Origin: without
// CORS an answer costs one test more.
std::string_view cors_lines(const ResponseStyle& style) {
  return style.cors == 0 ? std::string_view() : cors_origins().allow_origin_lines(style.cors);
}

// Copies `piece` to `at`, returning where it ends. An empty view may have
// no pointer at all, which memcpy must not be given.
char* put(char* at, std::string_view piece) {
  if (!piece.empty()) std::memcpy(at, piece.data(), piece.size());
  return at + piece.size();
}

// A response's head and, unless `body` is empty, its body, written with one
// reservation: a small answer is a handful of copies, the fixed ones inlined.
void append_framed(ByteBuffer& out, std::uint16_t status, std::size_t content_length,
                   const ResponseStyle& style, std::string_view extra_headers,
                   std::string_view body) {
  constexpr std::string_view kContentHeaders = "Content-Type: application/json\r\nContent-Length: ";
  const std::string_view status_text = status_line(status);
  const std::string_view connection = connection_header(style);
  const std::string_view cors = cors_lines(style);
  char digits[24];
  const auto [digits_end, error] = std::to_chars(digits, digits + sizeof digits, content_length);
  const std::string_view length(digits, static_cast<std::size_t>(digits_end - digits));
  const std::size_t size = status_text.size() + kContentHeaders.size() + length.size() + 2 +
                           connection.size() + extra_headers.size() + cors.size() + 2 + body.size();
  char* at = put(out.reserve_tail(size), status_text);
  std::memcpy(at, kContentHeaders.data(), kContentHeaders.size());
  at = put(at + kContentHeaders.size(), length);
  std::memcpy(at, "\r\n", 2);
  at = put(put(put(at + 2, connection), extra_headers), cors);
  std::memcpy(at, "\r\n", 2);
  put(at + 2, body);
  out.commit(size);
}

}  // namespace

void append_response_head(ByteBuffer& out, std::uint16_t status, std::size_t content_length,
                          const ResponseStyle& style, std::string_view extra_headers) {
  append_framed(out, status, content_length, style, extra_headers, {});
}

void append_response(ByteBuffer& out, std::uint16_t status, std::string_view body,
                     const ResponseStyle& style, std::string_view extra_headers) {
  append_framed(out, status, body.size(), style, extra_headers,
                style.head ? std::string_view() : body);
}

FixedAnswer::FixedAnswer(std::uint16_t status, std::string_view body)
    : status_(status), body_(body) {
  ByteBuffer framed;
  append_response(framed, status, body, ResponseStyle{});
  plain_ = framed.view();
}

void append_no_content(ByteBuffer& out, const ResponseStyle& style,
                       std::string_view extra_headers) {
  out.append(status_line(204));
  out.append(connection_header(style));
  out.append(extra_headers);
  out.append(cors_lines(style));
  out.append("\r\n");
}

void append_event_stream_head(ByteBuffer& out, const ResponseStyle& style) {
  // No-cache and no proxy buffering: each event is for now. The connection
  // closes when the stream ends, whatever the request asked.
  out.append(status_line(200));
  out.append(
      "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
  out.append(cors_lines(style));  // an EventSource on another origin reads it
  out.append(style.http_1_0 ? std::string_view("Connection: close\r\n\r\n")
                            : std::string_view("Transfer-Encoding: chunked\r\n\r\n"));
}

void append_event_chunk(ByteBuffer& out, std::string_view events, const ResponseStyle& style) {
  if (events.empty()) return;  // an empty chunk would end the body
  if (style.http_1_0) {
    out.append(events);
    return;
  }
  char size[20];
  const auto [size_end, error] = std::to_chars(size, size + sizeof size, events.size(), 16);
  out.append(size, static_cast<std::size_t>(size_end - size));
  out.append("\r\n");
  out.append(events);
  out.append("\r\n");
}

void append_event_stream_end(ByteBuffer& out, const ResponseStyle& style) {
  if (!style.http_1_0) out.append("0\r\n\r\n");
}

std::uint16_t append_protocol_error(ByteBuffer& out, ParseStatus status) {
  std::uint16_t code = 0;
  std::string_view body;
  switch (status) {
    case ParseStatus::ok:
    case ParseStatus::stopped:
    case ParseStatus::held:
      return 0;
    case ParseStatus::malformed:
      code = 400;
      body = protocol_body::kMalformedRequest;
      break;
    case ParseStatus::headers_too_large:
      code = 431;
      body = protocol_body::kHeadersTooLarge;
      break;
    case ParseStatus::body_too_large:
      code = 413;
      body = protocol_body::kBodyTooLarge;
      break;
  }
  append_response(out, code, body, kClosingStyle);
  return code;
}

}  // namespace gophermq
