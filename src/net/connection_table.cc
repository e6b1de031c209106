#include "gophermq/net/connection_table.h"

#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <tuple>

#include "gophermq/log.h"

namespace gophermq {
namespace {

// How often connections are checked against the timeouts.
constexpr std::uint64_t kSweepIntervalMs = 250;
// Bytes received and kept unread while a connection's requests wait (see
// read_requests()), past which receiving stops.
constexpr std::size_t kMostHeldInputBytes = 64 << 10;
// How long a closing connection waits for the client's own close after our
// FIN (see close_when_done()).
constexpr std::uint64_t kLingerMs = 1000;
// A receive buffer's growth per receive, without provided buffers.
constexpr std::size_t kReceiveChunk = 16 << 10;

}  // namespace

ConnectionTable::ConnectionTable(unsigned shard_id, EventLoop& loop, const ConnectionLimits& limits,
                                 ShardMetrics& metrics,
                                 std::atomic<std::uint64_t>& open_connections,
                                 ConnectionProtocol& protocol)
    : shard_id_(shard_id),
      loop_(loop),
      limits_(limits),
      metrics_(metrics),
      open_connections_(open_connections),
      protocol_(protocol),
      unsent_{0, limits.max_unsent_bytes} {}

ConnectionTable::~ConnectionTable() {
  for (auto& connection : connections_) {
    if (connection->fd >= 0) ::close(connection->fd);
  }
}

void ConnectionTable::start(int listen_fd, bool multishot_receive) {
  listen_fd_ = listen_fd;
  multishot_receive_ = multishot_receive;
  accepting_ = true;
  arm_accept();
}

Connection* ConnectionTable::find(std::uint32_t index, std::uint32_t generation) {
  Connection& connection = *connections_[index];
  return connection.generation() == generation ? &connection : nullptr;
}

Connection* ConnectionTable::connection_for(const Completion& completion) {
  Connection& connection = *connections_[completion.index];
  if ((connection.generation() & kGenerationMask) != completion.generation) return nullptr;
  return &connection;
}

// --- Accept ------------------------------------------------------------------

void ConnectionTable::arm_accept() {
  accept_armed_ = true;
  io_uring_sqe* sqe = loop_.next_sqe();
  if (loop_.features().multishot_accept) {
    io_uring_prep_multishot_accept(sqe, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  } else {
    io_uring_prep_accept(sqe, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  }
  io_uring_sqe_set_data64(sqe, make_tag(Operation::accept, 0));
}

void ConnectionTable::stop_accepting() {
  accepting_ = false;
  // The accept is cancelled (its completion then comes without F_MORE and
  // is not re-armed) and the listener shut, so the kernel refuses new
  // connections here instead of queueing them on a socket nobody accepts.
  io_uring_sqe* cancel = loop_.next_sqe();
  io_uring_prep_cancel64(cancel, make_tag(Operation::accept, 0), 0);
  io_uring_sqe_set_data64(cancel, make_tag(Operation::cancel, 0));
  ::shutdown(listen_fd_, SHUT_RDWR);
}

void ConnectionTable::on_accept(const Completion& completion) {
  const bool more = (completion.flags & IORING_CQE_F_MORE) != 0;
  if (!more) accept_armed_ = false;
  if (completion.result < 0) {
    if (completion.result == -ECANCELED) return;  // shutting down
    metrics_.accept_errors.add();
    if (completion.result == -EMFILE || completion.result == -ENFILE ||
        completion.result == -ENOMEM || completion.result == -ENOBUFS) {
      // Out of descriptors or memory: accepting again at once would fail at
      // once, forever. The connection waits in the backlog; the sweep
      // re-arms the accept when something may have been freed.
      if (!more && !accept_paused_) {
        // Warned once per outage, not at every retry of the sweep.
        if (!accept_outage_) {
          log::warn("accept paused", {{"shard", std::to_string(shard_id_)},
                                      {"error", std::strerror(-completion.result)}});
        }
        accept_outage_ = true;
        accept_paused_ = true;
      }
      return;
    }
    if (!more && accepting_) arm_accept();
    return;
  }
  if (!more && accepting_) arm_accept();
  if (accept_outage_) {
    log::info("accepting again", {{"shard", std::to_string(shard_id_)}});
    accept_outage_ = false;
  }
  const int fd = completion.result;
  if (!accepting_) {  // accepted just before the cancel: not served
    ::close(fd);
    return;
  }
  if (open_connections_.fetch_add(1, std::memory_order_relaxed) >= limits_.max_connections) {
    open_connections_.fetch_sub(1, std::memory_order_relaxed);
    refuse_connection(fd);
    return;
  }
  Connection& connection = take_slot(fd);
  metrics_.connections_accepted.add();
  metrics_.open_connections.add();
  if (!receiving_paused_) arm_receive(connection);
}

Connection& ConnectionTable::take_slot(int fd) {
  // Answers leave in one send per loop turn; Nagle would only delay them.
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::uint32_t index;
  if (!free_connections_.empty()) {
    index = free_connections_.back();
    free_connections_.pop_back();
  } else {
    index = static_cast<std::uint32_t>(connections_.size());
    connections_.push_back(std::make_unique<Connection>(index));
  }
  Connection& connection = *connections_[index];
  connection.open(fd, now_ms_);
  protocol_.on_open(connection);
  return connection;
}

void ConnectionTable::refuse_connection(int fd) {
  // Over broker.max-connections: one clear answer, then the door.
  metrics_.connections_refused.add();
  const std::string_view refusal = protocol_.answer_refused();
  if (refusals_lingering_ >= limits_.lingering_refusals) {
    // A flood: a non-blocking send into the fresh socket's empty buffer,
    // and the close at once (a client already sending a body may then see
    // a reset instead of the answer).
    [[maybe_unused]] ssize_t sent =
        ::send(fd, refusal.data(), refusal.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    ::close(fd);
    return;
  }
  // A client that sends its request (a body, say) before reading would get
  // a reset, not the answer, from a close with its bytes unread: the answer
  // goes out, then a lingering close drops what it sends (close_when_done()).
  ++refusals_lingering_;
  Connection& connection = take_slot(fd);
  connection.refused = true;
  connection.closing = true;
  connection.out.output.tail().append(refusal);
  ++connection.out.answers_in_output;
  mark_for_send(connection);
}

// --- Receive -----------------------------------------------------------------

void ConnectionTable::arm_receive(Connection& connection) {
  if (connection.hangup_watched) {  // the receive will see the hangup itself
    io_uring_sqe* cancel = loop_.next_sqe();
    io_uring_prep_cancel64(cancel, connection_tag(Operation::hangup, connection), 0);
    io_uring_sqe_set_data64(cancel, connection_tag(Operation::cancel, connection));
    connection.hangup_watched = false;
  }
  io_uring_sqe* sqe = loop_.next_sqe();
  if (multishot_receive_) {
    // One receive serves the connection for its lifetime; the kernel picks a
    // free provided buffer per completion.
    io_uring_prep_recv_multishot(sqe, connection.fd, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = EventLoop::kBufferGroup;
  } else {
    char* target = connection.receive_buffer.reserve_tail(kReceiveChunk);
    io_uring_prep_recv(sqe, connection.fd, target, kReceiveChunk, 0);
  }
  io_uring_sqe_set_data64(sqe, connection_tag(Operation::receive, connection));
  connection.receive_armed = true;
}

void ConnectionTable::on_receive(const Completion& completion) {
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
        deliver(connection, data, size, loop_.provided_buffer_size() + EventLoop::kBufferPadding);
      }
      loop_.recycle_provided_buffer(buffer_id);
    } else if (!connection.closing) {
      ByteBuffer& buffer = connection.receive_buffer;
      deliver(connection, buffer.data(), size, buffer.padded_capacity());
    }
  } else if (completion.result != -ENOBUFS && completion.result != -ECANCELED) {
    // The peer closed its side, or the socket failed: read no more. What we
    // owe is still sent where the socket allows, and requests held back
    // (they came before the close) are still read and answered.
    connection.peer_closed = true;
    if (!connection.input_held) connection.closing = true;
    protocol_.on_peer_closed(connection);
  }
  // A multishot receive ends on ENOBUFS (all provided buffers in use); it is
  // re-armed now that this turn has recycled buffers. One cancelled for
  // back-pressure is re-armed by resume_receiving().
  const bool lingering = connection.write_shut && !connection.peer_closed;
  if (!connection.receive_armed && (!connection.closing || lingering) && connection.fd >= 0 &&
      !receiving_paused_ && may_receive_while_held(connection)) {
    arm_receive(connection);
  }
  watch_for_hangup(connection);
  close_when_done(connection);
}

// A connection whose input is held receives nothing once a little waits
// unread, for as long as its requests wait: a long-poll's, up to its
// wait_ms. While a shard's receiving is paused (pause_receiving()), none of
// its connections receives, held or not; one owed an answer may be a
// long-poll's too (one whose small max_bytes held nothing). A client that
// went meanwhile would go unseen, and a message could be handed to its dead
// connection and lost. A poll sees the FIN (or a reset) without reading the
// bytes sent before it, which stay in the kernel for when receiving resumes.
void ConnectionTable::watch_for_hangup(Connection& connection) {
  if (connection.receive_armed || connection.hangup_watched || connection.hangup_seen ||
      connection.peer_closed || connection.closing || connection.fd < 0) {
    return;
  }
  // Paused, only a connection owed an answer can lose one to a hangup: the
  // others are not watched, so a pause costs no submission for them.
  if (!connection.input_held &&
      !(receiving_paused_ && protocol_.progress(connection).answers_owed != 0)) {
    return;
  }
  io_uring_sqe* sqe = loop_.next_sqe();
  io_uring_prep_poll_add(sqe, connection.fd, POLLRDHUP);  // POLLHUP and POLLERR come anyway
  io_uring_sqe_set_data64(sqe, connection_tag(Operation::hangup, connection));
  connection.hangup_watched = true;
}

void ConnectionTable::on_hangup(const Completion& completion) {
  Connection* connection = connection_for(completion);
  // Cancelled when a receive was armed instead (which cleared the flag).
  if (connection == nullptr || completion.result == -ECANCELED) return;
  connection->hangup_watched = false;
  if (completion.result < 0 || connection->peer_closed || connection->hangup_seen) return;
  // Its waiting answers end now; what it sent before the hangup is still
  // read, and answered where the socket allows, once the hold ends.
  connection->hangup_seen = true;
  protocol_.on_peer_closed(*connection);
}

void ConnectionTable::cancel_receive(Connection& connection) {
  io_uring_sqe* cancel = loop_.next_sqe();
  io_uring_prep_cancel64(cancel, connection_tag(Operation::receive, connection), 0);
  io_uring_sqe_set_data64(cancel, connection_tag(Operation::cancel, connection));
}

void ConnectionTable::deliver(Connection& connection, const char* data, std::size_t size,
                              std::size_t padded) {
  read_requests(connection, [&] { protocol_.on_received(connection, data, size, padded); });
}

template <typename Parse>
void ConnectionTable::read_requests(Connection& connection, Parse&& parse) {
  const RequestProgress before = protocol_.progress(connection);
  parse();
  const RequestProgress after = protocol_.progress(connection);
  // Bytes of a request are activity; blank lines between requests are not,
  // or two bytes every few seconds would hold a connection for ever.
  if (before.in_request || after.in_request || after.requests_read != before.requests_read) {
    connection.last_activity_ms = now_ms_;
    connection.kernel_unsent = 0;
  }
  // The read timeout runs from a request's first byte: restart it when a new
  // request began in these bytes.
  if (!after.in_request) {
    connection.request_started_ms = 0;
  } else if (!before.in_request || after.requests_read != before.requests_read) {
    connection.request_started_ms = now_ms_;
  }
  if (after.input_held != connection.input_held) {
    connection.input_held = after.input_held;
    if (after.input_held) {
      metrics_.input_holds.add();
    } else if (connection.peer_closed) {
      connection.closing = true;  // what was held is read; nothing more comes
    } else if (!connection.receive_armed && !connection.closing && connection.fd >= 0 &&
               !receiving_paused_) {
      arm_receive(connection);
    }
  }
  // While its requests wait, a connection is received from only until a
  // little waits unread: enough to see a client that closes meanwhile (a
  // long-poll's, say), never a flood. A multishot receive would go on
  // filling buffers: it is stopped, and what it delivers before the cancel
  // lands is kept by the protocol, unread.
  if (connection.input_held && after.held_bytes >= kMostHeldInputBytes &&
      connection.receive_armed && multishot_receive_) {
    cancel_receive(connection);
  }
  watch_for_hangup(connection);
  // Before the next connection's requests are read: a fetch there sees
  // what this one's answers added.
  count_owed(connection);
  mark_for_send(connection);
}

bool ConnectionTable::may_receive_while_held(const Connection& connection) const {
  return !connection.input_held || protocol_.progress(connection).held_bytes < kMostHeldInputBytes;
}

// --- Send --------------------------------------------------------------------

void ConnectionTable::mark_for_send(Connection& connection) {
  if (connection.queued_for_send) return;
  connection.queued_for_send = true;
  send_queue_.push_back(connection.index());
}

void ConnectionTable::flush() {
  for (std::size_t i = 0; i < send_queue_.size(); ++i) {
    Connection& connection = *connections_[send_queue_[i]];
    connection.queued_for_send = false;
    if (!connection.send_in_flight && !connection.out.output.empty()) start_send(connection);
    // Answers that came from other shards, or waited, are counted here.
    count_owed(connection);
    close_when_done(connection);
  }
  send_queue_.clear();
  metrics_.unsent_bytes.set(unsent_.owed);
}

void ConnectionTable::count_owed(Connection& connection) {
  OutgoingBytes& out = connection.out;
  const std::uint64_t owed = out.owed();
  unsent_.owed = unsent_.owed - out.counted + owed;
  out.counted = owed;
}

void ConnectionTable::start_send(Connection& connection) {
  OutgoingBytes& out = connection.out;
  if (connection.fd < 0 || connection.discard_output) {
    out.output.clear();
    return;
  }
  out.output.swap(out.sending);
  out.sending_offset = 0;
  // The client has had nothing to take until now: its stall clock starts.
  connection.last_send_progress_ms = now_ms_;
  out.answers_sending = out.answers_in_output;
  out.answers_in_output = 0;
  submit_send(connection);
}

void ConnectionTable::submit_send(Connection& connection) {
  OutgoingBytes& out = connection.out;
  connection.send_in_flight = true;
  io_uring_sqe* sqe = loop_.next_sqe();
  if (out.sending.buffer_count() == 1) {
    const ByteBuffer& bytes = out.sending.buffer(0);
    io_uring_prep_send(sqe, connection.fd, bytes.data() + out.sending_offset,
                       bytes.size() - out.sending_offset, MSG_NOSIGNAL);
  } else {
    // A whole answer joined the chain: gather it, uncopied.
    if (!out.gather) out.gather = std::make_unique<OutgoingBytes::Gather>();
    OutgoingBytes::Gather& gather = *out.gather;
    gather.message = msghdr{};
    gather.message.msg_iov = gather.vectors;
    gather.message.msg_iovlen =
        out.sending.gather(out.sending_offset, gather.vectors, OutgoingBytes::Gather::kMostBuffers);
    io_uring_prep_sendmsg(sqe, connection.fd, &gather.message, MSG_NOSIGNAL);
  }
  io_uring_sqe_set_data64(sqe, connection_tag(Operation::send, connection));
}

void ConnectionTable::on_send(const Completion& completion) {
  Connection* found = connection_for(completion);
  if (found == nullptr) return;
  Connection& connection = *found;
  OutgoingBytes& out = connection.out;
  connection.send_in_flight = false;
  if (completion.result > 0) metrics_.sent_bytes.add(static_cast<std::size_t>(completion.result));
  if (completion.result < 0 || connection.discard_output) {
    // The peer is gone (EPIPE, ECONNRESET), or we gave up on it (cut off, or
    // cancelled at exit): nothing more is sent.
    connection.closing = true;
    connection.discard_output = true;
    out.sending.clear();
    out.sending_offset = 0;
    out.output.clear();
    count_owed(connection);
    close_when_done(connection);
    return;
  }
  out.sending_offset += static_cast<std::size_t>(completion.result);
  connection.last_activity_ms = now_ms_;
  connection.kernel_unsent = 0;  // looked at afresh once idle again
  connection.last_send_progress_ms = now_ms_;
  if (out.sending_offset < out.sending.size()) {
    // A short send (the socket buffer is full), or a chain longer than one
    // gather: send the rest.
    submit_send(connection);
  } else {
    out.sending.clear();
    out.sending_offset = 0;
    out.answers_sending = 0;
    out.sending.shrink_if_above(256 << 10);
    if (!out.output.empty()) start_send(connection);
  }
  count_owed(connection);
  // The client took answers: requests held back may be read now (also
  // while shutting down: they were received before the stop).
  if (connection.input_held && !connection.discard_output) {
    read_requests(connection, [&] { protocol_.resume_input(connection); });
  }
  close_when_done(connection);
}

// --- Close -------------------------------------------------------------------

void ConnectionTable::close_when_done(Connection& connection) {
  if (!connection.closing || connection.close_submitted || connection.fd < 0) return;
  if (connection.send_in_flight || !connection.out.output.empty() ||
      protocol_.progress(connection).answers_owed > 0) {
    return;
  }
  if (!connection.peer_closed && !connection.discard_output &&
      (connection.write_shut || connection.refused || client_still_sending(connection))) {
    // Lingering close. Closing a socket with unread input makes the kernel
    // send a reset, and a reset makes the client's kernel drop answers it
    // has received but not yet read. So: a FIN after the last answer, then
    // read and drop what the client still sends until it closes too (or the
    // linger time passes, see sweep()). A quiet client (nothing unread, no
    // request half read) just gets the close, and its FIN.
    if (!connection.write_shut) {
      connection.write_shut = true;
      connection.linger_started_ms = now_ms_;
      ::shutdown(connection.fd, SHUT_WR);
      if (!connection.receive_armed && !receiving_paused_) arm_receive(connection);
    }
    return;
  }
  connection.close_submitted = true;
  // A multishot receive, or a poll for the hangup, holds its own reference
  // to the socket: closing the descriptor alone would not end it. Cancel it
  // first (never both are armed); the close follows whether or not there
  // was anything to cancel (a hard link).
  io_uring_sqe* close;
  if (connection.receive_armed || connection.hangup_watched) {
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

bool ConnectionTable::client_still_sending(const Connection& connection) const {
  int unread = 0;
  return protocol_.progress(connection).in_request ||
         (::ioctl(connection.fd, FIONREAD, &unread) == 0 && unread > 0);
}

void ConnectionTable::on_close(const Completion& completion) {
  Connection* connection = connection_for(completion);
  if (connection == nullptr) return;
  // The cancelled receive reported before the close (the link orders them);
  // the generation bump turns any later completion for this slot stale.
  if (connection->refused) {
    --refusals_lingering_;
  } else {
    metrics_.open_connections.subtract(1);
    open_connections_.fetch_sub(1, std::memory_order_relaxed);
  }
  unsent_.owed -= connection->out.counted;
  connection->reset();
  free_connections_.push_back(connection->index());
}

void ConnectionTable::close_all_when_done() {
  for (auto& connection : connections_) {
    if (connection->fd < 0) continue;
    connection->closing = true;
    close_when_done(*connection);
  }
}

void ConnectionTable::cancel_all() {
  std::size_t cancelled = 0;
  for (auto& owned : connections_) {
    Connection& connection = *owned;
    if (connection.fd < 0 || connection.close_submitted) continue;
    connection.closing = true;
    connection.discard_output = true;
    connection.peer_closed = true;  // no lingering: nothing more is read
    connection.out.output.clear();
    if (connection.send_in_flight || connection.receive_armed || connection.hangup_watched) {
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
               {{"shard", std::to_string(shard_id_)}, {"connections", std::to_string(cancelled)}});
  }
}

// --- Limits on clients -------------------------------------------------------

void ConnectionTable::sweep_if_due() {
  if (now_ms_ >= next_sweep_ms_) sweep();
}

void ConnectionTable::sweep() {
  next_sweep_ms_ = now_ms_ + kSweepIntervalMs;
  if (accept_paused_ && accepting_) {
    accept_paused_ = false;
    arm_accept();
  }
  const auto read_timeout = static_cast<std::uint64_t>(limits_.read_timeout.count());
  const auto idle_timeout = static_cast<std::uint64_t>(limits_.idle_timeout.count());
  const auto write_timeout = static_cast<std::uint64_t>(limits_.write_timeout.count());
  for (auto& owned : connections_) {
    Connection& connection = *owned;
    if (connection.fd < 0 || connection.close_submitted) continue;
    const std::uint64_t quiet_ms = now_ms_ - connection.last_activity_ms;
    if (connection.send_in_flight) {
      // Our send completes only when the kernel has room for more, which a
      // slow reader frees a sliver at a time: past a sweep without one, the
      // bytes the kernel still holds say whether the client reads at all.
      if (now_ms_ - connection.last_send_progress_ms > kSweepIntervalMs &&
          !connection.discard_output) {
        int unsent = 0;
        if (::ioctl(connection.fd, SIOCOUTQ, &unsent) == 0) {
          const auto held = static_cast<std::size_t>(unsent);
          if (connection.kernel_unsent != 0 && held < connection.kernel_unsent) {
            connection.last_send_progress_ms = now_ms_;
          }
          connection.kernel_unsent = held;
        }
      }
      // Answers on their way but the client has taken no byte of them,
      // however much it sends meanwhile.
      const std::uint64_t stall_limit =
          connection.write_timeout_ms != 0 ? connection.write_timeout_ms : write_timeout;
      if (now_ms_ - connection.last_send_progress_ms > stall_limit && !connection.discard_output) {
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
      // Slowloris, or a stalled body: answer (408) and close.
      protocol_.on_read_timeout(connection);
      metrics_.connections_closed[static_cast<std::size_t>(CloseReason::read_timeout)].add();
      connection.closing = true;
      mark_for_send(connection);
      continue;
    }
    const RequestProgress progress = protocol_.progress(connection);
    if (!progress.in_request && progress.answers_owed == 0 && connection.out.output.empty() &&
        quiet_ms > idle_timeout) {
      // Our sends complete when the kernel takes the bytes, which may hold
      // megabytes a slow client is still downloading: while that changes
      // (down to its end), the connection is busy, and closing it would
      // end the keep-alive the client is about to use. Held unchanged, or
      // empty since, it is idle.
      int unsent = 0;
      if (::ioctl(connection.fd, SIOCOUTQ, &unsent) == 0 &&
          static_cast<std::size_t>(unsent) != connection.kernel_unsent) {
        connection.kernel_unsent = static_cast<std::size_t>(unsent);
        connection.last_activity_ms = now_ms_;
        continue;
      }
      metrics_.connections_closed[static_cast<std::size_t>(CloseReason::idle_timeout)].add();
      connection.closing = true;
      close_when_done(connection);
    }
  }
}

void ConnectionTable::cut_off(Connection& connection, CloseReason reason) {
  metrics_.connections_closed[static_cast<std::size_t>(reason)].add();
  connection.closing = true;
  connection.discard_output = true;
  connection.out.output.clear();
  // Fails the send the client is not reading, so the close can follow.
  ::shutdown(connection.fd, SHUT_RDWR);
  close_when_done(connection);
}

void ConnectionTable::pause_receiving() {
  receiving_paused_ = true;
  metrics_.receive_pauses.add();
  for (auto& connection : connections_) {
    if (connection->fd < 0 || !connection->receive_armed || connection->close_submitted) continue;
    cancel_receive(*connection);
  }
}

void ConnectionTable::resume_receiving() {
  receiving_paused_ = false;
  for (auto& connection : connections_) {
    if (connection->fd >= 0 && !connection->receive_armed && !connection->closing &&
        may_receive_while_held(*connection)) {
      arm_receive(*connection);
    }
  }
}

}  // namespace gophermq
