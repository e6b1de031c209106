#include "gophermq/shard.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <tuple>
#include <utility>

#include "gophermq/clock.h"
#include "gophermq/log.h"
#include "gophermq/response_encoder.h"
#include "gophermq/response_writer.h"

namespace gophermq {
namespace {

// Ring sizes: a submission queue deep enough for a turn's sends and
// receives on a busy shard (the completion queue is four times larger).
constexpr unsigned kRingEntries = 4096;
// Provided receive buffers: a power of two (the ring requires it). 8 KiB
// holds a pipelined batch of dozens of requests; a buffer is recycled as soon
// as its bytes are parsed, so 512 of them (4 MiB per shard) serve hundreds of
// connections receiving in the same loop turn. Its pages are faulted in as
// the kernel first fills each buffer (see setup_provided_buffers()).
constexpr unsigned kReceiveBuffers = 512;
constexpr unsigned kReceiveBufferSize = 8 << 10;
// Calls taken from each other shard's queue per loop turn, so a busy
// neighbour cannot starve this shard's own connections.
constexpr std::size_t kCallsDrainedPerTurn = 256;
// While calls wait for room in a full queue, sleep no longer than this.
constexpr unsigned kRetryWaitMicros = 100;
// Even an idle shard looks around ten times a second: a safety net, not part
// of the protocol. A wake-up once went missing here because a failed MSG_RING
// was taken for the eventfd read, so its eventfd fallback never ran (fixed:
// see on_wake_failed()); loadtest/wake_probe, which runs the sleep/wake
// protocol with no such timer, has lost none since, in every ring mode. The
// net bounds the cost of any cause still unknown, and how long a stop takes.
constexpr unsigned kIdleWakeMicros = 100'000;
// While shutting down, how often a shard looks at the other shards' progress.
constexpr unsigned kDrainPollMicros = 1'000;
// How often connections are checked against the timeouts.
constexpr std::uint64_t kSweepIntervalMs = 250;
// How long a closing connection waits for the client's own close after our
// FIN (see close_when_done()).
constexpr std::uint64_t kLingerMs = 1000;
// Back-pressure: calls waiting for room in full cross-shard queues at which
// this shard stops receiving, and resumes.
constexpr std::size_t kPauseReceivingAtCalls = 8192;
constexpr std::size_t kResumeReceivingAtCalls = 1024;

}  // namespace

Shard::Shard(unsigned id, int cpu, int listen_fd, ShardEnvironment& environment)
    : id_(id),
      cpu_(cpu),
      listen_fd_(listen_fd),
      env_(environment),
      shard_count_(environment.matrix.shard_count()),
      limits_{environment.config.max_header_bytes, environment.config.max_body_bytes},
      api_(id, shard_count_, environment.budget, environment.started, metrics_, *this),
      waiting_calls_(shard_count_),
      published_to_(shard_count_, false) {}

Shard::~Shard() {
  for (auto& connection : connections_) {
    if (connection->fd >= 0) ::close(connection->fd);
  }
}

void Shard::run() {
  start_error_ = start();
  env_.rings_ready.count_down();
  env_.go.wait();
  if (start_error_.empty()) {
    // Also when a stop came already: serve() then drains at once, passing
    // the shutdown barriers the other shards wait at.
    serve();
    return;
  }
  // Never served, so nothing to drain; it must not hold the others up.
  env_.shards_with_connections.fetch_sub(1);
  env_.shards_with_calls.fetch_sub(1);
}

std::string Shard::start() {
  // "shard-3" in top -H, perf and /proc/<pid>/task/*/comm.
  std::string name = "shard-" + std::to_string(id_);
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
  if (cpu_ >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu_, &set);
    // Not fatal: a cgroup may forbid pinning; the shard still works.
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) {
      log::warn("could not pin shard",
                {{"shard", std::to_string(id_)}, {"cpu", std::to_string(cpu_)}});
    }
  }
  std::string error = loop_.start(kRingEntries, env_.config.io_uring == IoUringMode::basic);
  if (!error.empty()) return error;
  const EventLoop::Features& features = loop_.features();
  if (features.multishot_receive) {
    multishot_receive_ = loop_.setup_provided_buffers(kReceiveBuffers, kReceiveBufferSize);
  }
  env_.matrix.mailbox(id_).ring_fd.store(loop_.ring_fd());
  return {};
}

