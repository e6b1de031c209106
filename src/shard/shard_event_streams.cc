// The connection side of Server-Sent Event streams (api-extensions.md §8).
//
// A stream's connection may be on any shard; its subscriber's queue is on
// the shard that owns the subject. The owner takes messages and sends them
// here as events, at most StreamFeeds::kWindowBytes ahead of what the
// client has taken; this side frames them as chunks of the one open-ended
// answer, and as the client takes bytes it gives the owner that much
// credit back. A client that stops reading therefore stops the owner from
// taking messages (they stay queued), and only its own connection's output
// and the window's worth of unsent bytes in the kernel hold what was already
// sent to it.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>

#include "gophermq/clock.h"
#include "gophermq/shard/shard.h"

namespace gophermq {
namespace {

// A comment line: it keeps proxies from taking the stream for idle, and
// EventSource ignores it.
constexpr std::string_view kHeartbeat = ":\n\n";

}  // namespace

void Shard::begin_event_stream(HttpConnection& http, Connection& connection, unsigned owner) {
  EventStream stream{++last_stream_token_,
                     connection.generation(),
                     outgoing_call_.answer_sequence,
                     owner,
                     SubjectCopy(outgoing_call_.subject.view()),
                     outgoing_call_.id,
                     outgoing_call_.style,
                     outgoing_call_.started_ns};
  outgoing_call_.stream.token = stream.token;
  http.begin_event_stream(stream.answer_sequence);
  // Credit comes back as the kernel takes bytes, and a plain subscriber's
  // message is gone once sent. Left alone, the kernel takes as much as its
  // send buffer grows to (tcp_wmem's maximum, megabytes) for a client that
  // stopped reading, and all of it is lost when that client is cut off. It
  // now takes more only while less than the window waits unsent: the
  // messages stay queued instead, and what is in flight (a fast remote
  // client's bandwidth) is not capped, as a smaller send buffer would cap
  // it. (Failing, it leaves the kernel's default.)
  constexpr int kUnsentAtMost = static_cast<int>(StreamFeeds::kWindowBytes);
  setsockopt(connection.fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &kUnsentAtMost, sizeof kUnsentAtMost);
  // A stream whose client takes nothing is closed after the idle timeout
  // (or the write timeout, if shorter); its messages stay queued.
  connection.write_timeout_ms = static_cast<std::uint64_t>(
      std::min(env_.config.idle_timeout, env_.config.write_timeout).count());
  // A slot's earlier stream (its connection closed since) is long gone.
  event_streams_.insert_or_assign(http.index(), std::move(stream));
}

void Shard::complete_stream_call(ShardCall& call) {
  const std::uint32_t index = call.connection_index;
  Connection* connection = table_.find(index, call.connection_generation);
  auto found = event_streams_.find(index);
  // The stream ended here meanwhile (its client went, the broker stops):
  // what its owner sent since is for no one.
  if (connection == nullptr || found == event_streams_.end() ||
      found->second.token != call.stream.token) {
    return;
  }
  EventStream& stream = found->second;
  HttpConnection& http = *http_[index];
  switch (call.stream.step) {
    case StreamStep::open:
      if (call.status != 200) {
        // No stream after all (404 bad id): the error, and the connection
        // closes, as nothing after the request was read.
        event_streams_.erase(found);
        api_.complete_call(call, http);
        connection->closing = true;
        break;
      }
      append_event_stream_head(http.reserved_buffer(stream.answer_sequence), stream.style);
      stream.open = true;
      metrics_.streams.add();
      metrics_.record_request(Endpoint::stream, 200, monotonic_ns() - stream.started_ns);
      [[fallthrough]];
    case StreamStep::events:
      append_event_chunk(http.reserved_buffer(stream.answer_sequence), call.answer.view(),
                         stream.style);
      stream.event_bytes += call.answer.size();
      stream.last_write_ms = api_.store().now_ms();  // the turn's clock
      break;
    case StreamStep::end:
      // Unsubscribed, or replaced by a newer stream: the last chunk, and
      // the connection closes once it is sent.
      append_event_stream_end(http.reserved_buffer(stream.answer_sequence), stream.style);
      http.finish_answer(stream.answer_sequence);
      metrics_.streams.subtract(1);
      event_streams_.erase(found);
      connection->closing = true;
      break;
    default:
      return;
  }
  table_.mark_for_send(*connection);
}

void Shard::return_stream_credit(Connection& connection) {
  auto found = event_streams_.find(connection.index());
  if (found == event_streams_.end() || !found->second.open) return;
  EventStream& stream = found->second;
  // What is still unsent is the stream's latest bytes (heartbeats and the
  // head included, so this never counts too much as taken).
  const std::uint64_t unsent = connection.out.unsent();
  const std::uint64_t taken = stream.event_bytes > unsent ? stream.event_bytes - unsent : 0;
  if (taken <= stream.credited) return;
  // A call per quarter window, or when the client has caught up: a few
  // calls per window whatever the sends.
  if (taken - stream.credited < StreamFeeds::kWindowBytes / 4 && unsent != 0) return;
  signal_stream_owner(stream, connection.index(), StreamStep::credit,
                      static_cast<std::uint32_t>(taken - stream.credited));
  stream.credited = taken;
}

void Shard::end_event_stream(Connection& connection) {
  auto found = event_streams_.find(connection.index());
  if (found == event_streams_.end()) return;
  EventStream& stream = found->second;
  HttpConnection& http = *http_[connection.index()];
  if (stream.open) {
    append_event_stream_end(http.reserved_buffer(stream.answer_sequence), stream.style);
    metrics_.streams.subtract(1);
  }
  // Not yet open: the answer is finished empty; the owner's 200 then finds
  // no stream here and is dropped, and the close below follows the open.
  http.finish_answer(stream.answer_sequence);
  signal_stream_owner(stream, connection.index(), StreamStep::close, 0);
  event_streams_.erase(found);
  connection.closing = true;
  table_.mark_for_send(connection);
}

void Shard::signal_stream_owner(const EventStream& stream, std::uint32_t index, StreamStep step,
                                std::uint32_t credit) {
  ShardCall call;
  call.endpoint = Endpoint::stream;
  call.origin_shard = static_cast<std::uint16_t>(id_);
  call.connection_index = index;
  call.connection_generation = stream.generation;
  call.subject = SubjectCopy(stream.subject.view());
  call.id = stream.id;
  call.stream.token = stream.token;
  call.stream.step = step;
  call.stream.credit = credit;
  if (stream.owner == id_) {
    api_.serve_call(call);  // credit may feed the stream: routed with the turn's answers
  } else {
    link_.send(stream.owner, std::move(call));
  }
}

void Shard::send_heartbeats_if_due(std::uint64_t now_ms) {
  if (event_streams_.empty() || now_ms < next_heartbeat_ms_) return;
  const auto interval = static_cast<std::uint64_t>(env_.config.stream_heartbeat.count());
  // Looked at a few times an interval: a stream's comment comes at most a
  // quarter interval late, and no timer is kept per stream.
  next_heartbeat_ms_ = now_ms + std::max<std::uint64_t>(interval / 4, 1);
  for (auto& [index, stream] : event_streams_) {
    if (!stream.open || now_ms - stream.last_write_ms < interval) continue;
    Connection* connection = table_.find(index, stream.generation);
    if (connection == nullptr) continue;
    append_event_chunk(http_[index]->reserved_buffer(stream.answer_sequence), kHeartbeat,
                       stream.style);
    stream.last_write_ms = now_ms;
    table_.mark_for_send(*connection);
  }
}

}  // namespace gophermq
