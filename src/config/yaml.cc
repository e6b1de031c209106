#include "gophermq/yaml.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <utility>

namespace gophermq::yaml {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t'; }

bool ends_token(std::string_view s, std::size_t i) { return i >= s.size() || is_blank(s[i]); }

std::string_view trim_trailing_blanks(std::string_view s) {
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// After a scalar only blanks and a comment may follow; YAML needs a blank
// before the `#`, otherwise it is part of the text.
bool only_comment_left(std::string_view rest) {
  std::size_t i = 0;
  while (i < rest.size() && is_blank(rest[i])) ++i;
  return i == rest.size() || (i > 0 && rest[i] == '#');
}

// Why a scalar or key may not start with `c`, or empty when it may. These are
// YAML's indicator characters: each one starts a construct we do not support.
std::string indicator_error(std::string_view s) {
  switch (s.front()) {
    case '-':
    case '?':
      // `-5` and `?x` are plain scalars; `- x` and `? x` are not.
      if (!ends_token(s, 1)) return "";
      return s.front() == '-' ? "sequences ('- item') are not supported"
                              : "complex keys ('? key') are not supported";
    case '[':
    case '{':
      return "flow collections ('[...]', '{...}') are not supported; use one 'key: value' per line";
    case ']':
    case '}':
    case ',':
      return std::string("unexpected '") + s.front() + "'";
    case '&':
      return "anchors ('&name') are not supported";
    case '*':
      return "aliases ('*name') are not supported";
    case '!':
      return "tags ('!tag') are not supported";
    case '|':
    case '>':
      return "block scalars ('|', '>') are not supported; quote the value on one line";
    case '%':
      return "directives ('%') are not supported";
    case '@':
    case '`':
      return std::string("'") + s.front() + "' is reserved in YAML; quote the value";
    default:
      return "";
  }
}

void append_utf8(std::string& out, std::uint32_t code_point) {
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xC0 | (code_point >> 6));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    out += static_cast<char>(0xE0 | (code_point >> 12));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code_point >> 18));
    out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  }
}

std::optional<std::uint32_t> parse_hex(std::string_view digits) {
  std::uint32_t value = 0;
  for (char c : digits) {
    std::uint32_t digit;
    if (c >= '0' && c <= '9') {
      digit = static_cast<std::uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<std::uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      digit = static_cast<std::uint32_t>(c - 'A' + 10);
    } else {
      return std::nullopt;
    }
    value = value * 16 + digit;
  }
  return value;
}

// The single-character escapes of YAML double-quoted scalars; \x, \u and \U
// are handled by the caller.
std::optional<std::uint32_t> simple_escape(char c) {
  static constexpr std::pair<char, std::uint32_t> kEscapes[] = {
      {'0', 0x00}, {'a', 0x07},  {'b', 0x08}, {'t', 0x09}, {'\t', 0x09},  {'n', 0x0A},
      {'v', 0x0B}, {'f', 0x0C},  {'r', 0x0D}, {'e', 0x1B}, {' ', 0x20},   {'"', 0x22},
      {'/', 0x2F}, {'\\', 0x5C}, {'N', 0x85}, {'_', 0xA0}, {'L', 0x2028}, {'P', 0x2029},
  };
  for (auto [escape, code_point] : kEscapes) {
    if (escape == c) return code_point;
  }
  return std::nullopt;
}

class Parser {
 public:
  Document run(std::string_view text);

 private:
  // A `key:` line with nothing after it: a mapping if the next line is
  // indented deeper, otherwise a null scalar.
  struct OpenKey {
    std::size_t indent;
    std::string path;
    int line;
  };
  // A block mapping being filled: its keys sit at `indent`, under `path`.
  struct Mapping {
    std::size_t indent;
    std::string path;
  };

  bool fail(std::string message);
  bool parse_line(std::string_view line);
  bool enter_indentation(std::size_t indent);
  bool parse_entry(std::string_view entry, std::size_t indent);
  bool parse_key(std::string_view entry, std::size_t& pos, std::string& key);
  bool parse_value(std::string_view rest, std::string& value, bool& is_null);
  bool parse_single_quoted(std::string_view s, std::size_t& pos, std::string& out);
  bool parse_double_quoted(std::string_view s, std::size_t& pos, std::string& out);
  bool define(const std::string& path);
  void close_open_key();

