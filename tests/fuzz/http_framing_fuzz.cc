// libFuzzer target: where RequestParser says each request ends, against a
// small strict reference parser of the framing it may accept.
//
// A proxy in front and the broker must agree on every message boundary, or
// a request can be smuggled past the proxy inside another's body. So every
// request the parser hands over must be one the reference frames the same
// way: same method, same version class, same body, ending at the same byte
// (fed a byte at a time, a request is handed over during the feed of its
// last byte). The parser may refuse more than the reference (limits, the
// characters llhttp allows), never frame differently. And the outcome must
// not depend on how the stream is cut: fed whole, a byte at a time, or in
// pieces drawn from the input's first byte, the requests and final status
// are the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gophermq/byte_buffer.h"
#include "gophermq/http/request_parser.h"

namespace gophermq {
namespace {

struct Delivered {
  std::string method;
  std::string body;
  bool http_1_0;
  std::size_t end;  // stream offset just past the request (fed a byte at a time)
  // Not framing, so the reference leaves it out; it must not depend on the
  // cuts either.
  std::string origin = {};

  bool same_request(const Delivered& other) const {
    return method == other.method && body == other.body && http_1_0 == other.http_1_0;
  }
};

struct Outcome {
  ParseStatus status = ParseStatus::ok;
  std::vector<Delivered> requests;
};

class Recorder final : public RequestSink {
 public:
  explicit Recorder(Outcome& outcome) : outcome_(outcome) {}
  void on_request(const HttpRequest& request) override {
    if (request.body_padded_capacity < request.body_size + ByteBuffer::kPadding) std::abort();
    outcome_.requests.push_back({llhttp_method_name(request.method),
                                 std::string(request.body, request.body_size), request.http_1_0,
                                 fed_end, std::string(request.origin)});
  }
  void on_continue_expected() override {}

  std::size_t fed_end = 0;  // offset just past the piece being fed

 private:
  Outcome& outcome_;
};

// Feeds `input` in pieces whose sizes `next_piece` gives, each from a fresh
// buffer freed right after, until a status other than ok.
template <typename NextPiece>
Outcome parse(std::string_view input, NextPiece next_piece) {
  Outcome outcome;
  Recorder recorder(outcome);
  // Origin is read as with broker.cors-origins set.
  RequestParser parser(RequestLimits{2048, 4096, 24}, recorder);
  for (std::size_t at = 0; at < input.size() && outcome.status == ParseStatus::ok;) {
    const std::size_t size = std::min(next_piece(), input.size() - at);
    std::vector<char> piece(size + ByteBuffer::kPadding);
    std::memcpy(piece.data(), input.data() + at, size);
    at += size;
    recorder.fed_end = at;
    outcome.status = parser.feed(piece.data(), size, piece.size());
  }
  return outcome;
}

bool same_outcome(const Outcome& a, const Outcome& b) {
  if (a.status != b.status || a.requests.size() != b.requests.size()) return false;
  for (std::size_t i = 0; i < a.requests.size(); ++i) {
    if (!a.requests[i].same_request(b.requests[i])) return false;
    if (a.requests[i].origin != b.requests[i].origin) return false;
  }
  return true;
}

// --- The reference: RFC 9112 framing, strictly, and nothing else -----------

bool is_tchar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto fold = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (fold(a[i]) != fold(b[i])) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

class Reference {
 public:
  explicit Reference(std::string_view input) : in_(input) {}

  // The messages framed whole, in order, up to the first that is refused or
  // cut short by the end of the input.
  std::vector<Delivered> messages() {
    std::vector<Delivered> framed;
    while (std::optional<Delivered> message = next()) framed.push_back(std::move(*message));
    return framed;
  }

 private:
  // The line from pos_ to its CRLF, moving past it; nullopt at a bare CR or
  // LF, or without a CRLF before the end.
  std::optional<std::string_view> line() {
    for (std::size_t i = pos_; i < in_.size(); ++i) {
      if (in_[i] == '\n') return std::nullopt;
      if (in_[i] == '\r') {
        if (i + 1 >= in_.size() || in_[i + 1] != '\n') return std::nullopt;
        std::string_view text = in_.substr(pos_, i - pos_);
        pos_ = i + 2;
        return text;
      }
    }
    return std::nullopt;
  }

  struct Field {
    std::string_view name;
    std::string_view value;
  };

  // "name: value": a token, a colon, the value without its optional
  // whitespace. A line starting with whitespace (obs-fold) has no name.
  static std::optional<Field> field(std::string_view text) {
    const std::size_t colon = text.find(':');
    if (colon == 0 || colon == std::string_view::npos) return std::nullopt;
    for (char c : text.substr(0, colon)) {
      if (!is_tchar(c)) return std::nullopt;
    }
    return Field{text.substr(0, colon), trim_ows(text.substr(colon + 1))};
  }

  // Header or trailer fields up to the blank line; false if one is malformed.
  bool fields(std::vector<Field>& out) {
    while (true) {
      std::optional<std::string_view> text = line();
      if (!text) return false;
      if (text->empty()) return true;
      std::optional<Field> parsed = field(*text);
      if (!parsed) return false;
      out.push_back(*parsed);
    }
  }

