#include "gophermq/shard/shard.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "gophermq/allocator.h"
#include "gophermq/clock.h"
#include "gophermq/http/cors.h"
#include "gophermq/http/response_writer.h"
#include "gophermq/log.h"
#include "gophermq/store/subject.h"

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
// A shard gives its freed memory back on idle turns (see
// return_freed_memory()), at most this often, for this long after it last
// worked: other shards free into its pages after its work is done (answers
// it built, taken apart where their connections are).
constexpr std::uint64_t kReturnMemoryEveryMs = 1'000;
constexpr std::uint64_t kReturnMemoryForMs = 10'000;
// Back-pressure: calls waiting for room in full cross-shard queues, or bytes
// its calls carry that other shards have not taken yet (big messages, or a
// publish copied to many wildcard patterns), at which this shard stops
// receiving, and resumes.
constexpr std::size_t kPauseReceivingAtCalls = 8192;
constexpr std::size_t kResumeReceivingAtCalls = 1024;
constexpr std::uint64_t kPauseReceivingAtBytes = 64 << 20;
constexpr std::uint64_t kResumeReceivingAtBytes = 16 << 20;

}  // namespace

Shard::Shard(unsigned id, int cpu, int listen_fd, ShardEnvironment& environment)
    : id_(id),
      cpu_(cpu),
      listen_fd_(listen_fd),
      env_(environment),
      limits_{environment.config.max_header_bytes, environment.config.max_body_bytes,
              cors_origins().longest()},
      pipeline_{environment.config.max_unsent_bytes, environment.config.max_pipeline_depth},
      api_(id, environment.matrix.shard_count(), environment.budget, environment.census,
           StoreLimits{
               environment.config.max_fetch_bytes,
               static_cast<std::uint64_t>(environment.config.max_fetch_wait.count()),
               environment.config.max_waiting_fetches, environment.config.max_batch,
               environment.config.max_pending, pending_bytes_per_subject_bound(environment.config),
               environment.config.max_subscribers_per_subject, environment.config.max_subject_bytes,
               static_cast<std::uint64_t>(environment.config.inactive_threshold.count()),
               static_cast<std::uint64_t>(environment.config.stream_flush_interval.count())},
           environment.started, metrics_),
      table_(id, loop_,
             ConnectionLimits{
                 environment.config.max_connections, environment.config.read_timeout,
                 environment.config.idle_timeout, environment.config.write_timeout,
                 environment.lingering_refusals,
                 environment.config.max_unsent_bytes_total / environment.matrix.shard_count()},
             metrics_, environment.open_connections, *this),
      link_(id, environment.matrix, metrics_, &loop_) {}

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
  if (loop_.features().multishot_receive) {
    multishot_receive_ = loop_.setup_provided_buffers(kReceiveBuffers, kReceiveBufferSize);
  }
  env_.matrix.mailbox(id_).ring_fd.store(loop_.ring_fd());
  return {};
}

