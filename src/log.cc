#include "gophermq/log.h"

#include <unistd.h>

#include <atomic>

namespace gophermq::log {
namespace {

std::atomic<LogLevel> threshold{LogLevel::info};

// logfmt: bare values when they are plain, quoted with \" and \\ escaped otherwise.
void append_value(std::string& line, std::string_view value) {
  bool plain = !value.empty();
  for (char c : value) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) {
      plain = false;
      break;
    }
  }
  if (plain) {
    line.append(value);
    return;
  }
  line.push_back('"');
  for (char c : value) {
    if (c == '"' || c == '\\') {
      line.push_back('\\');
      line.push_back(c);
    } else if (c == '\n') {
      line.append("\\n");
    } else if (static_cast<unsigned char>(c) < ' ') {
      line.push_back(' ');
    } else {
      line.push_back(c);
    }
  }
  line.push_back('"');
}

}  // namespace

void set_level(LogLevel level) { threshold.store(level, std::memory_order_relaxed); }

bool enabled(LogLevel level) { return level >= threshold.load(std::memory_order_relaxed); }

void write(LogLevel level, std::string_view message, std::initializer_list<Field> fields) {
  if (!enabled(level)) return;
  std::string line = "level=";
  line.append(log_level_name(level));
  line.append(" msg=");
  append_value(line, message);
  for (const Field& field : fields) {
    line.push_back(' ');
    line.append(field.key);
    line.push_back('=');
    append_value(line, field.value);
  }
  line.push_back('\n');
  // Best effort: a log line that cannot be written is not worth failing for.
  [[maybe_unused]] ssize_t written = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace gophermq::log
