// Micro-benchmarks of the request path's pieces, each measured alone:
// parsing, decoding, subject checks, the store, encoding, and the cross-shard
// queue. Figures are per operation; compare runs on the same machine.
#include <benchmark/benchmark.h>
#include <llhttp.h>
#include <simdjson.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gophermq/api/broker_api.h"
#include "gophermq/api/request_decoder.h"
#include "gophermq/api/response_encoder.h"
#include "gophermq/http/cors.h"
#include "gophermq/http/http_connection.h"
#include "gophermq/http/request_parser.h"
#include "gophermq/net/connection.h"
#include "gophermq/shard/spsc_queue.h"
#include "gophermq/store/subject.h"
#include "gophermq/store/subject_store.h"

namespace gophermq {
namespace {

const std::string kPublishBody =
    R"({"subject":"load.test","data":"hello, this is a small message"})";
// kPublishBody as a client sends it.
const std::string kPublishRequest =
    "POST /api/publish HTTP/1.1\r\nHost: localhost:8082\r\n"
    "Content-Type: application/json\r\nContent-Length: " +
    std::to_string(kPublishBody.size()) + "\r\n\r\n" + kPublishBody;

std::string padded(const std::string& text) {
  std::string copy = text;
  copy.reserve(text.size() + ByteBuffer::kPadding);
  return copy;
}

// The two libraries the request path is built on, alone, on the same
// request: the floor under BM_ParsePublishRequest and BM_DecodePublishBody,
// and the part of BM_WholePublishRequestInProcess that is not ours to cut.
// llhttp with every callback the parser registers, each doing nothing.
void BM_LlhttpAlone(benchmark::State& state) {
  static constexpr llhttp_settings_t kNothing = [] {
    llhttp_settings_t settings{};
    auto span = [](llhttp_t*, const char*, std::size_t) { return 0; };
    auto event = [](llhttp_t*) { return 0; };
    settings.on_message_begin = event;
    settings.on_method = span;
    settings.on_url = span;
    settings.on_header_field = span;
    settings.on_header_field_complete = event;
    settings.on_header_value = span;
    settings.on_header_value_complete = event;
    settings.on_headers_complete = event;
    settings.on_body = span;
    settings.on_message_complete = event;
    return settings;
  }();
  llhttp_t parser;
  llhttp_init(&parser, HTTP_REQUEST, &kNothing);
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        llhttp_execute(&parser, kPublishRequest.data(), kPublishRequest.size()));
  }
}
BENCHMARK(BM_LlhttpAlone);

// simdjson's On-Demand reading the publish body's two strings in place.
void BM_SimdjsonAlone(benchmark::State& state) {
  const simdjson::padded_string body(kPublishBody);
  simdjson::ondemand::parser parser;
  for (auto _ : state) {
    std::string_view subject;
    std::string_view data;
    auto document = parser.iterate(body);
    for (auto field : document.get_object()) {
      simdjson::ondemand::raw_json_string key = field.key();
      std::string_view value = field.value().raw_json_token();
      (key.unsafe_is_equal("subject") ? subject : data) = value;
    }
    benchmark::DoNotOptimize(subject.data());
    benchmark::DoNotOptimize(data.data());
  }
}
BENCHMARK(BM_SimdjsonAlone);

void BM_DecodePublishBody(benchmark::State& state) {
  RequestDecoder decoder;
  std::string body = padded(kPublishBody);
  for (auto _ : state) {
    const DecodedRequest* request = decoder.decode(body.data(), body.size(), body.capacity(),
                                                   RequestFields::of(Endpoint::publish));
    benchmark::DoNotOptimize(request->data.data());
  }
}
BENCHMARK(BM_DecodePublishBody);

class CountingSink final : public RequestSink {
 public:
  void on_request(const HttpRequest& request) override { bytes += request.body_size; }
  void on_continue_expected() override {}
  std::size_t bytes = 0;
};

void BM_ParsePublishRequest(benchmark::State& state) {
  CountingSink sink;
  RequestParser parser({16 << 10, 1 << 20}, sink);
  const std::string request = padded(kPublishRequest);
  for (auto _ : state) {
    benchmark::DoNotOptimize(parser.feed(request.data(), request.size(), request.capacity()));
  }
  benchmark::DoNotOptimize(sink.bytes);
}
BENCHMARK(BM_ParsePublishRequest);