void Shard::serve() {
  arm_accept();
  arm_stop_signal();
  ShardMailbox& mailbox = env_.matrix.mailbox(id_);
  while (true) {
    now_ms_ = monotonic_ns() / 1'000'000;
    loop_.for_each_completion([this](const Completion& completion) { dispatch(completion); });
    drain_incoming_calls();
    const bool calls_waiting = flush_outgoing_calls();
    if (calls_waiting_ >= kPauseReceivingAtCalls && !receiving_paused_) pause_receiving();
    if (calls_waiting_ <= kResumeReceivingAtCalls && receiving_paused_) resume_receiving();
    if (now_ms_ >= next_sweep_ms_) sweep_connections();
    flush_sends();
    if (env_.stop_requested.load(std::memory_order_relaxed)) {
      if (!draining_) begin_draining();
      if (finished_draining()) {
        quiesce_ring();
        return;
      }
    }

    // Sleep only when no call is already waiting for us (see cross_shard.h).
    // While draining, other shards' progress does not wake us: look often.
    mailbox.sleeping.exchange(1, std::memory_order_acq_rel);
    bool incoming = false;
    for (unsigned from = 0; from < shard_count_ && !incoming; ++from) {
      if (from != id_) incoming = env_.matrix.queue(from, id_).has_published_items();
    }
    const unsigned wait_us = calls_waiting ? kRetryWaitMicros
                             : draining_   ? kDrainPollMicros
                                           : kIdleWakeMicros;
    loop_.submit_and_wait(!incoming, wait_us);
    mailbox.sleeping.store(0, std::memory_order_relaxed);
    copy_ring_counters();
  }
}

// --- Shutdown --------------------------------------------------------------
//
// On SIGTERM a shard stops accepting and reading, answers every request it
// has already read (cross-shard ones included), and closes each connection
// once nothing is owed on it. Shards then pass two broker-wide barriers
// before leaving: every shard's connections are gone (so no request can
// start a call any more), then every shard has published its last call (so
// a final drain of the queues leaves nothing behind). The deadline
// (broker.shutdown-timeout) bounds it all.

void Shard::begin_draining() {
  draining_ = true;
  drain_deadline_ = std::chrono::steady_clock::now() + env_.config.shutdown_timeout;
  // The accept is cancelled (its completion then comes without F_MORE and
  // is not re-armed) and the listener shut, so the kernel refuses new
  // connections here instead of queueing them on a socket nobody accepts.
  io_uring_sqe* cancel = loop_.next_sqe();
  io_uring_prep_cancel64(cancel, make_tag(Operation::accept, 0), 0);
  io_uring_sqe_set_data64(cancel, make_tag(Operation::cancel, 0));
  ::shutdown(listen_fd_, SHUT_RDWR);
  for (auto& connection : connections_) {
    if (connection->fd < 0) continue;
    connection->closing = true;
    close_when_done(*connection);
  }
}

