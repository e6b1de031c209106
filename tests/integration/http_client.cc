#include "http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

namespace gophermq::testing {
namespace {

using Clock = std::chrono::steady_clock;

// A response head bigger than this is a broken server, not a big response.
constexpr std::size_t kMaxResponseHeadBytes = 64 << 10;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Shows received bytes readably in failure messages, truncated.
std::string Printable(std::string_view bytes) {
  std::string out;
  for (char c : bytes.substr(0, 2000)) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned char>(c));
      out += hex;
    } else {
      out += c;
    }
  }
  if (bytes.size() > 2000) out += "...(" + std::to_string(bytes.size()) + " bytes)";
  return out;
}

}  // namespace

const std::string* HttpResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return &value;
  }
  return nullptr;
}

std::string HttpResponse::MediaType() const {
  const std::string* type = Header("Content-Type");
  if (type == nullptr) return {};
  std::string_view media = *type;
  media = Trim(media.substr(0, media.find(';')));
  return Lower(media);
}

HttpClient::HttpClient(std::chrono::milliseconds timeout) : timeout_(timeout) {}

HttpClient::~HttpClient() { Close(); }

void HttpClient::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  buffer_.clear();
  pos_ = 0;
  eof_ = false;
}

bool HttpClient::Fail(std::string message) {
  error_ = std::move(message);
  if (pos_ < buffer_.size()) {
    error_ += "; unconsumed bytes: " + Printable(std::string_view(buffer_).substr(pos_));
  }
  return false;
}

bool HttpClient::Connect(std::uint16_t port) {
  Close();
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return Fail(std::string("socket: ") + std::strerror(errno));
  // Bounds a blocking connect() and send() too: Linux honours SO_SNDTIMEO for both.
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout_.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout_.count() % 1000) * 1000);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    const int saved = errno;
    ::close(fd_);
    fd_ = -1;
    return Fail("connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(saved));
  }
  return true;
}

bool HttpClient::SendRaw(std::string_view bytes) {
  if (fd_ < 0) {
    error_ = "send on a closed client";
    return false;
  }
  while (!bytes.empty()) {
    const ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      error_ = std::string("send: ") + std::strerror(errno);
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(sent));
  }
  return true;
}

bool HttpClient::Fill(Deadline deadline) {
  if (fd_ < 0) return Fail("read on a closed client");
  if (eof_) return Fail("connection closed by the peer");
  // Drop consumed bytes now and then so a long keep-alive run stays small.
  if (pos_ > (1 << 20) && pos_ * 2 > buffer_.size()) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Fail("timed out waiting for the response");
    pollfd pfd{fd_, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (ready < 0 && errno != EINTR) return Fail(std::string("poll: ") + std::strerror(errno));
    if (ready <= 0) continue;
    char chunk[64 << 10];
    const ssize_t got = ::recv(fd_, chunk, sizeof chunk, 0);
    if (got > 0) {
      buffer_.append(chunk, static_cast<std::size_t>(got));
      return true;
    }
    if (got == 0) {
      eof_ = true;
      return Fail("connection closed by the peer");
    }
    if (errno == EINTR || errno == EAGAIN) continue;
    eof_ = true;
    return Fail(std::string("recv: ") + std::strerror(errno));
  }
}

bool HttpClient::ReadLine(std::string* line, Deadline deadline) {
  std::size_t end;
  while ((end = buffer_.find("\r\n", pos_)) == std::string::npos) {
    if (buffer_.size() - pos_ > kMaxResponseHeadBytes) return Fail("line too long");
    if (!Fill(deadline)) return false;
  }
  line->assign(buffer_, pos_, end - pos_);
  pos_ = end + 2;
  return true;
}

bool HttpClient::ReadExactly(std::size_t count, std::string* out, Deadline deadline) {
  while (buffer_.size() - pos_ < count) {
    if (!Fill(deadline)) return false;
  }
  out->append(buffer_, pos_, count);
  pos_ += count;
  return true;
}

bool HttpClient::ReadChunkedBody(std::string* body, Deadline deadline) {
  for (;;) {
    std::string size_line;
    if (!ReadLine(&size_line, deadline)) return false;
    std::string_view digits = Trim(std::string_view(size_line).substr(0, size_line.find(';')));
    std::size_t size = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), size, 16);
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty()) {
      return Fail("bad chunk size line: " + Printable(size_line));
    }
    if (size == 0) break;
    if (!ReadExactly(size, body, deadline)) return false;
    std::string crlf;
    if (!ReadExactly(2, &crlf, deadline)) return false;
    if (crlf != "\r\n") return Fail("chunk not followed by CRLF");
  }
  // Trailer section: header lines up to an empty line.
  for (;;) {
    std::string trailer;
    if (!ReadLine(&trailer, deadline)) return false;
    if (trailer.empty()) return true;
  }
}

