#include "event_stream_client.h"

#include <algorithm>
#include <cctype>

#include "test_support.h"

namespace gophermq::testing {
namespace {

using Clock = std::chrono::steady_clock;

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

bool EventStreamClient::Open(std::uint16_t port, std::string_view target, std::string_view version,
                             std::string_view extra_headers) {
  if (!socket_.Connect(port, receive_buffer_)) {
    error_ = Joined({"connect: ", socket_.error()});
    return false;
  }
  std::string request = "GET ";
  request.append(target).append(" ").append(version).append("\r\nHost: localhost\r\n");
  request.append(extra_headers).append("\r\n");
  if (!socket_.SendAll(request)) {
    error_ = Joined({"send: ", socket_.error()});
    return false;
  }
  std::string received;
  if (!socket_.ReadUntil("\r\n\r\n", kTimeout, &received)) {
    error_ = Joined({"no head: ", received});
    return false;
  }
  const std::size_t head_end = received.find("\r\n\r\n") + 4;
  head_ = received.substr(0, head_end);
  raw_ = received.substr(head_end);
  if (head_.size() < 12 || head_.compare(0, 5, "HTTP/") != 0) {
    error_ = Joined({"not an HTTP answer: ", head_});
    return false;
  }
  status_ = std::stoi(head_.substr(9, 3));
  if (status_ != 200) {
    const std::size_t length = std::stoul(Joined({"0", Header("Content-Length")}));
    socket_.ReadUntil(std::string(1, '\n'), kTimeout, &raw_);  // the JSON body's end
    error_body_ = raw_.substr(0, length);
    return false;
  }
  chunked_ = EqualsIgnoringCase(Header("Transfer-Encoding"), "chunked");
  if (!chunked_ && version == "HTTP/1.1") {
    error_ = Joined({"a stream on HTTP/1.1 must be chunked: ", head_});
    return false;
  }
  return Dechunk();
}

std::string EventStreamClient::Header(std::string_view name) const {
  std::size_t at = head_.find("\r\n");
  while (at != std::string::npos && at + 2 < head_.size()) {
    const std::size_t line_end = head_.find("\r\n", at + 2);
    const std::string_view line(head_.data() + at + 2, line_end - at - 2);
    const std::size_t colon = line.find(':');
    if (colon != std::string_view::npos && EqualsIgnoringCase(line.substr(0, colon), name)) {
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      return std::string(value);
    }
    at = line_end;
  }
  return {};
}

bool EventStreamClient::Dechunk() {
  if (!chunked_) {
    body_ += raw_;
    body_bytes_ += raw_.size();
    raw_.clear();
    return true;
  }
  while (!last_chunk_) {
    const std::size_t line_end = raw_.find("\r\n");
    if (line_end == std::string::npos) return true;
    std::size_t size = 0;
    for (std::size_t i = 0; i < line_end; ++i) {
      const char c = raw_[i];
      if (!std::isxdigit(static_cast<unsigned char>(c))) {
        error_ = Joined({"bad chunk size line: ", raw_.substr(0, line_end)});
        return false;
      }
      size =
          size * 16 + static_cast<std::size_t>(std::isdigit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    if (raw_.size() < line_end + 2 + size + 2) return true;  // not whole yet
    if (raw_.compare(line_end + 2 + size, 2, "\r\n") != 0) {
      error_ = "chunk data not followed by CRLF";
      return false;
    }
    body_.append(raw_, line_end + 2, size);
    body_bytes_ += size;
    if (size != 0) ++data_chunks_;
    raw_.erase(0, line_end + 2 + size + 2);
    last_chunk_ = size == 0;
  }
  return true;
}

bool EventStreamClient::Fill(Clock::time_point deadline) {
  if (closed_) return false;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  if (left.count() <= 0) return false;
  const RawSocket::Read read = socket_.ReadSome(left, &raw_);
  if (read == RawSocket::Read::eof || read == RawSocket::Read::error) closed_ = true;
  if (read != RawSocket::Read::bytes) return false;
  return Dechunk();
}

std::optional<StreamEvent> EventStreamClient::Next(std::chrono::milliseconds timeout,
                                                   bool comments) {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (true) {
    const std::size_t end = body_.find("\n\n");
    if (end != std::string::npos) {
      const std::string block = body_.substr(0, end + 1);
      body_.erase(0, end + 2);
      StreamEvent event;
      bool has_data = false;
      bool only_comments = true;
      for (std::size_t at = 0; at < block.size();) {
        const std::size_t line_end = block.find('\n', at);
        const std::string line = block.substr(at, line_end - at);
        at = line_end + 1;
        if (!line.empty() && line[0] == ':') continue;
        only_comments = false;
        const std::size_t colon = line.find(':');
        const std::string field = line.substr(0, colon);
        std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
        if (!value.empty() && value[0] == ' ') value.erase(0, 1);
        if (field == "id") event.id = value;
        if (field == "data") {
          if (has_data) event.data += "\n";
          event.data += value;
          has_data = true;
        }
      }
      if (only_comments) {
        if (!comments) continue;
        event.comment = true;
      }
      return event;
    }
    if (!Fill(deadline)) return std::nullopt;
  }
}

std::vector<StreamEvent> EventStreamClient::Take(std::size_t count,
                                                 std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  std::vector<StreamEvent> events;
  while (events.size() < count) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    std::optional<StreamEvent> event = Next(std::max(left, std::chrono::milliseconds(0)));
    if (!event) break;
    events.push_back(std::move(*event));
  }
  return events;
}

bool EventStreamClient::EndsCleanly(std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (!closed_ && Clock::now() < deadline) Fill(deadline);
  return closed_ && (!chunked_ || last_chunk_) && raw_.empty();
}

}  // namespace gophermq::testing