void Shard::quiesce_ring() {
  // The kernel may still be reading our send buffers, writing into receive
  // targets, or about to report on connections. Freeing them while it does
  // is a use-after-free the kernel commits, so: cancel everything on every
  // connection still open (there are some only after the shutdown deadline),
  // close it, and reap until each operation has reported.
  std::size_t cancelled = 0;
  for (auto& owned : connections_) {
    Connection& connection = *owned;
    if (connection.fd < 0 || connection.close_submitted) continue;
    connection.closing = true;
    connection.discard_output = true;
    connection.peer_closed = true;  // no lingering: nothing more is read
    connection.output.clear();
    if (connection.send_in_flight || connection.receive_armed) {
      io_uring_sqe* cancel = loop_.next_sqe();
      io_uring_prep_cancel_fd(cancel, connection.fd, IORING_ASYNC_CANCEL_ALL);
      cancel->flags |= IOSQE_CQE_SKIP_SUCCESS;
      io_uring_sqe_set_data64(cancel, connection_tag(Operation::cancel, connection));
      ++cancelled;
    }
    close_when_done(connection);  // now, or once the cancelled send reports
  }
  if (cancelled != 0) {
    log::debug("cancelling connections' operations still in flight",
               {{"shard", std::to_string(id_)}, {"connections", std::to_string(cancelled)}});
  }
  if (stop_signal_armed_) {
    io_uring_sqe* cancel = loop_.next_sqe();
    io_uring_prep_cancel64(cancel, make_tag(Operation::stop_signal, 0), 0);
    io_uring_sqe_set_data64(cancel, make_tag(Operation::cancel, 0));
  }
  auto in_flight = [this] {
    return accept_armed_ || stop_signal_armed_ || connections_.size() != free_connections_.size();
  };
  // Cancellation takes the kernel microseconds; the bound is for a kernel
  // that never answers, where leaking beats hanging the exit.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (in_flight() && std::chrono::steady_clock::now() < deadline) {
    loop_.submit_and_wait(true, kDrainPollMicros);
    loop_.for_each_completion([this](const Completion& completion) { dispatch(completion); });
  }
  if (in_flight()) {
    log::warn(
        "shard stopping with io_uring operations still in flight",
        {{"shard", std::to_string(id_)},
         {"open_connections", std::to_string(connections_.size() - free_connections_.size())}});
  }
}

bool Shard::finished_draining() {
  if (std::chrono::steady_clock::now() > drain_deadline_) {
    log::warn(
        "shutdown timeout: leaving unfinished work",
        {{"shard", std::to_string(id_)},
         {"open_connections", std::to_string(connections_.size() - free_connections_.size())}});
    return true;
  }
  if (!connections_done_) {
    if (connections_.size() != free_connections_.size()) return false;
    connections_done_ = true;
    env_.shards_with_connections.fetch_sub(1);
  }
  if (env_.shards_with_connections.load() != 0) return false;
  if (!calls_done_) {
    for (const auto& waiting : waiting_calls_) {
      if (!waiting.empty()) return false;
    }
    calls_done_ = true;  // flush_outgoing_calls() has published the rest
    env_.shards_with_calls.fetch_sub(1);
  }
  if (env_.shards_with_calls.load() != 0) return false;
  // Every shard has published its last call: take what is left for us
  // (async publishes, which need no answer).
  while (drain_incoming_calls() != 0) {
  }
  return true;
}

// --- Completions ---------------------------------------------------------

Connection* Shard::connection_for(const Completion& completion) {
  Connection& connection = *connections_[completion.index];
  if ((connection.generation() & kGenerationMask) != completion.generation) return nullptr;
  return &connection;
}

void Shard::dispatch(const Completion& completion) {
  switch (completion.operation) {
    case Operation::accept:
      on_accept(completion);
      break;
    case Operation::receive:
      on_receive(completion);
      break;
    case Operation::send:
      on_send(completion);
      break;
    case Operation::close:
      on_close(completion);
      break;
    case Operation::cancel:
      break;  // nothing left to cancel; the close follows anyway
    case Operation::wake:
      break;  // another shard queued calls: the queues are drained every turn
    case Operation::stop_signal:
      // A stop, or another shard's fallback wake-up (see on_wake_failed()).
      stop_signal_armed_ = false;
      if (!env_.stop_requested.load()) arm_stop_signal();
      break;
    case Operation::wake_sent:
      on_wake_failed(completion);
      break;
  }
}

