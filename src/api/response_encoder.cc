#include "gophermq/api/response_encoder.h"

#include <array>
#include <cstring>

#include "gophermq/ascii.h"

namespace gophermq {
namespace {

// Extra bytes a character costs when escaped: 0 for literal characters, 1 for
// \" \\ \n \r \t, 5 for \u00XX. U+2028/U+2029 are handled apart (multi-byte).
constexpr std::array<std::uint8_t, 256> kEscapeCost = [] {
  std::array<std::uint8_t, 256> cost{};
  for (int c = 0; c < 0x20; ++c) cost[c] = 5;
  cost['\n'] = cost['\r'] = cost['\t'] = 1;
  cost['"'] = cost['\\'] = 1;
  cost['<'] = cost['>'] = cost['&'] = 5;
  return cost;
}();

// U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR: E2 80 A8 / E2 80 A9.
bool is_line_separator(std::string_view text, std::size_t i) {
  return i + 2 < text.size() && static_cast<unsigned char>(text[i]) == 0xe2 &&
         static_cast<unsigned char>(text[i + 1]) == 0x80 &&
         (static_cast<unsigned char>(text[i + 2]) & 0xfe) == 0xa8;
}

constexpr std::string_view kIdKey = ",\"id\":\"";
constexpr std::string_view kSubjectKey = "\",\"subject\":";

char* write_id_and_subject(char* out, const SubscriberId& id, std::string_view subject) {
  std::memcpy(out, kIdKey.data(), kIdKey.size());
  out += kIdKey.size();
  id.write_text(out);
  out += SubscriberId::kTextLength;
  std::memcpy(out, kSubjectKey.data(), kSubjectKey.size());
  out += kSubjectKey.size();
  out = write_json_string(out, subject);
  *out++ = '}';
  *out++ = '\n';
  return out;
}

std::size_t id_and_subject_size(std::string_view subject) {
  return kIdKey.size() + SubscriberId::kTextLength + kSubjectKey.size() +
         json_string_size(subject) + 2;
}

}  // namespace

std::size_t json_string_size(std::string_view text) {
  std::size_t size = text.size() + 2;
  for (std::size_t i = 0; i < text.size(); ++i) {
    size += kEscapeCost[static_cast<unsigned char>(text[i])];
    if (is_line_separator(text, i)) size += 3;  // 3 bytes become the 6 of \u2028
  }
  return size;
}

char* write_json_string(char* out, std::string_view text) {
  *out++ = '"';
  std::size_t literal_start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    bool separator = c == 0xe2 && is_line_separator(text, i);
    if (kEscapeCost[c] == 0 && !separator) continue;
    std::memcpy(out, text.data() + literal_start, i - literal_start);
    out += i - literal_start;
    *out++ = '\\';
    if (separator) {
      std::memcpy(out, "u202", 4);
      out += 4;
      *out++ = (static_cast<unsigned char>(text[i + 2]) == 0xa8) ? '8' : '9';
      i += 2;
    } else if (kEscapeCost[c] == 1) {
      *out++ = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : static_cast<char>(c);
    } else {
      std::memcpy(out, "u00", 3);
      out += 3;
      *out++ = kHexDigits[c >> 4];
      *out++ = kHexDigits[c & 0xf];
    }
    literal_start = i + 1;
  }
  if (literal_start < text.size()) {  // never memcpy from an empty view's null pointer
    std::memcpy(out, text.data() + literal_start, text.size() - literal_start);
    out += text.size() - literal_start;
  }
  *out++ = '"';
  return out;
}

void append_json_string(ByteBuffer& out, std::string_view text) {
  char* end = write_json_string(out.reserve_tail(json_string_size(text)), text);
  out.commit(static_cast<std::size_t>(end - (out.data() + out.size())));
}

std::size_t subscribe_body_size(std::string_view subject) {
  return id_and_subject_size(subject);  // its leading ',' becomes the '{'
}

void append_subscribe_body(ByteBuffer& out, const SubscriberId& id, std::string_view subject) {
  const std::size_t size = subscribe_body_size(subject);
  char* start = out.reserve_tail(size);
  // The tail shared with fetch starts with ",\"id\"": the object opens there.
  write_id_and_subject(start, id, subject);
  *start = '{';
  out.commit(size);
}

std::size_t fetch_body_size(const PendingMessages& messages, std::size_t count,
                            std::string_view subject) {
  std::size_t size = std::string_view("{\"data\":[]").size() + id_and_subject_size(subject);
  messages.for_each(count,
                    [&](const Message& message) { size += json_string_size(message.payload()); });
  if (count > 1) size += count - 1;  // commas
  return size;
}

void append_fetch_body(ByteBuffer& out, std::size_t size, const PendingMessages& messages,
                       std::size_t count, const SubscriberId& id, std::string_view subject) {
  char* const start = out.reserve_tail(size);
  char* cursor = start;
  std::memcpy(cursor, "{\"data\":[", 9);
  cursor += 9;
  bool first = true;
  messages.for_each(count, [&](const Message& message) {
    if (!first) *cursor++ = ',';
    first = false;
    cursor = write_json_string(cursor, message.payload());
  });
  *cursor++ = ']';
  cursor = write_id_and_subject(cursor, id, subject);
  out.commit(static_cast<std::size_t>(cursor - start));
}

}  // namespace gophermq
