// bare_responder: the floor for the broker's CPU per request. One thread,
// one io_uring with the broker's own setup (multishot accept, multishot
// receive into provided buffers, one send per connection per turn), answering
// every HTTP/1.1 request with the same 200 {"status":"ok"} a publish gets.
// It frames requests (the head's end, then Content-Length bytes of body) and
// does nothing else: no parser, no JSON, no store. What the broker spends
// beyond it per request is the cost of actually being a broker.
//
//   build/loadtest/bare_responder PORT    (listens on 127.0.0.1:PORT; 0 picks one)
//
// Prints "listening port=N" once it accepts; SIGTERM or SIGINT stops it.
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::string_view kAnswer =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n"
    "{\"status\":\"ok\"}\n";
constexpr unsigned kBuffers = 512;
constexpr unsigned kBufferSize = 8 << 10;
constexpr unsigned kGroup = 0;
enum Kind : std::uint64_t { kAccept = 1, kReceive = 2, kSend = 3 };

std::uint64_t tag(Kind kind, std::uint32_t index) { return std::uint64_t{kind} << 32 | index; }

struct Client {
  int fd = -1;
  std::string pending;  // a request cut by the end of a receive
  std::string output;   // answers of this turn
  std::string sending;  // on the wire
  std::size_t sent = 0;
  bool in_flight = false;
  bool queued = false;
};

// Counts the whole requests at the front of `bytes`, consuming them.
std::size_t take_requests(std::string& bytes) {
  std::size_t count = 0;
  std::size_t at = 0;
  while (true) {
    const std::size_t head_end = bytes.find("\r\n\r\n", at);
    if (head_end == std::string::npos) break;
    std::size_t length = 0;
    const std::string_view head(bytes.data() + at, head_end - at);
    for (std::size_t line = 0; line < head.size();) {
      std::size_t next = head.find("\r\n", line);
      if (next == std::string_view::npos) next = head.size();
      const std::string_view field = head.substr(line, next - line);
      if (field.size() > 15 && strncasecmp(field.data(), "content-length:", 15) == 0) {
        length = std::strtoul(std::string(field.substr(15)).c_str(), nullptr, 10);
      }
      line = next + 2;
    }
    if (head_end + 4 + length > bytes.size()) break;
    at = head_end + 4 + length;
    ++count;
  }
  bytes.erase(0, at);
  return count;
}

volatile sig_atomic_t stop = 0;
void on_signal(int) { stop = 1; }

}  // namespace

