#include "gophermq/api/request_decoder.h"

#include <memory>
#include <type_traits>
#include <utility>

#include "gophermq/ascii.h"

namespace gophermq {
namespace {

using simdjson::error_code;
using simdjson::SUCCESS;
using simdjson::ondemand::json_type;

// Ignored fields are walked recursively; this bounds the recursion (and stays
// under simdjson's own limit of 1024 levels). Go allows 10000, but no real
// client nests an ignored field a thousand levels deep, while a hostile one
// could otherwise exhaust a shard's stack.
constexpr int kMaxNesting = 1000;

// JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
// checked on the raw token, so huge or very precise numbers in ignored fields
// are accepted exactly as Go accepts them.
bool is_json_number(std::string_view token) {
  std::size_t i = 0;
  auto digits = [&] {
    std::size_t start = i;
    while (i < token.size() && token[i] >= '0' && token[i] <= '9') ++i;
    return i > start;
  };
  if (i < token.size() && token[i] == '-') ++i;
  if (i < token.size() && token[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < token.size() && token[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < token.size() && (token[i] == 'e' || token[i] == 'E')) {
    ++i;
    if (i < token.size() && (token[i] == '+' || token[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == token.size();
}

// Each field of `object`, as read_field(unescaped key, value): the first
// error ends the walk.
template <typename ReadField>
error_code read_fields(simdjson::ondemand::object object, ReadField&& read_field) {
  for (auto result : object) {
    // Used where it is: copied out, its halves are written separately and read
    // back as one, which stalls the store-to-load forwarding on x86.
    if (error_code error = result.error()) return error;
    simdjson::ondemand::field& field = result.value_unsafe();
    std::string_view key;
    if (error_code error = field.unescaped_key().get(key)) return error;
    if (error_code error = read_field(key, field.value())) return error;
  }
  return SUCCESS;
}

// On-Demand only checks what it is asked to read; an ignored field's value
// is walked in full so that `{"subject":"a","x":[tru]}` is refused as Go
// refuses it.
error_code validate(simdjson::ondemand::value value, int depth) {
  json_type type;
  if (error_code error = value.type().get(type)) return error;
  switch (type) {
    case json_type::object: {
      if (depth >= kMaxNesting) return simdjson::DEPTH_ERROR;
      simdjson::ondemand::object object;
      if (error_code error = value.get_object().get(object)) return error;
      return read_fields(object, [depth](std::string_view, simdjson::ondemand::value field) {
        return validate(field, depth + 1);
      });
    }
    case json_type::array: {
      if (depth >= kMaxNesting) return simdjson::DEPTH_ERROR;
      simdjson::ondemand::array array;
      if (error_code error = value.get_array().get(array)) return error;
      for (auto element : array) {
        simdjson::ondemand::value item;
        if (error_code error = std::move(element).get(item)) return error;
        if (error_code error = validate(item, depth + 1)) return error;
      }
      return SUCCESS;
    }
    case json_type::string: {
      std::string_view ignored;
      return value.get_string().get(ignored);
    }
    case json_type::number: {
      std::string_view token = value.raw_json_token();
      while (!token.empty() && (token.back() == ' ' || token.back() == '\t' ||
                                token.back() == '\n' || token.back() == '\r')) {
        token.remove_suffix(1);
      }
      return is_json_number(token) ? SUCCESS : simdjson::NUMBER_ERROR;
    }
    case json_type::boolean: {
      bool ignored;
      return value.get_bool().get(ignored);
    }
    case json_type::null: {
      bool is_null = false;
      if (error_code error = value.is_null().get(is_null)) return error;
      return is_null ? SUCCESS : simdjson::N_ATOM_ERROR;
    }
  }
  return simdjson::INCORRECT_TYPE;
}

// A known field: a string sets it, null leaves it as it was, anything else
// is a type error.
error_code read_string_field(simdjson::ondemand::value value, std::string_view& field) {
  json_type type;
  if (error_code error = value.type().get(type)) return error;
  if (type == json_type::null) return validate(value, 1);
  if (type != json_type::string) return simdjson::INCORRECT_TYPE;
  // Most strings have no escape: then the field is a view of the body itself,
  // and a publish copies its payload once (into the message), not twice. The
  // token is the string with its quotes and any spaces after it; simdjson's
  // first pass has already checked its UTF-8 and refused raw control
  // characters in it.
  const std::string_view token = value.raw_json_token();
  const std::string_view inner = token.substr(1, token.rfind('"') - 1);
  if (inner.find('\\') == std::string_view::npos) {
    simdjson::ondemand::raw_json_string consumed;
    if (error_code error = value.get_raw_json_string().get(consumed)) return error;
    field = inner;
    return simdjson::SUCCESS;
  }
  return value.get_string().get(field);
}

// A known integer field of the extensions: a non-negative integer sets it,
// null leaves it as it was, anything else (a fraction, a negative number, a
// string, a number past 64 bits) is an error. 2^64 - 1 reads as 2^64 - 2:
// the largest value marks an absent field, and no count, sequence or
// duration tells the two apart (each is clamped or checked far below).
error_code read_count_field(simdjson::ondemand::value value, std::uint64_t& field) {
  json_type type;
  if (error_code error = value.type().get(type)) return error;
  if (type == json_type::null) return validate(value, 1);
  if (type != json_type::number) return simdjson::INCORRECT_TYPE;
  std::uint64_t count;
  if (error_code error = value.get_uint64().get(count)) return error;
  field = count == DecodedRequest::kUnset ? count - 1 : count;
  return SUCCESS;
}

// A JSON boolean; null leaves it unset (false), any other type is invalid.
error_code read_flag_field(simdjson::ondemand::value value, bool& field) {
  json_type type;
  if (error_code error = value.type().get(type)) return error;
  if (type == json_type::null) return validate(value, 1);
  if (type != json_type::boolean) return simdjson::INCORRECT_TYPE;
  return value.get_bool().get(field);
}

// A JSON array into `values` (replacing what was there: the last duplicate
// key wins), each element read by `read_item(element, value)`. null leaves
// the list unset.
template <typename T, typename ReadItem>
error_code read_list(simdjson::ondemand::value value, std::vector<T>& values, bool& set,
                     ReadItem&& read_item) {
  json_type type;
  if (error_code error = value.type().get(type)) return error;
  values.clear();
  set = false;
  if (type == json_type::null) return validate(value, 1);
  simdjson::ondemand::array array;
  if (error_code error = value.get_array().get(array)) return error;
  for (auto element : array) {
    simdjson::ondemand::value item;
    if (error_code error = std::move(element).get(item)) return error;
    if (error_code error = read_item(item, values.emplace_back())) return error;
  }
  set = true;
  return SUCCESS;
}

// `seqs`: non-negative integers, each read as read_count_field reads one (a
// null inside is an error).
error_code read_count_list(simdjson::ondemand::value value, std::vector<std::uint64_t>& values,
                           bool& set) {
  return read_list(value, values, set, [](simdjson::ondemand::value item, std::uint64_t& count) {
    count = DecodedRequest::kUnset;
    if (error_code error = read_count_field(item, count)) return error;
    return count == DecodedRequest::kUnset ? simdjson::INCORRECT_TYPE : SUCCESS;
  });
}

// A batch's `data`: strings, each read as read_string_field reads one (a
// null inside is an error).
error_code read_string_list(simdjson::ondemand::value value, std::vector<std::string_view>& values,
                            bool& set) {
  return read_list(value, values, set, [](simdjson::ondemand::value item, std::string_view& text) {
    if (error_code error = read_string_field(item, text)) return error;
    return text.data() == nullptr ? simdjson::INCORRECT_TYPE : SUCCESS;
  });
}

// A batch's `messages`: objects, each read as the request itself is (keys
// without regard to case, null leaving a field unset, unknown fields
// walked). A null entry is an empty one, as Go decodes it; anything else
// that is not an object is an error.
error_code read_batch_messages(simdjson::ondemand::value value, std::vector<BatchEntry>& entries,
                               bool& set) {
  return read_list(value, entries, set, [](simdjson::ondemand::value item, BatchEntry& entry) {
    json_type type;
    if (error_code error = item.type().get(type)) return error;
    if (type == json_type::null) return validate(item, 2);
    simdjson::ondemand::object object;
    if (error_code error = item.get_object().get(object)) return error;
    return read_fields(object, [&entry](std::string_view key, simdjson::ondemand::value field) {
      if (equals_ignoring_case(key, "subject")) return read_string_field(field, entry.subject);
      if (equals_ignoring_case(key, "data")) return read_string_field(field, entry.data);
      return validate(field, 3);
    });
  });
}

constexpr bool is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool only_whitespace(const char* bytes, std::size_t size) {
  for (std::size_t i = 0; i < size; ++i) {
    if (!is_json_space(bytes[i])) return false;
  }
  return true;
}

// Go's json.Decoder, which Echo's binder reads a body with, decodes the
// first JSON value and leaves whatever follows it unread: `{...}\0` from a C
// client is a request. Where that value ends, for the two a request may be
// (an object, by its brackets outside strings, or null); text.size() when
// it is neither or never ends.
std::size_t end_of_first_value(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && is_json_space(text[i])) ++i;
  if (text.substr(i, 4) == "null") return i + 4;
  if (i == text.size() || text[i] != '{') return text.size();
  std::size_t depth = 0;
  bool in_string = false;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped byte cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      return i + 1;
    }
  }
  return text.size();
}

// The field `key` names, as Go matches a key to a struct tag (without
// regard to ASCII case), if `fields` reads it; RequestField::unknown
// otherwise. A publish's two fields are matched first, each against its
// name as a constant, and as sent (two loads and a compare) before any case
// is folded (a byte at a time): clients send the names as documented.
inline RequestField read_as(std::string_view key, RequestFields fields) {
  const auto is = [key](std::string_view name) {
    return key == name || equals_ignoring_case(key, name);
  };
  if (is("subject")) return RequestField::subject;  // every endpoint's
  if (is("data")) {
    // A batch publish reads it as a list.
    if (fields.has(RequestField::data_list)) return RequestField::data_list;
    return fields.has(RequestField::data) ? RequestField::data : RequestField::unknown;
  }
  static constexpr std::pair<std::string_view, RequestField> kNames[] = {
      {"messages", RequestField::messages},
      {"id", RequestField::id},
      {"inactive_threshold_ms", RequestField::inactive_threshold_ms},
      {"max_pending", RequestField::max_pending},
      {"max_pending_bytes", RequestField::max_pending_bytes},
      {"discard", RequestField::discard},
      {"wait_ms", RequestField::wait_ms},
      {"max_messages", RequestField::max_messages},
      {"max_bytes", RequestField::max_bytes},
      {"ack_wait_ms", RequestField::ack_wait_ms},
      {"max_ack_pending", RequestField::max_ack_pending},
      {"max_deliver", RequestField::max_deliver},
      {"dead_letter_subject", RequestField::dead_letter_subject},
      {"group", RequestField::group},
      {"wildcard", RequestField::wildcard},
      {"seqs", RequestField::seqs},
      {"through", RequestField::through},
      {"delay_ms", RequestField::delay_ms},
  };
  for (const auto& [name, field] : kNames) {
    if (equals_ignoring_case(key, name)) return fields.has(field) ? field : RequestField::unknown;
  }
  return RequestField::unknown;
}

// Length of the valid UTF-8 sequence at `bytes` (RFC 3629: no overlongs, no
// surrogates, nothing past U+10FFFF), or 0 when it is not one.
std::size_t utf8_sequence_length(const unsigned char* bytes, std::size_t available) {
  const unsigned char lead = bytes[0];
  if (lead < 0x80) return 1;
  std::size_t length;
  unsigned char low = 0x80, high = 0xbf;  // allowed range of the second byte
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) low = 0xa0;
    if (lead == 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) low = 0x90;
    if (lead == 0xf4) high = 0x8f;
  } else {
    return 0;
  }
  if (available < length || bytes[1] < low || bytes[1] > high) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if (bytes[i] < 0x80 || bytes[i] > 0xbf) return 0;
  }
  return length;
}

// The code unit of a `\uXXXX` escape at `text[i]`, or -1.
int escaped_unit(std::string_view text, std::size_t i) {
  if (i + 6 > text.size() || text[i] != '\\' || text[i + 1] != 'u') return -1;
  int unit = 0;
  for (std::size_t k = i + 2; k < i + 6; ++k) {
    int digit = hex_value(text[k]);
    if (digit < 0) return -1;
    unit = unit << 4 | digit;
  }
  return unit;
}

// Go's decoder turns each invalid UTF-8 byte, and each \u escape of an
// unpaired surrogate, into U+FFFD instead of refusing the body. Rewrites
// `body` that way into `out`; false when there was nothing to repair.
bool repair_like_go(std::string_view body, ByteBuffer& out) {
  static constexpr std::string_view kReplacementCharacter = "\xef\xbf\xbd";
  static constexpr std::string_view kEscapedReplacement = "\\ufffd";
  out.clear();
  bool repaired = false;
  std::size_t i = 0;
  while (i < body.size()) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(body.data() + i);
    if (body[i] == '\\' && i + 1 < body.size()) {
      int unit = escaped_unit(body, i);
      if (unit >= 0xd800 && unit <= 0xdbff) {
        int next = escaped_unit(body, i + 6);
        if (next >= 0xdc00 && next <= 0xdfff) {
          out.append(body.data() + i, 12);  // a proper pair
          i += 12;
          continue;
        }
      }
      if (unit >= 0xd800 && unit <= 0xdfff) {
        out.append(kEscapedReplacement);
        repaired = true;
        i += 6;
        continue;
      }
      out.append(body.data() + i, 2);  // any other escape, e.g. \\ or \"
      i += 2;
      continue;
    }
    std::size_t length = utf8_sequence_length(bytes, body.size() - i);
    if (length == 0) {
      out.append(kReplacementCharacter);
      repaired = true;
      ++i;
      continue;
    }
    out.append(body.data() + i, length);
    i += length;
  }
  return repaired;
}

}  // namespace

