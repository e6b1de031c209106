#include "gophermq/http/response_writer.h"

#include <charconv>

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

}  // namespace

void append_response_head(ByteBuffer& out, std::uint16_t status, std::size_t content_length,
                          const ResponseStyle& style, std::string_view extra_headers) {
  out.append(status_line(status));
  out.append("Content-Type: application/json\r\nContent-Length: ");
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, content_length);
  out.append(digits, static_cast<std::size_t>(end - digits));
  out.append("\r\n");
  out.append(connection_header(style));
  out.append(extra_headers);
  out.append("\r\n");
}

void append_response(ByteBuffer& out, std::uint16_t status, std::string_view body,
                     const ResponseStyle& style, std::string_view extra_headers) {
  append_response_head(out, status, body.size(), style, extra_headers);
  if (!style.head) out.append(body);
}

void append_no_content(ByteBuffer& out, const ResponseStyle& style) {
  out.append(status_line(204));
  out.append(connection_header(style));
  out.append("\r\n");
}

std::uint16_t append_protocol_error(ByteBuffer& out, ParseStatus status) {
  std::uint16_t code = 0;
  std::string_view body;
  switch (status) {
    case ParseStatus::ok:
    case ParseStatus::stopped:
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
