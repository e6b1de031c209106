#include "gophermq/api/query_string.h"

#include "gophermq/ascii.h"

namespace gophermq {

std::optional<std::string> query_value(std::string_view query, std::string_view key,
                                       bool& malformed) {
  std::optional<std::string> found;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view field = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const std::size_t equals = field.find('=');
    if (field.substr(0, equals) != key) continue;
    const std::string_view raw =
        equals == std::string_view::npos ? std::string_view() : field.substr(equals + 1);
    std::string value;
    value.reserve(raw.size());
    malformed = false;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '%') {
        value.push_back(raw[i]);
        continue;
      }
      const int high = i + 2 < raw.size() ? hex_value(raw[i + 1]) : -1;
      const int low = i + 2 < raw.size() ? hex_value(raw[i + 2]) : -1;
      if (high < 0 || low < 0) {
        malformed = true;
        break;
      }
      value.push_back(static_cast<char>(high << 4 | low));
      i += 2;
    }
    found = std::move(value);
  }
  return found;
}

}  // namespace gophermq