  Document document_;
  int line_number_ = 0;
  bool seen_document_start_ = false;
  bool seen_content_ = false;
  std::vector<Mapping> mappings_;
  std::optional<OpenKey> open_key_;
  std::set<std::string> defined_paths_;
};

bool Parser::fail(std::string message) {
  document_.error = std::move(message);
  document_.error_line = line_number_;
  document_.scalars.clear();
  return false;
}

Document Parser::run(std::string_view text) {
  constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";
  if (text.starts_with(kByteOrderMark)) text.remove_prefix(kByteOrderMark.size());
  while (!text.empty()) {
    std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++line_number_;
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (!parse_line(line)) return std::move(document_);
  }
  close_open_key();
  return std::move(document_);
}

bool Parser::parse_line(std::string_view line) {
  for (char c : line) {
    auto byte = static_cast<unsigned char>(c);
    if ((byte < 0x20 && c != '\t') || byte == 0x7F) return fail("control character in line");
  }
  std::size_t indent = line.find_first_not_of(' ');
  if (indent == std::string_view::npos) return true;
  std::string_view content = line.substr(indent);
  std::size_t first_visible = content.find_first_not_of(" \t");
  if (first_visible == std::string_view::npos || content[first_visible] == '#') return true;
  if (content.front() == '\t') return fail("tab in indentation; indent with spaces");

  if (indent == 0 && content.starts_with("---") && ends_token(content, 3)) {
    if (seen_document_start_ || seen_content_) {
      return fail("multiple documents ('---') are not supported");
    }
    if (!only_comment_left(content.substr(3))) return fail("content after '---' is not supported");
    seen_document_start_ = true;
    return true;
  }
  if (indent == 0 && content.starts_with("...") && ends_token(content, 3)) {
    return fail("document end marker ('...') is not supported");
  }
  seen_content_ = true;
  return enter_indentation(indent) && parse_entry(content, indent);
}

// Moves to the mapping a line at `indent` belongs to: into the open key's new
// mapping when deeper, back out to an enclosing one when shallower.
bool Parser::enter_indentation(std::size_t indent) {
  if (open_key_ && indent > open_key_->indent) {
    mappings_.push_back({indent, std::move(open_key_->path)});
    open_key_.reset();
    return true;
  }
  close_open_key();
  if (mappings_.empty()) {
    mappings_.push_back({indent, ""});
    return true;
  }
  bool dedented = false;
  while (indent < mappings_.back().indent) {
    mappings_.pop_back();
    if (mappings_.empty()) return fail("line is indented less than the first line");
    dedented = true;
  }
  if (indent == mappings_.back().indent) return true;
  if (dedented) return fail("indentation does not line up with any enclosing key");
  return fail("unexpected indentation (multi-line values are not supported)");
}

void Parser::close_open_key() {
  if (!open_key_) return;
  document_.scalars.push_back({std::move(open_key_->path), "", open_key_->line, true});
  open_key_.reset();
}

bool Parser::parse_entry(std::string_view entry, std::size_t indent) {
  std::string error = indicator_error(entry);
  if (!error.empty()) return fail(error);
  std::size_t pos = 0;
  std::string key;
  if (!parse_key(entry, pos, key)) return false;

  const std::string& parent = mappings_.back().path;
  std::string path = parent.empty() ? key : parent + "." + key;
  if (!define(path)) return false;

  std::string_view rest = entry.substr(pos);
  if (only_comment_left(rest)) {
    open_key_ = OpenKey{indent, std::move(path), line_number_};
    return true;
  }
  std::string value;
  bool is_null = false;
  if (!parse_value(rest.substr(rest.find_first_not_of(" \t")), value, is_null)) return false;
  document_.scalars.push_back({std::move(path), std::move(value), line_number_, is_null});
  return true;
}

