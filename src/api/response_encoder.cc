#include "gophermq/api/response_encoder.h"

#include <algorithm>
#include <array>
#include <charconv>
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

constexpr std::string_view kGroupKey = "{\"group\":";  // the first key when there is one
constexpr std::string_view kIdKey = ",\"id\":\"";
constexpr std::string_view kPendingKey = "\",\"pending\":";
constexpr std::string_view kSeqsKey = ",\"seqs\":[";
constexpr std::string_view kSubjectKey = "\",\"subject\":";
constexpr std::string_view kSubjectAfterSeqsKey = "],\"subject\":";

std::size_t decimal_digits(std::uint64_t value) {
  std::size_t digits = 1;
  while (value >= 10) {
    value /= 10;
    ++digits;
  }
  return digits;
}

char* write_decimal(char* out, std::uint64_t value) {
  return std::to_chars(out, out + 20, value).ptr;
}

// The sequence numbers first .. first + count - 1, comma-separated.
std::size_t sequences_size(std::uint64_t first, std::size_t count) {
  if (count == 0) return 0;
  std::size_t size = count - 1;  // commas
  // Whole runs of numbers of one length at a time, not a division each.
  std::uint64_t value = first;
  const std::uint64_t last = first + count - 1;
  std::size_t digits = decimal_digits(value);
  std::uint64_t next_power = 1;
  for (std::size_t i = 0; i < digits; ++i) next_power *= 10;
  while (true) {
    const std::uint64_t run_end = digits >= 20 ? last : std::min(last, next_power - 1);
    size += (run_end - value + 1) * digits;
    if (run_end == last) return size;
    value = run_end + 1;
    ++digits;
    next_power *= 10;
  }
}

// ,"id":"<uuid>"[,"pending":N,"seqs":[...]],"subject":<subject>}\n
char* write_id_and_subject(char* out, const SubscriberId& id, std::string_view subject,
                           const FetchAnswerExtras* extras = nullptr, std::size_t count = 0) {
  std::memcpy(out, kIdKey.data(), kIdKey.size());
  out += kIdKey.size();
  id.write_text(out);
  out += SubscriberId::kTextLength;
  if (extras == nullptr) {
    std::memcpy(out, kSubjectKey.data(), kSubjectKey.size());
    out += kSubjectKey.size();
  } else {
    std::memcpy(out, kPendingKey.data(), kPendingKey.size());
    out = write_decimal(out + kPendingKey.size(), extras->pending);
    std::memcpy(out, kSeqsKey.data(), kSeqsKey.size());
    out += kSeqsKey.size();
    for (std::size_t i = 0; i < count; ++i) {
      if (i != 0) *out++ = ',';
      out = write_decimal(out, extras->first_sequence + i);
    }
    std::memcpy(out, kSubjectAfterSeqsKey.data(), kSubjectAfterSeqsKey.size());
    out += kSubjectAfterSeqsKey.size();
  }
  out = write_json_string(out, subject);
  *out++ = '}';
  *out++ = '\n';
  return out;
}

