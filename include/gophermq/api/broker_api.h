// The broker's API on one shard: what a complete HTTP request asks for, and
// its answer. Routes the request, decodes its body, checks the subject, and
// either serves it from this shard's store or places it with the shard that
// owns the subject, whose answer comes back through complete_call(). It knows
// nothing of sockets, rings or connections: it writes answers into an
// Answers and hands calls back to the caller, so it runs in-process too
// (the fuzzer and the benchmarks drive it directly).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "gophermq/api/request_decoder.h"
#include "gophermq/api/router.h"
#include "gophermq/api/stream_feeds.h"
#include "gophermq/api/waiting_fetches.h"
#include "gophermq/http/cors.h"
#include "gophermq/http/http_connection.h"
#include "gophermq/http/request_parser.h"
#include "gophermq/metrics/latency_batch.h"
#include "gophermq/metrics/metrics.h"
#include "gophermq/shard/shard_call.h"
#include "gophermq/store/pattern_routes.h"
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
  // A many-subject batch publish went to several owners: one answer is
  // reserved, and each call from take_split_calls() is sent (`owner` is
  // unused).
  bool split = false;
};

class BrokerApi {
 public:
  BrokerApi(unsigned shard_id, unsigned shard_count, PendingBudget& budget, StoreCensus& census,
            const StoreLimits& limits, std::chrono::steady_clock::time_point started,
            ShardMetrics& metrics);

  // A complete request. Answers it into `answer` when it can; otherwise fills
  // `call` for the owner shard (the caller adds where the answer belongs).
  Placement handle(const HttpRequest& request, Answers& answers, ShardCall& call);

  // Owner side: serves a call from another shard, or from this one (a fetch
  // that may wait). True when the call goes back with its answer now; false
  // when it needs none (publish_async), or waits for messages (see
  // take_answered_waits()).
  bool serve_call(ShardCall& call);
  // Waiting fetches answered since the last look (a publish fed them, their
  // deadline passed, their client went, the broker stops), and events and
  // ends for the event streams fed here: each goes to `route(call)`, to be
  // completed like any call with its answer.
  template <typename Route>
  void take_answered_waits(Route&& route) {
    for (ShardCall& call : answered_waits_) route(std::move(call));
    answered_waits_.clear();
  }
  // Answers the waiting fetches that this turn's publishes fed: once a turn,
  // so a subject published to several times in one turn answers each waiting
  // fetch once, with all of it. Before take_answered_waits().
  void wake_waiting();
  // The client of this shard's connection has gone: its fetches waiting
  // here are answered now, taking nothing.
  void end_waits(unsigned origin_shard, std::uint32_t index, std::uint32_t generation);
  // Shutdown: every waiting fetch is answered now, and none waits from now
  // on; every event stream fed here is sent what it has (within its credit)
  // and ended.
  void stop_waiting();
  // Dead letters for subjects other shards own, since the last look: each
  // goes to `send(owner, call)`.
  template <typename Send>
  void take_dead_letter_calls(Send&& send) {
    for (auto& [owner, call] : dead_letter_calls_) send(owner, std::move(call));
    dead_letter_calls_.clear();
  }
  // The calls of a request placed as `split`: each goes to `send(owner,
  // call)` once the caller has added where the answer belongs.
  template <typename Send>
  void take_split_calls(Send&& send) {
    for (auto& [owner, call] : split_calls_) send(owner, std::move(call));
    split_calls_.clear();
  }
  // Wildcard subscriptions' calls to other shards since the last look
  // (copies of messages for patterns whose queue is there, and what every
  // shard must know of the patterns): each goes to `send(owner, call)`.
  template <typename Send>
  void take_pattern_calls(Send&& send) {
    for (auto& [shard, call] : pattern_calls_) send(shard, std::move(call));
    pattern_calls_.clear();
  }
  // When the earliest waiting fetch's deadline, ack deadline, nack delay or
  // held stream's flush falls, on the turn clock in milliseconds
  // (UINT64_MAX when none): the loop sleeps no longer.
  std::uint64_t next_wait_deadline_ms() {
    return std::min(
        {waiting_.next_deadline_ms(), store_.next_ack_due_ms(), feeds_.next_flush_ms()});
  }
  // Origin side: the owner's answer, into the call's reserved answer (a
  // fetch answer is handed over as the owner framed it).
  void complete_call(ShardCall& call, Answers& answers);