  // Digits in `base`, none missing, fitting 64 bits.
  static std::optional<std::uint64_t> number(std::string_view digits, unsigned base) {
    if (digits.empty()) return std::nullopt;
    std::uint64_t value = 0;
    for (char c : digits) {
      unsigned digit;
      if (c >= '0' && c <= '9') {
        digit = static_cast<unsigned>(c - '0');
      } else if (base == 16 && c >= 'a' && c <= 'f') {
        digit = static_cast<unsigned>(c - 'a' + 10);
      } else if (base == 16 && c >= 'A' && c <= 'F') {
        digit = static_cast<unsigned>(c - 'A' + 10);
      } else {
        return std::nullopt;
      }
      if (value > (UINT64_MAX - digit) / base) return std::nullopt;
      value = value * base + digit;
    }
    return value;
  }

  std::optional<std::string> chunked_body() {
    std::string body;
    while (true) {
      std::optional<std::string_view> size_line = line();
      if (!size_line) return std::nullopt;
      // A chunk extension, whatever it holds, ends at the line's CRLF.
      std::optional<std::uint64_t> size = number(size_line->substr(0, size_line->find(';')), 16);
      if (!size) return std::nullopt;
      if (*size == 0) {
        std::vector<Field> trailers;
        if (!fields(trailers)) return std::nullopt;
        return body;
      }
      if (in_.size() - pos_ < *size || in_.size() - pos_ - *size < 2) return std::nullopt;
      body.append(in_.substr(pos_, *size));
      pos_ += *size;
      if (in_.substr(pos_, 2) != "\r\n") return std::nullopt;
      pos_ += 2;
    }
  }

  std::optional<Delivered> next() {
    // Empty lines before a request line are skipped (RFC 9112 2.2).
    std::optional<std::string_view> request_line;
    do {
      request_line = line();
      if (!request_line) return std::nullopt;
    } while (request_line->empty());
    // method SP target SP HTTP/1.x
    const std::size_t sp1 = request_line->find(' ');
    const std::size_t sp2 = request_line->rfind(' ');
    if (sp1 == 0 || sp1 == std::string_view::npos || sp2 == sp1 + 1 || sp2 == sp1) {
      return std::nullopt;
    }
    const std::string_view method = request_line->substr(0, sp1);
    for (char c : method) {
      if (!is_tchar(c)) return std::nullopt;
    }
    const std::string_view version = request_line->substr(sp2 + 1);
    if (version != "HTTP/1.1" && version != "HTTP/1.0") return std::nullopt;
    const bool http_1_0 = version == "HTTP/1.0";

    std::vector<Field> headers;
    if (!fields(headers)) return std::nullopt;
    std::size_t hosts = 0;
    std::vector<std::string_view> lengths, codings;
    for (const Field& f : headers) {
      if (equals_ignoring_case(f.name, "host")) ++hosts;
      if (equals_ignoring_case(f.name, "content-length")) lengths.push_back(f.value);
      if (equals_ignoring_case(f.name, "transfer-encoding")) codings.push_back(f.value);
    }
    // RFC 9112 3.2: exactly one Host on HTTP/1.1, at most one otherwise.
    if (hosts > 1 || (hosts == 0 && !http_1_0)) return std::nullopt;
    // One Content-Length or one Transfer-Encoding that is exactly chunked.
    if (lengths.size() + codings.size() > 1) return std::nullopt;

    Delivered message{std::string(method), {}, http_1_0, 0};
    if (!codings.empty()) {
      if (http_1_0 || !equals_ignoring_case(codings[0], "chunked")) return std::nullopt;
      std::optional<std::string> body = chunked_body();
      if (!body) return std::nullopt;
      message.body = std::move(*body);
    } else if (!lengths.empty()) {
      std::optional<std::uint64_t> length = number(lengths[0], 10);
      if (!length || in_.size() - pos_ < *length) return std::nullopt;
      message.body = std::string(in_.substr(pos_, *length));
      pos_ += *length;
    }
    message.end = pos_;
    return message;
  }

  std::string_view in_;
  std::size_t pos_ = 0;
};

}  // namespace
}  // namespace gophermq

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace gophermq;
  if (size == 0) return 0;
  std::uint32_t random = data[0] * 2654435761u + 1;  // the pieces' sizes come from the first byte
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

  const Outcome whole = parse(input, [&] { return input.size(); });
  const Outcome bytewise = parse(input, [] { return std::size_t{1}; });
  const Outcome pieces = parse(input, [&] {
    random ^= random << 13;
    random ^= random >> 17;
    random ^= random << 5;
    // Mostly a few bytes, now and then a few hundred.
    return std::size_t{1} + (random % 4 == 0 ? random / 4 % 512 : random / 4 % 8);
  });
  if (!same_outcome(whole, bytewise) || !same_outcome(whole, pieces)) std::abort();

  const std::vector<Delivered> framed = Reference(input).messages();
  if (bytewise.requests.size() > framed.size()) std::abort();
  for (std::size_t i = 0; i < bytewise.requests.size(); ++i) {
    const Delivered& request = bytewise.requests[i];
    if (!request.same_request(framed[i]) || request.end != framed[i].end) std::abort();
  }
  // Everything fed and nothing wrong: no request the reference saw whole may
  // be still waiting for bytes.
  if (whole.status == ParseStatus::ok && whole.requests.size() != framed.size()) std::abort();
  return 0;
}
