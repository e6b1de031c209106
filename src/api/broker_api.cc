#include "gophermq/api/broker_api.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <utility>

#include "gophermq/api/query_string.h"
#include "gophermq/api/response_encoder.h"
#include "gophermq/http/response_writer.h"
#include "gophermq/store/subject.h"
#include "gophermq/store/wildcard_message.h"

namespace gophermq {
namespace {

std::uint16_t publish_status(PublishOutcome outcome) {
  switch (outcome) {
    case PublishOutcome::stored:
      return 200;
    case PublishOutcome::no_subscriber:
      return 404;
    case PublishOutcome::subject_overflow:
    case PublishOutcome::overflow:
      return 429;
  }
  return 500;
}

// The fixed body of each status a publish or fetch can answer with.
std::string_view fixed_body(Endpoint endpoint, std::uint16_t status) {
  switch (status) {
    case 200:
      return body::kOk;
    case 404:
      return endpoint == Endpoint::publish || endpoint == Endpoint::publish_batch
                 ? body::kSubscriberNotFound
                 : body::kBadId;
    case 429:
      return body::kBrokerOverflow;
    default:
      return body::kServerError;
  }
}

// The two answers a publish storm meets, framed once.
const FixedAnswer kOkAnswer(200, body::kOk);
const FixedAnswer kOverflowAnswer(429, body::kBrokerOverflow);

// The answer whose body its status fixes (a publish's, an unsubscribe's, a
// refused call's).
void append_fixed_answer(ByteBuffer& out, Endpoint endpoint, std::uint16_t status,
                         const ResponseStyle& style) {
  switch (status) {
    case 200:
      kOkAnswer.append_to(out, style);
      break;
    case 429:
      kOverflowAnswer.append_to(out, style);
      break;
    default:
      append_response(out, status, fixed_body(endpoint, status), style);
  }
}

// The status and body of a refused subscribe.
std::uint16_t subscribe_refusal_status(SubscribeOutcome outcome) {
  return outcome == SubscribeOutcome::group_options_differ ? 409 : 429;
}
std::string_view subscribe_refusal(SubscribeOutcome outcome) {
  switch (outcome) {
    case SubscribeOutcome::too_many_subjects:
      return body::kTooManySubjects;
    case SubscribeOutcome::group_options_differ:
      return body::kGroupOptionsDiffer;
    default:
      return body::kTooManySubscribers;
  }
}

// Only GET endpoints can be asked with HEAD (the router answers 405 to a HEAD
// of a POST endpoint), so the API's own bodies are always written whole.
void append_subscribed(ByteBuffer& out, const SubscriberId& id, std::string_view subject,
                       std::string_view group, const ResponseStyle& style) {
  append_response_head(out, 200, subscribe_body_size(subject, group), style);
  append_subscribe_body(out, id, subject, group);
}

// The longest wait a request may name (ack_wait_ms, a nack's delay_ms): a
// year, as for inactive_threshold_ms.
constexpr std::uint64_t kMaxWaitMs = kMaxInactiveThresholdMs;
// A queue group's name: 1 to 256 bytes.
constexpr std::size_t kMaxGroupBytes = 256;

}  // namespace

BrokerApi::BrokerApi(unsigned shard_id, unsigned shard_count, PendingBudget& budget,
                     StoreCensus& census, const StoreLimits& limits,
                     std::chrono::steady_clock::time_point started, ShardMetrics& metrics)
    : shard_id_(shard_id),
      shard_count_(shard_count),
      budget_(budget),
      limits_(limits),
      started_(started),
      metrics_(metrics),
      latencies_(metrics),
      store_(budget, census, ids_, limits),
      feeds_(limits.stream_flush_interval_ms),
      pattern_routes_(shard_count),
      patterns_by_owner_(shard_count) {}

void BrokerApi::begin_turn(std::uint64_t now_ns) {
  latencies_.begin_turn(now_ns);
  const std::uint64_t now_ms = now_ns / 1'000'000;
  store_.set_now(now_ms);
  if (const std::size_t expired = store_.expire_idle()) metrics_.subscribers_expired.add(expired);
  announce_pattern_changes();
  store_.expire_acks(dead_letters_);
  for (SubjectStore::DeadLetter& letter : dead_letters_) {
    const unsigned owner = owner_shard(letter.subject, shard_count_);
    if (owner == shard_id_) {
      publish_dead_letter(letter.subject, std::move(letter.message));
      continue;
    }
    ShardCall call;
    call.endpoint = Endpoint::publish_async;
    call.dead_letter = true;
    call.origin_shard = static_cast<std::uint16_t>(shard_id_);
    call.subject = SubjectCopy(letter.subject);
    call.message = std::move(letter.message);
    dead_letter_calls_.emplace_back(owner, std::move(call));
  }
  dead_letters_.clear();
  waiting_.take_due(now_ms, [this](Subscriber& subscriber, ShardCall& call) {
    finish_wait(subscriber, call, true);
  });
}

void BrokerApi::end_waits(unsigned origin_shard, std::uint32_t index, std::uint32_t generation) {
  waiting_.take_for_connection(
      origin_shard, index, generation,
      [this](Subscriber& subscriber, ShardCall& call) { finish_wait(subscriber, call, false); });
}

void BrokerApi::stop_waiting() {
  stopping_ = true;
  // Events held for coalescing go now, and then each stream's end: its
  // origin, on whichever shard, ends it when that comes, after them.
  flush_held_streams(UINT64_MAX);
  for (const StreamFeed& feed : feeds_.detach_all()) end_stream(feed);
  waiting_.take_all(
      [this](Subscriber& subscriber, ShardCall& call) { finish_wait(subscriber, call, true); });
}

void BrokerApi::wake_waiting() {
  if (feeds_.next_flush_ms() <= store_.now_ms()) flush_held_streams(store_.now_ms());
  if (!store_.has_woken()) return;
  store_.take_woken(woken_subjects_);
  for (SubjectEntry* entry : woken_subjects_) {
    waiting_.waiting_subscribers(*entry, woken_subscribers_);
    for (Subscriber* subscriber : woken_subscribers_) {
      // Oldest first, while there is something for them.
      ShardCall call;
      while (subscriber->has_deliverable() && waiting_.take_oldest(*subscriber, call)) {
        finish_wait(*subscriber, call, true);
      }
    }
    feeds_.streamed_subscribers(*entry, woken_subscribers_);
    for (Subscriber* subscriber : woken_subscribers_) {
      if (StreamFeed* feed = feeds_.find(*subscriber)) feed_stream(*feed);
    }
  }
}

void BrokerApi::finish_wait(Subscriber& subscriber, ShardCall& call, bool take) {
  FetchOptions fetch = call.fetch_options;
  if (!take) fetch.max_messages = 0;
  append_fetched(call.answer, subscriber, call.id, call.subject.view(), fetch, call.style);
  call.status = 200;
  answered_waits_.push_back(std::move(call));
}

Placement BrokerApi::handle(const HttpRequest& request, Answers& answers, ShardCall& call) {
  const Route route = gophermq::route(request.method, request.path, cors_.enabled());
  Placement placement;
  placement.status = answer(request, route, answers, call, placement);
  if (placement.status != 0) latencies_.answered(route.endpoint, placement.status);
  return placement;
}

std::uint16_t BrokerApi::answer(const HttpRequest& request, const Route& route, Answers& answers,
                                ShardCall& call, Placement& placement) {
  const ResponseStyle style{request.keep_alive, request.http_1_0, request.method == HTTP_HEAD,
                            cors_.match(request.origin)};
  switch (route.endpoint) {
    case Endpoint::ready:
      append_no_content(answers.answer_now(), style);
      return 204;
    case Endpoint::preflight:
      // An Origin not allowed gets the 204 without any CORS header, and its
      // browser then refuses the call (as nginx and Go's rs/cors answer it):
      // a 403 would tell it no more.
      append_no_content(answers.answer_now(), style,
                        style.cors == 0 ? std::string_view() : kPreflightLines);
      return 204;
    case Endpoint::health:
      append_health(answers.answer_now(), style);
      return 200;
    case Endpoint::not_found:
      append_response(answers.answer_now(), 404, body::kNotFound, style);
      return 404;
    case Endpoint::wrong_method:
      append_response(answers.answer_now(), 405, body::kMethodNotAllowed, style, route.allow);
      return 405;
    case Endpoint::stream:
      return answer_stream(request, style, answers, call, placement);
    default:
      break;
  }

  // Echo's binder skips a body of Content-Length 0 (every field empty); an
  // empty chunked body reaches Go's decoder, which finds no JSON in it.
  const DecodedRequest* found =
      request.body_size == 0 && request.chunked
          ? nullptr
          : decoder_.decode(request.body, request.body_size, request.body_padded_capacity,
                            RequestFields::of(route.endpoint));
  if (found == nullptr) {
    append_response(answers.answer_now(), 400, body::kInvalidBody, style);
    return 400;
  }
  const DecodedRequest& decoded = *found;
  if (route.endpoint == Endpoint::publish_batch) {
    return answer_batch(decoded, style, answers, call, placement);
  }
  const bool wildcard = route.endpoint == Endpoint::subscribe && decoded.wildcard;
  if (wildcard ? !valid_pattern(decoded.subject) : !valid_subject(decoded.subject)) {
    if (route.endpoint == Endpoint::publish || route.endpoint == Endpoint::publish_async) {
      metrics_.messages_refused[static_cast<std::size_t>(RefusalReason::invalid_subject)].add();
    }
    append_response(answers.answer_now(), 400, body::kInvalidSubject, style);
    return 400;
  }
  SubscribeOptions options;
  if (route.endpoint == Endpoint::subscribe && !read_subscribe_options(decoded, options)) {
    append_response(answers.answer_now(), 400, body::kInvalidBody, style);
    return 400;
  }
  FetchOptions fetch;
  if (route.endpoint == Endpoint::fetch) {
    if (!read_fetch_options(decoded, fetch)) {
      append_response(answers.answer_now(), 400, body::kInvalidBody, style);
      return 400;
    }
    // What the answer may carry is settled here, where the client is: the
    // rest stays queued for its next fetch.
    fetch.max_bytes = std::min({fetch.max_bytes, limits_.max_fetch_bytes, answers.answer_room()});
  }
  const bool settles = route.endpoint == Endpoint::ack || route.endpoint == Endpoint::nack;
  if (settles && !valid_settle(route.endpoint, decoded)) {
    append_response(answers.answer_now(), 400, body::kInvalidBody, style);
    return 400;
  }
  SubscriberId id;
  if (route.endpoint == Endpoint::fetch || route.endpoint == Endpoint::unsubscribe ||
      route.endpoint == Endpoint::info || settles) {
    // A malformed id can match no subscriber, wherever the subject lives.
    std::optional<SubscriberId> parsed = SubscriberId::parse(decoded.id);
    if (!parsed) {
      append_response(answers.answer_now(), 404, body::kBadId, style);
      return 404;
    }
    id = *parsed;
  }

  const unsigned owner = owner_shard(decoded.subject, shard_count_);
  // A fetch that may wait becomes a call even on its owner: it may outlive
  // this turn, parked as a call is (see WaitingFetches).
  // So does a wildcard subscribe: its answer may wait for every shard to
  // learn its pattern (see hold_until_known()).
  const bool may_wait =
      (route.endpoint == Endpoint::fetch && fetch.wait_ms != 0) || (wildcard && shard_count_ > 1);
  if (owner == shard_id_ && !may_wait) {
    return serve_locally(route.endpoint, decoded, id, options, fetch, style, answers);
  }

  call = ShardCall{};
  call.endpoint = route.endpoint;
  call.origin_shard = static_cast<std::uint16_t>(shard_id_);
  call.style = style;
  call.subject = SubjectCopy(decoded.subject);
  call.id = id;
  call.fetch_options = fetch;
  if (route.endpoint == Endpoint::subscribe) {
    call.subscribe_options = std::make_unique<SubscribeOptions>(std::move(options));
  } else if (settles) {
    call.ack_request = std::make_unique<AckRequest>(AckRequest{
        {decoded.seqs.begin(), decoded.seqs.end()}, through_of(decoded), delay_of(decoded)});
  }
  call.started_ns = latencies_.turn_started_ns();
  if (route.endpoint == Endpoint::publish || route.endpoint == Endpoint::publish_async) {
    call.message.reset(Message::create(decoded.data));
  } else if (route.endpoint == Endpoint::fetch) {
    // Its messages and framing, as they usually are: escaping can make the
    // answer larger, as one large message can, and each still goes whole.
    placement.answer_bytes_at_most = fetch.max_bytes + 4096;
  }
  if (owner != shard_id_) metrics_.cross_shard_calls.add();
  placement.forward = true;
  placement.owner = owner;
  if (route.endpoint == Endpoint::publish_async) {
    // Answered now; the owner stores it when the call arrives.
    kOkAnswer.append_to(answers.answer_now(), style);
    return 200;
  }
  return 0;  // complete_call() answers and counts it
}

std::uint16_t BrokerApi::answer_stream(const HttpRequest& request, const ResponseStyle& style,
                                       Answers& answers, ShardCall& call, Placement& placement) {
  bool malformed = false;
  const std::optional<std::string> subject = query_value(request.query, "subject", malformed);
  if (!subject || malformed || !valid_subject(*subject)) {
    append_response(answers.answer_now(), 400, body::kInvalidSubject, style);
    return 400;
  }
  const std::optional<std::string> encoding = query_value(request.query, "encoding", malformed);
  if (encoding && (malformed || *encoding != "json")) {
    append_response(answers.answer_now(), 400, body::kInvalidBody, style);
    return 400;
  }
  const std::optional<std::string> id_text = query_value(request.query, "id", malformed);
  std::optional<SubscriberId> id;
  if (id_text && !malformed) id = SubscriberId::parse(*id_text);
  if (!id) {
    append_response(answers.answer_now(), 404, body::kBadId, style);
    return 404;
  }
  // Opened where the subscriber is, even on this shard: the stream outlives
  // this turn, as a waiting fetch does.
  call = ShardCall{};
  call.endpoint = Endpoint::stream;
  call.origin_shard = static_cast<std::uint16_t>(shard_id_);
  call.style = style;
  call.subject = SubjectCopy(*subject);
  call.id = *id;
  call.stream.step = StreamStep::open;
  call.stream.json = encoding.has_value();
  call.started_ns = latencies_.turn_started_ns();
  placement.forward = true;
  placement.owner = owner_shard(*subject, shard_count_);
  if (placement.owner != shard_id_) metrics_.cross_shard_calls.add();
  return 0;
}

bool BrokerApi::serve_stream(ShardCall& call) {
  Subscriber* subscriber = store_.find(call.subject.view(), call.id);
  StreamFeed* feed = subscriber != nullptr ? feeds_.find(*subscriber) : nullptr;
  // Credit and close name the stream they are for: one that another has
  // replaced since is left alone.
  const bool same_stream = feed != nullptr && feed->token == call.stream.token &&
                           feed->origin_shard == call.origin_shard;
  switch (call.stream.step) {
    case StreamStep::open: {
      if (subscriber == nullptr) {
        call.status = 404;
        return true;
      }
      if (stopping_) {
        // The streams fed here were ended as the broker began to stop.
        call.status = 503;
        return true;
      }
      const StreamFeed attached{subscriber,
                                call.stream.token,
                                call.connection_index,
                                call.connection_generation,
                                call.origin_shard,
                                call.stream.json,
                                StreamFeeds::kWindowBytes,
                                std::string(call.subject.view())};
      if (std::optional<StreamFeed> replaced = feeds_.attach(attached)) end_stream(*replaced);
      store_.touch(*subscriber);
      call.status = 200;
      // Everything pending (within the window) goes with the 200.
      if (subscriber->has_deliverable()) take_stream_events(*feeds_.find(*subscriber), call.answer);
      return true;
    }
    case StreamStep::credit:
      if (same_stream) {
        feed->credit += call.stream.credit;
        feed_stream(*feed);
      }
      return false;
    case StreamStep::close:
      if (same_stream) feeds_.detach(*subscriber);
      return false;
    default:
      return false;  // events and end go to origins, never here
  }
}

void BrokerApi::feed_stream(StreamFeed& feed) {
  if (feed.credit == 0 || !feed.subscriber->has_deliverable()) return;
  if (!stopping_ && feeds_.hold(feed, store_.now_ms())) return;
  ShardCall call = stream_call(feed, StreamStep::events);
  take_stream_events(feed, call.answer);
  answered_waits_.push_back(std::move(call));
}

void BrokerApi::flush_held_streams(std::uint64_t now_ms) {
  feeds_.take_due(now_ms, due_feeds_);
  for (StreamFeed* feed : due_feeds_) feed_stream(*feed);
}

ShardCall BrokerApi::stream_call(const StreamFeed& feed, StreamStep step) {
  ShardCall call{};  // value-initialized: it carries no subject
  call.endpoint = Endpoint::stream;
  call.status = 200;
  call.origin_shard = feed.origin_shard;
  call.connection_index = feed.connection_index;
  call.connection_generation = feed.connection_generation;
  call.stream.token = feed.token;
  call.stream.step = step;
  return call;
}

void BrokerApi::take_stream_events(StreamFeed& feed, ByteBuffer& out) {
  Subscriber& subscriber = *feed.subscriber;
  const std::size_t before = out.size();
  // A wildcard subscriber's messages carry their own subject (§10).
  const bool wildcard = subscriber.subject->pattern;
  auto append_event = [&](std::uint64_t sequence, std::string_view stored) {
    if (!wildcard) {
      append_stream_event(out, sequence, stored, feed.subject, feed.json);
      return;
    }
    const WildcardMessage message = unframe_wildcard_message(stored);
    append_stream_event(out, sequence, message.data, message.subject, feed.json);
  };
  store_.touch(subscriber);
  if (subscriber.uses_acks()) {
    // In flight, as a fetch would hand them out: acked or nacked with §5.
    deliveries_.clear();
    store_.hand_out(subscriber, DecodedRequest::kUnset, feed.credit, deliveries_);
    for (const AckQueue::Delivery& delivery : deliveries_) {
      append_event(delivery.sequence, delivery.message->payload());
    }
    metrics_.messages_delivered.add(deliveries_.size());
  } else {
    // Written to the stream, a message leaves the queue.
    const PendingMessages pending = subscriber.pending();
    const std::size_t count = pending.count_within(feed.credit);
    std::uint64_t sequence = pending.first_sequence();
    pending.for_each(count,
                     [&](const Message& message) { append_event(sequence++, message.payload()); });
    metrics_.messages_delivered.add(count);
    store_.drain(subscriber, count);
  }
  const std::uint64_t sent = out.size() - before;
  feed.credit = sent >= feed.credit ? 0 : feed.credit - sent;
  feed.last_sent_ms = store_.now_ms();
}

void BrokerApi::end_stream(const StreamFeed& feed) {
  answered_waits_.push_back(stream_call(feed, StreamStep::end));
}

std::uint16_t BrokerApi::answer_batch(const DecodedRequest& decoded, const ResponseStyle& style,
                                      Answers& answers, ShardCall& call, Placement& placement) {
  // Exactly one of the two forms, with at least one message.
  const std::size_t size =
      decoded.has_batch_data ? decoded.batch_data.size() : decoded.batch_messages.size();
  if (decoded.has_batch_data == decoded.has_batch_messages || size == 0) {
    append_response(answers.answer_now(), 400, body::kInvalidBody, style);
    return 400;
  }
  if (size > limits_.max_batch) {
    append_response(answers.answer_now(), 400, body::kBatchTooLarge, style);
    return 400;
  }
  if (decoded.has_batch_messages) {
    return answer_batch_entries(decoded.batch_messages, style, answers, placement);
  }
  const std::string_view subject = decoded.subject;
  if (!valid_subject(subject)) {
    metrics_.messages_refused[static_cast<std::size_t>(RefusalReason::invalid_subject)].add(size);
    append_response(answers.answer_now(), 400, body::kInvalidSubject, style);
    return 400;
  }
  const unsigned owner = owner_shard(subject, shard_count_);
  if (owner == shard_id_) {
    const PublishOutcome outcome = publish_batch(subject, decoded.batch_data);
    count_publish(outcome, false, size);
    const std::uint16_t status = publish_status(outcome);
    append_fixed_answer(answers.answer_now(), Endpoint::publish_batch, status, style);
    return status;
  }
  // The whole batch goes to its owner in one call, and is stored there
  // whole or not at all.
  call = ShardCall{};
  call.endpoint = Endpoint::publish_batch;
  call.origin_shard = static_cast<std::uint16_t>(shard_id_);
  call.style = style;
  call.subject = SubjectCopy(subject);
  call.started_ns = latencies_.turn_started_ns();
  call.batch = std::make_unique<BatchPublish>(true);
  std::size_t bytes = 0;
  for (std::string_view payload : decoded.batch_data) bytes += payload.size();
  call.batch->reserve(size, bytes);
  for (std::string_view payload : decoded.batch_data) call.batch->add(0, {}, payload);
  metrics_.cross_shard_calls.add();
  placement.forward = true;
  placement.owner = owner;
  return 0;
}

std::uint16_t BrokerApi::answer_batch_entries(std::span<const BatchEntry> entries,
                                              const ResponseStyle& style, Answers& answers,
                                              Placement& placement) {
  // Each entry on its own: stored now when this shard owns its subject,
  // else gathered into its owner's part. A subject's entries all go to one
  // owner, in order, so their order is kept.
  BatchAnswer gathered;
  batch_parts_.resize(shard_count_);
  unsigned parts = 0;
  for (std::size_t i = 0; i != entries.size(); ++i) {
    const BatchEntry& entry = entries[i];
    const auto index = static_cast<std::uint32_t>(i);
    if (!valid_subject(entry.subject)) {
      metrics_.messages_refused[static_cast<std::size_t>(RefusalReason::invalid_subject)].add();
      gathered.failed.push_back({index, 400});
      continue;
    }
    const unsigned owner = owner_shard(entry.subject, shard_count_);
    if (owner == shard_id_) {
      const PublishOutcome outcome = publish(entry.subject, entry.data);
      count_publish(outcome, false);
      if (outcome == PublishOutcome::stored) {
        ++gathered.published;
      } else {
        gathered.failed.push_back({index, publish_status(outcome)});
      }
      continue;
    }
    std::unique_ptr<BatchPublish>& part = batch_parts_[owner];
    if (part == nullptr) {
      part = std::make_unique<BatchPublish>(false);
      ++parts;
    }
    part->add(index, entry.subject, entry.data);
  }
  if (parts == 0) {
    ByteBuffer body;
    append_batch_answer_body(body, gathered.failed, gathered.published);
    append_response(answers.answer_now(), 200, body.view(), style);
    return 200;
  }
  // The answer comes once every owner's part is back (complete_call()).
  auto answer = std::make_shared<BatchAnswer>(std::move(gathered));
  answer->parts_left = parts;
  for (unsigned owner = 0; owner != shard_count_; ++owner) {
    if (batch_parts_[owner] == nullptr) continue;
    ShardCall call;
    call.endpoint = Endpoint::publish_batch;
    call.origin_shard = static_cast<std::uint16_t>(shard_id_);
    call.style = style;
    call.started_ns = latencies_.turn_started_ns();
    call.batch = std::move(batch_parts_[owner]);
    call.batch->answer = answer;
    split_calls_.emplace_back(owner, std::move(call));
    metrics_.cross_shard_calls.add();
  }
  placement.forward = true;
  placement.split = true;
  // Every entry may fail: a failure is at most 80 bytes of the answer.
  placement.answer_bytes_at_most = 80 * entries.size() + 256;
  return 0;
}

void BrokerApi::serve_batch(ShardCall& call) {
  BatchPublish& batch = *call.batch;
  if (batch.one_subject()) {
    batch_payloads_.clear();
    batch.visit([this](std::uint32_t, std::string_view, std::string_view payload) {
      batch_payloads_.push_back(payload);
    });
    const PublishOutcome outcome = publish_batch(call.subject.view(), batch_payloads_);
    count_publish(outcome, false, batch.size());
    call.status = publish_status(outcome);
    return;
  }
  batch.statuses.reserve(batch.size());
  batch.visit([this, &batch](std::uint32_t, std::string_view subject, std::string_view payload) {
    const PublishOutcome outcome = publish(subject, payload);
    count_publish(outcome, false);
    batch.statuses.push_back(publish_status(outcome));
  });
  call.status = 200;
}

bool BrokerApi::valid_subject(std::string_view subject) const {
  return subject.size() <= limits_.max_subject_bytes && is_valid_subject(subject);
}

bool BrokerApi::valid_pattern(std::string_view pattern) const {
  return pattern.size() <= limits_.max_subject_bytes && is_valid_pattern(pattern);
}

bool BrokerApi::read_subscribe_options(const DecodedRequest& decoded, SubscribeOptions& options) {
  using Named = SubscribeOptions::Named;
  options.inactive_threshold_ms = decoded.inactive_threshold_ms == DecodedRequest::kUnset
                                      ? limits_.default_inactive_threshold_ms
                                      : decoded.inactive_threshold_ms;
  if (options.inactive_threshold_ms > kMaxInactiveThresholdMs) return false;
  QueueOptions& queue = options.queue;
  // Each field that is given is named (a later group member may not change
  // it) and must be in its range; an absent one keeps its default.
  auto given = [&options](std::uint64_t value, Named field) {
    if (value == DecodedRequest::kUnset) return false;
    options.named |= field;
    return true;
  };
  // A bound of its own is at least one message, or byte; absent, none.
  if (given(decoded.max_pending, Named::max_pending)) {
    if (decoded.max_pending == 0) return false;
    queue.bounds.max_pending = decoded.max_pending;
  }
  if (given(decoded.max_pending_bytes, Named::max_pending_bytes)) {
    if (decoded.max_pending_bytes == 0) return false;
    queue.bounds.max_pending_bytes = decoded.max_pending_bytes;
  }
  if (decoded.discard.data() != nullptr) {  // present, even empty ("" is neither value)
    options.named |= Named::discard;
    if (decoded.discard == "old") {
      queue.bounds.discard = Discard::old_messages;
    } else if (decoded.discard != "new") {
      return false;
    }
  }
  if (given(decoded.ack_wait_ms, Named::ack_wait)) {
    if (decoded.ack_wait_ms > kMaxWaitMs) return false;
    queue.acks.ack_wait_ms = decoded.ack_wait_ms;
  }
  if (given(decoded.max_ack_pending, Named::max_ack_pending)) {
    if (decoded.max_ack_pending == 0) return false;
    queue.acks.max_ack_pending = decoded.max_ack_pending;
  }
  if (given(decoded.max_deliver, Named::max_deliver)) {
    queue.acks.max_deliver = decoded.max_deliver;
  }
  if (decoded.dead_letter_subject.data() != nullptr) {
    options.named |= Named::dead_letter_subject;
    // Its own subject would feed its dead letters back to itself, for ever.
    if (!valid_subject(decoded.dead_letter_subject) ||
        decoded.dead_letter_subject == decoded.subject) {
      return false;
    }
    queue.dead_letter_subject = decoded.dead_letter_subject;
  }
  if (decoded.group.data() != nullptr) {
    if (decoded.group.empty() || decoded.group.size() > kMaxGroupBytes) return false;
    options.group = decoded.group;
  }
  options.wildcard = decoded.wildcard;
  return true;
}

bool BrokerApi::valid_settle(Endpoint endpoint, const DecodedRequest& decoded) {
  if (endpoint == Endpoint::ack)
    return decoded.has_seqs || decoded.through != DecodedRequest::kUnset;
  return decoded.has_seqs &&
         (decoded.delay_ms == DecodedRequest::kUnset || decoded.delay_ms <= kMaxWaitMs);
}

std::uint64_t BrokerApi::through_of(const DecodedRequest& decoded) {
  return decoded.through == DecodedRequest::kUnset ? SubjectStore::kNoThrough : decoded.through;
}

std::uint64_t BrokerApi::delay_of(const DecodedRequest& decoded) {
  return decoded.delay_ms == DecodedRequest::kUnset ? 0 : decoded.delay_ms;
}

bool BrokerApi::read_fetch_options(const DecodedRequest& decoded, FetchOptions& options) const {
  options.extended = decoded.wait_ms != DecodedRequest::kUnset ||
                     decoded.max_messages != DecodedRequest::kUnset ||
                     decoded.max_bytes != DecodedRequest::kUnset;
  if (!options.extended) return true;
  // Each bound is at least one message, or byte; a longer wait is clamped.
  if (decoded.max_messages == 0 || decoded.max_bytes == 0) return false;
  if (decoded.wait_ms != DecodedRequest::kUnset) {
    options.wait_ms = std::min(decoded.wait_ms, limits_.max_fetch_wait_ms);
  }
  options.max_messages = decoded.max_messages;  // kUnset: no bound
  options.max_bytes = decoded.max_bytes;
  return true;
}

void BrokerApi::append_health(ByteBuffer& out, const ResponseStyle& style) {
  const double uptime =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  char body[160];
  int size =
      std::snprintf(body, sizeof body,
                    "{\"pending\":%llu,\"shards\":%u,\"status\":\"ok\",\"uptime_seconds\":%.3f}\n",
                    static_cast<unsigned long long>(budget_.pending()), shard_count_, uptime);
  append_response(out, 200, std::string_view(body, static_cast<std::size_t>(size)), style);
}

bool BrokerApi::unsubscribe(std::string_view subject, const SubscriberId& id) {
  if (Subscriber* subscriber = store_.find(subject, id)) {
    // Its stream ends, cleanly.
    if (std::optional<StreamFeed> feed = feeds_.detach(*subscriber)) end_stream(*feed);
    // Its waiting fetches: answered 404 bad id, as any fetch of it now is.
    ShardCall call;
    while (waiting_.take_oldest(*subscriber, call)) {
      call.status = 404;
      answered_waits_.push_back(std::move(call));
    }
  }
  if (!store_.unsubscribe(subject, id)) return false;
  announce_pattern_changes();
  metrics_.unsubscribes.add();
  return true;
}

void BrokerApi::append_fetched(ByteBuffer& out, Subscriber& subscriber, const SubscriberId& id,
                               std::string_view subject, const FetchOptions& fetch,
                               const ResponseStyle& style) {
  store_.touch(subscriber);
  const bool wildcard = subscriber.subject->pattern;
  if (subscriber.uses_acks()) {
    deliveries_.clear();
    store_.hand_out(subscriber, fetch.max_messages, fetch.max_bytes, deliveries_);
    const AckQueue& acks = *subscriber.queue->acks;
    const std::uint64_t pending = acks.size() - acks.in_flight();
    const std::size_t size = ack_fetch_body_size(deliveries_, pending, subject, wildcard);
    append_response_head(out, 200, size, style);
    append_ack_fetch_body(out, size, deliveries_, id, pending, subject, wildcard);
    metrics_.messages_delivered.add(deliveries_.size());
    if (deliveries_.empty()) metrics_.empty_fetches.add();
    return;
  }
  const PendingMessages pending = subscriber.pending();
  const std::size_t count = static_cast<std::size_t>(
      std::min<std::uint64_t>(pending.count_within(fetch.max_bytes), fetch.max_messages));
  const FetchAnswerExtras extras{pending.size() - count, pending.first_sequence()};
  const FetchAnswerExtras* with_extras = fetch.extended ? &extras : nullptr;
  const std::size_t size = fetch_body_size(pending, count, subject, with_extras, wildcard);
  append_response_head(out, 200, size, style);
  append_fetch_body(out, size, pending, count, id, subject, with_extras, wildcard);
  metrics_.messages_delivered.add(count);
  if (count == 0) metrics_.empty_fetches.add();
  store_.drain(subscriber, count);
}

void BrokerApi::append_info(ByteBuffer& out, Subscriber& subscriber, const SubscriberId& id,
                            std::string_view subject, const ResponseStyle& style) {
  SubscriberInfo info{};
  // Active while a fetch of it waits or a stream feeds it (it does not
  // expire meanwhile).
  info.idle_ms = subscriber.waiting_fetches != 0 || subscriber.streamed
                     ? 0
                     : store_.now_ms() - subscriber.last_active_ms;
  info.waiting = subscriber.waiting_fetches;
  if (subscriber.uses_acks()) {
    // Pending: held and not in flight, as a fetch answer counts it.
    const AckQueue& acks = *subscriber.queue->acks;
    info.inflight = acks.in_flight();
    info.pending = acks.size() - acks.in_flight();
    info.pending_bytes = acks.bytes();
  } else {
    const PendingMessages pending = subscriber.pending();
    info.pending = pending.size();
    info.pending_bytes = pending.bytes();
  }
  if (subscriber.group != nullptr) info.group = subscriber.group->name;
  store_.touch(subscriber);
  ByteBuffer body;
  append_info_body(body, id, subject, info);
  append_response(out, 200, body.view(), style);
}

std::uint16_t BrokerApi::settle(Endpoint endpoint, std::string_view subject, const SubscriberId& id,
                                std::span<const std::uint64_t> sequences, std::uint64_t through,
                                std::uint64_t delay_ms, const ResponseStyle& style,
                                ByteBuffer& out) {
  Subscriber* subscriber = store_.find(subject, id);
  if (subscriber == nullptr) {
    append_response(out, 404, body::kBadId, style);
    return 404;
  }
  store_.touch(*subscriber);
  if (!subscriber->uses_acks()) {
    append_response(out, 409, body::kDoesNotUseAcks, style);
    return 409;
  }
  const bool ack = endpoint == Endpoint::ack;
  const std::uint64_t settled = ack ? store_.ack(*subscriber, sequences, through)
                                    : store_.nack(*subscriber, sequences, delay_ms);
  const std::string_view key = ack ? "acked" : "nacked";
  append_response_head(out, 200, settled_body_size(key, settled), style);
  append_settled_body(out, key, settled);
  return 200;
}

void BrokerApi::publish_dead_letter(std::string_view subject, MessagePtr message) {
  // A normal publish. Refused (no one subscribes there, or it does not
  // fit), the message is dropped, and counted as that publish's refusal.
  count_publish(publish(subject, message->payload()), false);
}

void BrokerApi::count_publish(PublishOutcome outcome, bool async, std::uint64_t messages) {
  switch (outcome) {
    case PublishOutcome::stored:
      metrics_.messages_published.add(messages);
      return;
    case PublishOutcome::no_subscriber:
    case PublishOutcome::subject_overflow:
    case PublishOutcome::overflow: {
      const RefusalReason reason = outcome == PublishOutcome::overflow ? RefusalReason::overflow
                                   : outcome == PublishOutcome::subject_overflow
                                       ? RefusalReason::subject_overflow
                                       : RefusalReason::no_subscriber;
      metrics_.messages_refused[static_cast<std::size_t>(reason)].add(messages);
      // An async publish was answered 200 already: this is its only trace.
      if (async) metrics_.async_publish_failures[static_cast<std::size_t>(reason)].add(messages);
      return;
    }
  }
}

std::uint16_t BrokerApi::serve_locally(Endpoint endpoint, const DecodedRequest& request,
                                       const SubscriberId& id, const SubscribeOptions& options,
                                       const FetchOptions& fetch, const ResponseStyle& style,
                                       Answers& answers) {
  switch (endpoint) {
    case Endpoint::publish: {
      const PublishOutcome outcome = publish(request.subject, request.data);
      count_publish(outcome, false);
      const std::uint16_t status = publish_status(outcome);
      append_fixed_answer(answers.answer_now(), endpoint, status, style);
      return status;
    }
    case Endpoint::publish_async:
      kOkAnswer.append_to(answers.answer_now(), style);
      count_publish(publish(request.subject, request.data), true);
      return 200;
    case Endpoint::subscribe: {
      const Subscription subscription = store_.subscribe(request.subject, options);
      announce_pattern_changes();
      if (subscription.outcome != SubscribeOutcome::subscribed) {
        const std::uint16_t status = subscribe_refusal_status(subscription.outcome);
        append_response(answers.answer_now(), status, subscribe_refusal(subscription.outcome),
                        style);
        return status;
      }
      append_subscribed(answers.answer_now(), subscription.id, request.subject, options.group,
                        style);
      return 200;
    }
    case Endpoint::unsubscribe: {
      const std::uint16_t status = unsubscribe(request.subject, id) ? 200 : 404;
      append_fixed_answer(answers.answer_now(), endpoint, status, style);
      return status;
    }
    case Endpoint::ack:
    case Endpoint::nack:
      return settle(endpoint, request.subject, id, request.seqs, through_of(request),
                    delay_of(request), style, answers.answer_now());
    default: {  // fetch or info
      Subscriber* subscriber = store_.find(request.subject, id);
      ByteBuffer& out = answers.answer_now();
      if (subscriber == nullptr) {
        append_response(out, 404, body::kBadId, style);
        return 404;
      }
      if (endpoint == Endpoint::info) {
        append_info(out, *subscriber, id, request.subject, style);
      } else {
        append_fetched(out, *subscriber, id, request.subject, fetch, style);
      }
      return 200;
    }
  }
}

bool BrokerApi::serve_call(ShardCall& call) {
  if (call.pattern_note != PatternNote::none) {
    serve_pattern_note(call);
    return false;
  }
  const std::string_view subject = call.subject.view();
  switch (call.endpoint) {
    case Endpoint::publish_async:
      if (call.dead_letter) {
        publish_dead_letter(subject, std::move(call.message));
      } else {
        count_publish(publish(subject, call.message->payload()), true);
      }
      return false;  // answered already
    case Endpoint::publish: {
      const PublishOutcome outcome = publish(subject, call.message->payload());
      count_publish(outcome, false);
      call.status = publish_status(outcome);
      break;
    }
    case Endpoint::publish_batch:
      serve_batch(call);
      break;
    case Endpoint::stream:
      return serve_stream(call);
    case Endpoint::subscribe: {
      const Subscription subscription = store_.subscribe(subject, *call.subscribe_options);
      call.id = subscription.id;
      call.status = 200;
      if (subscription.outcome != SubscribeOutcome::subscribed) {
        call.status = subscribe_refusal_status(subscription.outcome);
        call.refusal = subscribe_refusal(subscription.outcome);
      } else if (call.subscribe_options->wildcard && hold_until_known(call)) {
        return false;
      }
      break;
    }
    case Endpoint::ack:
    case Endpoint::nack:
      call.status =
          settle(call.endpoint, subject, call.id, call.ack_request->sequences,
                 call.ack_request->through, call.ack_request->delay_ms, call.style, call.answer);
      break;
    case Endpoint::unsubscribe:
      call.status = unsubscribe(subject, call.id) ? 200 : 404;
      break;
    case Endpoint::info: {
      Subscriber* subscriber = store_.find(subject, call.id);
      call.status = subscriber != nullptr ? 200 : 404;
      if (subscriber != nullptr)
        append_info(call.answer, *subscriber, call.id, subject, call.style);
      break;
    }
    default: {
      if (call.end_waits) {
        end_waits(call.origin_shard, call.connection_index, call.connection_generation);
        return false;
      }
      Subscriber* subscriber = store_.find(subject, call.id);
      if (subscriber == nullptr) {
        call.status = 404;
        break;
      }
      if (call.fetch_options.wait_ms != 0 && !stopping_ && !subscriber->has_deliverable()) {
        if (subscriber->waiting_fetches >= limits_.max_waiting_fetches) {
          call.status = 409;
          call.refusal = body::kTooManyWaitingFetches;
          break;
        }
        store_.touch(*subscriber);
        const std::uint64_t deadline_ms = store_.now_ms() + call.fetch_options.wait_ms;
        waiting_.park(*subscriber, std::move(call), deadline_ms);
        return false;
      }
      // Framed here, where the messages live, and handed over whole.
      append_fetched(call.answer, *subscriber, call.id, subject, call.fetch_options, call.style);
      call.status = 200;
      break;
    }
  }
  return true;
}

void BrokerApi::complete_call(ShardCall& call, Answers& answers) {
  const std::uint64_t sequence = call.answer_sequence;
  if (call.endpoint == Endpoint::publish_batch && !call.batch->one_subject()) {
    // One owner's part of a many-subject batch: answered with the last.
    BatchAnswer& gathered = *call.batch->answer;
    std::size_t item = 0;
    call.batch->visit([&](std::uint32_t index, std::string_view, std::string_view) {
      const std::uint16_t status = call.batch->statuses[item++];
      if (status == 200) {
        ++gathered.published;
      } else {
        gathered.failed.push_back({index, status});
      }
    });
    if (--gathered.parts_left != 0) return;
    ByteBuffer body;
    append_batch_answer_body(body, gathered.failed, gathered.published);
    append_response(answers.reserved_buffer(sequence), 200, body.view(), call.style);
    answers.finish_answer(sequence);
    latencies_.answered(call.endpoint, 200, call.started_ns);
    return;
  }
  // Framed by the owner: a fetch's or info's 200, and every answer to an
  // ack or nack.
  const bool framed =
      call.endpoint == Endpoint::ack || call.endpoint == Endpoint::nack ||
      (call.status == 200 && (call.endpoint == Endpoint::fetch || call.endpoint == Endpoint::info));
  if (framed) {
    answers.hand_over(sequence, std::move(call.answer));
  } else {
    ByteBuffer& out = answers.reserved_buffer(sequence);
    if (call.status == 200 && call.endpoint == Endpoint::subscribe) {
      append_subscribed(out, call.id, call.subject.view(), call.subscribe_options->group,
                        call.style);
    } else if (call.refusal.empty()) {
      append_fixed_answer(out, call.endpoint, call.status, call.style);
    } else {
      append_response(out, call.status, call.refusal, call.style);
    }
    answers.finish_answer(sequence);
  }
  latencies_.answered(call.endpoint, call.status, call.started_ns);
}

}  // namespace gophermq
