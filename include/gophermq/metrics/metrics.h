// What each shard counts for Prometheus. Every counter is written by one
// shard only, with a relaxed load and store (plain moves on x86: no locked
// instruction on the request path), and read by the monitoring thread, which
// sums the shards when scraped.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gophermq/api/router.h"

namespace gophermq {

class ShardCounter {
 public:
  void add(std::uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void subtract(std::uint64_t n) { add(0 - n); }  // for gauges; wraps back exactly
  void set(std::uint64_t value) { value_.store(value, std::memory_order_relaxed); }
  std::uint64_t read() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// The `method` label: which endpoint a request was for (`options`: a CORS
// preflight); /healthz, unknown paths, wrong methods and requests never
// routed are all `other`.
inline constexpr std::array<std::string_view, 13> kMetricMethodNames = {
    "publish", "publish_async", "publish_batch", "subscribe", "fetch",   "ready", "unsubscribe",
    "info",    "ack",           "nack",          "stream",    "options", "other"};
constexpr std::size_t method_label(Endpoint endpoint) {
  switch (endpoint) {
    case Endpoint::publish:
      return 0;
    case Endpoint::publish_async:
      return 1;
    case Endpoint::publish_batch:
      return 2;
    case Endpoint::subscribe:
      return 3;
    case Endpoint::fetch:
      return 4;
    case Endpoint::ready:
      return 5;
    case Endpoint::unsubscribe:
      return 6;
    case Endpoint::info:
      return 7;
    case Endpoint::ack:
      return 8;
    case Endpoint::nack:
      return 9;
    case Endpoint::stream:
      return 10;
    case Endpoint::preflight:
      return 11;
    default:
      return 12;
  }
}

// The `code` label: every status the broker answers with.
inline constexpr std::array<std::uint16_t, 12> kStatusCodes = {200, 204, 400, 404, 405, 408,
                                                               409, 413, 429, 431, 500, 503};
constexpr std::size_t status_index(std::uint16_t status) {
  std::size_t server_error = 0;
  for (std::size_t i = 0; i < kStatusCodes.size(); ++i) {
    if (kStatusCodes[i] == status) return i;
    if (kStatusCodes[i] == 500) server_error = i;
  }
  return server_error;  // a status we never send would be a bug, not a new label
}

// Latency buckets, upper bounds in nanoseconds: an io_uring broker answers in
// tens of microseconds, so they start at 10 µs (the Go client's defaults
// start at 5 ms and would put every request in the first bucket) and reach
// 10 s for the pathological.
inline constexpr std::array<std::uint64_t, 19> kLatencyBucketsNs = {
    10'000,        25'000,        50'000,        100'000,       250'000,
    500'000,       1'000'000,     2'500'000,     5'000'000,     10'000'000,
    25'000'000,    50'000'000,    100'000'000,   250'000'000,   500'000'000,
    1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};

struct RequestStats {
  ShardCounter count;
  ShardCounter duration_ns;
  // Per bucket, not cumulative (the scrape adds them up); the last is +Inf.
  std::array<ShardCounter, kLatencyBucketsNs.size() + 1> buckets;
};

// Why a publish was not stored. An async publish can fail for the first
// three after its answer (an invalid subject is answered 400).
enum class RefusalReason : std::uint8_t {
  overflow,  // broker-wide bounds
  no_subscriber,
  subject_overflow,  // the subject's own bounds
  invalid_subject,
};
inline constexpr std::array<std::string_view, 4> kRefusalReasonNames = {
    "overflow", "no_subscriber", "subject_overflow", "invalid_subject"};
inline constexpr std::size_t kAsyncFailureReasons = 3;

// Why the broker closed a connection on its own.
enum class CloseReason : std::uint8_t { read_timeout, idle_timeout, write_stall };
inline constexpr std::array<std::string_view, 3> kCloseReasonNames = {
    "read_timeout", "idle_timeout", "write_stall"};

struct ShardMetrics {
  std::array<std::array<RequestStats, kStatusCodes.size()>, kMetricMethodNames.size()> requests;

  ShardCounter connections_accepted;
  ShardCounter open_connections;     // gauge
  ShardCounter connections_refused;  // over broker.max-connections
  ShardCounter accept_errors;        // e.g. out of descriptors (EMFILE)
  std::array<ShardCounter, kCloseReasonNames.size()> connections_closed;
  ShardCounter received_bytes;
  ShardCounter sent_bytes;
  ShardCounter input_holds;     // a connection owed too much: its requests wait unread
  ShardCounter receive_pauses;  // the shard stopped receiving: its cross-shard calls backed up
  ShardCounter unsent_bytes;    // gauge: answer bytes owed to clients, set once a turn

  ShardCounter unsubscribes;         // by POST /api/unsubscribe
  ShardCounter subscribers_expired;  // idle past their inactive threshold
  ShardCounter messages_published;   // stored, sync and async
  ShardCounter messages_delivered;   // returned by fetches
  ShardCounter empty_fetches;        // fetches answered with no message
  ShardCounter waiting_fetches;      // gauge: fetches parked on this shard, set once a turn
  ShardCounter streams;              // gauge: event streams open on this shard's connections
  std::array<ShardCounter, kRefusalReasonNames.size()> messages_refused;
  std::array<ShardCounter, kAsyncFailureReasons> async_publish_failures;  // by RefusalReason

  ShardCounter cross_shard_calls;       // requests sent to an owner shard
  ShardCounter cross_shard_queue_full;  // times a call had to wait for room
  ShardCounter wake_fallbacks;          // MSG_RING failed: woken by eventfd instead

  ShardCounter ring_lost_completions;  // dropped by the kernel (cq.koverflow)
  ShardCounter ring_refused_submits;   // io_uring_enter said -EBUSY/-EAGAIN for now

  // `count` requests alike, each answered in `duration_ns`.
  void record_request(Endpoint endpoint, std::uint16_t status, std::uint64_t duration_ns,
                      std::uint64_t count = 1) {
    RequestStats& stats = requests[method_label(endpoint)][status_index(status)];
    stats.count.add(count);
    stats.duration_ns.add(duration_ns * count);
    std::size_t bucket = 0;
    while (bucket < kLatencyBucketsNs.size() && duration_ns > kLatencyBucketsNs[bucket]) ++bucket;
    stats.buckets[bucket].add(count);
  }
};

}  // namespace gophermq