error_code RequestDecoder::decode_document(const char* body, std::size_t size,
                                           std::size_t padded_capacity, RequestFields fields) {
  DecodedRequest& request = request_;
  // Built in place: `request = {}` would build the defaults in a temporary
  // and copy it, about 260 bytes moved twice with `rep movsq`. (Building
  // over the old one needs no destructor call: it holds only views.)
  static_assert(std::is_trivially_destructible_v<DecodedRequest>);
  std::construct_at(&request);
  seqs_.clear();
  batch_data_.clear();
  batch_messages_.clear();
  simdjson::ondemand::document document;
  if (error_code error = parser_.iterate(body, size, padded_capacity).get(document)) return error;
  json_type type;
  if (error_code error = document.type().get(type)) return error;
  if (type == json_type::null) {
    // `null` decodes into a struct as a no-op in Go.
    bool is_null = false;
    if (error_code error = document.is_null().get(is_null)) return error;
    if (!is_null) return simdjson::N_ATOM_ERROR;
  } else {
    simdjson::ondemand::object object;
    if (type != json_type::object) return simdjson::INCORRECT_TYPE;
    if (error_code error = document.get_object().get(object)) return error;
    const error_code error =
        read_fields(object, [&](std::string_view key, simdjson::ondemand::value value) {
          switch (read_as(key, fields)) {
            case RequestField::subject:
              return read_string_field(value, request.subject);
            case RequestField::data:
              return read_string_field(value, request.data);
            case RequestField::data_list:
              return read_string_list(value, batch_data_, request.has_batch_data);
            case RequestField::messages:
              return read_batch_messages(value, batch_messages_, request.has_batch_messages);
            case RequestField::id:
              return read_string_field(value, request.id);
            case RequestField::inactive_threshold_ms:
              return read_count_field(value, request.inactive_threshold_ms);
            case RequestField::max_pending:
              return read_count_field(value, request.max_pending);
            case RequestField::max_pending_bytes:
              return read_count_field(value, request.max_pending_bytes);
            case RequestField::discard:
              return read_string_field(value, request.discard);
            case RequestField::wait_ms:
              return read_count_field(value, request.wait_ms);
            case RequestField::max_messages:
              return read_count_field(value, request.max_messages);
            case RequestField::max_bytes:
              return read_count_field(value, request.max_bytes);
            case RequestField::ack_wait_ms:
              return read_count_field(value, request.ack_wait_ms);
            case RequestField::max_ack_pending:
              return read_count_field(value, request.max_ack_pending);
            case RequestField::max_deliver:
              return read_count_field(value, request.max_deliver);
            case RequestField::dead_letter_subject:
              return read_string_field(value, request.dead_letter_subject);
            case RequestField::group:
              return read_string_field(value, request.group);
            case RequestField::wildcard:
              return read_flag_field(value, request.wildcard);
            case RequestField::seqs:
              return read_count_list(value, seqs_, request.has_seqs);
            case RequestField::through:
              return read_count_field(value, request.through);
            case RequestField::delay_ms:
              return read_count_field(value, request.delay_ms);
            case RequestField::unknown:
              break;
          }
          return validate(value, 1);
        });
    if (error) return error;
  }
  request.seqs = seqs_;
  request.batch_data = batch_data_;
  request.batch_messages = batch_messages_;
  return SUCCESS;  // what follows the value is not read (see end_of_first_value)
}