int main(int argc, char** argv) {
  const int port = argc > 1 ? std::atoi(argv[1]) : 0;
  signal(SIGPIPE, SIG_IGN);
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);

  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      listen(listener, 4096) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    std::perror("bare_responder: listen");
    return 1;
  }

  io_uring ring;
  io_uring_params params{};
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
  params.cq_entries = 16384;
  if (io_uring_queue_init_params(4096, &ring, &params) != 0) {
    std::fprintf(stderr, "bare_responder: io_uring_queue_init failed\n");
    return 1;
  }
  // liburing 2.3 (Debian 12) has no io_uring_setup_buf_ring: map and
  // register the ring of buffer descriptors by hand, as the broker does.
  void* ring_memory = mmap(nullptr, kBuffers * sizeof(io_uring_buf), PROT_READ | PROT_WRITE,
                           MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  auto* buffer_ring = static_cast<io_uring_buf_ring*>(ring_memory);
  io_uring_buf_reg registration{};
  registration.ring_addr = reinterpret_cast<std::uint64_t>(ring_memory);
  registration.ring_entries = kBuffers;
  registration.bgid = kGroup;
  if (ring_memory == MAP_FAILED || io_uring_register_buf_ring(&ring, &registration, 0) != 0) {
    std::fprintf(stderr, "bare_responder: no provided buffers\n");
    return 1;
  }
  io_uring_buf_ring_init(buffer_ring);
  std::vector<char> buffers(std::size_t{kBuffers} * kBufferSize);
  for (unsigned id = 0; id < kBuffers; ++id) {
    io_uring_buf_ring_add(buffer_ring, buffers.data() + std::size_t{id} * kBufferSize, kBufferSize,
                          static_cast<unsigned short>(id), io_uring_buf_ring_mask(kBuffers),
                          static_cast<int>(id));
  }
  io_uring_buf_ring_advance(buffer_ring, kBuffers);

  std::vector<Client> clients;
  std::vector<std::uint32_t> to_send;
  auto sqe = [&] {
    io_uring_sqe* entry = io_uring_get_sqe(&ring);
    while (entry == nullptr) {
      io_uring_submit(&ring);
      entry = io_uring_get_sqe(&ring);
    }
    return entry;
  };
  auto arm_accept = [&] {
    io_uring_sqe* entry = sqe();
    io_uring_prep_multishot_accept(entry, listener, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(entry, tag(kAccept, 0));
  };
  auto arm_receive = [&](std::uint32_t index) {
    io_uring_sqe* entry = sqe();
    io_uring_prep_recv_multishot(entry, clients[index].fd, nullptr, 0, 0);
    entry->flags |= IOSQE_BUFFER_SELECT;
    entry->buf_group = kGroup;
    io_uring_sqe_set_data64(entry, tag(kReceive, index));
  };
  auto start_send = [&](std::uint32_t index) {
    Client& client = clients[index];
    client.sending.swap(client.output);
    client.output.clear();
    client.sent = 0;
    client.in_flight = true;
    io_uring_sqe* entry = sqe();
    io_uring_prep_send(entry, client.fd, client.sending.data(), client.sending.size(),
                       MSG_NOSIGNAL);
    io_uring_sqe_set_data64(entry, tag(kSend, index));
  };
  auto close_client = [&](Client& client) {
    if (client.fd >= 0) close(client.fd);
    client = Client{};
  };

  arm_accept();
  std::printf("listening port=%u\n", ntohs(address.sin_port));
  std::fflush(stdout);
  while (!stop) {
    io_uring_cqe* cqe;
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++seen;
      const auto kind = static_cast<Kind>(cqe->user_data >> 32);
      const auto index = static_cast<std::uint32_t>(cqe->user_data);
      const bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
      if (kind == kAccept) {
        if (!more) arm_accept();
        if (cqe->res < 0) continue;
        setsockopt(cqe->res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        std::uint32_t slot = 0;
        while (slot < clients.size() && clients[slot].fd >= 0) ++slot;
        if (slot == clients.size()) clients.emplace_back();
        clients[slot].fd = cqe->res;
        arm_receive(slot);
      } else if (kind == kReceive) {
        Client& client = clients[index];
        if (cqe->res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
          const auto id = static_cast<unsigned short>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
          client.pending.append(buffers.data() + std::size_t{id} * kBufferSize,
                                static_cast<std::size_t>(cqe->res));
          io_uring_buf_ring_add(buffer_ring, buffers.data() + std::size_t{id} * kBufferSize,
                                kBufferSize, id, io_uring_buf_ring_mask(kBuffers), 0);
          io_uring_buf_ring_advance(buffer_ring, 1);
          for (std::size_t n = take_requests(client.pending); n > 0; --n) {
            client.output.append(kAnswer);
          }
          if (!client.queued) {
            client.queued = true;
            to_send.push_back(index);
          }
          if (!more && client.fd >= 0) arm_receive(index);
        } else if (cqe->res == -ENOBUFS) {
          arm_receive(index);
        } else if (!more && !client.in_flight) {
          close_client(client);
        }
      } else if (kind == kSend) {
        Client& client = clients[index];
        client.in_flight = false;
        if (cqe->res < 0) {
          close_client(client);
          continue;
        }
        client.sent += static_cast<std::size_t>(cqe->res);
        if (client.sent < client.sending.size()) {
          client.in_flight = true;
          io_uring_sqe* entry = sqe();
          io_uring_prep_send(entry, client.fd, client.sending.data() + client.sent,
                             client.sending.size() - client.sent, MSG_NOSIGNAL);
          io_uring_sqe_set_data64(entry, tag(kSend, index));
        } else if (!client.output.empty()) {
          start_send(index);
        }
      }
    }
    io_uring_cq_advance(&ring, seen);
    for (std::uint32_t index : to_send) {
      Client& client = clients[index];
      client.queued = false;
      if (client.fd >= 0 && !client.in_flight && !client.output.empty()) start_send(index);
    }
    to_send.clear();
    __kernel_timespec timeout{0, 100'000'000};
    io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &timeout, nullptr);
  }
  io_uring_queue_exit(&ring);
  return 0;
}