  // A loop turn begins (its requests were read by `now_ns`) and ends (their
  // answers are written): each request's latency is recorded at the end.
  // Idle subscribers expire as a turn begins.
  void begin_turn(std::uint64_t now_ns);
  void end_turn() {
    latencies_.end_turn();
    metrics_.waiting_fetches.set(waiting_.size());
  }

  const SubjectStore& store() const { return store_; }

 private:
  std::uint16_t answer(const HttpRequest& request, const Route& route, Answers& answers,
                       ShardCall& call, Placement& placement);
  // POST /api/publish/batch (api-extensions.md §9), either form.
  std::uint16_t answer_batch(const DecodedRequest& decoded, const ResponseStyle& style,
                             Answers& answers, ShardCall& call, Placement& placement);
  // GET /api/stream (api-extensions.md §8): its query read and checked, and
  // the stream opened with its subscriber's shard.
  std::uint16_t answer_stream(const HttpRequest& request, const ResponseStyle& style,
                              Answers& answers, ShardCall& call, Placement& placement);
  // Owner side of a stream: opens it (true: the call goes back with its
  // answer), or takes its client's credit or its close.
  bool serve_stream(ShardCall& call);
  // Sends a stream what its subscriber has, within its credit, when it has
  // anything: now, or when its flush interval has passed.
  void feed_stream(StreamFeed& feed);
  // Feeds the held streams due by `now_ms`.
  void flush_held_streams(std::uint64_t now_ms);
  // A call from the owner to the stream's origin: its events or its end.
  static ShardCall stream_call(const StreamFeed& feed, StreamStep step);
  // The events for what the subscriber has, within the feed's credit, into
  // `out`: taken from the queue (in flight, in ack mode).
  void take_stream_events(StreamFeed& feed, ByteBuffer& out);
  // The stream ends (its subscriber went, or another stream replaced it):
  // its origin is told.
  void end_stream(const StreamFeed& feed);
  // A many-subject batch: each entry stored here or sent to its owner, one
  // call per owner.
  std::uint16_t answer_batch_entries(std::span<const BatchEntry> entries,
                                     const ResponseStyle& style, Answers& answers,
                                     Placement& placement);
  // The owner's part of a batch, stored here.
  void serve_batch(ShardCall& call);
  // Within broker.max-subject-bytes and made of valid tokens.
  bool valid_subject(std::string_view subject) const;
  // A wildcard subscribe's subject: the same, and ">" only last.
  bool valid_pattern(std::string_view pattern) const;
  std::uint16_t serve_locally(Endpoint endpoint, const DecodedRequest& request,
                              const SubscriberId& id, const SubscribeOptions& options,
                              const FetchOptions& fetch, const ResponseStyle& style,
                              Answers& answers);
  // A subscribe's fields beyond the original's, with the configured
  // defaults; false when one is out of its range (a 400).
  bool read_subscribe_options(const DecodedRequest& decoded, SubscribeOptions& options);
  // A fetch's fields beyond the original's; false when one is out of range.
  bool read_fetch_options(const DecodedRequest& decoded, FetchOptions& options) const;
  // An ack names seqs or through; a nack seqs, and a delay within range.
  static bool valid_settle(Endpoint endpoint, const DecodedRequest& decoded);
  static std::uint64_t through_of(const DecodedRequest& decoded);
  static std::uint64_t delay_of(const DecodedRequest& decoded);
  // /api/ack or /api/nack on the owner: the whole answer into `out`;
  // returns its status (200, 404 bad id, 409 not in ack mode).
  std::uint16_t settle(Endpoint endpoint, std::string_view subject, const SubscriberId& id,
                       std::span<const std::uint64_t> sequences, std::uint64_t through,
                       std::uint64_t delay_ms, const ResponseStyle& style, ByteBuffer& out);
  // A message past its max_deliver, stored on its dead-letter subject here.
  void publish_dead_letter(std::string_view subject, MessagePtr message);
  void append_health(ByteBuffer& out, const ResponseStyle& style);
  bool unsubscribe(std::string_view subject, const SubscriberId& id);
  // A fetch's 200 answer: the subscriber's oldest messages, up to
  // broker.max-fetch-bytes of them (at least one) and the fetch's own
  // bounds, which are then drained.
  void append_fetched(ByteBuffer& out, Subscriber& subscriber, const SubscriberId& id,
                      std::string_view subject, const FetchOptions& fetch,
                      const ResponseStyle& style);
  // /api/info's 200 answer (api-extensions.md §7); the subscriber's idle
  // clock restarts.
  void append_info(ByteBuffer& out, Subscriber& subscriber, const SubscriberId& id,
                   std::string_view subject, const ResponseStyle& style);
  // --- Wildcard subscriptions (api-extensions.md §10; broker_api_wildcards.cc)
  // A publish to `subject`: stored for its subscribers, and a copy for each
  // wildcard pattern that matches it (here, or sent to the pattern's shard).
  // A copy a pattern's queue refuses does not refuse the publish; with no
  // subscriber of the subject, the publish is stored when a pattern matched.
  PublishOutcome publish(std::string_view subject, std::string_view payload);
  // The same for a one-subject batch: all or nothing for the subject's own
  // subscribers, as store_.publish_batch(), then each message to the patterns.
  PublishOutcome publish_batch(std::string_view subject,
                               std::span<const std::string_view> payloads);
  // True when a pattern matched.
  bool publish_to_patterns(std::string_view subject, std::string_view payload);
  // Patterns that got their first subscriber here, or lost their last: into
  // this shard's routes, and told to every other shard.
  void announce_pattern_changes() {
    if (store_.has_pattern_changes()) announce_pattern_changes_now();
  }
  void announce_pattern_changes_now();
  // A wildcard subscribe's answer waits until every shard knows its
  // pattern, so a publish anywhere after it reaches the subscriber: true
  // when `call` (answered) is kept for that.
  bool hold_until_known(ShardCall& call);
  // A call with a pattern note (see PatternNote).
  void serve_pattern_note(ShardCall& call);

