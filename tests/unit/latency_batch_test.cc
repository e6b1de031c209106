#include "gophermq/metrics/latency_batch.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace gophermq {
namespace {

constexpr std::uint64_t kSecond = 1'000'000'000;

const RequestStats& stats_of(const ShardMetrics& metrics, Endpoint endpoint, std::uint16_t status) {
  return metrics.requests[method_label(endpoint)][status_index(status)];
}

std::uint64_t bucket_total(const RequestStats& stats) {
  std::uint64_t total = 0;
  for (const ShardCounter& bucket : stats.buckets) total += bucket.read();
  return total;
}

// Index of the first bucket whose bound is at least `ns`.
std::size_t bucket_of(std::uint64_t ns) {
  std::size_t bucket = 0;
  while (bucket < kLatencyBucketsNs.size() && ns > kLatencyBucketsNs[bucket]) ++bucket;
  return bucket;
}

TEST(LatencyBatch, EveryAnswerIsCountedOnceWithItsEndpointAndStatus) {
  ShardMetrics metrics;
  LatencyBatch batch(metrics);
  batch.begin_turn(monotonic_ns());
  // Alike in a row, then another status, then alike again: records that
  // count several must still add up to one per answer.
  for (int i = 0; i < 5; ++i) batch.answered(Endpoint::publish, 200);
  batch.answered(Endpoint::publish, 429);
  for (int i = 0; i < 3; ++i) batch.answered(Endpoint::publish, 200);
  batch.answered(Endpoint::fetch, 200);
  batch.end_turn();

  const RequestStats& published = stats_of(metrics, Endpoint::publish, 200);
  EXPECT_EQ(published.count.read(), 8u);
  EXPECT_EQ(bucket_total(published), 8u);
  EXPECT_EQ(stats_of(metrics, Endpoint::publish, 429).count.read(), 1u);
  EXPECT_EQ(bucket_total(stats_of(metrics, Endpoint::publish, 429)), 1u);
  EXPECT_EQ(stats_of(metrics, Endpoint::fetch, 200).count.read(), 1u);
  EXPECT_EQ(stats_of(metrics, Endpoint::fetch, 204).count.read(), 0u);

  // Nothing is recorded twice by the next turn.
  batch.begin_turn(monotonic_ns());
  batch.end_turn();
  EXPECT_EQ(published.count.read(), 8u);
}

TEST(LatencyBatch, AnswersReadAtDifferentTimesKeepTheirOwnDurations) {
  ShardMetrics metrics;
  LatencyBatch batch(metrics);
  const std::uint64_t now = monotonic_ns();
  ASSERT_GT(now, 30 * kSecond) << "the monotonic clock counts from boot";
  batch.begin_turn(now);
  // Two alike but read 30 s apart (a long-poll and a request of this
  // turn), each twice: never merged into one duration.
  batch.answered(Endpoint::fetch, 200, now - 30 * kSecond);
  batch.answered(Endpoint::fetch, 200, now - 30 * kSecond);
  batch.answered(Endpoint::fetch, 200);
  batch.answered(Endpoint::fetch, 200);
  batch.end_turn();
  const std::uint64_t ended = monotonic_ns();

  const RequestStats& fetched = stats_of(metrics, Endpoint::fetch, 200);
  EXPECT_EQ(fetched.count.read(), 4u);
  // Past 10 s: the last (+Inf) bucket, twice.
  EXPECT_EQ(fetched.buckets[kLatencyBucketsNs.size()].read(), 2u);
  // This turn's two: at most as long as the test took.
  std::uint64_t recent = 0;
  for (std::size_t b = 0; b <= bucket_of(ended - now); ++b) recent += fetched.buckets[b].read();
  EXPECT_EQ(recent, 2u);
  // The sum holds each duration once per answer.
  EXPECT_GE(fetched.duration_ns.read(), 60 * kSecond);
  EXPECT_LE(fetched.duration_ns.read(), 2 * (30 * kSecond + (ended - now)) + 2 * (ended - now));
}

}  // namespace
}  // namespace gophermq