void BM_ValidateAndRouteSubject(benchmark::State& state) {
  std::string subject = "orders.eu.west.created";
  for (auto _ : state) {
    benchmark::DoNotOptimize(is_valid_subject(subject));
    benchmark::DoNotOptimize(owner_shard(subject, 16));
  }
}
BENCHMARK(BM_ValidateAndRouteSubject);

// Publish to `fan_out` subscribers, then fetch (encode and drain) each one.
void BM_StorePublishFetch(benchmark::State& state) {
  const auto fan_out = static_cast<int>(state.range(0));
  PendingBudget budget(1 << 30);
  SubscriberIdSource ids;
  StoreCensus census(1000, 1000);
  SubjectStore store(budget, census, ids);
  std::vector<SubscriberId> subscribers;
  for (int i = 0; i < fan_out; ++i) subscribers.push_back(store.subscribe("load.test").id);
  ByteBuffer out;
  for (auto _ : state) {
    store.publish("load.test", "hello, this is a small message");
    for (const SubscriberId& id : subscribers) {
      Subscriber* subscriber = store.find("load.test", id);
      out.clear();
      const PendingMessages pending = subscriber->pending();
      append_fetch_body(out, fetch_body_size(pending, pending.size(), "load.test"), pending,
                        pending.size(), id, "load.test");
      store.drain(*subscriber);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * fan_out);
}
BENCHMARK(BM_StorePublishFetch)->Arg(1)->Arg(10)->Arg(100);

// A publish alone, to a subject with `subscribers` plain subscribers: the
// log stores it once, so the cost must not grow with them (the target: 100,000
// cost at most twice what 1 does). Every 4096 publishes the subscribers
// fetch, off the clock, so the log stays small.
void BM_PublishFanOut(benchmark::State& state) {
  const auto fan_out = static_cast<std::size_t>(state.range(0));
  PendingBudget budget(std::uint64_t{1} << 40, std::uint64_t{1} << 40);
  SubscriberIdSource ids;
  StoreCensus census(1 << 20, 1 << 20);
  StoreLimits limits;
  limits.max_pending_per_subject = std::uint64_t{1} << 40;  // 4096 copies for each subscriber
  SubjectStore store(budget, census, ids, limits);
  std::vector<Subscriber*> subscribers;
  for (std::size_t i = 0; i < fan_out; ++i) {
    subscribers.push_back(store.find("fan.out", store.subscribe("fan.out").id));
  }
  std::size_t published = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(store.publish("fan.out", "a sixteen byte m"));
    if (++published % 4096 == 0) {
      state.PauseTiming();
      for (Subscriber* subscriber : subscribers) store.drain(*subscriber);
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PublishFanOut)->Arg(1)->Arg(100)->Arg(100000);

void BM_EncodeJsonString(benchmark::State& state) {
  std::string text(static_cast<std::size_t>(state.range(0)), 'x');
  text[text.size() / 2] = '"';
  ByteBuffer out;
  for (auto _ : state) {
    out.clear();
    append_json_string(out, text);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_EncodeJsonString)->Arg(16)->Arg(1024);

// One item across two threads and back: the cross-shard round trip's queue
// cost, without the ring wake-up.
void BM_SpscRoundTrip(benchmark::State& state) {
  SpscQueue<std::uint64_t> to_owner(1024);
  SpscQueue<std::uint64_t> back(1024);
  std::atomic<bool> done{false};
  std::thread owner([&] {
    while (!done.load(std::memory_order_relaxed)) {
      to_owner.consume([&](std::uint64_t&& value) {
        while (!back.try_stage(std::move(value))) {
        }
        back.publish();
      });
    }
  });
  std::uint64_t next = 0;
  for (auto _ : state) {
    while (!to_owner.try_stage(std::uint64_t{next})) {
    }
    to_owner.publish();
    std::size_t got = 0;
    while (got == 0) got = back.consume([](std::uint64_t&&) {});
    ++next;
  }
  done.store(true);
  owner.join();
}
BENCHMARK(BM_SpscRoundTrip)->UseRealTime();

// One broker shard in-process: a connection's requests go through the
// parser, the API (routing, decoding, the store, encoding) and back into
// the connection's output; no sockets, no ring. A fetch that may wait is a
// call to this same shard, parked and answered as the shard does.
class InProcessShard final : public RequestHandler {
 public:
  // Two client connections: a consumer's and a producer's (a request read
  // after a fetch that waits, on its connection, waits behind it).
  enum Client : std::uint32_t { consumer = 0, producer = 1 };

  // Origin is read as the broker's CORS table (cors_origins()) asks.
  InProcessShard()
      : budget_(1 << 30),
        census_(1 << 20, 1 << 20),  // room for the wildcard subscribers of a case
        api_(0, 1, budget_, census_, StoreLimits{}, std::chrono::steady_clock::now(), metrics_) {
    for (std::uint32_t index : {consumer, producer}) {
      clients_[index] = std::make_unique<ClientConnection>(index, *this);
    }
  }

  void handle(HttpConnection& http, const HttpRequest& request) override {
    const Placement placement = api_.handle(request, http, call_);
    if (!placement.forward) return;
    if (placement.owner != 0) std::abort();  // one shard owns everything
    call_.connection_index = http.index();
    call_.answer_sequence = http.reserve_answer(placement.answer_bytes_at_most);
    if (api_.serve_call(call_)) api_.complete_call(call_, http);
  }

  // Feeds a whole request (made with request()) on `client`'s connection.
  void send(const std::string& request, Client client = consumer) {
    clients_[client]->http.feed(request.data(), request.size(), request.capacity());
  }
  // The end of a loop turn: waiting fetches fed by its publishes are answered.
  void end_turn() {
    api_.wake_waiting();
    api_.take_answered_waits([this](ShardCall&& call) {
      api_.complete_call(call, clients_[call.connection_index]->http);
    });
    api_.end_turn();
  }
  // What `client` was answered since the last call (the client took it).
  std::string take_output(Client client = consumer) {
    std::string bytes = clients_[client]->out.output.flatten();
    discard_output(client);
    return bytes;
  }
  void discard_output(Client client = consumer) {
    clients_[client]->out.output.clear();
    clients_[client]->out.answers_in_output = 0;
    // Requests held back while it owed answers (a fetch that waits owes one
    // as large as a fetch may be) are read now, as after a send.
    clients_[client]->http.resume();
  }

  // `headers`: more header lines, each ending in CRLF.
  static std::string request(std::string_view path, std::string_view body,
                             std::string_view headers = {}) {
    return padded("POST " + std::string(path) + " HTTP/1.1\r\nHost: localhost:8082\r\n" +
                  std::string(headers) + "Content-Type: application/json\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\n\r\n" + std::string(body));
  }
  // A fetch of at most `messages` (max_messages) for subscriber `id` of
  // load.test.
  static std::string batch_fetch(const std::string& id, std::size_t messages) {
    return request("/api/fetch", R"({"subject":"load.test","id":")" + id + R"(","max_messages":)" +
                                     std::to_string(messages) + "}");
  }
  // Publishes `count` 16-byte messages to load.test in one loop turn; their
  // answers are taken.
  void publish_sixteen_byte_messages(std::size_t count) {
    static const std::string publish =
        request("/api/publish", R"({"subject":"load.test","data":"a sixteen byte m"})");
    for (std::size_t i = 0; i < count; ++i) send(publish);
    end_turn();
    discard_output();
  }
  // Subscribes to `subject`, with `fields` (",key:value..." JSON) beside
  // it; the id.
  std::string subscribe(std::string_view subject, std::string_view fields = {}) {
    send(request("/api/subscribe",
                 R"({"subject":")" + std::string(subject) + "\"" + std::string(fields) + "}"));
    const std::string answer = take_output();
    return answer.substr(answer.find("\"id\":\"") + 6, SubscriberId::kTextLength);
  }

 private:
  struct ClientConnection {
    ClientConnection(std::uint32_t index, RequestHandler& handler)
        : http(index, RequestLimits{16 << 10, 1 << 20, cors_origins().longest()},
               PipelineLimits{8 << 20, 1024}, shard_unsent, handler, out) {}
    OutgoingBytes out;
    UnsentTotal shard_unsent;
    HttpConnection http;
  };

  PendingBudget budget_;
  ShardMetrics metrics_;
  StoreCensus census_;
  BrokerApi api_;
  std::array<std::unique_ptr<ClientConnection>, 2> clients_;
  ShardCall call_;
};

// One publish handled whole. A loop turn (which times its requests
// together) is 16 publishes, one pipelined receive's worth. The subscriber
// is drained every 1024 publishes so the store stays small. `cors` 1: with
// broker.cors-origins set and the request from an allowed Origin (read,
// matched, and named in the answer); 0: without CORS. With `patterns`,
// that many wildcard subscribers are registered first, none matching: the
// target (api-extensions.md §10) is at most 1.3 times the cost with none.
void BM_WholePublishRequestInProcess(benchmark::State& state) {
  constexpr std::string_view kOrigin = "http://localhost:8080";
  const bool cors = state.range(0) == 1;
  if (cors) install_cors_origins(CorsOrigins({std::string(kOrigin)}));
  InProcessShard shard;
  // Half "orders.<i>.*", half "metrics.host<i>.>".
  for (std::int64_t i = 0; i < state.range(1); ++i) {
    const std::string n = std::to_string(i / 2);
    shard.subscribe(i % 2 == 0 ? "orders." + n + ".*" : "metrics.host" + n + ".>",
                    R"(,"wildcard":true)");
  }
  const std::string id = shard.subscribe("load.test");
  const std::string publish = InProcessShard::request(
      "/api/publish", kPublishBody, cors ? "Origin: " + std::string(kOrigin) + "\r\n" : "");
  const std::string fetch =
      InProcessShard::request("/api/fetch", R"({"subject":"load.test","id":")" + id + "\"}");
  std::size_t published = 0;
  std::string last;
  for (auto _ : state) {
    shard.discard_output();  // the answer went out: the connection owes nothing
    shard.send(publish);
    if (++published % 16 == 0) shard.end_turn();
    if (published % 1024 == 0) {
      state.PauseTiming();
      shard.send(fetch);
      state.ResumeTiming();
    }
  }
  const std::string answer = shard.take_output();
  if (answer.find("200 OK") == std::string::npos && published % 1024 != 0) {
    state.SkipWithError("the publish was not answered 200");
  }
  if (cors && answer.find(kOrigin) == std::string::npos && published % 1024 != 0) {
    state.SkipWithError("the answer did not name the origin");
  }
  install_cors_origins(CorsOrigins());
}
BENCHMARK(BM_WholePublishRequestInProcess)
    ->ArgNames({"cors", "patterns"})
    ->Args({0, 0})
    ->Args({1, 0})
    ->Args({0, 10000});

// A publish that feeds a waiting fetch, and the fetch's answer (one
// message), against a plain publish and a plain fetch of it: the wake-up's
// cost (the target: at most twice the plain pair). Arg 1: waiting; 0: plain.
void BM_PublishAndFetchOne(benchmark::State& state) {
  const bool waiting = state.range(0) == 1;
  InProcessShard shard;
  const std::string id = shard.subscribe("load.test");
  const std::string publish = InProcessShard::request("/api/publish", kPublishBody);
  const std::string fetch = InProcessShard::request(
      "/api/fetch", R"({"subject":"load.test","id":")" + id +
                        (waiting ? R"(","wait_ms":30000,"max_messages":100})" : "\"}"));
  benchmark::IterationCount answered = 0;
  for (auto _ : state) {
    if (waiting) {
      shard.send(fetch);  // waits: nothing is pending
      shard.send(publish, InProcessShard::producer);
      shard.end_turn();  // answers it
    } else {
      shard.send(publish, InProcessShard::producer);
      shard.send(fetch);
      shard.end_turn();
    }
    shard.discard_output(InProcessShard::producer);
    const std::string answers = shard.take_output();
    answered += answers.find("[\"hello") != std::string::npos;
  }
  if (answered != state.iterations()) state.SkipWithError("a fetch did not get its message");
}
BENCHMARK(BM_PublishAndFetchOne)->Arg(0)->Arg(1);

