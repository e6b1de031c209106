// Shared pieces of the integration tests: a fixture that owns one broker and
// one keep-alive connection to it, request-body builders, the contract's exact
// response bodies, JSON decoding of responses (via simdjson), and reading the
// broker's metrics.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker_process.h"
#include "http_client.h"

namespace gophermq::testing {

// --- Request bodies ---
std::string SubscribeBody(std::string_view subject);
std::string PublishBody(std::string_view subject, std::string_view data);
std::string FetchBody(std::string_view subject, std::string_view id);
// `body` (a JSON object) with the members `fields` (e.g. "\"wait_ms\":100")
// added at its end.
std::string WithFields(std::string body, std::string_view fields);
// {"subject","id"} and `fields`: the body of a fetch, ack, nack, info or
// unsubscribe.
std::string SubscriberBody(std::string_view subject, std::string_view id,
                           std::string_view fields = {});

// The broker is built like these tests: with a sanitizer here, with the
// same one there (GCC defines __SANITIZE_*__, Clang has __has_feature).
#if defined(__has_feature)
#define GOPHERMQ_TEST_HAS_FEATURE(feature) __has_feature(feature)
#else
#define GOPHERMQ_TEST_HAS_FEATURE(feature) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || GOPHERMQ_TEST_HAS_FEATURE(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#if defined(__SANITIZE_THREAD__) || GOPHERMQ_TEST_HAS_FEATURE(thread_sanitizer)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif
#undef GOPHERMQ_TEST_HAS_FEATURE

// --- Exact response bodies of the contract ---
inline constexpr std::string_view kOkBody = "{\"status\":\"ok\"}\n";
inline constexpr std::string_view kInvalidSubjectBody = "{\"message\":\"invalid subject\"}\n";
inline constexpr std::string_view kInvalidBodyBody =
    "{\"message\":\"request's body is invalid\"}\n";
inline constexpr std::string_view kSubscriberNotFoundBody =
    "{\"message\":\"subscriber not found\"}\n";
inline constexpr std::string_view kBadIdBody = "{\"message\":\"bad id\"}\n";
inline constexpr std::string_view kOverflowBody = "{\"message\":\"broker overflow\"}\n";
inline constexpr std::string_view kNotFoundBody = "{\"message\":\"Not Found\"}\n";
inline constexpr std::string_view kMethodNotAllowedBody = "{\"message\":\"Method Not Allowed\"}\n";

// The exact fetch body for plain ASCII data, id and subject (nothing a JSON
// encoder could escape differently).
std::string ExpectedFetchBody(const std::vector<std::string>& data, std::string_view id,
                              std::string_view subject);

// Checks status, `Content-Type: application/json` (parameters allowed) and the
// exact body bytes.
::testing::AssertionResult IsJsonResponse(const HttpResponse& response, int status,
                                          std::string_view body);

// A lowercase canonical version-4 UUID (RFC 4122 variant).
bool IsUuidV4(std::string_view text);

// --- Decoding responses ---
struct SubscribeReply {
  std::string id;
  std::string subject;
};
// The decoded fields when `body` is exactly an object {"id":..., "subject":...}
// in that key order; nullopt otherwise.
std::optional<SubscribeReply> DecodeSubscribeReply(const std::string& body);

struct FetchReply {
  std::vector<std::string> data;
  std::string id;
  std::string subject;
};
// The decoded fields when `body` is an object with keys data, id, subject in
// that order, data an array of strings; nullopt otherwise.
std::optional<FetchReply> DecodeFetchReply(const std::string& body);

// A flat JSON object: its keys in order and its values by kind (strings,
// unsigned integers, arrays of either; an empty array counts as both).
struct JsonObject {
  std::vector<std::string> keys;
  std::map<std::string, std::string, std::less<>> strings;
  std::map<std::string, std::uint64_t, std::less<>> numbers;
  std::map<std::string, std::vector<std::string>, std::less<>> string_arrays;
  std::map<std::string, std::vector<std::uint64_t>, std::less<>> number_arrays;
};
// `body` decoded when it is one JSON object, followed by "\n", whose values
// are all of those kinds; nullopt otherwise.
std::optional<JsonObject> DecodeJsonObject(const std::string& body);

// Copies the value of `key` in `map` (one of JsonObject's) to `out`; false
// when there is none of that kind.
template <typename Map, typename Value>
bool GetField(const Map& map, std::string_view key, Value* out) {
  const auto found = map.find(key);
  if (found == map.end()) return false;
  *out = found->second;
  return true;
}

// What POST /api/info answers for a subscriber (api-extensions.md §7).
struct SubscriberInfo {
  std::uint64_t idle_ms = 0;
  std::uint64_t inflight = 0;
  std::uint64_t pending = 0;
  std::uint64_t pending_bytes = 0;
  std::uint64_t waiting = 0;
};

// Readable dump of a response for failure messages.
std::string Describe(const HttpResponse& response);

// GET /metrics on the monitoring port; nullopt (with `error`) on failure.
std::optional<std::string> ScrapeMetrics(std::uint16_t metrics_port, std::string* error);
// The value of the unlabelled sample `name` in a text exposition.
std::optional<double> MetricValue(std::string_view exposition, std::string_view name);

// BrokerOptions{} with the monitoring port open (an ephemeral one), for a test
// that reads /metrics, and `flags`.
BrokerOptions MonitoredOptions(std::vector<std::string> flags = {});

// How long a test polls for something that must happen (a redelivery, an
// expiry, a metric), and the pause between two looks: nothing sleeps on the
// hope that it has happened.
inline constexpr std::chrono::seconds kPollFor(10);
inline constexpr std::chrono::milliseconds kPollPause(10);

// Polls `read` (kPollFor at most) until `holds` accepts what it read. The
// failure names `what` was read, the value it stayed at, and `expected`.
::testing::AssertionResult Eventually(const std::function<double()>& read,
                                      const std::function<bool(double)>& holds,
                                      std::string_view what, std::string_view expected);

// How many results (failures) the running test has recorded so far: a helper
// that loops can tell whether a call it made failed.
int TestParts();

// A soak's duration in seconds: GOPHERMQ_SOAK_SECONDS when it is a whole
// number of at least 1 (at most `most`: the suite's meson timeout is shared),
// else `fallback`.
int SoakSeconds(int fallback, int most);

// One instant query against a Prometheus server's HTTP API (`query` already
// percent-encoded): each result's metric name (empty for a query whose
// results have none, such as `up`) and value; nullopt on transport or
// decoding trouble (Prometheus may still be starting). `raw` gets the answer
// or the error, for a failure message.
std::optional<std::vector<std::pair<std::string, std::string>>> PrometheusQuery(
    std::uint16_t port, const std::string& query, std::string* raw);

// Starts `prometheus` (its path) in `server` with `dir`/prometheus.yml,
// storing in `dir`/prometheus-data, its web API on 127.0.0.1:`web_port`;
// false with `error` set when it cannot be started.
bool StartPrometheus(Subprocess& server, const std::string& prometheus, const std::string& dir,
                     std::uint16_t web_port, std::string* error);

// The parts joined (`"literal" + std::string` trips a GCC 12 -Wrestrict false
// positive at -O3).
std::string Joined(std::initializer_list<std::string_view> parts);

// prefix + decimal n ("m" + std::to_string(n) trips a GCC 12 -Wrestrict false positive).
std::string Numbered(std::string_view prefix, long long n);

// "<prefix>.<s>": the s-th of a test's subjects (a few of them fall on each
// shard).
std::string SubjectName(std::string_view prefix, int s);

// A subject name that is fresh for this process run.
std::string UniqueSubject(std::string_view prefix);

// --- Fixture ---

// Starts a broker (Options()) before each test, connects client_ to it, and
// stops the broker after the test, failing the test when it crashed or did not
// stop cleanly. The broker's log is printed when a test failed.
// Failures gathered from worker threads: counted, and the first few kept
// for the report.
class ErrorLog {
 public:
  void Add(std::string error) {
    std::lock_guard lock(mutex_);
    ++count_;
    if (errors_.size() < 20) errors_.push_back(std::move(error));
  }
  int count() const {
    std::lock_guard lock(mutex_);
    return count_;
  }
  std::string Dump() const {
    std::lock_guard lock(mutex_);
    std::string out;
    for (const std::string& error : errors_) out += error + "\n";
    return out;
  }

