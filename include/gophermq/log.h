// Logging: one logfmt line per event (`level=info msg=listening api_port=8082`)
// to stderr. Never called on the request path at info level or above.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include "gophermq/config/config.h"

namespace gophermq::log {

struct Field {
  std::string_view key;
  std::string value;
};

void set_level(LogLevel level);
bool enabled(LogLevel level);

// Writes the whole line with one write(2), so lines from different shards
// never interleave.
void write(LogLevel level, std::string_view message, std::initializer_list<Field> fields = {});

inline void debug(std::string_view m, std::initializer_list<Field> f = {}) {
  write(LogLevel::debug, m, f);
}
inline void info(std::string_view m, std::initializer_list<Field> f = {}) {
  write(LogLevel::info, m, f);
}
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) {
  write(LogLevel::warn, m, f);
}
inline void error(std::string_view m, std::initializer_list<Field> f = {}) {
  write(LogLevel::error, m, f);
}

}  // namespace gophermq::log
