// Cross-origin answers (broker.cors-origins, api-extensions.md §8): which
// origins' web pages may call the API, and the header lines that tell a
// browser so.
//
// A request's Origin is matched once, when the request is read, to a small
// number that its ResponseStyle carries (to another shard and back too: the
// receive buffer that held the Origin is gone by then); the response writer
// turns that number back into header lines. So the table is the broker's,
// installed once before any shard starts and only read from then on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gophermq {

class CorsOrigins {
 public:
  // No origin allowed: no CORS headers, OPTIONS not answered as a preflight.
  CorsOrigins() = default;
  // `origins` as the config holds them: lower-cased scheme://host[:port]
  // (no default port), or the one entry "*"; at most 255 of them.
  explicit CorsOrigins(const std::vector<std::string>& origins);

  bool enabled() const { return !origins_.empty(); }
  // How many bytes of a request's Origin are worth reading: as many as the
  // longest allowed origin has (0 when CORS is off, and the header is not
  // looked for at all).
  std::size_t longest() const { return longest_; }
  // ResponseStyle::cors for a request's Origin header (lower-cased): 0 when
  // it is absent or not allowed, otherwise the allowed origin's place + 1.
  std::uint8_t match(std::string_view origin) const {
    if (origin.empty() || origins_.empty()) return 0;
    return match_listed(origin);
  }
  // The header lines (each ending in CRLF) an answer with ResponseStyle::cors
  // `cors` (not 0) carries: Access-Control-Allow-Origin, and Vary: Origin
  // when the answer names one origin (it then differs by the request's
  // Origin, which a cache in between must know).
  std::string_view allow_origin_lines(std::uint8_t cors) const { return lines_[cors - 1]; }

 private:
  std::uint8_t match_listed(std::string_view origin) const;

  std::vector<std::string> origins_;
  std::vector<std::string> lines_;  // by ResponseStyle::cors - 1
  std::size_t longest_ = 0;
  bool any_origin_ = false;  // the list is "*"
};

// The broker's table. Installed by the broker before its shards start (a
// thread's start orders the write before every read on it); empty until then,
// which is what in-process users (tests, benchmarks, fuzzers) get.
const CorsOrigins& cors_origins();
void install_cors_origins(CorsOrigins origins);

// What a preflight (OPTIONS with an allowed Origin) answers beside
// Access-Control-Allow-Origin: the methods and the request header the API
// uses (it reads no other), and how long a browser may reuse the answer.
inline constexpr std::string_view kPreflightLines =
    "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
    "Access-Control-Allow-Headers: Content-Type\r\n"
    "Access-Control-Max-Age: 86400\r\n";

}  // namespace gophermq
