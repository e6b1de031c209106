// The Prometheus endpoint on the monitoring listener (GET /metrics) and the
// GET /healthz endpoint on the API port.
//
// The format checks parse the whole exposition (text format 0.0.4) strictly:
// every family declared once with # HELP and # TYPE before its samples, its
// samples together. The count checks compare counters with the requests the
// test made: the contract says they are exact once the requests have been
// answered (the shards' counters are summed at scrape time), so synchronous
// effects are asserted on the first scrape, and only the effects of
// publish/async, which happen after its answer, are polled for.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "raw_socket.h"
#include "test_support.h"

namespace gophermq::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Labels = std::map<std::string, std::string>;

constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// --- Parsing the text format ---

struct Sample {
  std::string name;
  Labels labels;
  double value = 0;
};

struct Family {
  std::string help;
  std::string type;
  int help_lines = 0;
  int type_lines = 0;
  std::vector<Sample> samples;
};

struct Exposition {
  std::map<std::string, Family> families;
  std::vector<Sample> samples;  // all of them, in order
  std::vector<std::string> errors;
};

// The family a sample belongs to: itself, or for histograms and summaries the
// name without _bucket/_sum/_count when that family is declared.
std::string FamilyOf(const std::string& sample_name,
                     const std::map<std::string, Family>& families) {
  if (families.contains(sample_name)) return sample_name;
  for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
    if (sample_name.ends_with(suffix)) {
      std::string base = sample_name.substr(0, sample_name.size() - suffix.size());
      auto found = families.find(base);
      if (found != families.end() &&
          (found->second.type == "histogram" || found->second.type == "summary")) {
        return base;
      }
    }
  }
  return {};
}

bool ParseValue(std::string_view text, double* value) {
  if (text == "+Inf") {
    *value = HUGE_VAL;
    return true;
  }
  if (text == "-Inf") {
    *value = -HUGE_VAL;
    return true;
  }
  if (text == "NaN") {
    *value = NAN;
    return true;
  }
  const std::string copy(text);
  char* end = nullptr;
  *value = std::strtod(copy.c_str(), &end);
  return !copy.empty() && end == copy.c_str() + copy.size();
}

// Parses a sample line: name, optional {label="value",...}, value, optional
// timestamp. False with `error` set when the line is malformed.
bool ParseSampleLine(std::string_view line, Sample* sample, std::string* error) {
  std::size_t at = 0;
  while (at < line.size() && line[at] != '{' && line[at] != ' ') ++at;
  sample->name = std::string(line.substr(0, at));
  if (sample->name.empty()) {
    *error = "sample without a name";
    return false;
  }
  if (at < line.size() && line[at] == '{') {
    ++at;
    while (at < line.size() && line[at] != '}') {
      const std::size_t eq = line.find('=', at);
      if (eq == std::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
        *error = "bad label";
        return false;
      }
      std::string name(line.substr(at, eq - at));
      std::string value;
      at = eq + 2;
      for (; at < line.size() && line[at] != '"'; ++at) {
        if (line[at] == '\\' && at + 1 < line.size()) {
          ++at;
          value += line[at] == 'n' ? '\n' : line[at];
        } else {
          value += line[at];
        }
      }
      if (at >= line.size()) {
        *error = "unterminated label value";
        return false;
      }
      ++at;  // closing quote
      if (sample->labels.contains(name)) {
        *error = "duplicate label " + name;
        return false;
      }
      sample->labels[name] = value;
      if (at < line.size() && line[at] == ',') ++at;
    }
    if (at >= line.size()) {
      *error = "unterminated label set";
      return false;
    }
    ++at;  // '}'
  }
  if (at >= line.size() || line[at] != ' ') {
    *error = "no value";
    return false;
  }
  std::string_view rest = line.substr(at + 1);
  const std::string_view value_text = rest.substr(0, rest.find(' '));
  if (!ParseValue(value_text, &sample->value)) {
    *error = "bad value [" + std::string(value_text) + "]";
    return false;
  }
  return true;
}

