#include "gophermq/request_parser.h"

#include <array>
#include <cstring>

namespace gophermq {
namespace {

RequestParser& self(llhttp_t* parser) { return *static_cast<RequestParser*>(parser->data); }

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Appends lower-cased bytes to a small fixed buffer; overflowing it marks the
// text as "too long to be what we look for" by pushing size past capacity.
template <std::size_t N>
void collect(char (&buffer)[N], std::size_t& size, const char* at, std::size_t length) {
  for (std::size_t i = 0; i < length && size <= N; ++i, ++size) {
    if (size < N) buffer[size] = lower(at[i]);
  }
}

template <std::size_t N>
bool collected_equals(const char (&buffer)[N], std::size_t size, std::string_view expected) {
  while (size > 0 && size <= N && (buffer[size - 1] == ' ' || buffer[size - 1] == '\t')) --size;
  return size <= N && std::string_view(buffer, size) == expected;
}

// RFC 9110 token characters, the only ones a header name may hold. llhttp 8.1
// lets spaces through ("Host : x"), which RFC 9112 says a server must refuse:
// proxies disagree on such names, the stuff of request smuggling.
constexpr std::array<bool, 256> kTokenCharacter = [] {
  std::array<bool, 256> token{};
  for (int c = '0'; c <= '9'; ++c) token[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) token[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) token[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) token[static_cast<unsigned char>(c)] = true;
  return token;
}();

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

// An empty body still needs readable padding behind its pointer.
alignas(64) constexpr char kEmptyBody[ByteBuffer::kPadding] = {};

}  // namespace

RequestParser::RequestParser(const RequestLimits& limits, RequestSink& sink)
    : limits_(limits), sink_(sink) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = &RequestParser::on_message_begin;
  settings_.on_url = &RequestParser::on_url;
  settings_.on_header_field = &RequestParser::on_header_field;
  settings_.on_header_value = &RequestParser::on_header_value;
  settings_.on_header_value_complete = &RequestParser::on_header_value_complete;
  settings_.on_headers_complete = &RequestParser::on_headers_complete;
  settings_.on_body = &RequestParser::on_body;
  settings_.on_message_complete = &RequestParser::on_message_complete;
  reset();
}

void RequestParser::reset() {
  llhttp_init(&parser_, HTTP_REQUEST, &settings_);
  parser_.data = this;
  failure_ = ParseStatus::ok;
  in_message_ = false;
  body_view_ = nullptr;
  body_.clear();
  body_.shrink_if_above(64 << 10);
}

ParseStatus RequestParser::feed(const char* data, std::size_t size, std::size_t padded_capacity) {
  chunk_padded_end_ = data + padded_capacity;
  head_mark_ = data;
  llhttp_errno_t error = llhttp_execute(&parser_, data, size);
  if (error == HPE_OK) {
    // A head still incomplete at the chunk's end: what it holds so far counts
    // (slowly streamed headers, or padding no callback reports).
    if (in_message_ && !headers_done_ && !count_head_bytes(data + size, data + size)) {
      return ParseStatus::headers_too_large;
    }
    // The chunk is about to be recycled: keep the part of a body we hold by view.
    if (body_view_ != nullptr) {
      body_.append(body_view_, body_view_size_);
      body_view_ = nullptr;
    }
    return ParseStatus::ok;
  }
  if (error == HPE_PAUSED) return ParseStatus::stopped;
  return failure_ != ParseStatus::ok ? failure_ : ParseStatus::malformed;
}

int RequestParser::fail(ParseStatus status) {
  failure_ = status;
  return -1;  // makes llhttp stop with HPE_CB_* and return to feed()
}

bool RequestParser::count_head_bytes(const char* at, const char* end) {
  // A message that began inside this chunk starts counting at its target
  // (the method, a few bytes, is left out).
  if (head_mark_ == nullptr) head_mark_ = at;
  header_bytes_ += static_cast<std::size_t>(end - head_mark_);
  head_mark_ = end;
  return header_bytes_ <= limits_.max_header_bytes;
}

int RequestParser::on_message_begin(llhttp_t* parser) {
  RequestParser& p = self(parser);
  p.in_message_ = true;
  p.headers_done_ = false;
  p.header_bytes_ = 0;
  p.head_mark_ = nullptr;
  p.path_size_ = 0;
  p.path_overflow_ = false;
  p.path_done_ = false;
  p.field_size_ = 0;
  p.value_size_ = 0;
  p.in_value_ = false;
  p.expects_continue_ = false;
  p.body_view_ = nullptr;
  p.body_view_size_ = 0;
  p.body_.clear();
  p.body_size_ = 0;
  return 0;
}

int RequestParser::on_url(llhttp_t* parser, const char* at, std::size_t length) {
  RequestParser& p = self(parser);
  if (!p.count_head_bytes(at, at + length)) return p.fail(ParseStatus::headers_too_large);
  for (std::size_t i = 0; i < length && !p.path_done_; ++i) {
    if (at[i] == '?' || at[i] == '#') {
      p.path_done_ = true;
    } else if (p.path_size_ < kMaxPath) {
      p.path_[p.path_size_++] = at[i];
    } else {
      p.path_overflow_ = true;
    }
  }
  return 0;
}

int RequestParser::on_header_field(llhttp_t* parser, const char* at, std::size_t length) {
  RequestParser& p = self(parser);
  if (!p.count_head_bytes(at, at + length)) return p.fail(ParseStatus::headers_too_large);
  for (std::size_t i = 0; i < length; ++i) {
    if (!kTokenCharacter[static_cast<unsigned char>(at[i])]) return p.fail(ParseStatus::malformed);
  }
  collect(p.field_, p.field_size_, at, length);
  return 0;
}

int RequestParser::on_header_value(llhttp_t* parser, const char* at, std::size_t length) {
  RequestParser& p = self(parser);
  if (!p.count_head_bytes(at, at + length)) return p.fail(ParseStatus::headers_too_large);
  if (collected_equals(p.field_, p.field_size_, "expect")) {
    collect(p.value_, p.value_size_, at, length);
  }
  return 0;
}

int RequestParser::on_header_value_complete(llhttp_t* parser) {
  RequestParser& p = self(parser);
  if (collected_equals(p.field_, p.field_size_, "expect") &&
      collected_equals(p.value_, p.value_size_, "100-continue")) {
    p.expects_continue_ = true;
  }
  p.field_size_ = 0;
  p.value_size_ = 0;
  return 0;
}

int RequestParser::on_headers_complete(llhttp_t* parser) {
  RequestParser& p = self(parser);
  p.headers_done_ = true;
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
  HttpRequest request;
  request.method = static_cast<llhttp_method_t>(parser->method);
  request.path = p.path_overflow_ ? std::string_view() : origin_path({p.path_, p.path_size_});
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
  request.keep_alive = llhttp_should_keep_alive(parser) != 0;
  request.http_1_0 = parser->http_major == 1 && parser->http_minor == 0;
  p.in_message_ = false;
  p.sink_.on_request(request);
  p.body_view_ = nullptr;
  p.body_.clear();
  p.body_.shrink_if_above(64 << 10);
  // Without keep-alive nothing after this request is read.
  return request.keep_alive ? 0 : HPE_PAUSED;
}

}  // namespace gophermq
