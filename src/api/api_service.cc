#include "gophermq/api_service.h"

#include <chrono>
#include <cstdio>
#include <optional>
#include <utility>

#include "gophermq/clock.h"
#include "gophermq/response_encoder.h"
#include "gophermq/response_writer.h"
#include "gophermq/subject.h"

namespace gophermq {
namespace {

std::string_view outcome_body(CallOutcome outcome, std::uint16_t& status) {
  switch (outcome) {
    case CallOutcome::published:
      status = 200;
      return body::kOk;
    case CallOutcome::no_subscriber:
      status = 404;
      return body::kSubscriberNotFound;
    case CallOutcome::overflow:
      status = 429;
      return body::kBrokerOverflow;
    case CallOutcome::bad_id:
      status = 404;
      return body::kBadId;
    default:
      status = 500;
      return body::kServerError;
  }
}

CallOutcome publish_outcome(PublishOutcome outcome) {
  switch (outcome) {
    case PublishOutcome::stored:
      return CallOutcome::published;
    case PublishOutcome::no_subscriber:
      return CallOutcome::no_subscriber;
    case PublishOutcome::overflow:
      return CallOutcome::overflow;
  }
  return CallOutcome::overflow;
}

void append_subscribed(ByteBuffer& out, const SubscriberId& id, std::string_view subject,
                       const ResponseStyle& style) {
  append_response_head(out, 200, subscribe_body_size(subject), style);
  if (!style.head) append_subscribe_body(out, id, subject);
}

MetricMethod metric_method(Endpoint endpoint) {
  switch (endpoint) {
    case Endpoint::publish:
      return MetricMethod::publish;
    case Endpoint::publish_async:
      return MetricMethod::publish_async;
    case Endpoint::subscribe:
      return MetricMethod::subscribe;
    case Endpoint::fetch:
      return MetricMethod::fetch;
    case Endpoint::ready:
      return MetricMethod::ready;
    default:
      return MetricMethod::other;
  }
}

}  // namespace

ApiService::ApiService(unsigned shard_id, unsigned shard_count, PendingBudget& budget,
                       std::chrono::steady_clock::time_point started, ShardMetrics& metrics,
                       CallForwarder& forwarder)
    : shard_id_(shard_id),
      shard_count_(shard_count),
      budget_(budget),
      started_(started),
      metrics_(metrics),
      forwarder_(forwarder),
      store_(budget, ids_) {}

void ApiService::handle(Connection& connection, const HttpRequest& request) {
  const std::uint64_t started_ns = monotonic_ns();
  const Route route = gophermq::route(request.method, request.path);
  const std::uint16_t status = answer(connection, request, route, started_ns);
  if (status != 0) {
    metrics_.record_request(metric_method(route.endpoint), status, monotonic_ns() - started_ns);
  }
}

std::uint16_t ApiService::answer(Connection& connection, const HttpRequest& request,
                                 const Route& route, std::uint64_t started_ns) {
  const ResponseStyle style{request.keep_alive, request.http_1_0, request.method == HTTP_HEAD};
  switch (route.endpoint) {
    case Endpoint::ready:
      append_no_content(connection.response_buffer(), style);
      return 204;
    case Endpoint::health:
      append_health(connection.response_buffer(), style);
      return 200;
    case Endpoint::not_found:
      append_response(connection.response_buffer(), 404, body::kNotFound, style);
      return 404;
    case Endpoint::wrong_method:
      append_response(connection.response_buffer(), 405, body::kMethodNotAllowed, style,
                      route.allow);
      return 405;
    default:
      break;
  }

  DecodedRequest decoded;
  if (!decoder_.decode(request.body, request.body_size, request.body_padded_capacity, decoded)) {
    append_response(connection.response_buffer(), 400, body::kInvalidBody, style);
    return 400;
  }
  if (!is_valid_subject(decoded.subject)) {
    if (route.endpoint == Endpoint::publish || route.endpoint == Endpoint::publish_async) {
      metrics_.messages_refused[static_cast<std::size_t>(RefusalReason::invalid_subject)].add();
    }
    append_response(connection.response_buffer(), 400, body::kInvalidSubject, style);
    return 400;
  }
  SubscriberId id;
  if (route.endpoint == Endpoint::fetch) {
    // A malformed id can match no subscriber, wherever the subject lives.
    std::optional<SubscriberId> parsed = SubscriberId::parse(decoded.id);
    if (!parsed) {
      append_response(connection.response_buffer(), 404, body::kBadId, style);
      return 404;
    }
    id = *parsed;
  }

  const unsigned owner = owner_shard(decoded.subject, shard_count_);
  if (owner == shard_id_) return serve_locally(connection, route.endpoint, decoded, id, style);

  ShardCall call;
  call.origin_shard = static_cast<std::uint16_t>(shard_id_);
  call.style = style;
  call.subject = SubjectCopy(decoded.subject);
  call.id = id;
  call.started_ns = started_ns;
  metrics_.cross_shard_calls.add();
  switch (route.endpoint) {
    case Endpoint::publish:
      call.kind = CallKind::publish;
      call.message.reset(Message::create(decoded.data));
      break;
    case Endpoint::publish_async:
      // Answered now; the owner stores it when the call arrives.
      call.kind = CallKind::publish_async;
      call.message.reset(Message::create(decoded.data));
      append_response(connection.response_buffer(), 200, body::kOk, style);
      forwarder_.forward(owner, std::move(call));
      return 200;
    case Endpoint::subscribe:
      call.kind = CallKind::subscribe;
      break;
    default:
      call.kind = CallKind::fetch;
      break;
  }
  call.connection_index = connection.index();
  call.connection_generation = connection.generation();
  call.response_sequence = connection.reserve_response();
  forwarder_.forward(owner, std::move(call));
  return 0;  // complete_call() answers and counts it
}

void ApiService::append_health(ByteBuffer& out, const ResponseStyle& style) {
  const double uptime =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  char body[160];
  int size =
      std::snprintf(body, sizeof body,
                    "{\"pending\":%llu,\"shards\":%u,\"status\":\"ok\",\"uptime_seconds\":%.3f}\n",
                    static_cast<unsigned long long>(budget_.pending()), shard_count_, uptime);
  append_response(out, 200, std::string_view(body, static_cast<std::size_t>(size)), style);
}

void ApiService::count_publish(PublishOutcome outcome, bool async) {
  switch (outcome) {
    case PublishOutcome::stored:
      metrics_.messages_published.add();
      return;
    case PublishOutcome::no_subscriber:
    case PublishOutcome::overflow: {
      const bool overflow = outcome == PublishOutcome::overflow;
      const RefusalReason reason =
          overflow ? RefusalReason::overflow : RefusalReason::no_subscriber;
      metrics_.messages_refused[static_cast<std::size_t>(reason)].add();
      // An async publish was answered 200 already: this is its only trace.
      if (async) metrics_.async_publish_failures[overflow ? 0 : 1].add();
      return;
    }
  }
}

std::uint16_t ApiService::serve_locally(Connection& connection, Endpoint endpoint,
                                        const DecodedRequest& request, const SubscriberId& id,
                                        const ResponseStyle& style) {
  switch (endpoint) {
    case Endpoint::publish: {
      PublishOutcome outcome = store_.publish(request.subject, request.data);
      count_publish(outcome, false);
      std::uint16_t status;
      std::string_view body = outcome_body(publish_outcome(outcome), status);
      append_response(connection.response_buffer(), status, body, style);
      return status;
    }
    case Endpoint::publish_async:
      append_response(connection.response_buffer(), 200, body::kOk, style);
      count_publish(store_.publish(request.subject, request.data), true);
      return 200;
    case Endpoint::subscribe:
      append_subscribed(connection.response_buffer(), store_.subscribe(request.subject),
                        request.subject, style);
      return 200;
    default: {
      Subscriber* subscriber = store_.find(request.subject, id);
      ByteBuffer& out = connection.response_buffer();
      if (subscriber == nullptr) {
        append_response(out, 404, body::kBadId, style);
        return 404;
      }
      append_response_head(out, 200, fetch_body_size(subscriber->queue, request.subject), style);
      if (!style.head) append_fetch_body(out, subscriber->queue, id, request.subject);
      metrics_.messages_delivered.add(subscriber->queue.size());
      store_.drain(*subscriber);
      return 200;
    }
  }
}

bool ApiService::serve_call(ShardCall& call) {
  const std::string_view subject = call.subject.view();
  switch (call.kind) {
    case CallKind::publish_async:
      count_publish(store_.publish(subject, std::move(call.message)), true);
      return false;  // answered already
    case CallKind::publish: {
      PublishOutcome outcome = store_.publish(subject, std::move(call.message));
      count_publish(outcome, false);
      call.outcome = publish_outcome(outcome);
      break;
    }
    case CallKind::subscribe:
      call.id = store_.subscribe(subject);
      call.outcome = CallOutcome::subscribed;
      break;
    case CallKind::fetch: {
      Subscriber* subscriber = store_.find(subject, call.id);
      if (subscriber == nullptr) {
        call.outcome = CallOutcome::bad_id;
        break;
      }
      // Encoded here, where the messages live; the origin only copies bytes.
      append_fetch_body(call.fetch_body, subscriber->queue, call.id, subject);
      metrics_.messages_delivered.add(subscriber->queue.size());
      store_.drain(*subscriber);
      call.outcome = CallOutcome::fetched;
      break;
    }
  }
  return true;
}

void ApiService::complete_call(Connection& connection, ShardCall& call) {
  ByteBuffer& out = connection.reserved_buffer(call.response_sequence);
  std::uint16_t status = 200;
  switch (call.outcome) {
    case CallOutcome::subscribed:
      append_subscribed(out, call.id, call.subject.view(), call.style);
      break;
    case CallOutcome::fetched:
      append_response_head(out, 200, call.fetch_body.size(), call.style);
      if (!call.style.head) out.append(call.fetch_body.view());
      break;
    default: {
      std::string_view body = outcome_body(call.outcome, status);
      append_response(out, status, body, call.style);
      break;
    }
  }
  connection.finish_response(call.response_sequence);
  const MetricMethod method = call.kind == CallKind::publish     ? MetricMethod::publish
                              : call.kind == CallKind::subscribe ? MetricMethod::subscribe
                                                                 : MetricMethod::fetch;
  metrics_.record_request(method, status, monotonic_ns() - call.started_ns);
}

}  // namespace gophermq