Exposition ParseExposition(const std::string& text) {
  Exposition out;
  if (!text.empty() && text.back() != '\n') out.errors.push_back("body does not end in a newline");
  std::string current_family;  // the family whose samples we are in
  std::set<std::string> finished;
  std::size_t start = 0;
  int line_number = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + start, end - start);
    start = end + 1;
    ++line_number;
    const std::string where = Numbered("line ", line_number) + ": [" + std::string(line) + "] ";
    if (line.empty()) continue;
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
      const std::string_view rest = line.substr(7);
      const std::size_t space = rest.find(' ');
      const std::string name(rest.substr(0, space));
      const std::string argument(space == std::string_view::npos ? "" : rest.substr(space + 1));
      Family& family = out.families[name];
      if (!family.samples.empty()) out.errors.push_back(where + "comment after the samples");
      if (line.starts_with("# HELP ")) {
        family.help = argument;
        ++family.help_lines;
      } else {
        family.type = argument;
        ++family.type_lines;
      }
      continue;
    }
    if (line.starts_with("#")) continue;  // other comments are allowed
    Sample sample;
    std::string error;
    if (!ParseSampleLine(line, &sample, &error)) {
      out.errors.push_back(where + error);
      continue;
    }
    const std::string family_name = FamilyOf(sample.name, out.families);
    if (family_name.empty() || out.families[family_name].type_lines == 0) {
      out.errors.push_back(where + "sample of an undeclared family (no # TYPE before it)");
      out.samples.push_back(std::move(sample));
      continue;
    }
    if (family_name != current_family) {
      if (finished.contains(family_name)) {
        out.errors.push_back(where + "samples of " + family_name + " are not together");
      }
      if (!current_family.empty()) finished.insert(current_family);
      current_family = family_name;
    }
    out.families[family_name].samples.push_back(sample);
    out.samples.push_back(std::move(sample));
  }
  for (const auto& [name, family] : out.families) {
    if (family.help_lines != 1) {
      out.errors.push_back(name + Numbered(": # HELP lines: ", family.help_lines));
    }
    if (family.type_lines != 1) {
      out.errors.push_back(name + Numbered(": # TYPE lines: ", family.type_lines));
    }
  }
  // The same series twice would make Prometheus reject the scrape.
  std::set<std::pair<std::string, Labels>> seen;
  for (const Sample& sample : out.samples) {
    if (!seen.emplace(sample.name, sample.labels).second) {
      out.errors.push_back("duplicate series " + sample.name);
    }
  }
  return out;
}

// The value of the series with exactly these labels; nullopt when absent.
std::optional<double> Find(const Exposition& exposition, const std::string& name,
                           const Labels& labels = {}) {
  for (const Sample& sample : exposition.samples) {
    if (sample.name == name && sample.labels == labels) return sample.value;
  }
  return std::nullopt;
}

// Like Find, 0 when the series is absent (a labelled counter that never
// counted may be left out).
double CounterValue(const Exposition& exposition, const std::string& name,
                    const Labels& labels = {}) {
  return Find(exposition, name, labels).value_or(0);
}

std::string RequestLabelsText(const Labels& labels) {
  std::string text;
  for (const auto& [name, value] : labels) text += name + "=" + value + " ";
  return text;
}

// --- Fixture ---

class MetricsTest : public BrokerTest {
 protected:
  std::optional<BrokerOptions> Options() const override { return MonitoredOptions(); }

  // GET /metrics: checks the status and content type, parses the body
  // strictly, and records a failure for anything malformed.
  Exposition Scrape() {
    last_scrape_.clear();
    const std::uint16_t metrics_port = broker_ ? broker_->metrics_port() : 0;
    if (metrics_port == 0) {
      ADD_FAILURE() << "the listening line carries no metrics_port=: "
                    << (broker_ ? broker_->listening_line() : "");
      return {};
    }
    HttpClient client;
    HttpResponse response;
    if (!client.Connect(metrics_port) || !client.Request("GET", "/metrics", "", &response)) {
      ADD_FAILURE() << "GET /metrics on 127.0.0.1:" << metrics_port << ": " << client.error();
      return {};
    }
    last_scrape_ = response.body;
    EXPECT_EQ(response.status, 200) << Describe(response);
    const std::string* type = response.Header("Content-Type");
    EXPECT_TRUE(type != nullptr && *type == kMetricsContentType)
        << "Content-Type: " << (type ? *type : "(none)");
    Exposition exposition = ParseExposition(response.body);
    for (const std::string& error : exposition.errors) ADD_FAILURE() << "/metrics: " << error;
    return exposition;
  }

  void TearDown() override {
    if (HasFailure() && !last_scrape_.empty()) {
      std::cerr << "--- last /metrics ---\n"
                << (last_scrape_.size() > 30000 ? last_scrape_.substr(0, 30000) + "..."
                                                : last_scrape_)
                << "---\n";
    }
    BrokerTest::TearDown();
  }

  unsigned Shards() const {
    const std::optional<std::string> shards = LogField(broker_->log(), "listening", "shards");
    return shards ? static_cast<unsigned>(std::strtoul(shards->c_str(), nullptr, 10)) : 0;
  }

  // Polls the scrape until `done` holds (for effects that come after an
  // answer: publish/async, connection closes); the last scrape either way.
  Exposition ScrapeUntil(const std::function<bool(const Exposition&)>& done,
                         milliseconds timeout = milliseconds(5'000)) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      Exposition exposition = Scrape();
      if (done(exposition) || Clock::now() >= deadline || HasFatalFailure()) return exposition;
      std::this_thread::sleep_for(milliseconds(20));
    }
  }

  std::string last_scrape_;
};

// For tests that start the broker with flags of their own (no broker is
// started in SetUp).
class MetricsWithFlagsTest : public MetricsTest {
 protected:
  std::optional<BrokerOptions> Options() const override { return std::nullopt; }
};

// --- Format ---

TEST_F(MetricsTest, ServesTextFormatWithHelpAndTypeForEveryFamily) {
  MakeRequestsOfEveryKind("exercise");
  const Exposition exposition = Scrape();
  EXPECT_FALSE(exposition.families.empty());
  for (const auto& [name, family] : exposition.families) {
    EXPECT_FALSE(family.help.empty()) << name << " has an empty # HELP";
    EXPECT_TRUE(family.type == "counter" || family.type == "gauge" || family.type == "histogram")
        << name << " has # TYPE " << family.type;
  }
}