void Shard::serve() {
  table_.start(listen_fd_, multishot_receive_);
  arm_stop_signal();
  while (true) {
    const std::uint64_t now_ns = monotonic_ns();
    table_.set_now(now_ns / 1'000'000);
    api_.begin_turn(now_ns);
    const unsigned completions =
        loop_.for_each_completion([this](const Completion& completion) { dispatch(completion); });
    const std::size_t calls = drain_incoming_calls();
    route_answered_waits();
    api_.end_turn();
    const bool calls_waiting = link_.flush();
    // Back-pressure: while calls pile up for a busy shard, stop receiving
    // (TCP then slows the clients down) until they drain.
    const std::uint64_t bytes_in_flight = link_.bytes_in_flight();
    if ((link_.calls_waiting() >= kPauseReceivingAtCalls ||
         bytes_in_flight >= kPauseReceivingAtBytes) &&
        !table_.receiving_paused()) {
      log::debug("receiving paused: cross-shard calls are backing up",
                 {{"shard", std::to_string(id_)},
                  {"calls_waiting", std::to_string(link_.calls_waiting())},
                  {"bytes_in_flight", std::to_string(bytes_in_flight)}});
      table_.pause_receiving();
    }
    if (link_.calls_waiting() <= kResumeReceivingAtCalls &&
        bytes_in_flight <= kResumeReceivingAtBytes && table_.receiving_paused()) {
      table_.resume_receiving();
    }
    send_heartbeats_if_due(now_ns / 1'000'000);
    table_.sweep_if_due();
    table_.flush();
    if (env_.stop_requested.load(std::memory_order_relaxed)) {
      if (!draining_) begin_draining();
      if (finished_draining()) {
        quiesce_ring();
        return;
      }
    }

    // A turn that had work goes round again without sleeping, and without
    // ringing the sleep bit: more is likely on its way. An idle one sleeps
    // unless a call came in meanwhile (see cross_shard.h). While draining,
    // other shards' progress does not wake us: look often.
    const bool may_sleep = completions == 0 && calls == 0 && link_.prepare_sleep();
    if (completions != 0 || calls != 0) last_worked_ms_ = now_ns / 1'000'000;
    if (may_sleep) return_memory_if_due(now_ns / 1'000'000);
    // Paused, nothing rings when the other shards take our calls: look again soon.
    unsigned wait_us = calls_waiting || table_.receiving_paused() ? kRetryWaitMicros
                       : draining_                                ? kDrainPollMicros
                                                                  : kIdleWakeMicros;
    // No later than the first waiting fetch's deadline (the clock is read
    // for it only when a fetch waits).
    if (const std::uint64_t due_ms = api_.next_wait_deadline_ms(); due_ms != UINT64_MAX) {
      const std::uint64_t now = monotonic_ns();
      const std::uint64_t due_ns = due_ms * 1'000'000;
      const std::uint64_t until_due_us = due_ns > now ? (due_ns - now + 999) / 1000 : 0;
      wait_us = static_cast<unsigned>(std::min<std::uint64_t>(wait_us, until_due_us));
    }
    loop_.submit_and_wait(may_sleep, wait_us);
    copy_ring_counters();
  }
}

void Shard::return_memory_if_due(std::uint64_t now_ms) {
  if (now_ms - last_worked_ms_ > kReturnMemoryForMs ||
      now_ms - memory_returned_ms_ < kReturnMemoryEveryMs) {
    return;
  }
  memory_returned_ms_ = now_ms;
  return_freed_memory();
}

