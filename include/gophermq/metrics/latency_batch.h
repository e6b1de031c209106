// Request latencies, timed a loop turn at a time.
//
// Reading the clock costs tens of nanoseconds (more under a hypervisor's
// clock source): two reads per request were a fifth of a small publish. So a
// shard reads it once as a turn starts, when it reaps the bytes that hold
// the turn's requests, and once as the turn ends, when their answers have
// been written; each request answered in between is recorded with that span.
// It is what the client waits through on the server: the time a request
// waited behind the turn's other work is in it, which timing each request
// alone would miss. A request that crossed to another shard is timed from
// the turn that read it to the turn that wrote its answer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "gophermq/api/router.h"
#include "gophermq/clock.h"
#include "gophermq/metrics/metrics.h"

namespace gophermq {

class LatencyBatch {
 public:
  explicit LatencyBatch(ShardMetrics& metrics) : metrics_(metrics) {}

  void begin_turn(std::uint64_t now_ns) { turn_started_ns_ = now_ns; }
  // When the requests being read now arrived.
  std::uint64_t turn_started_ns() const { return turn_started_ns_; }

  // A request of this turn was answered.
  void answered(Endpoint endpoint, std::uint16_t status) {
    answered(endpoint, status, turn_started_ns_);
  }
  // A request read at `started_ns` was answered.
  void answered(Endpoint endpoint, std::uint16_t status, std::uint64_t started_ns) {
    // A turn's pipelined requests are mostly alike: one record counts them.
    if (!answers_.empty()) {
      Answer& last = answers_.back();
      if (last.started_ns == started_ns && last.endpoint == endpoint && last.status == status) {
        ++last.count;
        return;
      }
    }
    answers_.push_back({started_ns, endpoint, status, 1});
    // A turn that holds this many records writes them early: the batch
    // stays small, and the clock read is still shared by thousands.
    if (answers_.size() == kMostAnswers) end_turn();
  }

  // Records every answer since the last end, with one clock read.
  void end_turn() {
    if (answers_.empty()) return;
    const std::uint64_t now_ns = monotonic_ns();
    for (const Answer& answer : answers_) {
      const std::uint64_t started = answer.started_ns < now_ns ? answer.started_ns : now_ns;
      metrics_.record_request(answer.endpoint, answer.status, now_ns - started, answer.count);
    }
    answers_.clear();
  }

 private:
  static constexpr std::size_t kMostAnswers = 4096;

  struct Answer {
    std::uint64_t started_ns;
    Endpoint endpoint;
    std::uint16_t status;
    std::uint32_t count;  // requests answered alike
  };

  ShardMetrics& metrics_;
  std::uint64_t turn_started_ns_ = monotonic_ns();
  std::vector<Answer> answers_;
};

}  // namespace gophermq