TEST_F(MetricsTest, DeclaresEveryFamilyOfTheContract) {
  MakeRequestsOfEveryKind("exercise");
  // The async publish to a subject nobody subscribed fails after its answer.
  const Exposition exposition = ScrapeUntil([](const Exposition& e) {
    return CounterValue(e, "gophermq_async_publish_failures_total", {{"reason", "no_subscriber"}}) >
           0;
  });
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"gophermq_client_request_rate", "counter"},
      {"gophermq_request_duration_seconds", "histogram"},
      {"gophermq_requests_total", "counter"},
      {"gophermq_pending_messages", "gauge"},
      {"gophermq_max_pending_messages", "gauge"},
      {"gophermq_pending_bytes", "gauge"},
      {"gophermq_subjects", "gauge"},
      {"gophermq_subscribers", "gauge"},
      {"gophermq_open_connections", "gauge"},
      {"gophermq_connections_accepted_total", "counter"},
      {"gophermq_received_bytes_total", "counter"},
      {"gophermq_sent_bytes_total", "counter"},
      {"gophermq_connection_holds_total", "counter"},
      {"gophermq_messages_published_total", "counter"},
      {"gophermq_messages_delivered_total", "counter"},
      {"gophermq_messages_refused_total", "counter"},
      {"gophermq_async_publish_failures_total", "counter"},
      {"gophermq_cross_shard_calls_total", "counter"},
      {"gophermq_cross_shard_queue_full_total", "counter"},
      {"gophermq_receive_pauses_total", "counter"},
      {"gophermq_shard_requests_total", "counter"},
      {"gophermq_build_info", "gauge"},
      // api-extensions.md §11
      {"gophermq_subscribers_expired_total", "counter"},
      {"gophermq_unsubscribes_total", "counter"},
      {"gophermq_messages_dropped_total", "counter"},
      {"gophermq_waiting_fetches", "gauge"},
      {"gophermq_inflight_messages", "gauge"},
      {"gophermq_messages_redelivered_total", "counter"},
      {"gophermq_messages_dead_lettered_total", "counter"},
      {"gophermq_oldest_pending_age_seconds", "gauge"},
      {"gophermq_streams", "gauge"},
      {"gophermq_empty_fetches_total", "counter"},
      {"process_resident_memory_bytes", "gauge"},
      {"process_virtual_memory_bytes", "gauge"},
      {"process_cpu_seconds_total", "counter"},
      {"process_open_fds", "gauge"},
      {"process_max_fds", "gauge"},
      {"process_start_time_seconds", "gauge"},
  };
  for (const auto& [name, type] : expected) {
    auto found = exposition.families.find(name);
    if (found == exposition.families.end()) {
      ADD_FAILURE() << "no family " << name;
      continue;
    }
    EXPECT_EQ(found->second.type, type) << name;
    // Every family here has something to report after MakeRequestsOfEveryKind
    // (cross_shard_queue_full_total and the like report 0).
    EXPECT_FALSE(found->second.samples.empty()) << name << " has no sample";
  }
  // The labels each labelled family is keyed by.
  const std::map<std::string, std::set<std::string>> label_names = {
      {"gophermq_client_request_rate", {"method", "code"}},
      {"gophermq_requests_total", {"method", "code"}},
      {"gophermq_request_duration_seconds_count", {"method", "code"}},
      {"gophermq_request_duration_seconds_sum", {"method", "code"}},
      {"gophermq_request_duration_seconds_bucket", {"method", "code", "le"}},
      {"gophermq_messages_refused_total", {"reason"}},
      {"gophermq_async_publish_failures_total", {"reason"}},
      {"gophermq_messages_dropped_total", {"reason"}},
      {"gophermq_shard_requests_total", {"shard"}},
      {"gophermq_build_info", {"version"}},
  };
  const std::set<std::string> methods = {
      "publish", "publish_async", "publish_batch", "subscribe", "fetch",   "ready", "unsubscribe",
      "info",    "ack",           "nack",          "stream",    "options", "other"};
  const std::map<std::string, std::set<std::string>> reasons = {
      {"gophermq_messages_refused_total",
       {"overflow", "subject_overflow", "no_subscriber", "invalid_subject"}},
      {"gophermq_async_publish_failures_total", {"overflow", "subject_overflow", "no_subscriber"}},
      {"gophermq_messages_dropped_total", {"discard_new", "discard_old"}},
  };
  static const std::regex kStatusCode("[1-5][0-9][0-9]");
  for (const Sample& sample : exposition.samples) {
    auto names = label_names.find(sample.name);
    std::set<std::string> have;
    for (const auto& [name, value] : sample.labels) have.insert(name);
    if (names == label_names.end()) {
      // The contract's other families have no labels (families beyond the
      // contract may have their own).
      const bool in_contract =
          std::any_of(expected.begin(), expected.end(),
                      [&](const auto& family) { return family.first == sample.name; });
      if (in_contract) {
        EXPECT_TRUE(have.empty()) << sample.name << " should have no labels";
      }
      continue;
    }
    EXPECT_EQ(have, names->second) << sample.name;
    if (sample.labels.contains("method")) {
      EXPECT_TRUE(methods.contains(sample.labels.at("method")))
          << sample.name << " method=" << sample.labels.at("method");
      EXPECT_TRUE(std::regex_match(sample.labels.at("code"), kStatusCode))
          << sample.name << " code=" << sample.labels.at("code");
    }
    if (auto allowed = reasons.find(sample.name); allowed != reasons.end()) {
      EXPECT_TRUE(allowed->second.contains(sample.labels.at("reason")))
          << sample.name << " reason=" << sample.labels.at("reason");
    }
  }
}

