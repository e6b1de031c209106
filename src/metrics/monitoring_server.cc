#include "gophermq/metrics/monitoring_server.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <vector>

#include "gophermq/api/response_encoder.h"
#include "gophermq/http/request_parser.h"
#include "gophermq/http/response_writer.h"
#include "gophermq/log.h"

namespace gophermq {
namespace {

// Scrapers are few: Prometheus, an operator's curl. Beyond this many
// connections the oldest idle one makes room.
constexpr std::size_t kMaxClients = 32;
// A scraper that goes quiet this long is disconnected.
constexpr auto kIdleTimeout = std::chrono::seconds(30);
constexpr RequestLimits kLimits{16 << 10, 4 << 10};
// Answer bytes one read of pipelined requests may leave owed; past them the
// rest of the read is dropped and the connection closes once they are sent
// (no scraper pipelines: this bounds what a flood of requests costs).
constexpr std::size_t kMaxOwedBytes = 1 << 20;

class Client final : public RequestSink {
 public:
  Client(int fd, const MetricsSources& sources)
      : fd_(fd), sources_(sources), parser_(kLimits, *this) {}
  ~Client() {
    // Input left unread at close makes the kernel answer with a reset, which
    // destroys answers still on their way: what has arrived is taken first.
    char unread[4096];
    for (int i = 0; i < 64 && ::recv(fd_, unread, sizeof unread, MSG_DONTWAIT) > 0; ++i) {
    }
    ::close(fd_);
  }

  int fd() const { return fd_; }
  bool wants_to_write() const { return out_offset_ < out_.size(); }
  bool finished() const { return closing_ && !wants_to_write(); }
  std::chrono::steady_clock::time_point last_active() const { return last_active_; }

  // Reads what arrived; false when the peer closed or failed.
  bool on_readable() {
    last_active_ = std::chrono::steady_clock::now();
    char* buffer = in_.reserve_tail(16 << 10);
    ssize_t got = ::recv(fd_, buffer, 16 << 10, 0);
    if (got <= 0) return got < 0 && (errno == EAGAIN || errno == EINTR);
    if (closing_) return true;  // nothing more is read after a final request
    rendered_.clear();          // requests read together share one rendering
    ParseStatus status = parser_.feed(buffer, static_cast<std::size_t>(got), in_.padded_capacity());
    if (status == ParseStatus::stopped) {
      closing_ = true;
    } else if (status != ParseStatus::ok) {
      append_response(out_, 400, protocol_body::kMalformedRequest, kClosingStyle);
      closing_ = true;
    }
    return true;
  }

  // Writes what it can; false when the peer is gone.
  bool on_writable() {
    while (wants_to_write()) {
      ssize_t sent =
          ::send(fd_, out_.data() + out_offset_, out_.size() - out_offset_, MSG_NOSIGNAL);
      if (sent < 0) return errno == EAGAIN || errno == EINTR;
      out_offset_ += static_cast<std::size_t>(sent);
    }
    out_.clear();
    out_offset_ = 0;
    return true;
  }

 private:
  void on_request(const HttpRequest& request) override {
    if (closing_) return;  // after a final request, or past kMaxOwedBytes
    if (out_.size() >= kMaxOwedBytes) {
      closing_ = true;
      return;
    }
    const ResponseStyle style{request.keep_alive, request.http_1_0, request.method == HTTP_HEAD};
    if (!request.keep_alive) closing_ = true;
    if (request.path != "/metrics") {
      append_response(out_, 404, body::kNotFound, style);
      return;
    }
    if (request.method != HTTP_GET && request.method != HTTP_HEAD) {
      append_response(out_, 405, body::kMethodNotAllowed, style, "Allow: GET, HEAD\r\n");
      return;
    }
    if (rendered_.empty()) render_metrics(sources_, rendered_);
    out_.append("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n");
    out_.append("Content-Length: " + std::to_string(rendered_.size()) + "\r\n");
    if (!style.keep_alive) out_.append("Connection: close\r\n");
    out_.append("\r\n");
    if (!style.head) out_.append(rendered_);
  }
  void on_continue_expected() override {
    if (!closing_) out_.append(kContinueResponse);  // no answer follows past it
  }

  int fd_;
  const MetricsSources& sources_;
  RequestParser parser_;
  ByteBuffer in_;
  ByteBuffer out_;
  std::string rendered_;  // the exposition as rendered for this read's requests
  std::size_t out_offset_ = 0;
  bool closing_ = false;
  std::chrono::steady_clock::time_point last_active_ = std::chrono::steady_clock::now();
};

}  // namespace

MonitoringServer::~MonitoringServer() {
  stop();
  close_listeners(listeners_);
}

std::string MonitoringServer::listen(const ListenAddress& address) {
  listeners_ = open_listeners(address, 1);
  if (!listeners_.error.empty()) return "monitoring: " + listeners_.error;
  return {};
}

void MonitoringServer::start(MetricsSources sources) {
  sources_ = std::move(sources);
  stop_event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  thread_ = std::thread([this] { serve(); });
  // Named here, before start() returns and so before the broker logs that it
  // listens: whoever looks at the threads then sees every name.
  pthread_setname_np(thread_.native_handle(), "monitoring");
}

void MonitoringServer::stop() {
  if (!thread_.joinable()) return;
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t written = ::write(stop_event_fd_, &one, sizeof one);
  thread_.join();
  ::close(stop_event_fd_);
}

void MonitoringServer::serve() {
  const int listen_fd = listeners_.fds.front();
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<pollfd> polled;
  while (true) {
    polled.clear();
    polled.push_back({stop_event_fd_, POLLIN, 0});
    polled.push_back({listen_fd, POLLIN, 0});
    for (const auto& client : clients) {
      polled.push_back(
          {client->fd(), static_cast<short>(client->wants_to_write() ? POLLOUT : POLLIN), 0});
    }
    if (::poll(polled.data(), polled.size(), 1000) < 0 && errno != EINTR) {
      log::error("monitoring: poll failed", {{"error", std::strerror(errno)}});
      return;
    }
    if (polled[0].revents != 0) return;

    const auto now = std::chrono::steady_clock::now();
    for (std::size_t i = clients.size(); i-- > 0;) {
      Client& client = *clients[i];
      const short events = polled[i + 2].revents;
      bool alive = true;
      if (events & (POLLIN | POLLHUP | POLLERR)) alive = client.on_readable();
      if (alive && client.wants_to_write()) alive = client.on_writable();
      if (!alive || client.finished() || now - client.last_active() > kIdleTimeout) {
        clients.erase(clients.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
    if (polled[1].revents & POLLIN) {
      int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        if (clients.size() == kMaxClients) clients.erase(clients.begin());
        clients.push_back(std::make_unique<Client>(fd, sources_));
      }
    }
  }
}

}  // namespace gophermq
