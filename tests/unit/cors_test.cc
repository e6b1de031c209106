// CorsOrigins (which Origin a request's answer allows) and the framing of
// answers that carry its headers, byte for byte.
#include "gophermq/http/cors.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "gophermq/byte_buffer.h"
#include "gophermq/http/response_writer.h"

namespace gophermq {
namespace {

using namespace std::string_literals;

const std::vector<std::string> kListed = {"https://app.example.com", "http://localhost:8080"};

TEST(CorsOrigins, NoneAllowedByDefault) {
  const CorsOrigins none;
  EXPECT_FALSE(none.enabled());
  EXPECT_EQ(none.longest(), 0u);
  EXPECT_EQ(none.match("https://app.example.com"), 0);
  EXPECT_EQ(none.match(""), 0);
}

TEST(CorsOrigins, MatchesListedOriginsExactly) {
  const CorsOrigins listed(kListed);
  EXPECT_TRUE(listed.enabled());
  EXPECT_EQ(listed.longest(), 23u);
  EXPECT_EQ(listed.match("https://app.example.com"), 1);
  EXPECT_EQ(listed.match("http://localhost:8080"), 2);
  for (std::string_view other : {"", "http://app.example.com", "https://app.example.com.",
                                 "https://app.example.co", "http://localhost:8081", "*", "null"}) {
    EXPECT_EQ(listed.match(other), 0) << other;
  }
  EXPECT_EQ(listed.allow_origin_lines(1),
            "Access-Control-Allow-Origin: https://app.example.com\r\nVary: Origin\r\n");
  EXPECT_EQ(listed.allow_origin_lines(2),
            "Access-Control-Allow-Origin: http://localhost:8080\r\nVary: Origin\r\n");
}

TEST(CorsOrigins, AnyOriginIsAnsweredWithAStarAndNoVary) {
  const CorsOrigins any(std::vector<std::string>{"*"});
  EXPECT_EQ(any.longest(), 1u);
  EXPECT_EQ(any.match("https://anywhere.example"), 1);
  EXPECT_EQ(any.match("n"), 1) << "a cut origin is still one";
  EXPECT_EQ(any.match(""), 0) << "no Origin, no CORS headers";
  EXPECT_EQ(any.allow_origin_lines(1), "Access-Control-Allow-Origin: *\r\n");
}

// The framing tests install a table, as the broker does, and put back the
// empty one every other test expects.
class CorsFraming : public ::testing::Test {
 protected:
  void SetUp() override { install_cors_origins(CorsOrigins(kListed)); }
  void TearDown() override { install_cors_origins(CorsOrigins()); }
};

TEST_F(CorsFraming, AnAnswerToAnAllowedOriginCarriesItsLines) {
  ByteBuffer out;
  append_response(out, 404, "{}\n", ResponseStyle{true, false, false, 2});
  EXPECT_EQ(out.view(),
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 3\r\n"
            "Access-Control-Allow-Origin: http://localhost:8080\r\nVary: Origin\r\n\r\n{}\n");
}

TEST_F(CorsFraming, TheLinesFollowConnectionAndExtraHeaders) {
  ByteBuffer out;
  append_response(out, 405, "{}\n", ResponseStyle{false, true, true, 1}, "Allow: POST\r\n");
  EXPECT_EQ(out.view(),
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\n"
            "Content-Length: 3\r\nConnection: close\r\nAllow: POST\r\n"
            "Access-Control-Allow-Origin: https://app.example.com\r\nVary: Origin\r\n\r\n");
}

TEST_F(CorsFraming, AHeadWrittenApartCarriesThemToo) {
  ByteBuffer out;
  append_response_head(out, 200, 7, ResponseStyle{true, false, false, 1});
  EXPECT_EQ(out.view(),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n"
            "Access-Control-Allow-Origin: https://app.example.com\r\nVary: Origin\r\n\r\n");
}

TEST_F(CorsFraming, NoContentCarriesThemAfterItsOwnLines) {
  ByteBuffer out;
  append_no_content(out, ResponseStyle{true, false, false, 1}, kPreflightLines);
  EXPECT_EQ(out.view(),
            "HTTP/1.1 204 No Content\r\n"s + std::string(kPreflightLines) +
                "Access-Control-Allow-Origin: https://app.example.com\r\nVary: Origin\r\n\r\n");
}

TEST_F(CorsFraming, WithoutAnAllowedOriginTheAnswerIsAsWithoutCors) {
  ByteBuffer with_table;
  append_response(with_table, 200, "{}\n", ResponseStyle{});
  append_no_content(with_table, ResponseStyle{});
  install_cors_origins(CorsOrigins());
  ByteBuffer without;
  append_response(without, 200, "{}\n", ResponseStyle{});
  append_no_content(without, ResponseStyle{});
  EXPECT_EQ(with_table.view(), without.view());
  EXPECT_EQ(without.view(),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n{}\n"
            "HTTP/1.1 204 No Content\r\n\r\n");
}

}  // namespace
}  // namespace gophermq
