#include "gophermq/http/cors.h"

#include <algorithm>
#include <utility>

namespace gophermq {
namespace {

CorsOrigins installed;

}  // namespace

CorsOrigins::CorsOrigins(const std::vector<std::string>& origins) : origins_(origins) {
  any_origin_ = origins_.size() == 1 && origins_.front() == "*";
  for (const std::string& origin : origins_) {
    longest_ = std::max(longest_, origin.size());
    lines_.push_back("Access-Control-Allow-Origin: " + origin + "\r\n" +
                     (any_origin_ ? "" : "Vary: Origin\r\n"));
  }
}

std::uint8_t CorsOrigins::match_listed(std::string_view origin) const {
  // "*" answers every origin alike: no Vary, and no need to compare.
  if (any_origin_) return 1;
  for (std::size_t i = 0; i < origins_.size(); ++i) {
    if (origins_[i] == origin) return static_cast<std::uint8_t>(i + 1);
  }
  return 0;
}

const CorsOrigins& cors_origins() { return installed; }

void install_cors_origins(CorsOrigins origins) { installed = std::move(origins); }

}  // namespace gophermq