// One fetch taking `messages` 16-byte messages (max_messages), published off
// the clock: the cost per message beyond the request is (t(100) - t(1)) / 99
// (the target: at most 0.25 µs).
void BM_FetchBatch(benchmark::State& state) {
  const auto messages = static_cast<std::size_t>(state.range(0));
  InProcessShard shard;
  const std::string id = shard.subscribe("load.test");
  const std::string fetch = InProcessShard::batch_fetch(id, messages);
  benchmark::IterationCount taken = 0;
  for (auto _ : state) {
    state.PauseTiming();
    shard.publish_sixteen_byte_messages(messages);
    state.ResumeTiming();
    shard.send(fetch);
    state.PauseTiming();
    taken += shard.take_output().find("\"pending\":0,") != std::string::npos;
    state.ResumeTiming();
  }
  if (taken != state.iterations()) state.SkipWithError("a fetch left messages behind");
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(messages));
}
BENCHMARK(BM_FetchBatch)->Arg(1)->Arg(100);

// An ack-mode subscriber's fetch of `messages` 16-byte messages and the one
// ack that settles them all (`through` its last sequence), published off the
// clock: acks add one request, whatever the batch.
void BM_AckModeFetchAndAckThrough(benchmark::State& state) {
  const auto messages = static_cast<std::size_t>(state.range(0));
  InProcessShard shard;
  const std::string id = shard.subscribe("load.test", R"(,"ack_wait_ms":30000)");
  const std::string fetch = InProcessShard::batch_fetch(id, messages);
  std::uint64_t last_sequence = 0;
  benchmark::IterationCount settled = 0;
  for (auto _ : state) {
    state.PauseTiming();
    shard.publish_sixteen_byte_messages(messages);
    last_sequence += messages;
    const std::string ack = InProcessShard::request(
        "/api/ack", R"({"subject":"load.test","id":")" + id + R"(","through":)" +
                        std::to_string(last_sequence) + "}");
    state.ResumeTiming();
    shard.send(fetch);
    shard.send(ack);
    state.PauseTiming();
    settled += shard.take_output().find("{\"acked\":" + std::to_string(messages) + ",") !=
               std::string::npos;
    state.ResumeTiming();
  }
  if (settled != state.iterations()) state.SkipWithError("an ack did not settle the batch");
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(messages));
}
BENCHMARK(BM_AckModeFetchAndAckThrough)->Arg(1)->Arg(100);