// --- Request counts ---

TEST_F(MetricsTest, CountsEveryRequestByMethodAndCode) {
  const std::string subject = UniqueSubject("counted");
  const std::string id = Subscribe(subject);
  EXPECT_EQ(Post("/api/subscribe", SubscribeBody("bad subject")).status, 400);
  PublishOk(subject, "1");
  PublishOk(subject, "2");
  EXPECT_EQ(Publish("counted.nobody", "x").status, 404);
  EXPECT_EQ(Post("/api/publish", "not json").status, 400);
  EXPECT_EQ(Post("/api/publish/async", PublishBody(subject, "3")).status, 200);
  EXPECT_EQ(Post("/api/publish/async", PublishBody("a..b", "3")).status, 400);
  EXPECT_EQ(Post("/api/fetch", FetchBody(subject, "no-such-id")).status, 404);
  EXPECT_EQ(Call("GET", "/ready").status, 204);
  EXPECT_EQ(Call("GET", "/ready").status, 204);
  EXPECT_EQ(Call("GET", "/nowhere").status, 404);
  EXPECT_EQ(Call("GET", "/api/publish").status, 405);
  // More connections, so the requests land on every shard and the counts
  // must be summed over the shards.
  for (int i = 0; i < 6; ++i) {
    auto client = Connect();
    HttpResponse response;
    ASSERT_TRUE(client->Request("POST", "/api/publish", PublishBody(subject, "more"), &response))
        << client->error();
    EXPECT_EQ(response.status, 200) << Describe(response);
  }
  // Malformed HTTP: 400 and the connection closed.
  {
    auto client = Connect();
    HttpResponse response;
    ASSERT_TRUE(client->SendRaw("NOT-HTTP\r\n\r\n"));
    ASSERT_TRUE(client->ReadResponse(&response)) << client->error();
    EXPECT_EQ(response.status, 400) << Describe(response);
  }
  // Drains the 2 + 6 synchronous publishes and maybe the async one.
  EXPECT_GE(Fetch(subject, id).size(), 8u);
  EXPECT_EQ(Post("/api/info", FetchBody(subject, id)).status, 200);
  // Not an ack-mode subscriber: each is 409.
  EXPECT_EQ(Post("/api/ack", SubscriberBody(subject, id, R"("seqs":[1])")).status, 409);
  EXPECT_EQ(Post("/api/nack", SubscriberBody(subject, id, R"("seqs":[1])")).status, 409);
  EXPECT_EQ(Post("/api/unsubscribe", FetchBody(subject, id)).status, 200);
  EXPECT_EQ(Post("/api/unsubscribe", FetchBody(subject, id)).status, 404);

  const std::vector<std::pair<Labels, double>> expected = {
      {{{"method", "subscribe"}, {"code", "200"}}, 1},
      {{{"method", "subscribe"}, {"code", "400"}}, 1},
      {{{"method", "publish"}, {"code", "200"}}, 8},
      {{{"method", "publish"}, {"code", "404"}}, 1},
      {{{"method", "publish"}, {"code", "400"}}, 1},
      {{{"method", "publish_async"}, {"code", "200"}}, 1},
      {{{"method", "publish_async"}, {"code", "400"}}, 1},
      {{{"method", "fetch"}, {"code", "200"}}, 1},
      {{{"method", "fetch"}, {"code", "404"}}, 1},
      {{{"method", "unsubscribe"}, {"code", "200"}}, 1},
      {{{"method", "unsubscribe"}, {"code", "404"}}, 1},
      {{{"method", "info"}, {"code", "200"}}, 1},
      {{{"method", "ack"}, {"code", "409"}}, 1},
      {{{"method", "nack"}, {"code", "409"}}, 1},
      {{{"method", "ready"}, {"code", "204"}}, 2},
      {{{"method", "other"}, {"code", "404"}}, 1},
      {{{"method", "other"}, {"code", "405"}}, 1},
      {{{"method", "other"}, {"code", "400"}}, 1},
  };
  const Exposition exposition = Scrape();
  double expected_total = 0;
  for (const auto& [labels, count] : expected) {
    SCOPED_TRACE(RequestLabelsText(labels));
    expected_total += count;
    EXPECT_EQ(Find(exposition, "gophermq_requests_total", labels), count);
    EXPECT_EQ(Find(exposition, "gophermq_client_request_rate", labels), count);
    EXPECT_EQ(Find(exposition, "gophermq_request_duration_seconds_count", labels), count);
  }
  // Nothing else was counted: no request made up, none counted twice.
  for (const std::string name : {"gophermq_requests_total", "gophermq_client_request_rate",
                                 "gophermq_request_duration_seconds_count"}) {
    double total = 0;
    for (const Sample& sample : exposition.samples) {
      if (sample.name == name) total += sample.value;
    }
    EXPECT_EQ(total, expected_total) << name << " summed over all labels";
  }
}