// Reads `key:` from the start of `entry`; leaves `pos` just after the colon.
bool Parser::parse_key(std::string_view entry, std::size_t& pos, std::string& key) {
  if (entry.front() == '\'' || entry.front() == '"') {
    bool quoted_ok = entry.front() == '\'' ? parse_single_quoted(entry, pos, key)
                                           : parse_double_quoted(entry, pos, key);
    if (!quoted_ok) return false;
    while (pos < entry.size() && is_blank(entry[pos])) ++pos;
    if (pos == entry.size() || entry[pos] != ':' || !ends_token(entry, pos + 1)) {
      return fail("expected ':' after quoted key");
    }
    ++pos;
  } else {
    // The key ends at the first ':' followed by a blank or the end of line; a
    // ` #` before that makes the rest a comment, so there is no key at all.
    std::size_t colon = std::string_view::npos;
    for (std::size_t i = 0; i < entry.size() && colon == std::string_view::npos; ++i) {
      if (entry[i] == '#' && i > 0 && is_blank(entry[i - 1])) break;
      if (entry[i] == ':' && ends_token(entry, i + 1)) colon = i;
    }
    if (colon == std::string_view::npos) return fail("expected 'key: value'");
    key = trim_trailing_blanks(entry.substr(0, colon));
    pos = colon + 1;
  }
  if (key.empty()) return fail("empty key");
  if (key.find('.') != std::string::npos) {
    // Flattening joins keys with '.', so `a.b:` would be indistinguishable
    // from `a:` holding `b:`.
    return fail("key '" + key + "' contains '.'; nest it under its parent key instead");
  }
  return true;
}

// Parses the scalar that fills `rest` (which starts at a non-blank) up to an
// optional trailing comment.
bool Parser::parse_value(std::string_view rest, std::string& value, bool& is_null) {
  if (rest.front() == '\'' || rest.front() == '"') {
    std::size_t pos = 0;
    bool quoted_ok = rest.front() == '\'' ? parse_single_quoted(rest, pos, value)
                                          : parse_double_quoted(rest, pos, value);
    if (!quoted_ok) return false;
    if (!only_comment_left(rest.substr(pos))) return fail("unexpected text after quoted value");
    return true;
  }
  std::string error = indicator_error(rest);
  if (!error.empty()) return fail(error);
  std::size_t end = 0;
  for (; end < rest.size(); ++end) {
    if (rest[end] == '#' && end > 0 && is_blank(rest[end - 1])) break;
    if (rest[end] == ':' && ends_token(rest, end + 1)) {
      return fail(
          "unexpected ': ' in value (nested mappings go on their own lines; quote the value "
          "if it contains ': ')");
    }
  }
  value = trim_trailing_blanks(rest.substr(0, end));
  is_null = value == "~" || value == "null" || value == "Null" || value == "NULL";
  if (is_null) value.clear();
  return true;
}

// `pos` is at the opening quote; leaves it just after the closing one.
bool Parser::parse_single_quoted(std::string_view s, std::size_t& pos, std::string& out) {
  out.clear();
  for (std::size_t i = pos + 1; i < s.size(); ++i) {
    if (s[i] != '\'') {
      out += s[i];
    } else if (i + 1 < s.size() && s[i + 1] == '\'') {
      out += '\'';
      ++i;
    } else {
      pos = i + 1;
      return true;
    }
  }
  return fail("unterminated single-quoted string (multi-line strings are not supported)");
}

bool Parser::parse_double_quoted(std::string_view s, std::size_t& pos, std::string& out) {
  out.clear();
  for (std::size_t i = pos + 1; i < s.size(); ++i) {
    if (s[i] == '"') {
      pos = i + 1;
      return true;
    }
    if (s[i] != '\\') {
      out += s[i];
      continue;
    }
    if (++i == s.size()) break;  // a trailing backslash continues onto the next line
    char escape = s[i];
    std::size_t hex_digits = escape == 'x' ? 2 : escape == 'u' ? 4 : escape == 'U' ? 8 : 0;
    std::optional<std::uint32_t> code_point;
    if (hex_digits == 0) {
      code_point = simple_escape(escape);
    } else if (i + hex_digits < s.size()) {
      code_point = parse_hex(s.substr(i + 1, hex_digits));
      i += hex_digits;
    }
    if (!code_point)
      return fail(std::string("invalid escape '\\") + escape + "' in double-quoted string");
    if (*code_point > 0x10FFFF || (*code_point >= 0xD800 && *code_point <= 0xDFFF)) {
      return fail("escape is not a valid Unicode code point");
    }
    append_utf8(out, *code_point);
  }
  return fail("unterminated double-quoted string (multi-line strings are not supported)");
}

bool Parser::define(const std::string& path) {
  if (defined_paths_.insert(path).second) return true;
  return fail("duplicate key '" + path + "'");
}

}  // namespace

Document parse(std::string_view text) { return Parser().run(text); }

}  // namespace gophermq::yaml
