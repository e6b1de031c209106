// What travels between shards: a request for a subject owned by another
// shard, and, on the way back, its answer. One value type does both trips.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

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

struct ShardCall {
  Endpoint endpoint;  // publish, publish_async, subscribe, fetch, unsubscribe, info, ack or nack
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
  // publish_async: a message past its max_deliver on its way to its dead
  // letter subject, which drops it quietly when no one subscribes there.
  bool dead_letter = false;
  // Not a request: the client of the origin's connection (connection_index,
  // connection_generation) has gone, so the owner answers that connection's
  // waiting fetches now, taking nothing from their queues. No answer comes
  // back for the call itself.
  bool end_waits = false;
  // fetch, info, ack, nack: the whole response, framed where the queue is
  ByteBuffer answer;
  // The body of a refusal that the status alone does not name (a
  // subscribe's 429: too many subscribers, or subjects).
  std::string_view refusal;
};

}  // namespace gophermq