const DecodedRequest* RequestDecoder::decode(const char* body, std::size_t size,
                                             std::size_t padded_capacity, RequestFields fields) {
  // Echo's binder skips an empty body: every field stays empty.
  if (size == 0) return std::construct_at(&request_);
  // Whitespace alone is "unexpected end of JSON input" in Go.
  if (only_whitespace(body, size)) return nullptr;
  error_code error = decode_document(body, size, padded_capacity, fields);
  if (error == SUCCESS) return &request_;
  // simdjson's first pass reads the whole body, and refuses what Go never
  // reads: an unclosed string or invalid UTF-8 after the value. The value
  // alone is decoded again.
  if (const std::size_t end = end_of_first_value({body, size}); end < size) {
    size = end;
    error = decode_document(body, size, padded_capacity, fields);
    if (error == SUCCESS) return &request_;
  }
  // Invalid UTF-8 or an unpaired surrogate: the slow path, off the hot one.
  if (error != simdjson::UTF8_ERROR && error != simdjson::STRING_ERROR) return nullptr;
  if (!repair_like_go({body, size}, repaired_)) return nullptr;
  error = decode_document(repaired_.data(), repaired_.size(), repaired_.padded_capacity(), fields);
  return error == SUCCESS ? &request_ : nullptr;
}

RequestFields RequestFields::of(Endpoint endpoint) {
  using enum RequestField;
  switch (endpoint) {
    case Endpoint::publish:
    case Endpoint::publish_async:
      return {subject, data};
    case Endpoint::publish_batch:
      return {subject, data_list, messages};
    case Endpoint::subscribe:
      return {subject,     inactive_threshold_ms, max_pending, max_pending_bytes,   discard,
              ack_wait_ms, max_ack_pending,       max_deliver, dead_letter_subject, group,
              wildcard};
    case Endpoint::fetch:
      return {subject, id, wait_ms, max_messages, max_bytes};
    case Endpoint::unsubscribe:
    case Endpoint::info:
      return {subject, id};
    case Endpoint::ack:
      return {subject, id, seqs, through};
    case Endpoint::nack:
      return {subject, id, seqs, delay_ms};
    default:
      return {};
  }
}

}  // namespace gophermq