void Shard::dispatch(const Completion& completion) {
  switch (completion.operation) {
    case Operation::accept:
      table_.on_accept(completion);
      break;
    case Operation::receive:
      table_.on_receive(completion);
      break;
    case Operation::hangup:
      table_.on_hangup(completion);
      break;
    case Operation::send:
      table_.on_send(completion);
      break;
    case Operation::close:
      table_.on_close(completion);
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

void Shard::arm_stop_signal() {
  stop_signal_armed_ = true;
  io_uring_sqe* sqe = loop_.next_sqe();
  io_uring_prep_read(sqe, env_.matrix.mailbox(id_).event_fd, &stop_signal_value_,
                     sizeof stop_signal_value_, 0);
  io_uring_sqe_set_data64(sqe, make_tag(Operation::stop_signal, 0));
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
  // Fetches waiting for messages are answered now, with what is pending.
  api_.stop_waiting();
  route_answered_waits();
  // Streams end cleanly: their last chunk, then the close. Those fed from
  // this shard have just been sent what their owner held, and their end;
  // one fed from another shard ends when that shard's end comes, after
  // its events. One not open yet ends now.
  for (auto it = event_streams_.begin(); it != event_streams_.end();) {
    const std::uint32_t index = it->first;
    const bool open = it->second.open;
    ++it;  // ending it erases it
    if (!open) end_event_stream(table_.at(index));
  }
  table_.stop_accepting();
  table_.close_all_when_done();
}

bool Shard::finished_draining() {
  if (std::chrono::steady_clock::now() > drain_deadline_) {
    log::warn("shutdown timeout: leaving unfinished work",
              {{"shard", std::to_string(id_)},
               {"open_connections", std::to_string(table_.open_count())}});
    return true;
  }
  if (!connections_done_) {
    if (table_.open_count() != 0) return false;
    connections_done_ = true;
    env_.shards_with_connections.fetch_sub(1);
  }
  if (env_.shards_with_connections.load() != 0) return false;
  if (!calls_done_) {
    if (link_.calls_waiting() != 0) return false;
    calls_done_ = true;  // link_.flush() has published the rest
    env_.shards_with_calls.fetch_sub(1);
  }
  if (env_.shards_with_calls.load() != 0) return false;
  // Every shard has published its last call: take what is left for us
  // (async publishes, which need no answer).
  while (link_.drain_all([this](ShardCall&& call) {
    if (call.status == 0) api_.serve_call(call);
  }) != 0) {
  }
  return true;
}

void Shard::quiesce_ring() {
  // The kernel may still be reading our send buffers, writing into receive
  // targets, or about to report on connections. Freeing them while it does
  // is a use-after-free the kernel commits, so: cancel everything on every
  // connection still open (there are some only after the shutdown deadline),
  // close it, and reap until each operation has reported.
  table_.cancel_all();
  if (stop_signal_armed_) {
    io_uring_sqe* cancel = loop_.next_sqe();
    io_uring_prep_cancel64(cancel, make_tag(Operation::stop_signal, 0), 0);
    io_uring_sqe_set_data64(cancel, make_tag(Operation::cancel, 0));
  }
  auto in_flight = [this] { return stop_signal_armed_ || !table_.quiet(); };
  // Cancellation takes the kernel microseconds; the bound is for a kernel
  // that never answers, where leaking beats hanging the exit.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (in_flight() && std::chrono::steady_clock::now() < deadline) {
    loop_.submit_and_wait(true, kDrainPollMicros);
    loop_.for_each_completion([this](const Completion& completion) { dispatch(completion); });
  }
  if (in_flight()) {
    log::warn("shard stopping with io_uring operations still in flight",
              {{"shard", std::to_string(id_)},
               {"open_connections", std::to_string(table_.open_count())}});
  }
}

// --- HTTP over the connection table ----------------------------------------

void Shard::on_open(Connection& connection) {
  const std::uint32_t index = connection.index();
  if (index >= http_.size()) http_.resize(index + 1);
  if (!http_[index]) {
    RequestHandler& handler = *this;  // a private base: converted here, where it is visible
    http_[index] = std::make_unique<HttpConnection>(index, limits_, pipeline_,
                                                    table_.unsent_total(), handler, connection.out);
  }
  http_[index]->reset();
}

void Shard::on_received(Connection& connection, const char* data, std::size_t size,
                        std::size_t padded_capacity) {
  HttpConnection& http = *http_[connection.index()];
  end_stream_if(connection, http, http.feed(data, size, padded_capacity));
}

void Shard::resume_input(Connection& connection) {
  return_stream_credit(connection);
  HttpConnection& http = *http_[connection.index()];
  end_stream_if(connection, http, http.resume());
}

void Shard::end_stream_if(Connection& connection, HttpConnection& http, ParseStatus status) {
  if (status == ParseStatus::ok) return;
  // A request without keep-alive ended the stream (stopped), or the stream
  // cannot be trusted past a protocol error: answer it, and read no more.
  connection.closing = true;
  const std::uint16_t code = append_protocol_error(http.answer_now(), status);
  if (code != 0) metrics_.record_request(Endpoint::unrouted, code, 0);
}

RequestProgress Shard::progress(const Connection& connection) const {
  const HttpConnection& http = *http_[connection.index()];
  return {http.in_request(), http.requests_read(), http.answers_outstanding(), http.input_held(),
          http.held_bytes()};
}

void Shard::on_read_timeout(Connection& connection) {
  append_response(http_[connection.index()]->answer_now(), 408, protocol_body::kRequestTimeout,
                  kClosingStyle);
  metrics_.record_request(Endpoint::unrouted, 408, 0);
}

std::string_view Shard::answer_refused() {
  static const std::string kRefusal = [] {
    ByteBuffer out;
    append_response(out, 503, protocol_body::kTooManyConnections, kClosingStyle);
    return std::string(out.view());
  }();
  metrics_.record_request(Endpoint::unrouted, 503, 0);
  return kRefusal;
}

// --- Requests and cross-shard calls ----------------------------------------

void Shard::handle(HttpConnection& http, const HttpRequest& request) {
  // One turn may read a great many requests: once this shard's calls carry
  // too many bytes the other shards have not taken, each connection reads
  // no further than this request until its client takes an answer (and the
  // turn's end stops receiving altogether).
  if (link_.bytes_in_flight() >= kPauseReceivingAtBytes) http.hold_input();
  const Placement placement = api_.handle(request, http, outgoing_call_);
  // A publish's copies for wildcard patterns on other shards leave now, in
  // request order, and count in the bytes above.
  send_pattern_calls();
  if (!placement.forward) return;
  if (placement.status == 0) {  // the owner answers: keep this answer's place
    Connection& connection = table_.at(http.index());
    outgoing_call_.connection_index = http.index();
    outgoing_call_.connection_generation = connection.generation();
    outgoing_call_.answer_sequence = http.reserve_answer(placement.answer_bytes_at_most);
    if (outgoing_call_.endpoint == Endpoint::stream) {
      begin_event_stream(http, connection, placement.owner);
    }
    if (outgoing_call_.fetch_options.wait_ms != 0) {
      // A client already gone (its requests read after its close) waits for
      // nothing.
      if (connection.peer_closed || connection.hangup_seen) {
        outgoing_call_.fetch_options.wait_ms = 0;
      }
      if (placement.owner != id_) remote_waits_[http.index()].push_back(placement.owner);
    }
  }
  if (placement.split) {  // a many-subject batch: a call to each owner
    api_.take_split_calls([&](unsigned owner, ShardCall&& call) {
      call.connection_index = outgoing_call_.connection_index;
      call.connection_generation = outgoing_call_.connection_generation;
      call.answer_sequence = outgoing_call_.answer_sequence;
      link_.send(owner, std::move(call));
    });
    return;
  }
  if (placement.owner == id_) {  // a fetch that may wait, on its own subject's shard
    if (api_.serve_call(outgoing_call_)) complete_call(outgoing_call_);
    return;
  }
  link_.send(placement.owner, std::move(outgoing_call_));
}

void Shard::send_pattern_calls() {
  api_.take_pattern_calls(
      [this](unsigned shard, ShardCall&& call) { link_.send(shard, std::move(call)); });
}

void Shard::route_answered_waits() {
  api_.take_dead_letter_calls(
      [this](unsigned owner, ShardCall&& call) { link_.send(owner, std::move(call)); });
  send_pattern_calls();
  api_.wake_waiting();
  api_.take_answered_waits([this](ShardCall&& call) {
    if (call.origin_shard == id_) {
      complete_call(call);
    } else {
      link_.send(call.origin_shard, std::move(call));
    }
  });
}

void Shard::on_peer_closed(Connection& connection) {
  // Its fetches waiting for messages end now, taking nothing: here, and on
  // each shard that holds one.
  const std::uint32_t index = connection.index();
  end_event_stream(connection);
  api_.end_waits(id_, index, connection.generation());
  auto remote = remote_waits_.find(index);
  if (remote == remote_waits_.end()) return;
  std::vector<unsigned> owners = remote->second;
  std::sort(owners.begin(), owners.end());
  owners.erase(std::unique(owners.begin(), owners.end()), owners.end());
  for (unsigned owner : owners) {
    ShardCall call;
    call.endpoint = Endpoint::fetch;
    call.end_waits = true;
    call.origin_shard = static_cast<std::uint16_t>(id_);
    call.connection_index = index;
    call.connection_generation = connection.generation();
    link_.send(owner, std::move(call));
  }
}

std::size_t Shard::drain_incoming_calls() {
  return link_.drain([this](ShardCall&& call) {
    if (call.status != 0) {
      complete_call(call);
    } else if (api_.serve_call(call)) {
      link_.send(call.origin_shard, std::move(call));
    }
    // A publish served here may be copied to many wildcard patterns on
    // other shards: while this shard's own calls carry too many bytes, it
    // takes one call per queue per turn (never none: two shards that each
    // waited for the other would wait for ever).
    send_pattern_calls();
    return link_.bytes_in_flight() < kPauseReceivingAtBytes;
  });
}

void Shard::complete_call(ShardCall& call) {
  if (call.endpoint == Endpoint::stream) {
    complete_stream_call(call);
    return;
  }
  if (call.fetch_options.wait_ms != 0 && call.endpoint == Endpoint::fetch) forget_remote_wait(call);
  Connection* connection = table_.find(call.connection_index, call.connection_generation);
  if (connection == nullptr) return;  // it closed meanwhile
  HttpConnection& http = *http_[call.connection_index];
  api_.complete_call(call, http);
  table_.mark_for_send(*connection);
}

void Shard::forget_remote_wait(const ShardCall& call) {
  auto remote = remote_waits_.find(call.connection_index);
  if (remote == remote_waits_.end()) return;  // a wait on this shard's own subject
  std::vector<unsigned>& owners = remote->second;
  auto owner = std::find(owners.begin(), owners.end(),
                         owner_shard(call.subject.view(), env_.matrix.shard_count()));
  if (owner != owners.end()) owners.erase(owner);
  if (owners.empty()) remote_waits_.erase(remote);
}

}  // namespace gophermq