std::size_t id_and_subject_size(std::string_view subject, const FetchAnswerExtras* extras = nullptr,
                                std::size_t count = 0) {
  std::size_t size = kIdKey.size() + SubscriberId::kTextLength + kSubjectKey.size() +
                     json_string_size(subject) + 2;
  if (extras != nullptr) {
    // `],"subject":` is as long as the `","subject":` it replaces.
    static_assert(kSubjectAfterSeqsKey.size() == kSubjectKey.size());
    size += kPendingKey.size() + decimal_digits(extras->pending) + kSeqsKey.size() +
            sequences_size(extras->first_sequence, count);
  }
  return size;
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

std::size_t subscribe_body_size(std::string_view subject, std::string_view group) {
  // The tail shared with fetch starts with ",\"id\"": its ',' becomes the
  // '{', or follows the group.
  const std::size_t tail = id_and_subject_size(subject);
  return group.empty() ? tail : kGroupKey.size() + json_string_size(group) + tail;
}

void append_subscribe_body(ByteBuffer& out, const SubscriberId& id, std::string_view subject,
                           std::string_view group) {
  const std::size_t size = subscribe_body_size(subject, group);
  char* const start = out.reserve_tail(size);
  char* cursor = start;
  if (!group.empty()) {
    std::memcpy(cursor, kGroupKey.data(), kGroupKey.size());
    cursor = write_json_string(cursor + kGroupKey.size(), group);
  }
  write_id_and_subject(cursor, id, subject);
  if (group.empty()) *start = '{';
  out.commit(size);
}

std::size_t fetch_body_size(const PendingMessages& messages, std::size_t count,
                            std::string_view subject, const FetchAnswerExtras* extras) {
  std::size_t size =
      std::string_view("{\"data\":[]").size() + id_and_subject_size(subject, extras, count);
  messages.for_each(count,
                    [&](const Message& message) { size += json_string_size(message.payload()); });
  if (count > 1) size += count - 1;  // commas
  return size;
}

void append_fetch_body(ByteBuffer& out, std::size_t size, const PendingMessages& messages,
                       std::size_t count, const SubscriberId& id, std::string_view subject,
                       const FetchAnswerExtras* extras) {
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
  cursor = write_id_and_subject(cursor, id, subject, extras, count);
  out.commit(static_cast<std::size_t>(cursor - start));
}

std::size_t ack_fetch_body_size(std::span<const AckQueue::Delivery> deliveries,
                                std::uint64_t pending, std::string_view subject) {
  // {"data":[],"deliveries":[],"id":"<uuid>","pending":N,"seqs":[],"subject":S}\n
  std::size_t size = std::string_view("{\"data\":[],\"deliveries\":[]").size() + kIdKey.size() +
                     SubscriberId::kTextLength + kPendingKey.size() + decimal_digits(pending) +
                     kSeqsKey.size() + kSubjectAfterSeqsKey.size() + json_string_size(subject) + 2;
  for (const AckQueue::Delivery& delivery : deliveries) {
    size += json_string_size(delivery.message->payload()) + decimal_digits(delivery.deliveries) +
            decimal_digits(delivery.sequence);
  }
  if (!deliveries.empty()) size += 3 * (deliveries.size() - 1);  // commas
  return size;
}

void append_ack_fetch_body(ByteBuffer& out, std::size_t size,
                           std::span<const AckQueue::Delivery> deliveries, const SubscriberId& id,
                           std::uint64_t pending, std::string_view subject) {
  char* const start = out.reserve_tail(size);
  char* cursor = start;
  auto put = [&cursor](std::string_view text) {
    std::memcpy(cursor, text.data(), text.size());
    cursor += text.size();
  };
  // One array of `deliveries`, each element written by `write`.
  auto put_list = [&](auto&& write) {
    for (std::size_t i = 0; i < deliveries.size(); ++i) {
      if (i != 0) *cursor++ = ',';
      cursor = write(cursor, deliveries[i]);
    }
  };
  put("{\"data\":[");
  put_list([](char* at, const AckQueue::Delivery& d) {
    return write_json_string(at, d.message->payload());
  });
  put("],\"deliveries\":[");
  put_list([](char* at, const AckQueue::Delivery& d) { return write_decimal(at, d.deliveries); });
  put("]");
  put(kIdKey);
  id.write_text(cursor);
  cursor += SubscriberId::kTextLength;
  put(kPendingKey);
  cursor = write_decimal(cursor, pending);
  put(kSeqsKey);
  put_list([](char* at, const AckQueue::Delivery& d) { return write_decimal(at, d.sequence); });
  put(kSubjectAfterSeqsKey);
  cursor = write_json_string(cursor, subject);
  put("}\n");
  out.commit(static_cast<std::size_t>(cursor - start));
}

void append_info_body(ByteBuffer& out, const SubscriberId& id, std::string_view subject,
                      const SubscriberInfo& info) {
  // The group, the id and four numbers, the subject, the last number: at
  // most 36 + 5 * 20 digits and 100 bytes of keys and punctuation.
  char* const start = out.reserve_tail(json_string_size(subject) + json_string_size(info.group) +
                                       kGroupKey.size() + 256);
  char* cursor = start;
  auto put = [&cursor](std::string_view text) {
    std::memcpy(cursor, text.data(), text.size());
    cursor += text.size();
  };
  if (!info.group.empty()) {
    put(kGroupKey);
    cursor = write_json_string(cursor, info.group);
    put(",\"id\":\"");
  } else {
    put("{\"id\":\"");
  }
  id.write_text(cursor);
  cursor += SubscriberId::kTextLength;
  put("\",\"idle_ms\":");
  cursor = write_decimal(cursor, info.idle_ms);
  put(",\"inflight\":");
  cursor = write_decimal(cursor, info.inflight);
  put(",\"pending\":");
  cursor = write_decimal(cursor, info.pending);
  put(",\"pending_bytes\":");
  cursor = write_decimal(cursor, info.pending_bytes);
  put(",\"subject\":");
  cursor = write_json_string(cursor, subject);
  put(",\"waiting\":");
  cursor = write_decimal(cursor, info.waiting);
  put("}\n");
  out.commit(static_cast<std::size_t>(cursor - start));
}

namespace {
constexpr std::string_view kStatusOk = ",\"status\":\"ok\"}\n";
}  // namespace

std::size_t settled_body_size(std::string_view key, std::uint64_t count) {
  return 1 + json_string_size(key) + 1 + decimal_digits(count) + kStatusOk.size();
}

void append_settled_body(ByteBuffer& out, std::string_view key, std::uint64_t count) {
  // {"<key>":N,"status":"ok"}\n
  char* const start = out.reserve_tail(settled_body_size(key, count));
  char* cursor = start;
  *cursor++ = '{';
  cursor = write_json_string(cursor, key);
  *cursor++ = ':';
  cursor = write_decimal(cursor, count);
  std::memcpy(cursor, kStatusOk.data(), kStatusOk.size());
  cursor += kStatusOk.size();
  out.commit(static_cast<std::size_t>(cursor - start));
}

namespace {
// The quoted message of an error body {"message":"..."}\n.
constexpr std::string_view quoted_message(std::string_view error_body) {
  constexpr std::string_view kOpening = "{\"message\":";
  return error_body.substr(kOpening.size(), error_body.size() - kOpening.size() - 2);
}
}  // namespace

void append_batch_answer_body(ByteBuffer& out, std::span<BatchFailure> failed,
                              std::uint64_t published) {
  std::sort(failed.begin(), failed.end(),
            [](const BatchFailure& a, const BatchFailure& b) { return a.index < b.index; });
  // The longest failure: 3 digits of code, 10 of index, the longest message
  // and 40 bytes of keys and punctuation.
  constexpr std::size_t kMostPerFailure = 3 + 10 + 24 + 40;
  char* const start = out.reserve_tail(failed.size() * kMostPerFailure + 64);
  char* cursor = start;
  auto put = [&cursor](std::string_view text) {
    std::memcpy(cursor, text.data(), text.size());
    cursor += text.size();
  };
  put("{\"failed\":[");
  for (std::size_t i = 0; i != failed.size(); ++i) {
    if (i != 0) *cursor++ = ',';
    put("{\"code\":");
    cursor = write_decimal(cursor, failed[i].status);
    put(",\"index\":");
    cursor = write_decimal(cursor, failed[i].index);
    put(",\"message\":");
    put(quoted_message(failed[i].status == 400   ? body::kInvalidSubject
                       : failed[i].status == 404 ? body::kSubscriberNotFound
                       : failed[i].status == 429 ? body::kBrokerOverflow
                                                 : body::kServerError));
    *cursor++ = '}';
  }
  put("],\"published\":");
  cursor = write_decimal(cursor, published);
  put("}\n");
  out.commit(static_cast<std::size_t>(cursor - start));
}

void append_stream_event(ByteBuffer& out, std::uint64_t sequence, std::string_view payload,
                         std::string_view subject, bool json) {
  constexpr std::string_view kData = "data: ";
  // The most it can take: every byte a line of its own, or escaped to six.
  const std::size_t most = json ? 64 + json_string_size(payload) + json_string_size(subject)
                                : 32 + payload.size() * (kData.size() + 2) + kData.size();
  char* const start = out.reserve_tail(most);
  char* cursor = start;
  auto put = [&cursor](std::string_view text) {
    if (text.empty()) return;  // an empty view may have no pointer
    std::memcpy(cursor, text.data(), text.size());
    cursor += text.size();
  };
  put("id: ");
  cursor = write_decimal(cursor, sequence);
  *cursor++ = '\n';
  if (json) {
    put("data: {\"data\":");
    cursor = write_json_string(cursor, payload);
    put(",\"seq\":");
    cursor = write_decimal(cursor, sequence);
    put(",\"subject\":");
    cursor = write_json_string(cursor, subject);
    put("}\n\n");
  } else {
    std::size_t line_start = 0;
    for (std::size_t i = 0;; ++i) {
      if (i < payload.size() && payload[i] != '\r' && payload[i] != '\n') continue;
      put(kData);
      put(payload.substr(line_start, i - line_start));
      *cursor++ = '\n';
      if (i == payload.size()) break;
      if (payload[i] == '\r' && i + 1 < payload.size() && payload[i + 1] == '\n') ++i;
      line_start = i + 1;
    }
    *cursor++ = '\n';
  }
  out.commit(static_cast<std::size_t>(cursor - start));
}

}  // namespace gophermq
