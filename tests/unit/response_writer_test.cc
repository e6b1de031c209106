// FixedAnswer: an answer framed once must be, in every style, the bytes
// append_response() writes for it.
#include "gophermq/http/response_writer.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "gophermq/byte_buffer.h"
#include "gophermq/http/cors.h"

namespace gophermq {
namespace {

constexpr std::string_view kBody = "{\"status\":\"ok\"}\n";

TEST(FixedAnswer, ThePlainStyleIsTheWholeAnswerAfterWhatWasThere) {
  const FixedAnswer answer(429, kBody);
  ByteBuffer out;
  out.append("earlier");
  answer.append_to(out, ResponseStyle{});
  answer.append_to(out, ResponseStyle{});
  const std::string one =
      "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
      "Content-Length: 16\r\n\r\n{\"status\":\"ok\"}\n";
  EXPECT_EQ(out.view(), "earlier" + one + one);
}

TEST(FixedAnswer, EveryStyleIsFramedAsAppendResponseFramesIt) {
  // With an origin allowed, so that the CORS lines show where they belong.
  install_cors_origins(CorsOrigins({"https://app.example.com"}));
  for (int bits = 0; bits < 16; ++bits) {
    const ResponseStyle style{(bits & 1) != 0, (bits & 2) != 0, (bits & 4) != 0,
                              static_cast<std::uint8_t>((bits & 8) != 0 ? 1 : 0)};
    ByteBuffer fixed;
    FixedAnswer(200, kBody).append_to(fixed, style);
    ByteBuffer framed;
    append_response(framed, 200, kBody, style);
    EXPECT_EQ(fixed.view(), framed.view()) << "style bits " << bits;
    EXPECT_EQ(is_plain(style), bits == 1) << "style bits " << bits;
  }
  install_cors_origins(CorsOrigins());
}

}  // namespace
}  // namespace gophermq