bool HttpClient::ReadResponse(HttpResponse* response) {
  *response = HttpResponse{};
  const Deadline deadline = Clock::now() + timeout_;
  std::size_t head_end;
  while ((head_end = buffer_.find("\r\n\r\n", pos_)) == std::string::npos) {
    if (buffer_.size() - pos_ > kMaxResponseHeadBytes) return Fail("response head too large");
    if (!Fill(deadline)) return false;
  }
  const std::string head = buffer_.substr(pos_, head_end + 2 - pos_);  // lines, each with CRLF
  pos_ = head_end + 4;

  std::string_view rest = head;
  const std::size_t status_end = rest.find("\r\n");
  const std::string_view status_line = rest.substr(0, status_end);
  rest.remove_prefix(status_end + 2);
  // "HTTP/1.1 200 OK": the reason phrase may be empty.
  const std::size_t first_space = status_line.find(' ');
  if (!status_line.starts_with("HTTP/") || first_space == std::string_view::npos ||
      status_line.size() < first_space + 4) {
    return Fail("bad status line: " + Printable(status_line));
  }
  response->version = std::string(status_line.substr(0, first_space));
  const std::string_view code = status_line.substr(first_space + 1, 3);
  const auto [code_end, code_ec] =
      std::from_chars(code.data(), code.data() + code.size(), response->status);
  if (code_ec != std::errc() || code_end != code.data() + 3) {
    return Fail("bad status code: " + Printable(status_line));
  }
  if (status_line.size() > first_space + 4) {
    response->reason = std::string(status_line.substr(first_space + 5));
  }
  while (!rest.empty()) {
    const std::size_t line_end = rest.find("\r\n");
    const std::string_view line = rest.substr(0, line_end);
    rest.remove_prefix(line_end + 2);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return Fail("bad header line: " + Printable(line));
    }
    response->headers.emplace_back(std::string(line.substr(0, colon)),
                                   std::string(Trim(line.substr(colon + 1))));
  }

  // RFC 9112 section 6.3: 1xx, 204 and 304 never have a body.
  if (response->status < 200 || response->status == 204 || response->status == 304) return true;
  const std::string* transfer_encoding = response->Header("Transfer-Encoding");
  if (transfer_encoding != nullptr &&
      Lower(*transfer_encoding).find("chunked") != std::string::npos) {
    response->chunked = true;
    return ReadChunkedBody(&response->body, deadline);
  }
  if (const std::string* length = response->Header("Content-Length")) {
    std::size_t size = 0;
    const auto [end, ec] = std::from_chars(length->data(), length->data() + length->size(), size);
    if (ec != std::errc() || end != length->data() + length->size()) {
      return Fail("bad Content-Length: " + *length);
    }
    return ReadExactly(size, &response->body, deadline);
  }
  // No framing: the body is everything up to the close.
  response->close_delimited = true;
  for (;;) {
    if (eof_ || !Fill(deadline)) {
      if (!eof_) return false;
      response->body.append(buffer_, pos_, std::string::npos);
      pos_ = buffer_.size();
      return true;
    }
  }
}

bool HttpClient::Request(std::string_view method, std::string_view path, std::string_view body,
                         HttpResponse* response, std::string_view extra_headers) {
  return SendRaw(FormatRequest(method, path, body, extra_headers)) && ReadResponse(response);
}

bool HttpClient::WaitForClose() {
  const Deadline deadline = Clock::now() + timeout_;
  if (pos_ < buffer_.size()) return Fail("expected the connection to close, got more bytes");
  if (eof_) return true;
  if (!Fill(deadline)) return eof_;  // EOF or reset: closed; otherwise timed out
  return Fail("expected the connection to close, got more bytes");
}

std::string FormatRequest(std::string_view method, std::string_view path, std::string_view body,
                          std::string_view extra_headers, std::string_view version) {
  std::string request;
  request.reserve(128 + extra_headers.size() + body.size());
  request.append(method).append(" ").append(path).append(" ").append(version).append("\r\n");
  request.append("Host: 127.0.0.1\r\n");
  request.append(extra_headers);
  if (!body.empty() || method == "POST" || method == "PUT") {
    request.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  request.append("\r\n").append(body);
  return request;
}

std::string JsonQuote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escape[8];
          std::snprintf(escape, sizeof escape, "\\u%04x", static_cast<unsigned char>(c));
          out += escape;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

}  // namespace gophermq::testing
