// A shard's client connections: accept, receive, send, close (lingering where
// the client still sends), the sweep that enforces the timeouts, and pause
// and resume of receiving, per connection (the protocol holds its input) and
// per shard. It speaks io_uring and sockets,
// never HTTP: bytes go up to a ConnectionProtocol, answers come down as the
// bytes in each connection's OutgoingBytes.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "gophermq/io/event_loop.h"
#include "gophermq/metrics/metrics.h"
#include "gophermq/net/connection.h"

namespace gophermq {

// Where the protocol stands on a connection, as the table needs it.
struct RequestProgress {
  bool in_request = false;          // a request has begun and is not complete
  std::uint64_t requests_read = 0;  // complete requests so far
  std::size_t answers_owed = 0;     // read, and not yet answered
  bool input_held = false;          // reading no requests until answers are taken
  std::size_t held_bytes = 0;       // received meanwhile, kept unread
};

// The protocol above the sockets (HTTP), per connection slot.
class ConnectionProtocol {
 public:
  // A new socket took the slot.
  virtual void on_open(Connection& connection) = 0;
  // Bytes received. The protocol writes what answers it can into
  // connection.out, and sets connection.closing when nothing more may be read.
  virtual void on_received(Connection& connection, const char* data, std::size_t size,
                           std::size_t padded_capacity) = 0;
  virtual RequestProgress progress(const Connection& connection) const = 0;
  // The client took answers off a connection whose input is held: the
  // protocol reads what it held back if it now owes little enough.
  virtual void resume_input(Connection& connection) = 0;
  // A request did not arrive whole within the read timeout: answer it (the
  // connection closes after).
  virtual void on_read_timeout(Connection& connection) = 0;
  // The client closed its side (or the socket failed): answers it waits for
  // may end now (a long-poll takes nothing for a client that has gone).
  virtual void on_peer_closed(Connection& connection) = 0;
  // A connection is refused for being over the limit: the bytes it is sent
  // (the protocol counts the answer).
  virtual std::string_view answer_refused() = 0;

 protected:
  ~ConnectionProtocol() = default;
};

// Refused connections (over max_connections) a shard lingers over at once
// where descriptors allow: each is answered, then read and dropped until its
// client closes. Past them, a flood is closed at once.
inline constexpr std::uint64_t kMostLingeringRefusals = 64;

struct ConnectionLimits {
  std::uint64_t max_connections;  // broker-wide
  std::chrono::milliseconds read_timeout;
  std::chrono::milliseconds idle_timeout;
  // A client that takes none of its answers for this long is cut off.
  std::chrono::milliseconds write_timeout;
  std::uint64_t lingering_refusals = kMostLingeringRefusals;  // on this shard at once
  // Answer bytes this shard's connections may owe together (its share of
  // broker.max-unsent-bytes-total) before fetches carry little.
  std::uint64_t max_unsent_bytes = UINT64_MAX;
};

class ConnectionTable {
 public:
  // `open_connections` counts every shard's connections against
  // limits.max_connections (touched once per accept and close).
  ConnectionTable(unsigned shard_id, EventLoop& loop, const ConnectionLimits& limits,
                  ShardMetrics& metrics, std::atomic<std::uint64_t>& open_connections,
                  ConnectionProtocol& protocol);
  ConnectionTable(const ConnectionTable&) = delete;
  ConnectionTable& operator=(const ConnectionTable&) = delete;
  ~ConnectionTable();

  // Starts accepting on `listen_fd`; `multishot_receive` says whether the
  // loop's provided buffers serve the receives.
  void start(int listen_fd, bool multishot_receive);

  // The loop turn's clock, set once per turn.
  void set_now(std::uint64_t now_ms) { now_ms_ = now_ms; }

  // Completions of the operations the table submitted.
  void on_accept(const Completion& completion);
  void on_receive(const Completion& completion);
  void on_hangup(const Completion& completion);
  void on_send(const Completion& completion);
  void on_close(const Completion& completion);