 private:
  mutable std::mutex mutex_;
  int count_ = 0;
  std::vector<std::string> errors_;
};

class BrokerTest : public ::testing::Test {
 protected:
  // Override to start the broker differently; return nullopt to start none in
  // SetUp (the test then calls StartBroker itself).
  virtual std::optional<BrokerOptions> Options() const { return BrokerOptions{}; }

  void SetUp() override;
  void TearDown() override;

  // Stops the current broker (checking it stopped cleanly) and starts a new
  // one; connects client_. Use with ASSERT_NO_FATAL_FAILURE.
  void StartBroker(const BrokerOptions& options);

  std::uint16_t port() const { return broker_ ? broker_->port() : 0; }
  // A new connection to the broker (a failure is recorded when it cannot).
  std::unique_ptr<HttpClient> Connect() const;

  // One request on client_; on a transport error the returned status is 0 and
  // a failure is recorded.
  HttpResponse Call(std::string_view method, std::string_view path, std::string_view body = {},
                    std::string_view extra_headers = {});
  HttpResponse Post(std::string_view path, std::string_view body) {
    return Call("POST", path, body);
  }

  // Opens `count` new connections one after another and checks each answers
  // GET /ready with 204: they land on both shards and may reuse the slot of a
  // connection closed just before, which must start from a clean state.
  void ExpectNewConnectionsServed(int count = 8);

