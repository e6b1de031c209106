// The API: what a complete HTTP request asks for, and its answer. Routes the
// request, decodes its body, checks the subject, and either serves it from
// this shard's store or hands it to the shard that owns the subject, whose
// answer comes back through complete_call(). Knows nothing of sockets or
// rings: the shard around it does the I/O, so this runs in-process too (the
// fuzzer and the benchmarks drive it directly).
#pragma once

#include <chrono>
#include <cstdint>

#include "gophermq/connection.h"
#include "gophermq/metrics.h"
#include "gophermq/pending_budget.h"
#include "gophermq/request_decoder.h"
#include "gophermq/router.h"
#include "gophermq/shard_call.h"
#include "gophermq/subject_store.h"
#include "gophermq/subscriber_id.h"

namespace gophermq {

// Where a request for a subject owned by another shard goes.
class CallForwarder {
 public:
  virtual void forward(unsigned owner, ShardCall&& call) = 0;

 protected:
  ~CallForwarder() = default;
};

class ApiService final : public RequestHandler {
 public:
  ApiService(unsigned shard_id, unsigned shard_count, PendingBudget& budget,
             std::chrono::steady_clock::time_point started, ShardMetrics& metrics,
             CallForwarder& forwarder);

  // A complete request read on `connection`: answered into its responses,
  // now or (for another shard's subject) once the owner has served it.
  void handle(Connection& connection, const HttpRequest& request) override;

  // Owner side: serves a call from another shard. True when the call must
  // travel back with its answer (every kind but publish_async).
  bool serve_call(ShardCall& call);
  // Origin side: writes the owner's answer into `connection`'s responses.
  void complete_call(Connection& connection, ShardCall& call);

  const SubjectStore& store() const { return store_; }

 private:
  // Return the status they wrote, or 0 when the owner shard will answer.
  std::uint16_t answer(Connection& connection, const HttpRequest& request, const Route& route,
                       std::uint64_t started_ns);
  std::uint16_t serve_locally(Connection& connection, Endpoint endpoint,
                              const DecodedRequest& request, const SubscriberId& id,
                              const ResponseStyle& style);
  void append_health(ByteBuffer& out, const ResponseStyle& style);
  void count_publish(PublishOutcome outcome, bool async);

  const unsigned shard_id_;
  const unsigned shard_count_;
  PendingBudget& budget_;
  const std::chrono::steady_clock::time_point started_;
  ShardMetrics& metrics_;
  CallForwarder& forwarder_;
  SubscriberIdSource ids_;
  SubjectStore store_;
  RequestDecoder decoder_;
};

}  // namespace gophermq
