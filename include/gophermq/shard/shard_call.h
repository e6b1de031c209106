// What travels between shards: a request for a subject owned by another
// shard, and, on the way back, its answer. One value type does both trips.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "gophermq/api/response_encoder.h"
#include "gophermq/api/router.h"
#include "gophermq/byte_buffer.h"
#include "gophermq/http/response_writer.h"
#include "gophermq/store/message.h"
#include "gophermq/store/subject_store.h"
#include "gophermq/store/subscriber_id.h"

namespace gophermq {

// A subject copied out of a receive buffer. Most subjects are short, so they
// live inline; longer ones take one allocation.
class SubjectCopy {
 public:
  SubjectCopy() = default;
  explicit SubjectCopy(std::string_view subject)
      : size_(static_cast<std::uint32_t>(subject.size())) {
    char* target = inline_;
    if (subject.size() > sizeof(inline_)) {
      heap_.reset(new char[subject.size()]);
      target = heap_.get();
    }
    std::memcpy(target, subject.data(), subject.size());
  }
  std::string_view view() const { return {heap_ ? heap_.get() : inline_, size_}; }

 private:
  std::unique_ptr<char[]> heap_;
  std::uint32_t size_ = 0;
  char inline_[36];
};

// What /api/ack or /api/nack names (api-extensions.md §5).
struct AckRequest {
  std::vector<std::uint64_t> sequences;
  std::uint64_t through = SubjectStore::kNoThrough;  // ack: every in-flight one up to it
  std::uint64_t delay_ms = 0;                        // nack
};

// The answer of a many-subject batch publish (api-extensions.md §9),
// gathered on the origin shard as the owners' parts come back.
struct BatchAnswer {
  std::uint64_t published = 0;
  std::vector<BatchFailure> failed;  // in any order; the answer sorts them
  unsigned parts_left = 0;           // calls still at their owners
};

// The messages of a batch publish that one shard owns, copied once out of
// the receive buffer, back to back: for the one-subject form (all or
// nothing, to the call's subject) just payloads; for the many-subject form
// each entry's subject and payload, and on the way back its status.
class BatchPublish {
 public:
  explicit BatchPublish(bool one_subject) : one_subject_(one_subject) {}
  bool one_subject() const { return one_subject_; }
  std::size_t size() const { return items_.size(); }
  // Room for `entries` entries of `bytes` in all, allocated once.
  void reserve(std::size_t entries, std::size_t bytes) {
    items_.reserve(entries);
    bytes_.reserve_tail(bytes);
  }
  // The subjects' and payloads' bytes it carries.
  std::size_t bytes() const { return bytes_.size(); }
  void add(std::uint32_t index, std::string_view subject, std::string_view payload) {
    items_.push_back({index, static_cast<std::uint32_t>(subject.size()),
                      static_cast<std::uint32_t>(payload.size())});
    bytes_.append(subject);
    bytes_.append(payload);
  }
  // f(index, subject, payload) for each entry, in request order.
  template <typename F>
  void visit(F&& f) const {
    const char* at = bytes_.data();
    for (const Item& item : items_) {
      const std::string_view subject(at, item.subject_size);
      const std::string_view payload(at + item.subject_size, item.payload_size);
      f(item.index, subject, payload);
      at += item.subject_size + item.payload_size;
    }
  }

  // Many-subject form: each entry's status, set by the owner in order, and
  // where the origin gathers the whole answer.
  std::vector<std::uint16_t> statuses;
  std::shared_ptr<BatchAnswer> answer;

 private:
  struct Item {
    std::uint32_t index;
    std::uint32_t subject_size;
    std::uint32_t payload_size;
  };
  bool one_subject_;
  std::vector<Item> items_;
  ByteBuffer bytes_;
};

// The steps of a Server-Sent Event stream (api-extensions.md §8) between
// the shard of its connection (the origin) and the shard that owns its
// subscriber's subject (the owner), which takes the messages from the queue.
enum class StreamStep : std::uint8_t {
  none,
  open,    // origin to owner: attach; back: 200 and what was pending, or an error
  events,  // owner to origin: more events for the connection
  credit,  // origin to owner: the client took this many bytes: send as many more
  close,   // origin to owner: the client went, or the broker stops
  end,     // owner to origin: unsubscribed, or another stream replaced this one
};
struct StreamSignal {
  std::uint64_t token = 0;   // the stream, named by its origin
  std::uint32_t credit = 0;  // credit: bytes the client took
  StreamStep step = StreamStep::none;
  bool json = false;  // open: encoding=json
};

// Not a request: wildcard subscriptions' bookkeeping between shards
// (api-extensions.md §10), about the pattern in a call's `subject`. None of
// these has an answer.
enum class PatternNote : std::uint8_t {
  none,      // a request
  delivery,  // `message`, framed with its subject (wildcard_message.h), for the pattern's queue
  added,     // from the pattern's owner: it has subscribers now, match publishes against it
  removed,   // from its owner: it has none left
  seen,      // to its owner: this shard knows of it now (the answer to `added`)
};

struct ShardCall {
  // publish, publish_async, publish_batch, subscribe, fetch, unsubscribe,
  // info, ack, nack or stream
  Endpoint endpoint;
  // The owner's answer: its HTTP status, 0 while the call is on its way
  // there. The origin shard turns it into the response.
  std::uint16_t status = 0;
  std::uint16_t origin_shard;
  ResponseStyle style;
  // The connection and answer slot the answer belongs to (unused for
  // publish_async, whose answer was already sent).
  std::uint32_t connection_index;
  std::uint32_t connection_generation;
  std::uint64_t answer_sequence;
  std::uint64_t started_ns;  // when the request was read, for its latency
  SubjectCopy subject;
  MessagePtr message;  // publish: owned by the call until the store takes it
  SubscriberId id;     // fetch: whose queue; subscribe: the new id
  // Boxed: most calls are publishes and fetches, and a call's size is paid
  // in every queue slot it passes through.
  std::unique_ptr<SubscribeOptions> subscribe_options;  // subscribe
  FetchOptions fetch_options;                           // fetch
  std::unique_ptr<AckRequest> ack_request;              // ack and nack
  std::unique_ptr<BatchPublish> batch;                  // publish_batch
  StreamSignal stream;                                  // stream
  // publish_async: a message past its max_deliver on its way to its dead
  // letter subject, which drops it quietly when no one subscribes there.
  bool dead_letter = false;
  PatternNote pattern_note = PatternNote::none;
  // Not a request: the client of the origin's connection (connection_index,
  // connection_generation) has gone, so the owner answers that connection's
  // waiting fetches now, taking nothing from their queues. No answer comes
  // back for the call itself.
  bool end_waits = false;
  // fetch, info, ack, nack: the whole response, framed where the queue is;
  // stream: the events (the origin frames them)
  ByteBuffer answer;
  // The body of a refusal that the status alone does not name (a
  // subscribe's 429: too many subscribers, or subjects).
  std::string_view refusal;
};

// The payload bytes a call carries (messages, a batch's entries, an
// answer): what it holds in memory until the other shard takes it.
inline std::size_t carried_bytes(const ShardCall& call) {
  return (call.message ? call.message->payload().size() : 0) +
         (call.batch ? call.batch->bytes() : 0) + call.answer.size();
}

}  // namespace gophermq