TEST_F(MetricsTest, LatencyHistogramHasTheContractBucketsAndMatchesTheCounts) {
  MakeRequestsOfEveryKind("exercise");
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Call("GET", "/ready").status, 204);
  const Exposition exposition = Scrape();
  const std::vector<std::string> kBounds = {"1e-05",  "2.5e-05", "5e-05",  "0.0001", "0.00025",
                                            "0.0005", "0.001",   "0.0025", "0.005",  "0.01",
                                            "0.025",  "0.05",    "0.1",    "0.25",   "0.5",
                                            "1",      "2.5",     "5",      "10",     "+Inf"};
  // The series of the histogram, by their method and code.
  std::map<Labels, std::vector<const Sample*>> buckets;
  for (const Sample& sample : exposition.samples) {
    if (sample.name != "gophermq_request_duration_seconds_bucket") continue;
    Labels series = sample.labels;
    series.erase("le");
    buckets[series].push_back(&sample);
  }
  ASSERT_FALSE(buckets.empty()) << "no gophermq_request_duration_seconds_bucket series";
  EXPECT_TRUE(buckets.contains({{"method", "ready"}, {"code", "204"}}));
  for (const auto& [series, samples] : buckets) {
    SCOPED_TRACE(RequestLabelsText(series));
    std::vector<std::string> bounds;
    for (const Sample* sample : samples) bounds.push_back(sample->labels.at("le"));
    EXPECT_EQ(bounds, kBounds) << "bucket bounds, in exposition order";
    for (std::size_t i = 1; i < samples.size(); ++i) {
      EXPECT_LE(samples[i - 1]->value, samples[i]->value) << "buckets must be cumulative";
    }
    const std::optional<double> count =
        Find(exposition, "gophermq_request_duration_seconds_count", series);
    const std::optional<double> sum =
        Find(exposition, "gophermq_request_duration_seconds_sum", series);
    ASSERT_TRUE(count.has_value());
    ASSERT_TRUE(sum.has_value());
    EXPECT_EQ(samples.back()->value, *count) << "the +Inf bucket holds every observation";
    EXPECT_EQ(*count, CounterValue(exposition, "gophermq_requests_total", series));
    // Loopback requests to an idle broker: well under a second each.
    EXPECT_GE(*sum, 0);
    EXPECT_LT(*sum, *count * 1.0);
  }
  EXPECT_EQ(Find(exposition, "gophermq_request_duration_seconds_count",
                 {{"method", "ready"}, {"code", "204"}}),
            21);
}

// --- Store gauges and message counters ---

TEST_F(MetricsWithFlagsTest, GaugesFollowTheStore) {
  ASSERT_NO_FATAL_FAILURE(StartBroker(
      MonitoredOptions({"--broker.max-pending=1000", "--broker.max-pending-total=5000"})));
  // Answered, so the broker has accepted the test's connection (connect()
  // alone returns once the kernel queued it).
  EXPECT_EQ(Call("GET", "/ready").status, 204);
  Exposition exposition = Scrape();
  EXPECT_EQ(Find(exposition, "gophermq_max_pending_messages"), 5000) << "the broker-wide bound";
  EXPECT_EQ(Find(exposition, "gophermq_pending_messages"), 0);
  EXPECT_EQ(Find(exposition, "gophermq_pending_bytes"), 0);
  EXPECT_EQ(Find(exposition, "gophermq_subjects"), 0);
  EXPECT_EQ(Find(exposition, "gophermq_subscribers"), 0);
  EXPECT_GE(Find(exposition, "gophermq_open_connections").value_or(-1), 1)
      << "the test's own connection is open";

  // Subject a has two subscribers (fan-out), subject b one.
  const std::string a = UniqueSubject("gauge.a");
  const std::string b = UniqueSubject("gauge.b");
  const std::string a1 = Subscribe(a);
  const std::string a2 = Subscribe(a);
  const std::string b1 = Subscribe(b);
  PublishOk(a, "hello");  // 5 bytes, stored in two queues
  PublishOk(b, "hi!");    // 3 bytes
  exposition = Scrape();
  EXPECT_EQ(Find(exposition, "gophermq_subjects"), 2);
  EXPECT_EQ(Find(exposition, "gophermq_subscribers"), 3);
  EXPECT_EQ(Find(exposition, "gophermq_pending_messages"), 3);
  EXPECT_EQ(Find(exposition, "gophermq_pending_bytes"), 8) << "each message once: 5 + 3";

  EXPECT_EQ(Fetch(a, a1), std::vector<std::string>{"hello"});
  exposition = Scrape();
  EXPECT_EQ(Find(exposition, "gophermq_pending_messages"), 2);
  EXPECT_EQ(Find(exposition, "gophermq_pending_bytes"), 8) << "\"hello\" is still in a2's queue";
  EXPECT_EQ(Find(exposition, "gophermq_messages_delivered_total"), 1);

  EXPECT_EQ(Fetch(a, a2), std::vector<std::string>{"hello"});
  EXPECT_EQ(Fetch(b, b1), std::vector<std::string>{"hi!"});
  exposition = Scrape();
  EXPECT_EQ(Find(exposition, "gophermq_pending_messages"), 0);
  EXPECT_EQ(Find(exposition, "gophermq_pending_bytes"), 0);
  EXPECT_EQ(Find(exposition, "gophermq_messages_delivered_total"), 3);
  EXPECT_EQ(Find(exposition, "gophermq_subjects"), 2) << "subscribers stay after a fetch";
  EXPECT_EQ(Find(exposition, "gophermq_subscribers"), 3);
  EXPECT_EQ(Find(exposition, "gophermq_max_pending_messages"), 5000);
}

