// The broker's API on one shard: what a complete HTTP request asks for, and
// its answer. Routes the request, decodes its body, checks the subject, and
// either serves it from this shard's store or places it with the shard that
// owns the subject, whose answer comes back through complete_call(). It knows
// nothing of sockets, rings or connections: it writes answers into an
// Answers and hands calls back to the caller, so it runs in-process too
// (the fuzzer and the benchmarks drive it directly).
#pragma once

#include <chrono>
#include <cstdint>

#include "gophermq/api/request_decoder.h"
#include "gophermq/api/router.h"
#include "gophermq/http/http_connection.h"
#include "gophermq/http/request_parser.h"
#include "gophermq/metrics/latency_batch.h"
#include "gophermq/metrics/metrics.h"
#include "gophermq/shard/shard_call.h"
#include "gophermq/store/pending_budget.h"
#include "gophermq/store/subject_store.h"
#include "gophermq/store/subscriber_id.h"

namespace gophermq {

// What became of a request.
struct Placement {
  // The answer written into the Answers now; 0 when there is none yet.
  std::uint16_t status = 0;
  // The request is for another shard's subject: the call is to be sent to
  // `owner`. Its answer comes back unless it was answered already (an async
  // publish is answered at once).
  bool forward = false;
  unsigned owner = 0;
  // How large the answer to come may be (0: small): the connection counts
  // it as owed meanwhile (see HttpConnection::reserve_answer()).
  std::uint64_t answer_bytes_at_most = 0;
};

class BrokerApi {
 public:
  BrokerApi(unsigned shard_id, unsigned shard_count, PendingBudget& budget, StoreCensus& census,
            const StoreLimits& limits, std::chrono::steady_clock::time_point started,
            ShardMetrics& metrics);

  // A complete request. Answers it into `answer` when it can; otherwise fills
  // `call` for the owner shard (the caller adds where the answer belongs).
  Placement handle(const HttpRequest& request, Answers& answers, ShardCall& call);

  // Owner side: serves a call from another shard. True when the call must
  // travel back with its answer (every endpoint but publish_async).
  bool serve_call(ShardCall& call);
  // Origin side: the owner's answer, into the call's reserved answer (a
  // fetch answer is handed over as the owner framed it).
  void complete_call(ShardCall& call, Answers& answers);

  // A loop turn begins (its requests were read by `now_ns`) and ends (their
  // answers are written): each request's latency is recorded at the end.
  // Idle subscribers expire as a turn begins.
  void begin_turn(std::uint64_t now_ns);
  void end_turn() { latencies_.end_turn(); }

  const SubjectStore& store() const { return store_; }

 private:
  std::uint16_t answer(const HttpRequest& request, const Route& route, Answers& answers,
                       ShardCall& call, Placement& placement);
  std::uint16_t serve_locally(Endpoint endpoint, const DecodedRequest& request,
                              const SubscriberId& id, const SubscribeOptions& options,
                              const ResponseStyle& style, Answers& answers);
  // A subscribe's fields beyond the original's, with the configured
  // defaults; false when one is out of its range (a 400).
  bool read_subscribe_options(const DecodedRequest& decoded, SubscribeOptions& options);
  void append_health(ByteBuffer& out, const ResponseStyle& style);
  bool unsubscribe(std::string_view subject, const SubscriberId& id);
  // A fetch's 200 answer: the subscriber's oldest messages, up to
  // broker.max-fetch-bytes of them (at least one), which are then drained.
  void append_fetched(ByteBuffer& out, Subscriber& subscriber, const SubscriberId& id,
                      std::string_view subject, const ResponseStyle& style);
  void count_publish(PublishOutcome outcome, bool async);

  const unsigned shard_id_;
  const unsigned shard_count_;
  PendingBudget& budget_;
  const StoreLimits limits_;
  const std::chrono::steady_clock::time_point started_;
  ShardMetrics& metrics_;
  LatencyBatch latencies_;
  SubscriberIdSource ids_;
  SubjectStore store_;
  RequestDecoder decoder_;
};

}  // namespace gophermq
