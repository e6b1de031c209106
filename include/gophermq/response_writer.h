// Writing HTTP/1.1 responses (status line, headers, body) into a
// connection's output buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gophermq/byte_buffer.h"
#include "gophermq/shard_call.h"

namespace gophermq {

// Sent when a client waits on `Expect: 100-continue` before its body.
inline constexpr std::string_view kContinueResponse = "HTTP/1.1 100 Continue\r\n\r\n";

// Status line and headers for a JSON body of `content_length` bytes; the
// caller appends the body (unless style.head).
void append_response_head(ByteBuffer& out, std::uint16_t status, std::size_t content_length,
                          const ResponseStyle& style, std::string_view extra_headers = {});

// A whole response with a fixed JSON body.
void append_response(ByteBuffer& out, std::uint16_t status, std::string_view body,
                     const ResponseStyle& style, std::string_view extra_headers = {});

// 204 No Content: no body, no Content-Type, no Content-Length.
void append_no_content(ByteBuffer& out, const ResponseStyle& style);

}  // namespace gophermq