  // A publish's outcome in the metrics, for `messages` messages.
  void count_publish(PublishOutcome outcome, bool async, std::uint64_t messages = 1);
  // A waiting fetch ends: answered with up to its bounds of what is pending,
  // or with nothing when `take` is false.
  void finish_wait(Subscriber& subscriber, ShardCall& call, bool take);

  const unsigned shard_id_;
  const unsigned shard_count_;
  PendingBudget& budget_;
  const StoreLimits limits_;
  const std::chrono::steady_clock::time_point started_;
  ShardMetrics& metrics_;
  // The broker's (see install_cors_origins()), held so that a request without
  // CORS costs a test or two inline.
  const CorsOrigins& cors_ = cors_origins();
  LatencyBatch latencies_;
  SubscriberIdSource ids_;
  SubjectStore store_;
  RequestDecoder decoder_;
  WaitingFetches waiting_;
  std::vector<ShardCall> answered_waits_;
  // Reused by wake_waiting(), so waking allocates nothing once warm.
  std::vector<SubjectEntry*> woken_subjects_;
  std::vector<Subscriber*> woken_subscribers_;
  StreamFeeds feeds_;
  std::vector<StreamFeed*> due_feeds_;                  // reused by flush_held_streams()
  std::vector<AckQueue::Delivery> deliveries_;          // reused by each ack-mode fetch
  std::vector<SubjectStore::DeadLetter> dead_letters_;  // reused by begin_turn()
  std::vector<std::pair<unsigned, ShardCall>> dead_letter_calls_;
  std::vector<std::pair<unsigned, ShardCall>> split_calls_;  // see take_split_calls()
  std::vector<std::string_view> batch_payloads_;             // reused by serve_batch()
  // A many-subject batch's part for each shard, while it is split.
  std::vector<std::unique_ptr<BatchPublish>> batch_parts_;
  bool stopping_ = false;  // fetches no longer wait

  // Wildcard subscriptions: every pattern in the broker, and where its
  // queue is.
  PatternRoutes pattern_routes_;
  std::vector<std::pair<unsigned, ShardCall>> pattern_calls_;  // see take_pattern_calls()
  std::vector<SubjectStore::PatternChange> pattern_changes_;   // reused
  std::string wildcard_message_;  // a message framed for the patterns, reused
  // A publish's copies for patterns on other shards, while their matches are
  // gathered: each owner's matching patterns, one line each (a subject holds
  // no line feed), and the owners in the order they were first matched.
  std::vector<std::string> patterns_by_owner_;
  std::vector<unsigned> copy_owners_;
  // On a pattern's owner, while other shards have yet to learn of it: the
  // answers to its subscribes, held until they have (see hold_until_known()).
  struct PatternAnnouncement {
    std::size_t unseen = 0;  // shards that have yet to answer `added`
    std::vector<ShardCall> subscribes;
  };
  std::map<std::string, PatternAnnouncement, std::less<>> announcements_;
};

}  // namespace gophermq