  // The slot `index` when it still holds the socket of `generation`.
  Connection* find(std::uint32_t index, std::uint32_t generation);
  Connection& at(std::uint32_t index) { return *connections_[index]; }

  // What the shard's connections owe together, as last counted.
  const UnsentTotal& unsent_total() const { return unsent_; }

  // The connection has new output, or may now close: looked at in flush().
  void mark_for_send(Connection& connection);
  // One send per connection per turn, carrying every answer of the turn.
  void flush();
  // The timeouts, and a paused accept retried; a few times a second.
  void sweep_if_due();

  // Back-pressure from above: stop receiving on every connection (TCP then
  // slows the clients down), and start again.
  void pause_receiving();
  void resume_receiving();
  bool receiving_paused() const { return receiving_paused_; }

  // Shutdown: no more accepts; every connection closes once nothing is owed.
  void stop_accepting();
  void close_all_when_done();
  std::size_t open_count() const { return connections_.size() - free_connections_.size(); }
  // Cancels what is in flight on every connection still open, and closes it.
  void cancel_all();
  // Nothing the table submitted is still in the kernel.
  bool quiet() const { return !accept_armed_ && open_count() == 0; }

 private:
  void arm_accept();
  void arm_receive(Connection& connection);
  void cancel_receive(Connection& connection);
  // Receiving goes on while requests wait, up to a little held unread.
  bool may_receive_while_held(const Connection& connection) const;
  // While a held connection receives nothing, a poll watches for its
  // client's FIN or reset (see the definition).
  void watch_for_hangup(Connection& connection);
  // Received bytes, to the protocol.
  void deliver(Connection& connection, const char* data, std::size_t size, std::size_t padded);
  // Lets the protocol read (`parse`), then starts or stops the read timeout,
  // and stops or restarts receiving as the protocol holds its input or not.
  template <typename Parse>
  void read_requests(Connection& connection, Parse&& parse);
  // Brings the shard's total up to date with what `connection` owes now.
  void count_owed(Connection& connection);
  // Moves the output to the wire, and sends it.
  void start_send(Connection& connection);
  // Sends what of `sending` is not sent yet: one buffer plainly, a chain
  // gathered.
  void submit_send(Connection& connection);
  void close_when_done(Connection& connection);
  // A slot for a freshly accepted socket.
  Connection& take_slot(int fd);
  void refuse_connection(int fd);
  void cut_off(Connection& connection, CloseReason reason);
  void sweep();
  // A request half read, or bytes waiting in the socket (one syscall; only
  // when closing).
  bool client_still_sending(const Connection& connection) const;
  Connection* connection_for(const Completion& completion);
  static std::uint64_t connection_tag(Operation operation, const Connection& connection) {
    return make_tag(operation, connection.index(), connection.generation());
  }

  const unsigned shard_id_;
  EventLoop& loop_;
  const ConnectionLimits limits_;
  ShardMetrics& metrics_;
  std::atomic<std::uint64_t>& open_connections_;
  ConnectionProtocol& protocol_;
  int listen_fd_ = -1;
  bool multishot_receive_ = false;

  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<std::uint32_t> free_connections_;
  std::size_t refusals_lingering_ = 0;     // refused connections not yet closed
  std::vector<std::uint32_t> send_queue_;  // connections with output to flush this turn
  UnsentTotal unsent_;

  std::uint64_t now_ms_ = 0;
  std::uint64_t next_sweep_ms_ = 0;
  bool accepting_ = false;         // false once stopped for shutdown
  bool accept_armed_ = false;      // an accept will still report
  bool accept_paused_ = false;     // out of descriptors: retried by the sweep
  bool accept_outage_ = false;     // since the last accept that worked
  bool receiving_paused_ = false;  // see pause_receiving()
};

}  // namespace gophermq