  // Subscribes and checks the exact 200 reply; returns the id ("" on failure).
  std::string Subscribe(std::string_view subject);
  // Subscribes with the extension fields `fields` (JSON members, e.g.
  // "\"max_pending\":3") beside the subject; the new id, or "" on failure.
  std::string SubscribeWith(std::string_view subject, std::string_view fields);
  HttpResponse Publish(std::string_view subject, std::string_view data) {
    return Post("/api/publish", PublishBody(subject, data));
  }
  // Publishes and expects 200 {"status":"ok"}.
  void PublishOk(std::string_view subject, std::string_view data);
  // Fetches and checks the reply's shape, id and subject; returns the data.
  std::vector<std::string> Fetch(std::string_view subject, std::string_view id);
  // A connection of its own, whose reads wait `timeout` at most, that has
  // sent a fetch with `fields` (a long poll, typically: the test acts while it
  // waits, then reads the answer with Read).
  std::unique_ptr<HttpClient> SendFetch(
      std::string_view subject, std::string_view id, std::string_view fields,
      std::chrono::milliseconds timeout = HttpClient::kDefaultTimeout) const;
  // The next response on `client` (a failure is recorded when none comes).
  static HttpResponse Read(HttpClient& client);
  // POST /api/info, whose answer must be exactly the documented object, keys
  // sorted, for this id and (plain ASCII) subject: with "group" for a member
  // of `group`, without it when `group` is empty (no group's name is).
  // Otherwise a failure is recorded.
  SubscriberInfo GetInfo(std::string_view subject, std::string_view id,
                         std::string_view group = {});
  // The sample `name` (labels included, as written) from /metrics; -1 (and a
  // failure) when the scrape fails, -1 when it has no such sample. Needs a
  // broker started with MonitoredOptions().
  double Metric(std::string_view name);
  // Polls (kPollFor at most) until `holds(value of metric name)`; `expected`
  // describes what it should become, for the failure.
  ::testing::AssertionResult MetricBecomes(std::string_view name,
                                           const std::function<bool(double)>& holds,
                                           std::string_view expected);
  // Polls (kPollFor at most) until the metric `name` is `value`.
  ::testing::AssertionResult MetricReaches(std::string_view name, double value);
  // One request of every method label and the interesting status codes,
  // under subjects starting with `prefix`, so that every labelled metric
  // family has at least one series.
  void MakeRequestsOfEveryKind(std::string_view prefix);

  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<HttpClient> client_;
};

}  // namespace gophermq::testing