TEST_F(MetricsWithFlagsTest, CountsPublishedDeliveredAndRefusedMessages) {
  // Room for exactly three messages in the subject, so its overflow is easy
  // to reach; the broker-wide overflow is another test's.
  ASSERT_NO_FATAL_FAILURE(StartBroker(MonitoredOptions({"--broker.max-pending=3"})));
  const std::string subject = UniqueSubject("refusals");
  const std::string id = Subscribe(subject);
  PublishOk(subject, "1");
  PublishOk(subject, "2");
  EXPECT_EQ(Post("/api/publish/async", PublishBody(subject, "3")).status, 200);
  // The async publish is stored after its answer.
  Exposition exposition = ScrapeUntil([](const Exposition& e) {
    return CounterValue(e, "gophermq_messages_published_total") >= 3;
  });
  EXPECT_EQ(Find(exposition, "gophermq_messages_published_total"), 3) << "2 sync + 1 async";
  EXPECT_EQ(Find(exposition, "gophermq_pending_messages"), 3);

  // The queue is full: refused synchronously, then asynchronously.
  EXPECT_TRUE(IsJsonResponse(Publish(subject, "4"), 429, kOverflowBody));
  EXPECT_EQ(Post("/api/publish/async", PublishBody(subject, "5")).status, 200);
  // Nobody subscribed: refused synchronously, then asynchronously.
  EXPECT_TRUE(IsJsonResponse(Publish("refusals.nobody", "6"), 404, kSubscriberNotFoundBody));
  EXPECT_EQ(Post("/api/publish/async", PublishBody("refusals.nobody", "7")).status, 200);
  // Invalid subjects are refused before any answer, async included.
  EXPECT_TRUE(IsJsonResponse(Publish("bad subject", "8"), 400, kInvalidSubjectBody));
  EXPECT_TRUE(IsJsonResponse(Post("/api/publish/async", PublishBody("a..b", "9")), 400,
                             kInvalidSubjectBody));

  exposition = ScrapeUntil([](const Exposition& e) {
    return CounterValue(e, "gophermq_async_publish_failures_total",
                        {{"reason", "subject_overflow"}}) >= 1 &&
           CounterValue(e, "gophermq_async_publish_failures_total",
                        {{"reason", "no_subscriber"}}) >= 1;
  });
  EXPECT_EQ(
      Find(exposition, "gophermq_async_publish_failures_total", {{"reason", "subject_overflow"}}),
      1);
  EXPECT_EQ(Find(exposition, "gophermq_async_publish_failures_total", {{"reason", "overflow"}}), 0);
  EXPECT_EQ(
      Find(exposition, "gophermq_async_publish_failures_total", {{"reason", "no_subscriber"}}), 1);
  EXPECT_EQ(CounterValue(exposition, "gophermq_async_publish_failures_total",
                         {{"reason", "invalid_subject"}}),
            0)
      << "an invalid subject is refused before the answer, so it is no async failure";
  EXPECT_EQ(Find(exposition, "gophermq_messages_refused_total", {{"reason", "subject_overflow"}}),
            2);
  EXPECT_EQ(Find(exposition, "gophermq_messages_refused_total", {{"reason", "overflow"}}), 0);
  EXPECT_EQ(Find(exposition, "gophermq_messages_refused_total", {{"reason", "no_subscriber"}}), 2);
  EXPECT_EQ(Find(exposition, "gophermq_messages_refused_total", {{"reason", "invalid_subject"}}),
            2);
  EXPECT_EQ(Find(exposition, "gophermq_messages_published_total"), 3) << "refusals store nothing";

  EXPECT_EQ(Fetch(subject, id), (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(Fetch(subject, id), std::vector<std::string>{});
  exposition = Scrape();
  EXPECT_EQ(Find(exposition, "gophermq_messages_delivered_total"), 3)
      << "messages returned by fetches (an empty fetch adds none)";
  EXPECT_EQ(Find(exposition, "gophermq_pending_messages"), 0);
}

// --- Connections and bytes ---

TEST_F(MetricsTest, CountsConnectionsAndBytes) {
  EXPECT_EQ(Call("GET", "/ready").status, 204);
  // Bytes sent are counted when the broker's send completes, which may be
  // a moment after the client has the response: the byte counters are
  // polled for; connection counts are exact once a request was answered.
  const Exposition before = ScrapeUntil(
      [](const Exposition& e) { return CounterValue(e, "gophermq_sent_bytes_total") > 0; });
  const double accepted_before = CounterValue(before, "gophermq_connections_accepted_total");
  const double open_before = CounterValue(before, "gophermq_open_connections");
  const double received_before = CounterValue(before, "gophermq_received_bytes_total");
  const double sent_before = CounterValue(before, "gophermq_sent_bytes_total");
  EXPECT_GE(accepted_before, 1);
  EXPECT_GE(open_before, 1);
  EXPECT_GT(received_before, 0) << "GET /ready was received";
  EXPECT_GT(sent_before, 0) << "its 204 was sent";

  constexpr int kConnections = 3;
  const std::string request = FormatRequest("GET", "/ready", "");
  // The smallest 204 response: "HTTP/1.1 204 \r\n\r\n".
  constexpr double kSmallestResponse = 17;
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(Connect());
    HttpResponse response;
    ASSERT_TRUE(clients.back()->SendRaw(request));
    ASSERT_TRUE(clients.back()->ReadResponse(&response)) << clients.back()->error();
    EXPECT_EQ(response.status, 204);
  }
  const Exposition during = ScrapeUntil([&](const Exposition& e) {
    return CounterValue(e, "gophermq_sent_bytes_total") - sent_before >=
           kConnections * kSmallestResponse;
  });
  EXPECT_GE(CounterValue(during, "gophermq_connections_accepted_total") - accepted_before,
            kConnections);
  EXPECT_GE(CounterValue(during, "gophermq_open_connections") - open_before, kConnections);
  EXPECT_GE(CounterValue(during, "gophermq_received_bytes_total") - received_before,
            static_cast<double>(kConnections * request.size()));
  EXPECT_GE(CounterValue(during, "gophermq_sent_bytes_total") - sent_before,
            kConnections * kSmallestResponse);

  // Closing them brings the gauge back (the broker sees the closes shortly).
  clients.clear();
  const Exposition after = ScrapeUntil([&](const Exposition& e) {
    return CounterValue(e, "gophermq_open_connections") <= open_before;
  });
  EXPECT_EQ(CounterValue(after, "gophermq_open_connections"), open_before);
  EXPECT_GE(CounterValue(after, "gophermq_connections_accepted_total"),
            CounterValue(during, "gophermq_connections_accepted_total"))
      << "a counter never goes down";
}

// --- Shards ---

TEST_F(MetricsTest, CountsCrossShardCallsAndPerShardRequests) {
  const unsigned shards = Shards();
  ASSERT_GE(shards, 2u) << "the harness starts two shards: " << broker_->listening_line();
  // Sixteen subjects hash to both shards (all on one: 1 in 2^15), so some of
  // these requests must be served by the shard that does not own the
  // connection.
  std::vector<std::string> subjects, ids;
  for (int i = 0; i < 16; ++i) {
    subjects.push_back(UniqueSubject("shard"));
    ids.push_back(Subscribe(subjects.back()));
  }
  for (int i = 0; i < 16; ++i) PublishOk(subjects[i], "x");
  for (int i = 0; i < 16; ++i) EXPECT_EQ(Fetch(subjects[i], ids[i]).size(), 1u);

  const Exposition exposition = Scrape();
  EXPECT_GT(CounterValue(exposition, "gophermq_cross_shard_calls_total"), 0);
  EXPECT_TRUE(Find(exposition, "gophermq_cross_shard_queue_full_total").has_value());
  double per_shard_sum = 0;
  std::set<std::string> shard_labels;
  for (const Sample& sample : exposition.samples) {
    if (sample.name != "gophermq_shard_requests_total") continue;
    shard_labels.insert(sample.labels.count("shard") ? sample.labels.at("shard") : "");
    per_shard_sum += sample.value;
  }
  std::set<std::string> expected_labels;
  for (unsigned i = 0; i < shards; ++i) expected_labels.insert(Numbered("", i));
  EXPECT_EQ(shard_labels, expected_labels) << "one series per shard, \"0\" to \"shards-1\"";
  EXPECT_GE(per_shard_sum, 48) << "16 subscribes, 16 publishes and 16 fetches";
}

// --- Build and process ---

// No scraper pipelines, but a client that does is answered whole, and one
// that floods the port owes at most about a mebibyte before it is closed:
// the next scraper is served.
TEST_F(MetricsTest, PipelinedScrapesAreAnsweredWholeAndAFloodIsBounded) {
  ASSERT_FALSE(Scrape().samples.empty());
  const std::uint16_t metrics_port = broker_->metrics_port();
  const std::string scrape = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  {
    RawSocket three;
    ASSERT_TRUE(three.Connect(metrics_port)) << three.error();
    ASSERT_TRUE(three.SendAll(scrape + scrape + scrape));
    std::string received;
    for (SplitStream split; split.responses.size() < 3;) {
      ASSERT_EQ(three.ReadSome(seconds(5), &received), RawSocket::Read::bytes)
          << "after " << split.responses.size() << " answers";
      split = SplitResponses(received);
      ASSERT_TRUE(split.problem.empty()) << split.problem;
      for (const RawResponse& response : split.responses) {
        EXPECT_EQ(response.status, 200);
        EXPECT_NE(response.body.find("gophermq_build_info"), std::string::npos);
      }
    }
  }
  // 16 KiB of pipelined scrapes, never read: answered up to about 1 MiB,
  // then the connection closes.
  std::string flood;
  while (flood.size() < (16 << 10)) flood += scrape;
  RawSocket flooder;
  ASSERT_TRUE(flooder.Connect(metrics_port)) << flooder.error();
  ASSERT_TRUE(flooder.SendAll(flood));
  std::string received;
  EXPECT_EQ(flooder.ReadToEnd(seconds(10), &received), RawSocket::End::eof);
  const SplitStream split = SplitResponses(received);
  EXPECT_TRUE(split.problem.empty()) << split.problem;
  EXPECT_EQ(split.rest, 0u) << "every answer sent whole";
  ASSERT_FALSE(split.responses.empty());
  EXPECT_LT(split.responses.size(), flood.size() / scrape.size());
  EXPECT_LE(received.size(), (1u << 20) + 2 * split.responses.front().body.size() + 1024);
  EXPECT_FALSE(Scrape().samples.empty()) << "the next scraper is served";
}

TEST_F(MetricsTest, BuildInfoCarriesTheVersion) {
  const Exposition exposition = Scrape();
  const std::optional<std::string> logged = LogField(broker_->log(), "listening", "version");
  ASSERT_TRUE(logged.has_value()) << "no version= in " << broker_->listening_line();
  int series = 0;
  for (const Sample& sample : exposition.samples) {
    if (sample.name != "gophermq_build_info") continue;
    ++series;
    EXPECT_EQ(sample.value, 1);
    EXPECT_EQ(sample.labels, (Labels{{"version", *logged}}));
  }
  EXPECT_EQ(series, 1);
  const CommandResult version = RunCommand({"--version"}, {}, milliseconds(5'000));
  EXPECT_EQ(version.stdout_text, "gophermq " + *logged + "\n");
}

TEST_F(MetricsTest, ExportsStandardProcessMetrics) {
  const Exposition exposition = Scrape();
  const double rss = Find(exposition, "process_resident_memory_bytes").value_or(-1);
  const double virtual_size = Find(exposition, "process_virtual_memory_bytes").value_or(-1);
  EXPECT_GT(rss, 0);
  EXPECT_GE(virtual_size, rss);
  EXPECT_GE(Find(exposition, "process_cpu_seconds_total").value_or(-1), 0);
  const double open_fds = Find(exposition, "process_open_fds").value_or(-1);
  const double max_fds = Find(exposition, "process_max_fds").value_or(-1);
  // At least stdio and the listeners.
  EXPECT_GE(open_fds, 4);
  EXPECT_LE(open_fds, max_fds);
  // The broker raises its soft limit to the hard one, which it inherits from us.
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  EXPECT_EQ(max_fds, static_cast<double>(limit.rlim_max));
  // Seconds since the epoch; the broker started moments ago.
  const double start_time = Find(exposition, "process_start_time_seconds").value_or(-1);
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_GT(start_time, now - 120);
  EXPECT_LE(start_time, now + 1);
}

// --- /healthz ---

using HealthzTest = BrokerTest;

struct Health {
  long long pending = -1;
  long long shards = -1;
  double uptime_seconds = -1;
};

// The exact body {"pending":N,"shards":N,"status":"ok","uptime_seconds":X}\n
// (keys sorted, one trailing newline).
std::optional<Health> DecodeHealth(const std::string& body) {
  static const std::regex kBody(
      R"(\{"pending":(0|[1-9][0-9]*),"shards":([1-9][0-9]*),"status":"ok","uptime_seconds":(-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)\}\n)");
  std::smatch match;
  if (!std::regex_match(body, match, kBody)) return std::nullopt;
  Health health;
  health.pending = std::stoll(match[1].str());
  health.shards = std::stoll(match[2].str());
  health.uptime_seconds = std::strtod(match[3].str().c_str(), nullptr);
  return health;
}

TEST_F(HealthzTest, ReportsStatusPendingShardsAndUptime) {
  HttpResponse response = Call("GET", "/healthz");
  EXPECT_EQ(response.status, 200) << Describe(response);
  EXPECT_EQ(response.MediaType(), "application/json") << Describe(response);
  std::optional<Health> health = DecodeHealth(response.body);
  ASSERT_TRUE(health.has_value()) << Describe(response);
  const std::optional<std::string> shards = LogField(broker_->log(), "listening", "shards");
  ASSERT_TRUE(shards.has_value()) << broker_->listening_line();
  EXPECT_EQ(Numbered("", health->shards), *shards);
  EXPECT_EQ(health->pending, 0);
  EXPECT_GE(health->uptime_seconds, 0);
  EXPECT_LT(health->uptime_seconds, 120) << "the broker started moments ago";
  const double first_uptime = health->uptime_seconds;

  // Pending counts one message per subscriber queue holding it.
  const std::string subject = UniqueSubject("health");
  const std::string first = Subscribe(subject);
  Subscribe(subject);
  PublishOk(subject, "m");
  response = Call("GET", "/healthz");
  health = DecodeHealth(response.body);
  ASSERT_TRUE(health.has_value()) << Describe(response);
  EXPECT_EQ(health->pending, 2);
  EXPECT_GE(health->uptime_seconds, first_uptime);
  Fetch(subject, first);
  response = Call("GET", "/healthz");
  health = DecodeHealth(response.body);
  ASSERT_TRUE(health.has_value()) << Describe(response);
  EXPECT_EQ(health->pending, 1);
}

}  // namespace
}  // namespace gophermq::testing
