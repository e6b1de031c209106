// A shard: one pinned thread, one io_uring, one listening socket, the
// connections it accepted and the subjects it owns. It starts up, turns the
// loop, dispatches completions, glues the layers together (the connection
// table's bytes to HTTP, HTTP's requests to the API, the API's calls to the
// cross-shard link) and shuts down. Nothing here is shared
// with other shards except the cross-shard queues and the pending budget.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "gophermq/api/broker_api.h"
#include "gophermq/config/config.h"
#include "gophermq/http/http_connection.h"
#include "gophermq/io/event_loop.h"
#include "gophermq/metrics/metrics.h"
#include "gophermq/net/connection_table.h"
#include "gophermq/shard/cross_shard.h"
#include "gophermq/shard/cross_shard_link.h"
#include "gophermq/store/pending_budget.h"

namespace gophermq {

// What every shard shares; owned by the broker.
struct ShardEnvironment {
  const Config& config;
  PendingBudget& budget;
  StoreCensus& census;
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
  // Refused connections a shard may linger over at once (see
  // ConnectionLimits), as the open-files limit allows.
  std::uint64_t lingering_refusals;
};

class Shard final : private ConnectionProtocol, private RequestHandler {
 public:
  Shard(unsigned id, int cpu, int listen_fd, ShardEnvironment& environment);

  // The thread body: pins itself, sets up its ring, serves until stopped.
  void run();

  // Set when start-up failed: one line for the operator.
  const std::string& start_error() const { return start_error_; }
  const EventLoop::Features& features() const { return loop_.features(); }
  // For the monitoring thread (it only reads them).
  const ShardMetrics& metrics() const { return metrics_; }
  const SubjectStore::Gauges& store_gauges() const { return api_.store().gauges(); }

 private:
  std::string start();
  void serve();
  void dispatch(const Completion& completion);
  void arm_stop_signal();
  void on_wake_failed(const Completion& completion);
  void copy_ring_counters();
  // On an idle turn: freed memory goes back to the operating system, for a
  // while after the shard last worked, at most once a second.
  void return_memory_if_due(std::uint64_t now_ms);

  // Shutdown (see the comment above begin_draining()).
  void begin_draining();
  bool finished_draining();
  // Cancels what is still in flight and reaps until the kernel is done with
  // our memory; the last thing serve() does.
  void quiesce_ring();

  // ConnectionProtocol: HTTP over the connection table's sockets.
  void on_open(Connection& connection) override;
  void on_received(Connection& connection, const char* data, std::size_t size,
                   std::size_t padded_capacity) override;
  RequestProgress progress(const Connection& connection) const override;
  void resume_input(Connection& connection) override;
  // After a parse: a stream that cannot go on is answered and ends.
  void end_stream_if(Connection& connection, HttpConnection& http, ParseStatus status);
  void on_read_timeout(Connection& connection) override;
  void on_peer_closed(Connection& connection) override;
  std::string_view answer_refused() override;

  // RequestHandler: a complete request, to the API; a call to another shard
  // when the subject is not ours.
  void handle(HttpConnection& http, const HttpRequest& request) override;

  // Cross-shard calls that arrived: served here (we own the subject), or
  // the answer to one we sent.
  std::size_t drain_incoming_calls();  // returns how many it took
  void complete_call(ShardCall& call);
  // Wildcard deliveries and pattern notes the API made, to their shards.
  void send_pattern_calls();
  // Waiting fetches the API answered: completed here, or sent back to the
  // shard of their connection.
  void route_answered_waits();
  // A waiting fetch sent to another shard has its answer.
  void forget_remote_wait(const ShardCall& call);

  // Event streams whose connections are on this shard (api-extensions.md
  // §8; shard_event_streams.cc). The shard that owns the subscriber takes
  // its messages and sends them here as events; this side frames them into
  // the connection and reports back what the client took (credit), so the
  // owner never sends more than the client keeps up with.
  struct EventStream {
    std::uint64_t token;  // names it in the calls both ways
    std::uint32_t generation;
    std::uint64_t answer_sequence;
    unsigned owner;
    SubjectCopy subject;
    SubscriberId id;
    ResponseStyle style;
    std::uint64_t started_ns;
    bool open = false;                // its 200 is written
    std::uint64_t event_bytes = 0;    // events written to the connection
    std::uint64_t credited = 0;       // of those, reported taken to the owner
    std::uint64_t last_write_ms = 0;  // for heartbeats
  };
  // The request just placed (outgoing_call_) opens a stream on `http`, with
  // the shard that owns its subscriber.
  void begin_event_stream(HttpConnection& http, Connection& connection, unsigned owner);
  // Its owner's answer, events, or end.
  void complete_stream_call(ShardCall& call);
  // The client took bytes: the owner may send as many more.
  void return_stream_credit(Connection& connection);
  // The stream on `connection` ends here (the client went, or the broker
  // stops): its answer is finished and the owner is told.
  void end_event_stream(Connection& connection);
  // A call to the stream's owner (credit or close).
  void signal_stream_owner(const EventStream& stream, std::uint32_t index, StreamStep step,
                           std::uint32_t credit);
  // A comment to every open stream idle for broker.stream-heartbeat.
  void send_heartbeats_if_due(std::uint64_t now_ms);

  const unsigned id_;
  const int cpu_;
  const int listen_fd_;
  ShardEnvironment& env_;
  std::string start_error_;

  bool multishot_receive_ = false;
  RequestLimits limits_;
  PipelineLimits pipeline_;
  ShardMetrics metrics_;
  BrokerApi api_;
  ConnectionTable table_;
  // The HTTP side of each connection slot, by the table's index.
  std::vector<std::unique_ptr<HttpConnection>> http_;
  CrossShardLink link_;
  ShardCall outgoing_call_;  // filled by the API when a request goes to its owner
  // Per connection slot, the shards holding a fetch of it that may wait:
  // told when its client goes (see on_peer_closed()).
  std::unordered_map<std::uint32_t, std::vector<unsigned>> remote_waits_;
  // By connection slot.
  std::unordered_map<std::uint32_t, EventStream> event_streams_;
  std::uint64_t last_stream_token_ = 0;
  std::uint64_t next_heartbeat_ms_ = 0;

  std::uint64_t stop_signal_value_ = 0;           // eventfd read target
  bool stop_signal_armed_ = false;                // the eventfd read will still report
  std::uint64_t ring_lost_completions_seen_ = 0;  // loop_'s counts already in metrics_
  std::uint64_t ring_refused_submits_seen_ = 0;
  std::uint64_t last_worked_ms_ = 0;  // the last turn with completions or calls
  std::uint64_t memory_returned_ms_ = 0;

  bool draining_ = false;
  bool connections_done_ = false;
  bool calls_done_ = false;
  std::chrono::steady_clock::time_point drain_deadline_;

  // Last, so it is destroyed first: its rings and buffers go before the
  // connections they served (quiesce_ring() has reaped every operation).
  EventLoop loop_;
};

}  // namespace gophermq
