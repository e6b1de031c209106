// Server-Sent Event streams (api-extensions.md §8) on the shard that owns
// their subscriber's subject: which subscriber each one feeds, where its
// connection is, and how many bytes of events it may still be sent before
// its client takes some (its credit). Messages leave the queue only within
// that credit, so a client that reads slowly leaves them queued:
// back-pressure, never loss.
//
// Nothing runs per stream while nothing happens: a publish wakes only the
// streams of its own subject (through the subject's waiting_subscribers,
// as waiting fetches are woken), and a stream's credit comes back as its
// client reads.
//
// Coalescing (broker.stream-flush-interval): a stream is sent events at
// most once an interval. A message for a stream that was quiet that long
// goes at once; under load the next ones wait for the interval to pass and
// then leave together, so one send (and one TCP segment, which is most of
// what a delivery costs) carries many events. One heap of due times per
// shard, not a timer per stream.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "gophermq/store/subject_store.h"

namespace gophermq {

struct StreamFeed {
  Subscriber* subscriber;
  std::uint64_t token;  // the stream, named by its origin
  std::uint32_t connection_index;
  std::uint32_t connection_generation;
  std::uint16_t origin_shard;
  bool json;                       // encoding=json
  std::uint64_t credit;            // bytes of events it may be sent now
  std::string subject;             // for encoding=json
  std::uint64_t last_sent_ms = 0;  // when it was last sent events (the turn's clock)
  std::uint64_t flush_due_ms = 0;  // when its held events go; 0: none are held
};

class StreamFeeds {
 public:
  // Events in flight to a stream's client, at most: what it may be sent
  // before it has taken any.
  static constexpr std::uint64_t kWindowBytes = 64 << 10;

  // `flush_interval_ms`: broker.stream-flush-interval (0: every event goes
  // at once).
  explicit StreamFeeds(std::uint64_t flush_interval_ms) : flush_interval_ms_(flush_interval_ms) {}

  // Feeds `feed.subscriber` from now on; returns the stream it had, which
  // this one replaces (the caller ends it). Keeps the subscriber's
  // `streamed` and its subject's waiting_subscribers current.
  std::optional<StreamFeed> attach(const StreamFeed& feed);
  // The subscriber's stream, or null.
  StreamFeed* find(const Subscriber& subscriber);
  // Stops feeding the subscriber; returns the stream it had.
  std::optional<StreamFeed> detach(Subscriber& subscriber);
  // Stops feeding every subscriber (the broker stops); returns their streams.
  std::vector<StreamFeed> detach_all();
  // The subscribers of `entry` with a stream, into `out` (a copy: feeding
  // one may end another; `out` keeps its memory).
  void streamed_subscribers(const SubjectEntry& entry, std::vector<Subscriber*>& out) const;
  std::size_t size() const { return feeds_.size(); }

  // True when `feed` was sent events less than an interval before `now_ms`:
  // its events wait, and it is due once the interval has passed.
  bool hold(StreamFeed& feed, std::uint64_t now_ms);
  // The earliest time a held stream is due, or UINT64_MAX.
  std::uint64_t next_flush_ms() const { return due_.empty() ? UINT64_MAX : due_.top().due_ms; }
  // The held streams due by `now_ms` (every one with UINT64_MAX), into
  // `out`, no longer held.
  void take_due(std::uint64_t now_ms, std::vector<StreamFeed*>& out);

 private:
  struct Due {
    std::uint64_t due_ms;
    const Subscriber* subscriber;
    bool operator>(const Due& other) const { return due_ms > other.due_ms; }
  };

  std::uint64_t flush_interval_ms_;
  std::unordered_map<const Subscriber*, StreamFeed> feeds_;
  std::unordered_map<const SubjectEntry*, std::vector<Subscriber*>> by_subject_;
  // One entry per held stream; an entry whose stream went (or was replaced,
  // and is held no more) is skipped when it comes up.
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> due_;
};

}  // namespace gophermq
