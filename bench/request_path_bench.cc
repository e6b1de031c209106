// Micro-benchmarks of the request path's pieces, each measured alone:
// parsing, decoding, subject checks, the store, encoding, and the cross-shard
// queue. Figures are per operation; compare runs on the same machine.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "gophermq/api/broker_api.h"
#include "gophermq/api/request_decoder.h"
#include "gophermq/api/response_encoder.h"
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

std::string padded(const std::string& text) {
  std::string copy = text;
  copy.reserve(text.size() + ByteBuffer::kPadding);
  return copy;
}

void BM_DecodePublishBody(benchmark::State& state) {
  RequestDecoder decoder;
  std::string body = padded(kPublishBody);
  DecodedRequest request;
  for (auto _ : state) {
    bool ok = decoder.decode(body.data(), body.size(), body.capacity(), request);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(request.data.data());
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
  std::string request =
      "POST /api/publish HTTP/1.1\r\nHost: localhost:8082\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(kPublishBody.size()) + "\r\n\r\n" + kPublishBody;
  request = padded(request);
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

// One publish handled whole, in-process: parse, route, decode, store,
// encode, respond; no sockets, no ring. A loop turn (which times its
// requests together) is 16 publishes, one pipelined receive's worth. The
// subscriber is drained every 1024 publishes so the store stays small.
class OneShard final : public RequestHandler {
 public:
  explicit OneShard(BrokerApi& api) : api_(api) {}
  void handle(HttpConnection& http, const HttpRequest& request) override {
    if (api_.handle(request, http, call_).forward) std::abort();  // one shard owns everything
  }

 private:
  BrokerApi& api_;
  ShardCall call_;
};

void BM_WholePublishRequestInProcess(benchmark::State& state) {
  PendingBudget budget(1 << 30);
  ShardMetrics metrics;
  StoreCensus census(1000, 1000);
  BrokerApi api(0, 1, budget, census, StoreLimits{}, std::chrono::steady_clock::now(), metrics);
  OneShard shard(api);
  OutgoingBytes out;
  HttpConnection connection(0, RequestLimits{16 << 10, 1 << 20}, PipelineLimits{8 << 20, 1024},
                            shard, out);
  std::string subscribe =
      "POST /api/subscribe HTTP/1.1\r\nHost: localhost:8082\r\nContent-Length: 23\r\n\r\n"
      "{\"subject\":\"load.test\"}";
  subscribe = padded(subscribe);
  connection.feed(subscribe.data(), subscribe.size(), subscribe.capacity());
  const std::string subscribed = out.output.flatten();
  const std::string id(
      subscribed.substr(subscribed.find("\"id\":\"") + 6, SubscriberId::kTextLength));
  std::string publish =
      "POST /api/publish HTTP/1.1\r\nHost: localhost:8082\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(kPublishBody.size()) + "\r\n\r\n" + kPublishBody;
  publish = padded(publish);
  const std::string fetch_body = R"({"subject":"load.test","id":")" + id + "\"}";
  std::string fetch = "POST /api/fetch HTTP/1.1\r\nHost: localhost:8082\r\nContent-Length: " +
                      std::to_string(fetch_body.size()) + "\r\n\r\n" + fetch_body;
  fetch = padded(fetch);
  std::size_t published = 0;
  for (auto _ : state) {
    // The answer went out: the connection owes nothing.
    out.output.clear();
    out.answers_in_output = 0;
    connection.feed(publish.data(), publish.size(), publish.capacity());
    if (++published % 16 == 0) api.end_turn();
    if (published % 1024 == 0) {
      state.PauseTiming();
      connection.feed(fetch.data(), fetch.size(), fetch.capacity());
      state.ResumeTiming();
    }
  }
  if (out.output.flatten().find("200 OK") == std::string::npos) {
    state.SkipWithError("the publish was not answered 200");
  }
}
BENCHMARK(BM_WholePublishRequestInProcess);

}  // namespace
}  // namespace gophermq

BENCHMARK_MAIN();
