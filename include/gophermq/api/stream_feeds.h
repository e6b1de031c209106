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
#pragma once

#include <cstdint>
#include <optional>
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
  bool json;             // encoding=json
  std::uint64_t credit;  // bytes of events it may be sent now
  std::string subject;   // for encoding=json
};

class StreamFeeds {
 public:
  // Events in flight to a stream's client, at most: what it may be sent
  // before it has taken any.
  static constexpr std::uint64_t kWindowBytes = 64 << 10;

  // Feeds `feed.subscriber` from now on; returns the stream it had, which
  // this one replaces (the caller ends it). Keeps the subscriber's
  // `streamed` and its subject's waiting_subscribers current.
  std::optional<StreamFeed> attach(const StreamFeed& feed);
  // The subscriber's stream, or null.
  StreamFeed* find(const Subscriber& subscriber);
  // Stops feeding the subscriber; returns the stream it had.
  std::optional<StreamFeed> detach(Subscriber& subscriber);
  // Every stream, for the broker's stop (their origins end them).
  void detach_all();
  // The subscribers of `entry` with a stream, into `out` (a copy: feeding
  // one may end another; `out` keeps its memory).
  void streamed_subscribers(const SubjectEntry& entry, std::vector<Subscriber*>& out) const;
  std::size_t size() const { return feeds_.size(); }

 private:
  std::unordered_map<const Subscriber*, StreamFeed> feeds_;
  std::unordered_map<const SubjectEntry*, std::vector<Subscriber*>> by_subject_;
};

}  // namespace gophermq