void Shard::arm_accept() {
  accept_armed_ = true;
  io_uring_sqe* sqe = loop_.next_sqe();
  if (loop_.features().multishot_accept) {
    io_uring_prep_multishot_accept(sqe, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  } else {
    io_uring_prep_accept(sqe, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  }
  io_uring_sqe_set_data64(sqe, make_tag(Operation::accept, 0));
}

void Shard::arm_stop_signal() {
  stop_signal_armed_ = true;
  io_uring_sqe* sqe = loop_.next_sqe();
  io_uring_prep_read(sqe, env_.matrix.mailbox(id_).event_fd, &stop_signal_value_,
                     sizeof stop_signal_value_, 0);
  io_uring_sqe_set_data64(sqe, make_tag(Operation::stop_signal, 0));
}

void Shard::copy_ring_counters() {
  // The loop's own counts are plain integers of this thread; the metrics
  // are what the monitoring thread may read.
  const std::uint64_t lost = loop_.lost_completions();
  const std::uint64_t refused = loop_.refused_submits();
  metrics_.ring_lost_completions.add(lost - ring_lost_completions_seen_);
  metrics_.ring_refused_submits.add(refused - ring_refused_submits_seen_);
  ring_lost_completions_seen_ = lost;
  ring_refused_submits_seen_ = refused;
}

void Shard::on_wake_failed(const Completion& completion) {
  // Our MSG_RING could not post to the other shard's ring (its completion
  // queue full, say). The calls we published would wait for its next wake,
  // so ring its eventfd instead, which its ring always has a read armed on.
  metrics_.wake_fallbacks.add();
  log::debug("MSG_RING wake-up failed: woken by eventfd instead",
             {{"shard", std::to_string(id_)},
              {"target", std::to_string(completion.index)},
              {"error", std::strerror(-completion.result)}});
  env_.matrix.wake_by_event_fd(completion.index);
}

void Shard::on_accept(const Completion& completion) {
  const bool accepting = (completion.flags & IORING_CQE_F_MORE) != 0;
  if (!accepting) accept_armed_ = false;
  if (completion.result < 0) {
    if (completion.result == -ECANCELED) return;  // shutting down
    metrics_.accept_errors.add();
    if (completion.result == -EMFILE || completion.result == -ENFILE ||
        completion.result == -ENOMEM || completion.result == -ENOBUFS) {
      // Out of descriptors or memory: accepting again at once would fail at
      // once, forever. The connection waits in the backlog; the sweep
      // re-arms the accept when something may have been freed.
      if (!accepting && !accept_paused_) {
        // Warned once per outage, not at every retry of the sweep.
        if (!accept_outage_) {
          log::warn("accept paused",
                    {{"shard", std::to_string(id_)}, {"error", std::strerror(-completion.result)}});
        }
        accept_outage_ = true;
        accept_paused_ = true;
      }
      return;
    }
    if (!accepting && !draining_) arm_accept();
    return;
  }
  if (!accepting && !draining_) arm_accept();
  if (accept_outage_) {
    log::info("accepting again", {{"shard", std::to_string(id_)}});
    accept_outage_ = false;
  }
  const int fd = completion.result;
  if (draining_) {  // accepted just before the cancel: not served
    ::close(fd);
    return;
  }
  if (env_.open_connections.fetch_add(1, std::memory_order_relaxed) >=
      env_.config.max_connections) {
    env_.open_connections.fetch_sub(1, std::memory_order_relaxed);
    refuse_connection(fd);
    return;
  }
  // Responses leave in one send per loop turn; Nagle would only delay them.
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  std::uint32_t index;
  if (!free_connections_.empty()) {
    index = free_connections_.back();
    free_connections_.pop_back();
  } else {
    index = static_cast<std::uint32_t>(connections_.size());
    connections_.push_back(std::make_unique<Connection>(index, limits_, api_));
  }
  Connection& connection = *connections_[index];
  connection.open(fd);
  connection.last_activity_ms = now_ms_;
  metrics_.connections_accepted.add();
  metrics_.open_connections.add();
  if (!receiving_paused_) arm_receive(connection);
}

void Shard::refuse_connection(int fd) {
  // Over broker.max-connections: one clear answer, then the door. A
  // non-blocking send into the fresh socket's empty buffer; if even that
  // fails the client just sees the close.
  static const std::string kRefusal = [] {
    ByteBuffer out;
    append_response(out, 503, body::kTooManyConnections, ResponseStyle{false, false, false});
    return std::string(out.view());
  }();
  [[maybe_unused]] ssize_t sent =
      ::send(fd, kRefusal.data(), kRefusal.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  ::close(fd);
  metrics_.connections_refused.add();
  metrics_.record_request(MetricMethod::other, 503, 0);
}

void Shard::arm_receive(Connection& connection) {
  io_uring_sqe* sqe = loop_.next_sqe();
  if (multishot_receive_) {
    // One receive serves the connection for its lifetime; the kernel picks a
    // free provided buffer per completion.
    io_uring_prep_recv_multishot(sqe, connection.fd, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = EventLoop::kBufferGroup;
  } else {
    constexpr std::size_t kChunk = 16 << 10;
    char* target = connection.receive_buffer.reserve_tail(kChunk);
    io_uring_prep_recv(sqe, connection.fd, target, kChunk, 0);
  }
  io_uring_sqe_set_data64(sqe, connection_tag(Operation::receive, connection));
  connection.receive_armed = true;
}

void Shard::on_receive(const Completion& completion) {
  Connection* found = connection_for(completion);
  if (found == nullptr) {
    if (completion.flags & IORING_CQE_F_BUFFER) {
      loop_.recycle_provided_buffer(
          static_cast<std::uint16_t>(completion.flags >> IORING_CQE_BUFFER_SHIFT));
    }
    return;
  }
  Connection& connection = *found;
  const bool more = (completion.flags & IORING_CQE_F_MORE) != 0;
  if (!more) connection.receive_armed = false;

  if (completion.result > 0) {
    const auto size = static_cast<std::size_t>(completion.result);
    metrics_.received_bytes.add(size);
    if (completion.flags & IORING_CQE_F_BUFFER) {
      auto buffer_id = static_cast<std::uint16_t>(completion.flags >> IORING_CQE_BUFFER_SHIFT);
      char* data = loop_.provided_buffer(buffer_id);
      if (!connection.closing) {
        feed(connection, data, size, loop_.provided_buffer_size() + EventLoop::kBufferPadding);
      }
      loop_.recycle_provided_buffer(buffer_id);
    } else if (!connection.closing) {
      ByteBuffer& buffer = connection.receive_buffer;
      feed(connection, buffer.data(), size, buffer.padded_capacity());
    }
  } else if (completion.result != -ENOBUFS && completion.result != -ECANCELED) {
    // The peer closed its side, or the socket failed: read no more. What we
    // owe is still sent where the socket allows.
    connection.closing = true;
    connection.peer_closed = true;
  }
  // A multishot receive ends on ENOBUFS (all provided buffers in use); it is
  // re-armed now that this turn has recycled buffers. One cancelled for
  // back-pressure is re-armed by resume_receiving().
  const bool lingering = connection.write_shut && !connection.peer_closed;
  if (!connection.receive_armed && (!connection.closing || lingering) && connection.fd >= 0 &&
      !receiving_paused_) {
    arm_receive(connection);
  }
  close_when_done(connection);
}

void Shard::feed(Connection& connection, const char* data, std::size_t size, std::size_t padded) {
  const bool was_in_request = connection.in_request();
  const std::uint64_t requests_before = connection.requests_read();
  ParseStatus status = connection.feed(data, size, padded);
  connection.last_activity_ms = now_ms_;
  // The read timeout runs from a request's first byte: restart it when a new
  // request began in these bytes.
  if (!connection.in_request()) {
    connection.request_started_ms = 0;
  } else if (!was_in_request || connection.requests_read() != requests_before) {
    connection.request_started_ms = now_ms_;
  }
  std::uint16_t code = 0;
  std::string_view body;
  switch (status) {
    case ParseStatus::ok:
      break;
    case ParseStatus::stopped:
      connection.closing = true;
      break;
    case ParseStatus::malformed:
      code = 400;
      body = body::kMalformedRequest;
      break;
    case ParseStatus::headers_too_large:
      code = 431;
      body = body::kHeadersTooLarge;
      break;
    case ParseStatus::body_too_large:
      code = 413;
      body = body::kBodyTooLarge;
      break;
  }
  if (code != 0) {
    // The stream cannot be trusted past a protocol error: answer and close.
    append_response(connection.response_buffer(), code, body, ResponseStyle{false, false, false});
    metrics_.record_request(MetricMethod::other, code, 0);
    connection.closing = true;
  }
  mark_for_send(connection);
}

void Shard::mark_for_send(Connection& connection) {
  if (connection.queued_for_send) return;
  connection.queued_for_send = true;
  send_queue_.push_back(connection.index());
}

void Shard::flush_sends() {
  // One send per connection per turn, carrying every response of the turn.
  for (std::size_t i = 0; i < send_queue_.size(); ++i) {
    Connection& connection = *connections_[send_queue_[i]];
    connection.queued_for_send = false;
    // A client that sends requests but does not read the answers: they pile
    // up unsent. One large answer (a big fetch) is not that: it goes out
    // alone, however long, and is never cut off.
    const std::size_t in_flight =
        connection.send_in_flight ? connection.sending.size() - connection.sending_offset : 0;
    const std::uint32_t answers_unsent =
        connection.answers_in_output + (connection.send_in_flight ? connection.answers_sending : 0);
    if (connection.output.size() + in_flight > env_.config.max_unsent_bytes && answers_unsent > 1 &&
        !connection.discard_output) {
      cut_off(connection, CloseReason::unsent_limit);
    }
    if (!connection.send_in_flight && !connection.output.empty()) start_send(connection);
    close_when_done(connection);
  }
  send_queue_.clear();
}

void Shard::start_send(Connection& connection) {
  if (connection.fd < 0 || connection.discard_output) {
    connection.output.clear();
    return;
  }
  std::swap(connection.output, connection.sending);
  connection.sending_offset = 0;
  connection.answers_sending = connection.answers_in_output;
  connection.answers_in_output = 0;
  connection.send_in_flight = true;
  io_uring_sqe* sqe = loop_.next_sqe();
  io_uring_prep_send(sqe, connection.fd, connection.sending.data(), connection.sending.size(),
                     MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, connection_tag(Operation::send, connection));
}

void Shard::on_send(const Completion& completion) {
  Connection* found = connection_for(completion);
  if (found == nullptr) return;
  Connection& connection = *found;
  connection.send_in_flight = false;
  if (completion.result > 0) metrics_.sent_bytes.add(static_cast<std::size_t>(completion.result));
  if (completion.result < 0 || connection.discard_output) {
    // The peer is gone (EPIPE, ECONNRESET), or we gave up on it (cut off, or
    // cancelled at exit): nothing more is sent.
    connection.closing = true;
    connection.discard_output = true;
    connection.sending.clear();
    connection.output.clear();
    close_when_done(connection);
    return;
  }
  connection.sending_offset += static_cast<std::size_t>(completion.result);
  connection.last_activity_ms = now_ms_;
  if (connection.sending_offset < connection.sending.size()) {
    // A short send: the socket buffer is full. Send the rest.
    connection.send_in_flight = true;
    io_uring_sqe* sqe = loop_.next_sqe();
    io_uring_prep_send(sqe, connection.fd, connection.sending.data() + connection.sending_offset,
                       connection.sending.size() - connection.sending_offset, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, connection_tag(Operation::send, connection));
    return;
  }
  connection.sending.clear();
  connection.sending_offset = 0;
  connection.answers_sending = 0;
  connection.sending.shrink_if_above(256 << 10);
  if (!connection.output.empty()) start_send(connection);
  close_when_done(connection);
}

void Shard::close_when_done(Connection& connection) {
  if (!connection.closing || connection.close_submitted || connection.fd < 0) return;
  if (connection.send_in_flight || !connection.output.empty() ||
      connection.responses_outstanding() > 0) {
    return;
  }
  if (!connection.peer_closed && !connection.discard_output &&
      (connection.write_shut || client_still_sending(connection))) {
    // Lingering close. Closing a socket with unread input makes the kernel
    // send a reset, and a reset makes the client's kernel drop answers it
    // has received but not yet read. So: a FIN after the last answer, then
    // read and drop what the client still sends until it closes too (or the
    // linger time passes, see sweep_connections()). A quiet client (nothing
    // unread, no request half read) just gets the close, and its FIN.
    if (!connection.write_shut) {
      connection.write_shut = true;
      connection.linger_started_ms = now_ms_;
      ::shutdown(connection.fd, SHUT_WR);
      if (!connection.receive_armed && !receiving_paused_) arm_receive(connection);
    }
    return;
  }
  connection.close_submitted = true;
  // A multishot receive holds its own reference to the socket: closing the
  // descriptor alone would not end it. Cancel it first; the close follows
  // whether or not there was anything to cancel (a hard link).
  io_uring_sqe* close;
  if (connection.receive_armed) {
    io_uring_sqe* cancel;
    std::tie(cancel, close) = loop_.next_sqe_pair();  // a submit must not cut the link
    io_uring_prep_cancel_fd(cancel, connection.fd, 0);
    cancel->flags |= IOSQE_IO_HARDLINK | IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(cancel, connection_tag(Operation::cancel, connection));
  } else {
    close = loop_.next_sqe();
  }
  io_uring_prep_close(close, connection.fd);
  io_uring_sqe_set_data64(close, connection_tag(Operation::close, connection));
}

bool Shard::client_still_sending(const Connection& connection) {
  int unread = 0;
  return connection.in_request() || (::ioctl(connection.fd, FIONREAD, &unread) == 0 && unread > 0);
}

void Shard::on_close(const Completion& completion) {
  Connection* connection = connection_for(completion);
  if (connection == nullptr) return;
  // The cancelled receive reported before the close (the link orders them);
  // the generation bump turns any later completion for this slot stale.
  connection->reset();
  free_connections_.push_back(connection->index());
  metrics_.open_connections.subtract(1);
  env_.open_connections.fetch_sub(1, std::memory_order_relaxed);
}

// --- Limits on clients ----------------------------------------------------

void Shard::sweep_connections() {
  next_sweep_ms_ = now_ms_ + kSweepIntervalMs;
  if (accept_paused_ && !draining_) {
    accept_paused_ = false;
    arm_accept();
  }
  const auto read_timeout = static_cast<std::uint64_t>(env_.config.read_timeout.count());
  const auto idle_timeout = static_cast<std::uint64_t>(env_.config.idle_timeout.count());
  for (auto& owned : connections_) {
    Connection& connection = *owned;
    if (connection.fd < 0 || connection.close_submitted) continue;
    const std::uint64_t quiet_ms = now_ms_ - connection.last_activity_ms;
    if (connection.send_in_flight) {
      // Answers on their way but the client has not taken a byte of them.
      if (quiet_ms > idle_timeout && !connection.discard_output) {
        cut_off(connection, CloseReason::write_stall);
      }
      continue;
    }
    if (connection.write_shut && now_ms_ - connection.linger_started_ms > kLingerMs) {
      connection.peer_closed = true;  // waited long enough for its FIN
      close_when_done(connection);
      continue;
    }
    if (connection.closing) continue;
    if (connection.request_started_ms != 0 &&
        now_ms_ - connection.request_started_ms > read_timeout) {
      // Slowloris, or a stalled body: answer 408 and close.
      append_response(connection.response_buffer(), 408, body::kRequestTimeout,
                      ResponseStyle{false, false, false});
      metrics_.record_request(MetricMethod::other, 408, 0);
      metrics_.connections_closed[static_cast<std::size_t>(CloseReason::read_timeout)].add();
      connection.closing = true;
      mark_for_send(connection);
    } else if (!connection.in_request() && connection.responses_outstanding() == 0 &&
               connection.output.empty() && quiet_ms > idle_timeout) {
      metrics_.connections_closed[static_cast<std::size_t>(CloseReason::idle_timeout)].add();
      connection.closing = true;
      close_when_done(connection);
    }
  }
}

void Shard::cut_off(Connection& connection, CloseReason reason) {
  metrics_.connections_closed[static_cast<std::size_t>(reason)].add();
  connection.closing = true;
  connection.discard_output = true;
  connection.output.clear();
  // Fails the send the client is not reading, so the close can follow.
  ::shutdown(connection.fd, SHUT_RDWR);
  close_when_done(connection);
}

void Shard::pause_receiving() {
  receiving_paused_ = true;
  log::debug("receiving paused: cross-shard calls are backing up",
             {{"shard", std::to_string(id_)}, {"calls_waiting", std::to_string(calls_waiting_)}});
  for (auto& connection : connections_) {
    if (connection->fd < 0 || !connection->receive_armed || connection->close_submitted) continue;
    io_uring_sqe* cancel = loop_.next_sqe();
    io_uring_prep_cancel64(cancel, connection_tag(Operation::receive, *connection), 0);
    io_uring_sqe_set_data64(cancel, connection_tag(Operation::cancel, *connection));
  }
}

void Shard::resume_receiving() {
  receiving_paused_ = false;
  for (auto& connection : connections_) {
    if (connection->fd >= 0 && !connection->receive_armed && !connection->closing) {
      arm_receive(*connection);
    }
  }
}

// --- Cross-shard calls ---------------------------------------------------

void Shard::send_call(unsigned owner, ShardCall&& call) {
  std::deque<ShardCall>& waiting = waiting_calls_[owner];
  // Calls already waiting go first: order between two shards is kept.
  if (waiting.empty() && env_.matrix.queue(id_, owner).try_stage(std::move(call))) return;
  metrics_.cross_shard_queue_full.add();
  waiting.push_back(std::move(call));
  ++calls_waiting_;
}

bool Shard::flush_outgoing_calls() {
  bool still_waiting = false;
  for (unsigned to = 0; to < shard_count_; ++to) {
    if (to == id_) continue;
    SpscQueue<ShardCall>& queue = env_.matrix.queue(id_, to);
    std::deque<ShardCall>& waiting = waiting_calls_[to];
    while (!waiting.empty() && queue.try_stage(std::move(waiting.front()))) {
      waiting.pop_front();
      --calls_waiting_;
    }
    still_waiting |= !waiting.empty();
    published_to_[to] = queue.publish();
  }
  for (unsigned to = 0; to < shard_count_; ++to) {
    if (!published_to_[to]) continue;
    ShardMailbox& mailbox = env_.matrix.mailbox(to);
    // Pairs with the sleeper's exchange (see cross_shard.h).
    if (mailbox.sleeping.fetch_add(0, std::memory_order_acq_rel) == 0) continue;
    if (loop_.features().msg_ring) {
      loop_.prepare_wake(mailbox.ring_fd.load(std::memory_order_relaxed), to);
    } else {
      env_.matrix.wake_by_event_fd(to);
    }
  }
  return still_waiting;
}

std::size_t Shard::drain_incoming_calls() {
  std::size_t taken = 0;
  for (unsigned from = 0; from < shard_count_; ++from) {
    if (from == id_) continue;
    taken += env_.matrix.queue(from, id_).consume(
        [this](ShardCall&& call) {
          if (call.outcome == CallOutcome::pending) {
            serve_call(std::move(call));
          } else {
            complete_call(call);
          }
        },
        kCallsDrainedPerTurn);
  }
  return taken;
}

void Shard::serve_call(ShardCall&& call) {
  if (api_.serve_call(call)) send_call(call.origin_shard, std::move(call));
}

void Shard::complete_call(ShardCall& call) {
  Connection& connection = *connections_[call.connection_index];
  if (connection.generation() != call.connection_generation) return;
  api_.complete_call(connection, call);
  mark_for_send(connection);
}

void Shard::forward(unsigned owner, ShardCall&& call) { send_call(owner, std::move(call)); }

}  // namespace gophermq