// One batch publish of `messages` 16-byte messages (the one-subject form)
// and the fetch that takes them all, both on the clock: the broker's whole
// cost per message published and delivered, with HTTP parsing, decoding,
// the store and encoding (the target: at most 0.3 µs a message with 100).
void BM_BatchPublishAndFetch(benchmark::State& state) {
  const auto messages = static_cast<std::size_t>(state.range(0));
  InProcessShard shard;
  const std::string id = shard.subscribe("load.test");
  std::string data;
  for (std::size_t i = 0; i < messages; ++i)
    data += (i == 0 ? "\"" : ",\"") + std::string(16, 'm') + "\"";
  const std::string publish = InProcessShard::request(
      "/api/publish/batch", R"({"subject":"load.test","data":[)" + data + "]}");
  const std::string fetch = InProcessShard::batch_fetch(id, messages);
  benchmark::IterationCount whole = 0;
  for (auto _ : state) {
    shard.send(publish, InProcessShard::producer);
    shard.send(fetch);
    state.PauseTiming();
    whole += shard.take_output().find("\"pending\":0,") != std::string::npos &&
             shard.take_output(InProcessShard::producer).find("{\"status\":\"ok\"}") !=
                 std::string::npos;
    state.ResumeTiming();
  }
  if (whole != state.iterations()) state.SkipWithError("a batch was refused or left behind");
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(messages));
}
BENCHMARK(BM_BatchPublishAndFetch)->Arg(10)->Arg(100);

}  // namespace
}  // namespace gophermq

BENCHMARK_MAIN();
