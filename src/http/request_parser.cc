#include "gophermq/http/request_parser.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <span>

#include "gophermq/ascii.h"

namespace gophermq {
namespace {

RequestParser& self(llhttp_t* parser) { return *static_cast<RequestParser*>(parser->data); }

// Appends a header value's bytes, lower-cased, to a small fixed buffer;
// overflowing it marks the value as "too long to be what we look for" by
// pushing size past capacity. A run of spaces and tabs is kept as one space,
// so optional whitespace of any length does not push a value past the buffer.
void collect(std::span<char> buffer, std::size_t& size, const char* at, std::size_t length) {
  const std::size_t capacity = buffer.size();
  for (std::size_t i = 0; i < length && size <= capacity; ++i) {
    const char c = at[i] == '\t' ? ' ' : ascii_lower(at[i]);
    if (c == ' ' && size > 0 && size <= capacity && buffer[size - 1] == ' ') continue;
    if (size < capacity) buffer[size] = c;
    ++size;
  }
}

// What collect() gathered, without a trailing space; a value that overflowed
// the buffer as the whole buffer.
std::string_view collected(std::span<const char> buffer, std::size_t size) {
  if (size > buffer.size()) return {buffer.data(), buffer.size()};
  if (size > 0 && buffer[size - 1] == ' ') --size;
  return {buffer.data(), size};
}

bool collected_equals(std::span<const char> buffer, std::size_t size, std::string_view expected) {
  return size <= buffer.size() && collected(buffer, size) == expected;
}

// A header name may hold only RFC 9110 token characters. llhttp 8.1 checks
// that but for one: it lets spaces through ("Host : x"), which RFC 9112 says
// a server must refuse: proxies disagree on such names, the stuff of request
// smuggling. So of a name llhttp reports, only its spaces are ours to find:
// how many bytes from `at` on come before the first.
std::size_t length_before_space(const char* at, std::size_t length) {
  const void* space = std::memchr(at, ' ', length);
  return space == nullptr ? length : static_cast<std::size_t>(static_cast<const char*>(space) - at);
}

// The path of a target in absolute form (RFC 9112 3.2.2: a server must
// accept `http://host/api/publish`); other targets are returned as they are.
std::string_view origin_path(std::string_view target) {
  std::size_t scheme = 0;
  if (target.size() >= 7 && (target[0] | 0x20) == 'h' && (target[1] | 0x20) == 't' &&
      (target[2] | 0x20) == 't' && (target[3] | 0x20) == 'p') {
    if (target.substr(4, 3) == "://") scheme = 7;
    if ((target[4] | 0x20) == 's' && target.substr(5, 3) == "://") scheme = 8;
  }
  if (scheme == 0) return target;
  std::size_t slash = target.find('/', scheme);
  return slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
}

// llhttp 8.1 checks few of the line ends it skips: it takes a bare LF after
// the request line and for the blank line ending a head or trailers, and any
// byte after the CR of a chunk-size line or of that blank line, and any two
// bytes after a chunk's data. A proxy in front reads such bytes differently,
// and the two then disagree on where a message ends: request smuggling. So
// the bytes llhttp consumes without reporting them in a span go through this
// automaton: every CR must be followed by LF and every LF preceded by CR; a
// line that starts with whitespace continues a header (obs-fold, which RFC
// 9112 5.2 lets a server refuse and proxies differ on); and a chunk's data
// must be followed by CRLF.
enum LineState : std::uint8_t {
  kInLine,     // the line has begun
  kLineStart,  // just after an LF, or before any byte
  kBlankEnd,   // just after the LF of a blank line; otherwise as kLineStart
  kCr,         // a CR after the line's content: LF must follow
  kCrAtStart,  // a CR on an empty line: LF must follow, ending a blank line
  kCrlfDue,    // a chunk's data just ended: CRLF must follow
  kBroken,
  kLineStates
};

enum ByteClass : std::uint8_t { kOther, kCarriageReturn, kLineFeed, kWhitespace, kByteClasses };

constexpr ByteClass byte_class(int c) {
  switch (c) {
    case '\r':
      return kCarriageReturn;
    case '\n':
      return kLineFeed;
    case ' ':
    case '\t':
      return kWhitespace;
    default:
      return kOther;
  }
}

// The automaton by byte class, and below it the table it runs from: one
// lookup per byte, by state and byte.
constexpr std::uint8_t kNextLineByClass[kLineStates][kByteClasses] = {
    {kInLine, kCr, kBroken, kInLine},         // kInLine
    {kInLine, kCrAtStart, kBroken, kBroken},  // kLineStart
    {kInLine, kCrAtStart, kBroken, kBroken},  // kBlankEnd
    {kBroken, kBroken, kLineStart, kBroken},  // kCr
    {kBroken, kBroken, kBlankEnd, kBroken},   // kCrAtStart
    {kBroken, kCr, kBroken, kBroken},         // kCrlfDue
    {kBroken, kBroken, kBroken, kBroken},     // kBroken
};

constexpr auto kNextLine = [] {
  std::array<std::array<std::uint8_t, 256>, kLineStates> next{};
  for (int state = 0; state < kLineStates; ++state) {
    for (int c = 0; c < 256; ++c) next[state][c] = kNextLineByClass[state][byte_class(c)];
  }
  return next;
}();

std::uint8_t next_line(std::uint8_t state, char c) {
  return kNextLine[state][static_cast<unsigned char>(c)];
}

// An empty body still needs readable padding behind its pointer.
alignas(64) constexpr char kEmptyBody[ByteBuffer::kPadding] = {};

}  // namespace

constexpr llhttp_settings_t RequestParser::kSettings = [] {
  llhttp_settings_t settings{};  // what llhttp_settings_init() does: no callbacks
  settings.on_message_begin = &on_message_begin;
  settings.on_method = &on_method;
  settings.on_url = &on_url;
  settings.on_header_field = &on_header_field;
  settings.on_header_field_complete = &on_header_field_complete;
  settings.on_header_value = &on_header_value;
  settings.on_header_value_complete = &on_header_value_complete;
  settings.on_headers_complete = &on_headers_complete;
  settings.on_body = &on_body;
  settings.on_message_complete = &on_message_complete;
  return settings;
}();

RequestParser::RequestParser(const RequestLimits& limits, RequestSink& sink)
    : limits_(limits), sink_(sink) {
  // One byte past the limit: a longer value then shows as one that equals no
  // origin within it, rather than as its prefix, which might.
  if (limits.max_origin_bytes != 0) origin_ = std::make_unique<char[]>(limits.max_origin_bytes + 1);
  reset();
}

void RequestParser::reset() {
  llhttp_init(&parser_, HTTP_REQUEST, &kSettings);
  parser_.data = this;
  failure_ = ParseStatus::ok;
  hold_requested_ = false;
  held_at_ = nullptr;
  line_ = kLineStart;
  in_message_ = false;
  in_head_ = false;
  body_view_ = nullptr;
  body_.clear();
  body_.shrink_if_above(64 << 10);
}

ParseStatus RequestParser::feed(const char* data, std::size_t size, std::size_t padded_capacity) {
  // llhttp stays in its error too, but not for what is found after it returns.
  if (failure_ != ParseStatus::ok) return failure_;
  chunk_end_ = data + size;
  chunk_padded_end_ = data + padded_capacity;
  mark_ = data;
  llhttp_errno_t error = llhttp_execute(&parser_, data, size);
  if (error == HPE_OK) {
    // What follows the last span is checked (and counted, in a head) now:
    // the next chunk starts a new stretch.
    if (const char* bad = check_unreported(mark_, chunk_end_)) return failure_ = malformed_at(bad);
    if (ParseStatus status = advance(chunk_end_); status != ParseStatus::ok) {
      return failure_ = status;
    }
    // The chunk is about to be recycled: keep what we hold of it by view, the
    // part of a body or of a header name.
    if (body_view_ != nullptr) {
      body_.append(body_view_, body_view_size_);
      body_view_ = nullptr;
    }
    if (field_size_ > 0 && field_at_ != field_) {
      std::memcpy(field_, field_at_, std::min(field_size_, sizeof field_));
      field_at_ = field_;
    }
    return ParseStatus::ok;
  }
  if (error == HPE_PAUSED) {
    if (!hold_requested_) return ParseStatus::stopped;
    // Paused between two requests: what llhttp skipped up to the pause is
    // checked like the rest, and nothing after it has been looked at.
    held_at_ = llhttp_get_error_pos(&parser_);
    if (const char* bad = check_unreported(mark_, held_at_)) return failure_ = malformed_at(bad);
    if (ParseStatus status = advance(held_at_); status != ParseStatus::ok) return failure_ = status;
    return ParseStatus::held;
  }
  if (failure_ == ParseStatus::ok) failure_ = refused_by_llhttp();
  return failure_;
}

void RequestParser::resume() {
  if (!hold_requested_) return;
  hold_requested_ = false;
  held_at_ = nullptr;
  llhttp_resume(&parser_);
}

int RequestParser::fail(ParseStatus status) {
  failure_ = status;
  return -1;  // makes llhttp stop with HPE_CB_* and return to feed()
}

// The loops work on a copy of the state, which the compiler keeps in a
// register (stores through the member would alias the bytes read); a
// malformed stream stops the parser, so its state is not kept. This one,
// advance() and take_span() run at every span: inline.
inline const char* RequestParser::check_unreported(const char* from, const char* to) {
  std::uint8_t state = line_;
  for (const char* c = from; c < to; ++c) {
    state = next_line(state, *c);
    if (state == kBroken) return c;
  }
  line_ = state;
  return nullptr;
}

ParseStatus RequestParser::pass_blank_line() {
  std::uint8_t state = line_;
  for (const char* c = mark_; c < chunk_end_; ++c) {
    state = next_line(state, *c);
    if (state == kBroken) return malformed_at(c);
    if (state == kBlankEnd) {
      line_ = state;
      return advance(c + 1);
    }
  }
  return malformed_at(chunk_end_);  // llhttp saw a blank line where we see none
}

inline ParseStatus RequestParser::advance(const char* to) {
  const auto bytes = static_cast<std::size_t>(to - mark_);
  mark_ = to;
  if (in_head_) {
    header_bytes_ += bytes;
    return header_bytes_ > limits_.max_header_bytes ? ParseStatus::headers_too_large
                                                    : ParseStatus::ok;
  }
  // In a body every byte not reported as data is framing; a body sent with
  // Content-Length has none.
  return in_message_ && bytes != 0 ? count_framing(bytes) : ParseStatus::ok;
}

ParseStatus RequestParser::count_framing(std::size_t bytes) {
  framing_bytes_ += bytes;
  // (body_size_ is bounded by max_body_bytes, far below where the product
  // could wrap.)
  return framing_bytes_ > limits_.max_header_bytes + kFramingPerByte * body_size_
             ? ParseStatus::body_too_large
             : ParseStatus::ok;
}

[[gnu::cold]] ParseStatus RequestParser::malformed_at(const char* at) {
  // llhttp reports its own errors with spans it had begun left unreported.
  if (const char* earlier = check_unreported(mark_, at)) at = earlier;
  const ParseStatus status = advance(at);
  return status == ParseStatus::ok ? ParseStatus::malformed : status;
}

[[gnu::cold]] ParseStatus RequestParser::refused_by_llhttp() {
  const char* at = llhttp_get_error_pos(&parser_);
  // llhttp drops the span it had begun when it refuses a byte (the start of
  // that span is in its state). Were the span a header name, a space in it,
  // which llhttp lets through and we do not, is the earlier error: the one
  // found when the stream is cut before llhttp's.
  const char* span = static_cast<const char*>(parser_._span_pos0);
  if (in_head_ && span != nullptr && span >= mark_ && span < at) {
    if (const char* bad = check_unreported(mark_, span)) return malformed_at(bad);
    if (ParseStatus status = advance(span); status != ParseStatus::ok) return status;
    // A name goes on, or a header line starts (the request line has ended:
    // only a blank line before the method starts a line outside a head).
    if (field_size_ > 0 || line_ == kLineStart) {
      const std::size_t name = length_before_space(span, static_cast<std::size_t>(at - span));
      if (span + name < at) return malformed_at(span + name);
    }
  }
  return malformed_at(at);
}

inline ParseStatus RequestParser::take_span(const char* at, std::size_t length) {
  const char* bad = check_unreported(mark_, at);
  if (bad == nullptr && length > 0) {
    // The span's first byte goes on the line too: a field value starting a
    // line is an obs-fold continuation.
    if (next_line(line_, at[0]) == kBroken) bad = at;
    line_ = kInLine;
  }
  if (bad != nullptr) return malformed_at(bad);
  return advance(at + length);
}

int RequestParser::on_message_begin(llhttp_t* parser) {
  RequestParser& p = self(parser);
  p.in_message_ = true;
  p.header_bytes_ = 0;
  p.path_size_ = 0;
  p.path_overflow_ = false;
  p.path_done_ = false;
  p.in_query_ = false;
  p.query_.clear();
  p.field_size_ = 0;
  p.value_size_ = 0;
  p.header_ = Header::other;
  p.expects_continue_ = false;
  p.hosts_ = 0;
  p.transfer_encodings_ = 0;
  p.chunked_coding_ = false;
  p.origin_size_ = 0;
  p.origins_ = 0;
  p.body_view_ = nullptr;
  p.body_view_size_ = 0;
  p.body_.clear();
  p.body_size_ = 0;
  p.framing_bytes_ = 0;
  return 0;
}

int RequestParser::on_method(llhttp_t* parser, const char* at, std::size_t length) {
  RequestParser& p = self(parser);
  // The head starts at the method: empty lines llhttp skips before it are
  // checked but not counted.
  if (!p.in_head_) {
    if (p.check_unreported(p.mark_, at) != nullptr) return p.fail(ParseStatus::malformed);
    p.mark_ = at;
    p.in_head_ = true;
  }
  const ParseStatus status = p.take_span(at, length);
  return status == ParseStatus::ok ? 0 : p.fail(status);
}

int RequestParser::on_url(llhttp_t* parser, const char* at, std::size_t length) {
  RequestParser& p = self(parser);
  if (ParseStatus status = p.take_span(at, length); status != ParseStatus::ok) {
    return p.fail(status);
  }
  std::size_t from = 0;
  if (!p.path_done_) {
    std::size_t end = 0;
    while (end < length && at[end] != '?' && at[end] != '#') ++end;
    const std::size_t room = kMaxPath - p.path_size_;
    const std::size_t copied = std::min(end, room);
    p.path_overflow_ = p.path_overflow_ || end > room;
    std::memcpy(p.path_ + p.path_size_, at, copied);
    p.path_size_ += copied;
    if (end == length) return 0;
    p.path_done_ = true;
    p.in_query_ = at[end] == '?';
    from = end + 1;
  }
  if (p.in_query_) {
    std::size_t end = from;
    while (end < length && at[end] != '#') ++end;
    p.query_.append(at + from, end - from);
    p.in_query_ = end == length;
  }
  return 0;
}

int RequestParser::on_header_field(llhttp_t* parser, const char* at, std::size_t length) {
  RequestParser& p = self(parser);
  const std::size_t name = length_before_space(at, length);
  // The name as sent: its case is folded only to compare it. Read in place
  // (feed() keeps it if the chunk ends first); one that goes on from an
  // earlier chunk is added to what feed() kept, as much as fits.
  if (p.field_size_ == 0) {
    p.field_at_ = at;
  } else if (p.field_size_ < sizeof p.field_) {
    std::memcpy(p.field_ + p.field_size_, at, std::min(name, sizeof p.field_ - p.field_size_));
  }
  p.field_size_ += name;
  // In stream order: what llhttp skipped before the name, the name up to a
  // space, then that space.
  ParseStatus status = p.take_span(at, name);
  if (status == ParseStatus::ok && name < length) status = ParseStatus::malformed;
  return status == ParseStatus::ok ? 0 : p.fail(status);
}

int RequestParser::on_header_field_complete(llhttp_t* parser) {
  RequestParser& p = self(parser);
  // llhttp 8.1 takes ": value", a field without a name.
  if (p.field_size_ == 0) return p.fail(ParseStatus::malformed);
  const std::size_t size = p.field_size_;
  p.field_size_ = 0;  // no name goes on
  // Trailers are read past: what they say does not change how we serve.
  if (p.in_head_ && size <= sizeof p.field_) {
    const std::string_view name(p.field_at_, size);
    if (equals_ignoring_case(name, "host")) {
      p.header_ = Header::host;
    } else if (equals_ignoring_case(name, "expect")) {
      p.header_ = Header::expect;
    } else if (equals_ignoring_case(name, "transfer-encoding")) {
      p.header_ = Header::transfer_encoding;
    } else if (p.origin_ != nullptr && equals_ignoring_case(name, "origin")) {
      p.header_ = Header::origin;
    }
  }
  return 0;
}

int RequestParser::on_header_value(llhttp_t* parser, const char* at, std::size_t length) {
  RequestParser& p = self(parser);
  if (ParseStatus status = p.take_span(at, length); status != ParseStatus::ok) {
    return p.fail(status);
  }
  if (p.header_ == Header::expect || p.header_ == Header::transfer_encoding) {
    collect(p.value_, p.value_size_, at, length);
  } else if (p.header_ == Header::origin && p.origins_ == 0) {
    collect(p.origin_buffer(), p.origin_size_, at, length);
  }
  return 0;
}

int RequestParser::on_header_value_complete(llhttp_t* parser) {
  RequestParser& p = self(parser);
  switch (p.header_) {
    case Header::other:
      break;
    case Header::host:
      ++p.hosts_;
      break;
    case Header::expect:
      if (collected_equals(p.value_, p.value_size_, "100-continue")) p.expects_continue_ = true;
      break;
    case Header::transfer_encoding:
      ++p.transfer_encodings_;
      p.chunked_coding_ = collected_equals(p.value_, p.value_size_, "chunked");
      break;
    case Header::origin:
      ++p.origins_;
      break;
  }
  p.value_size_ = 0;
  p.header_ = Header::other;
  return 0;
}

int RequestParser::on_headers_complete(llhttp_t* parser) {
  RequestParser& p = self(parser);
  if (ParseStatus status = p.pass_blank_line(); status != ParseStatus::ok) return p.fail(status);
  p.in_head_ = false;
  // We serve HTTP/1.0 and 1.1. llhttp also takes 0.9 and 2.0, and a request
  // line without a version (as 0.9, whose headers it reads all the same);
  // it refuses the other 1.x itself.
  if (parser->http_major != 1) return p.fail(ParseStatus::malformed);
  const bool http_1_0 = parser->http_minor == 0;
  // RFC 9112 3.2: an HTTP/1.1 request without Host, and any request with
  // two, must be answered 400.
  if (p.hosts_ > 1 || (p.hosts_ == 0 && !http_1_0)) return p.fail(ParseStatus::malformed);
  // Chunked is the one coding we take, alone and once: llhttp 8.1 reads
  // "gzip, chunked" as chunked and ignores an empty Transfer-Encoding, where
  // a proxy may refuse or decode. HTTP/1.0 has no transfer codings at all
  // (RFC 9112 6.1: its framing is faulty), though llhttp honours them.
  if (p.transfer_encodings_ > 0 && (p.transfer_encodings_ > 1 || !p.chunked_coding_ || http_1_0)) {
    return p.fail(ParseStatus::malformed);
  }
  // We speak HTTP/1.1 only: an Upgrade (h2c, websocket) or CONNECT is served
  // as an ordinary request instead of handing the stream to another protocol.
  parser->upgrade = 0;
  const bool chunked = (parser->flags & F_CHUNKED) != 0;
  // Refused from the headers alone, before any of the body is read.
  if (!chunked && parser->content_length > p.limits_.max_body_bytes) {
    return p.fail(ParseStatus::body_too_large);
  }
  const bool has_body = chunked || parser->content_length > 0;
  if (p.expects_continue_ && has_body && parser->http_minor >= 1) p.sink_.on_continue_expected();
  return 0;
}

int RequestParser::on_body(llhttp_t* parser, const char* at, std::size_t length) {
  RequestParser& p = self(parser);
  if (p.check_unreported(p.mark_, at) != nullptr) return p.fail(ParseStatus::malformed);
  if (ParseStatus status = p.advance(at); status != ParseStatus::ok) return p.fail(status);
  p.mark_ = at + length;
  if (length > 0) p.line_ = kInLine;
  // llhttp zeroes the count when a chunk's data is all here, and then skips
  // the two bytes after it unseen.
  if ((parser->flags & F_CHUNKED) != 0 && parser->content_length == 0) p.line_ = kCrlfDue;
  p.body_size_ += length;
  if (p.body_size_ > p.limits_.max_body_bytes) return p.fail(ParseStatus::body_too_large);
  if (p.body_.empty()) {
    if (p.body_view_ == nullptr) {
      p.body_view_ = at;
      p.body_view_size_ = length;
      return 0;
    }
    if (p.body_view_ + p.body_view_size_ == at) {
      p.body_view_size_ += length;
      return 0;
    }
    // Chunked encoding: the pieces are not contiguous; gather them.
    p.body_.append(p.body_view_, p.body_view_size_);
    p.body_view_ = nullptr;
  }
  p.body_.append(at, length);
  return 0;
}

int RequestParser::on_message_complete(llhttp_t* parser) {
  RequestParser& p = self(parser);
  // A chunked body ends at the blank line after its last chunk and trailers.
  if ((parser->flags & F_CHUNKED) != 0) {
    if (ParseStatus status = p.pass_blank_line(); status != ParseStatus::ok) return p.fail(status);
  }
  HttpRequest request;
  request.method = static_cast<llhttp_method_t>(parser->method);
  request.path = p.path_overflow_ ? std::string_view() : origin_path({p.path_, p.path_size_});
  request.query = p.query_.view();
  if (p.body_view_ != nullptr) {
    request.body = p.body_view_;
    request.body_size = p.body_view_size_;
    request.body_padded_capacity = static_cast<std::size_t>(p.chunk_padded_end_ - p.body_view_);
  } else if (!p.body_.empty()) {
    request.body = p.body_.data();
    request.body_size = p.body_.size();
    request.body_padded_capacity = p.body_.padded_capacity();
  } else {
    request.body = kEmptyBody;
    request.body_size = 0;
    request.body_padded_capacity = sizeof(kEmptyBody);
  }
  request.chunked = (parser->flags & F_CHUNKED) != 0;
  request.keep_alive = llhttp_should_keep_alive(parser) != 0;
  request.http_1_0 = parser->http_major == 1 && parser->http_minor == 0;
  // Two Origins name no one origin (a browser sends one at most).
  request.origin =
      p.origins_ == 1 ? collected(p.origin_buffer(), p.origin_size_) : std::string_view();
  p.in_message_ = false;
  p.sink_.on_request(request);
  p.body_view_ = nullptr;
  p.body_.clear();
  p.body_.shrink_if_above(64 << 10);
  // Without keep-alive nothing after this request is ever read (a hold no
  // longer matters); with a hold, nothing for now.
  if (!request.keep_alive) p.hold_requested_ = false;
  return request.keep_alive && !p.hold_requested_ ? 0 : HPE_PAUSED;
}

}  // namespace gophermq
