// A shard: one pinned thread, one io_uring, one listening socket, the
// connections it accepted and the subjects it owns. Nothing here is shared
// with other shards except the cross-shard queues and the pending budget.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <latch>
#include <memory>
#include <string>
#include <vector>

#include "gophermq/api_service.h"
#include "gophermq/config.h"
#include "gophermq/connection.h"
#include "gophermq/cross_shard.h"
#include "gophermq/event_loop.h"
#include "gophermq/metrics.h"
#include "gophermq/pending_budget.h"

namespace gophermq {

// What every shard shares; owned by the broker.
struct ShardEnvironment {
  const Config& config;
  PendingBudget& budget;
  CrossShardMatrix& matrix;
  std::atomic<bool>& stop_requested;
  // Start-up handshake: each shard counts down once its ring exists (or it
  // failed), then waits for `go` before serving, so no shard wakes a ring
  // that does not exist yet.
  std::latch& rings_ready;
  std::latch& go;
  std::chrono::steady_clock::time_point started;  // for /healthz's uptime
  // Shutdown barriers (see Shard::finished_draining): shards that still have
  // connections, and shards that may still send calls. Both start at the
  // shard count.
  std::atomic<unsigned>& shards_with_connections;
  std::atomic<unsigned>& shards_with_calls;
  // Client connections open on all shards, against broker.max-connections
  // (touched once per accept and close, never per request).
  std::atomic<std::uint64_t>& open_connections;
};

class Shard final : private CallForwarder {
 public:
  Shard(unsigned id, int cpu, int listen_fd, ShardEnvironment& environment);
  ~Shard();

  // The thread body: pins itself, sets up its ring, serves until stopped.
  void run();

  // Set when start-up failed: one line for the operator.
  const std::string& start_error() const { return start_error_; }
  const EventLoop::Features& features() const { return loop_.features(); }
  // For the monitoring thread (it only reads them).
  const ShardMetrics& metrics() const { return metrics_; }
  const SubjectStore::Gauges& store_gauges() const { return api_.store().gauges(); }

 private:
  void forward(unsigned owner, ShardCall&& call) override;

  std::string start();
  void serve();
  void begin_draining();
  bool finished_draining();
  // Cancels what is still in flight and reaps until the kernel is done with
  // our memory; the last thing serve() does.
  void quiesce_ring();

  // Completions.
  void dispatch(const Completion& completion);
  void on_accept(const Completion& completion);
  void on_receive(const Completion& completion);
  void on_send(const Completion& completion);
  void on_close(const Completion& completion);

  // Connection I/O.
  void arm_accept();
  void arm_receive(Connection& connection);
  void arm_stop_signal();
  void on_wake_failed(const Completion& completion);
  void copy_ring_counters();
  void feed(Connection& connection, const char* data, std::size_t size, std::size_t padded);
  void mark_for_send(Connection& connection);
  void flush_sends();
  void start_send(Connection& connection);
  void close_when_done(Connection& connection);
  void refuse_connection(int fd);
  // A request half read, or bytes waiting in the socket (one syscall; only
  // when closing).
  static bool client_still_sending(const Connection& connection);

  // Limits on slow, idle and non-reading clients, checked by a sweep a few
  // times a second rather than a timer per connection.
  void sweep_connections();
  void cut_off(Connection& connection, CloseReason reason);
  // Back-pressure: while calls pile up for a busy shard, this shard stops
  // receiving (TCP then slows the clients down) until they drain.
  void pause_receiving();
  void resume_receiving();
  // The connection a completion is about, or null when it is stale.
  Connection* connection_for(const Completion& completion);
  static std::uint64_t connection_tag(Operation operation, const Connection& connection) {
    return make_tag(operation, connection.index(), connection.generation());
  }

  // Cross-shard calls.
  void send_call(unsigned owner, ShardCall&& call);
  void serve_call(ShardCall&& call);
  void complete_call(ShardCall& call);
  std::size_t drain_incoming_calls();  // returns how many calls it took
  bool flush_outgoing_calls();

  const unsigned id_;
  const int cpu_;
  const int listen_fd_;
  ShardEnvironment& env_;
  const unsigned shard_count_;
  std::string start_error_;

  bool multishot_receive_ = false;
  RequestLimits limits_;
  ShardMetrics metrics_;
  ApiService api_;

  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<std::uint32_t> free_connections_;
  std::vector<std::uint32_t> send_queue_;  // connections with output to flush this turn

  // Calls that found their queue full wait here, in order (back-pressure,
  // never a drop); one list per destination shard.
  std::vector<std::deque<ShardCall>> waiting_calls_;
  std::vector<bool> published_to_;
  std::uint64_t stop_signal_value_ = 0;           // eventfd read target
  std::uint64_t ring_lost_completions_seen_ = 0;  // loop_'s counts already in metrics_
  std::uint64_t ring_refused_submits_seen_ = 0;

  std::uint64_t now_ms_ = 0;  // the loop turn's clock
  std::uint64_t next_sweep_ms_ = 0;
  bool accept_armed_ = false;       // an accept will still report
  bool stop_signal_armed_ = false;  // the eventfd read will still report
  bool accept_paused_ = false;      // out of descriptors: retried by the sweep
  bool accept_outage_ = false;      // since the last accept that worked
  bool receiving_paused_ = false;   // back-pressure, see pause_receiving()
  std::size_t calls_waiting_ = 0;   // in waiting_calls_, all destinations

  bool draining_ = false;
  bool connections_done_ = false;
  bool calls_done_ = false;
  std::chrono::steady_clock::time_point drain_deadline_;

  // Last, so it is destroyed first: the ring's in-flight receives may target
  // connections' buffers, which must outlive it.
  EventLoop loop_;
};

}  // namespace gophermq
