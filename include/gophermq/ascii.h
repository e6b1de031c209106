// ASCII character helpers shared by the parsers and encoders: HTTP header
// names, JSON keys and config keys are matched without regard to ASCII case,
// and ids and JSON escapes are written in lower-case hex. Locale-free on
// purpose: std::tolower depends on the process locale.
#pragma once

#include <string_view>

namespace gophermq {

constexpr char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

constexpr char ascii_upper(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

constexpr bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

// Lower-case hex digits, as Go writes them (uuid.String, \u00XX escapes).
inline constexpr char kHexDigits[] = "0123456789abcdef";

// The value of a hex digit of either case, or -1.
constexpr int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace gophermq
