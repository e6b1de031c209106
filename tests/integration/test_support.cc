#include "test_support.h"

#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <sstream>
#include <thread>

namespace gophermq::testing {

std::string SubscribeBody(std::string_view subject) {
  return "{\"subject\":" + JsonQuote(subject) + "}";
}

std::string PublishBody(std::string_view subject, std::string_view data) {
  return "{\"subject\":" + JsonQuote(subject) + ",\"data\":" + JsonQuote(data) + "}";
}

std::string FetchBody(std::string_view subject, std::string_view id) {
  return "{\"subject\":" + JsonQuote(subject) + ",\"id\":" + JsonQuote(id) + "}";
}

std::string WithFields(std::string body, std::string_view fields) {
  if (fields.empty()) return body;
  body.pop_back();  // the closing brace
  body += ',';
  body += fields;
  body += '}';
  return body;
}

std::string SubscriberBody(std::string_view subject, std::string_view id, std::string_view fields) {
  return WithFields(FetchBody(subject, id), fields);
}

std::string ExpectedFetchBody(const std::vector<std::string>& data, std::string_view id,
                              std::string_view subject) {
  std::string body = "{\"data\":[";
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (i > 0) body += ',';
    body += JsonQuote(data[i]);
  }
  body += "],\"id\":" + JsonQuote(id) + ",\"subject\":" + JsonQuote(subject) + "}\n";
  return body;
}

std::string Describe(const HttpResponse& response) {
  std::string out =
      response.version + " " + std::to_string(response.status) + " " + response.reason + "\n";
  for (const auto& [name, value] : response.headers) out += name + ": " + value + "\n";
  out += "\n";
  out += response.body.size() > 2000 ? response.body.substr(0, 2000) + "...(truncated)"
                                     : response.body;
  return out;
}

::testing::AssertionResult IsJsonResponse(const HttpResponse& response, int status,
                                          std::string_view body) {
  if (response.status != status || response.body != body ||
      response.MediaType() != "application/json") {
    return ::testing::AssertionFailure()
           << "expected " << status << " application/json with body [" << body << "]\n--- got ---\n"
           << Describe(response);
  }
  return ::testing::AssertionSuccess();
}

bool IsUuidV4(std::string_view text) {
  if (text.size() != 36) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  // Version nibble 4; variant bits 10xx (8, 9, a or b).
  return text[14] == '4' &&
         (text[19] == '8' || text[19] == '9' || text[19] == 'a' || text[19] == 'b');
}

namespace {

// Parses `body` as one JSON object and checks its keys are exactly `keys`, in
// that order (the Go encoder writes struct fields sorted, and we keep that).
bool ParseObject(simdjson::dom::parser& parser, const std::string& body,
                 std::initializer_list<std::string_view> keys, simdjson::dom::object* object) {
  simdjson::dom::element root;
  if (parser.parse(body).get(root) != simdjson::SUCCESS) return false;
  if (root.get_object().get(*object) != simdjson::SUCCESS) return false;
  auto expected = keys.begin();
  for (auto field : *object) {
    if (expected == keys.end() || field.key != *expected) return false;
    ++expected;
  }
  return expected == keys.end();
}

bool GetString(simdjson::dom::object& object, std::string_view key, std::string* out) {
  std::string_view value;
  if (object[key].get_string().get(value) != simdjson::SUCCESS) return false;
  out->assign(value);
  return true;
}

}  // namespace

std::optional<SubscribeReply> DecodeSubscribeReply(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::object object;
  SubscribeReply reply;
  if (!ParseObject(parser, body, {"id", "subject"}, &object) ||
      !GetString(object, "id", &reply.id) || !GetString(object, "subject", &reply.subject)) {
    return std::nullopt;
  }
  return reply;
}

std::optional<FetchReply> DecodeFetchReply(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::object object;
  FetchReply reply;
  if (!ParseObject(parser, body, {"data", "id", "subject"}, &object) ||
      !GetString(object, "id", &reply.id) || !GetString(object, "subject", &reply.subject)) {
    return std::nullopt;
  }
  simdjson::dom::array data;
  if (object["data"].get_array().get(data) != simdjson::SUCCESS) return std::nullopt;
  for (auto element : data) {
    std::string_view text;
    if (element.get_string().get(text) != simdjson::SUCCESS) return std::nullopt;
    reply.data.emplace_back(text);
  }
  return reply;
}

std::optional<JsonObject> DecodeJsonObject(const std::string& body) {
  if (body.empty() || body.back() != '\n') return std::nullopt;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::dom::object object;
  if (parser.parse(body).get(root) != simdjson::SUCCESS ||
      root.get_object().get(object) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  JsonObject out;
  for (auto field : object) {
    const std::string key(field.key);
    out.keys.push_back(key);
    std::string_view text;
    std::uint64_t number = 0;
    simdjson::dom::array array;
    if (field.value.get_string().get(text) == simdjson::SUCCESS) {
      out.strings[key] = std::string(text);
    } else if (field.value.get_uint64().get(number) == simdjson::SUCCESS) {
      out.numbers[key] = number;
    } else if (field.value.get_array().get(array) == simdjson::SUCCESS) {
      std::vector<std::string> texts;
      std::vector<std::uint64_t> numbers;
      for (auto element : array) {
        if (element.get_string().get(text) == simdjson::SUCCESS) {
          texts.emplace_back(text);
        } else if (element.get_uint64().get(number) == simdjson::SUCCESS) {
          numbers.push_back(number);
        } else {
          return std::nullopt;
        }
      }
      if (!texts.empty() && !numbers.empty()) return std::nullopt;
      if (numbers.empty()) out.string_arrays[key] = texts;
      if (texts.empty()) out.number_arrays[key] = numbers;
    } else {
      return std::nullopt;
    }
  }
  return out;
}

int TestParts() {
  return ::testing::UnitTest::GetInstance()->current_test_info()->result()->total_part_count();
}

int SoakSeconds(int fallback, int most) {
  const char* text = std::getenv("GOPHERMQ_SOAK_SECONDS");
  if (text == nullptr || *text == '\0') return fallback;
  int value = 0;
  const std::string_view view(text);
  if (std::from_chars(view.data(), view.data() + view.size(), value).ec != std::errc() ||
      value < 1) {
    return fallback;
  }
  return std::min(value, most);
}

std::string Joined(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (const std::string_view part : parts) out += part;
  return out;
}

std::string Numbered(std::string_view prefix, long long n) {
  std::string text(prefix);
  text += std::to_string(n);
  return text;
}

std::string SubjectName(std::string_view prefix, int s) {
  return Numbered(Joined({prefix, "."}), s);
}

std::string UniqueSubject(std::string_view prefix) {
  static std::atomic<int> counter{0};
  return Numbered(std::string(prefix) + ".s", counter.fetch_add(1));
}

// --- BrokerTest ---

void BrokerTest::SetUp() {
  const std::optional<BrokerOptions> options = Options();
  if (options) {
    ASSERT_NO_FATAL_FAILURE(StartBroker(*options));
  }
}

void BrokerTest::StartBroker(const BrokerOptions& options) {
  client_.reset();
  if (broker_) {
    const std::string log = broker_->log();
    const std::string stop_error = broker_->Stop();
    EXPECT_EQ(stop_error, "") << "--- broker log ---\n" << log;
    broker_.reset();
  }
  std::string error;
  broker_ = BrokerProcess::Start(options, &error);
  ASSERT_NE(broker_, nullptr) << error;
  client_ = std::make_unique<HttpClient>();
  ASSERT_TRUE(client_->Connect(broker_->port())) << client_->error();
}

void BrokerTest::TearDown() {
  client_.reset();
  if (!broker_) return;
  const std::string stop_error = broker_->Stop();
  EXPECT_EQ(stop_error, "");
  if (HasFailure()) {
    std::string log = broker_->log();
    if (log.size() > 20000) log = "...\n" + log.substr(log.size() - 20000);
    std::cerr << "--- broker log (port " << broker_->port() << ") ---\n" << log << "---\n";
  }
  broker_.reset();
}

std::unique_ptr<HttpClient> BrokerTest::Connect() const {
  auto client = std::make_unique<HttpClient>();
  EXPECT_TRUE(client->Connect(port())) << client->error();
  return client;
}

HttpResponse BrokerTest::Call(std::string_view method, std::string_view path, std::string_view body,
                              std::string_view extra_headers) {
  HttpResponse response;
  if (client_ == nullptr) {
    ADD_FAILURE() << "no client connection";
    return response;
  }
  if (!client_->Request(method, path, body, &response, extra_headers)) {
    ADD_FAILURE() << method << " " << path << " failed: " << client_->error();
    response.status = 0;
  }
  return response;
}

void BrokerTest::ExpectNewConnectionsServed(int count) {
  for (int i = 0; i < count; ++i) {
    HttpClient fresh;
    HttpResponse ready;
    if (!fresh.Connect(port()) || !fresh.Request("GET", "/ready", "", &ready)) {
      ADD_FAILURE() << "new connection " << i << ": " << fresh.error();
      continue;
    }
    EXPECT_EQ(ready.status, 204) << "GET /ready on new connection " << i << ":\n"
                                 << Describe(ready);
  }
}

std::string BrokerTest::Subscribe(std::string_view subject) {
  const HttpResponse response = Post("/api/subscribe", SubscribeBody(subject));
  const std::optional<SubscribeReply> reply = DecodeSubscribeReply(response.body);
  if (response.status != 200 || !reply || reply->subject != subject || !IsUuidV4(reply->id)) {
    ADD_FAILURE() << "subscribe " << JsonQuote(subject) << ": unexpected reply\n"
                  << Describe(response);
    return {};
  }
  return reply->id;
}

std::string BrokerTest::SubscribeWith(std::string_view subject, std::string_view fields) {
  const std::string body = WithFields(SubscribeBody(subject), fields);
  const HttpResponse response = Post("/api/subscribe", body);
  const std::optional<SubscribeReply> reply = DecodeSubscribeReply(response.body);
  if (response.status != 200 || !reply || reply->subject != subject || !IsUuidV4(reply->id)) {
    ADD_FAILURE() << "subscribe " << body << ": unexpected reply\n" << Describe(response);
    return {};
  }
  return reply->id;
}

void BrokerTest::PublishOk(std::string_view subject, std::string_view data) {
  EXPECT_TRUE(IsJsonResponse(Publish(subject, data), 200, kOkBody))
      << "publish " << JsonQuote(subject) << " " << JsonQuote(data);
}

std::vector<std::string> BrokerTest::Fetch(std::string_view subject, std::string_view id) {
  const HttpResponse response = Post("/api/fetch", FetchBody(subject, id));
  const std::optional<FetchReply> reply = DecodeFetchReply(response.body);
  if (response.status != 200 || response.MediaType() != "application/json" || !reply ||
      reply->id != id || reply->subject != subject || response.body.back() != '\n') {
    ADD_FAILURE() << "fetch " << JsonQuote(subject) << " " << id << ": unexpected reply\n"
                  << Describe(response);
    return {};
  }
  return reply->data;
}

std::unique_ptr<HttpClient> BrokerTest::SendFetch(std::string_view subject, std::string_view id,
                                                  std::string_view fields,
                                                  std::chrono::milliseconds timeout) const {
  auto client = std::make_unique<HttpClient>(timeout);
  EXPECT_TRUE(client->Connect(port())) << client->error();
  EXPECT_TRUE(
      client->SendRaw(FormatRequest("POST", "/api/fetch", SubscriberBody(subject, id, fields))))
      << client->error();
  return client;
}

HttpResponse BrokerTest::Read(HttpClient& client) {
  HttpResponse response;
  EXPECT_TRUE(client.ReadResponse(&response)) << client.error();
  return response;
}

SubscriberInfo BrokerTest::GetInfo(std::string_view subject, std::string_view id,
                                   std::string_view group) {
  static const std::vector<std::string> kKeys = {
      "id", "idle_ms", "inflight", "pending", "pending_bytes", "subject", "waiting"};
  static const std::vector<std::string> kMemberKeys = {
      "group", "id", "idle_ms", "inflight", "pending", "pending_bytes", "subject", "waiting"};
  const HttpResponse response = Post("/api/info", SubscriberBody(subject, id));
  const std::optional<JsonObject> object = DecodeJsonObject(response.body);
  SubscriberInfo info;
  std::string answered_group;
  std::string answered_id;
  std::string answered_subject;
  const bool decoded = object && object->keys == (group.empty() ? kKeys : kMemberKeys) &&
                       (group.empty() || GetField(object->strings, "group", &answered_group)) &&
                       GetField(object->strings, "id", &answered_id) &&
                       GetField(object->numbers, "idle_ms", &info.idle_ms) &&
                       GetField(object->numbers, "inflight", &info.inflight) &&
                       GetField(object->numbers, "pending", &info.pending) &&
                       GetField(object->numbers, "pending_bytes", &info.pending_bytes) &&
                       GetField(object->strings, "subject", &answered_subject) &&
                       GetField(object->numbers, "waiting", &info.waiting);
  // The exact bytes too: no white space, integers as plain digits.
  const std::string expected_body = Joined(
      {"{", group.empty() ? "" : Joined({"\"group\":", JsonQuote(group), ","}),
       "\"id\":", JsonQuote(id), ",\"idle_ms\":", std::to_string(info.idle_ms), ",\"inflight\":",
       std::to_string(info.inflight), ",\"pending\":", std::to_string(info.pending),
       ",\"pending_bytes\":", std::to_string(info.pending_bytes),
       ",\"subject\":", JsonQuote(subject), ",\"waiting\":", std::to_string(info.waiting), "}\n"});
  if (response.status != 200 || response.MediaType() != "application/json" || !decoded ||
      answered_group != group || answered_id != id || answered_subject != subject ||
      response.body != expected_body) {
    ADD_FAILURE() << "info " << subject << " " << id << (group.empty() ? "" : " group ") << group
                  << ": not the info object\n"
                  << Describe(response);
  }
  return info;
}

double BrokerTest::Metric(std::string_view name) {
  std::string error;
  const std::optional<std::string> scrape = ScrapeMetrics(broker_->metrics_port(), &error);
  EXPECT_TRUE(scrape) << error;
  return scrape ? MetricValue(*scrape, name).value_or(-1) : -1;
}

::testing::AssertionResult BrokerTest::MetricBecomes(std::string_view name,
                                                     const std::function<bool(double)>& holds,
                                                     std::string_view expected) {
  return Eventually([&] { return Metric(name); }, holds, name, expected);
}

::testing::AssertionResult BrokerTest::MetricReaches(std::string_view name, double value) {
  std::ostringstream expected;
  expected << value;
  return MetricBecomes(
      name, [value](double seen) { return seen == value; }, expected.str());
}

void BrokerTest::MakeRequestsOfEveryKind(std::string_view prefix) {
  const std::string subject = UniqueSubject(prefix);
  const std::string id = Subscribe(subject);
  PublishOk(subject, "one");
  EXPECT_EQ(Post("/api/publish/async", PublishBody(subject, "two")).status, 200);
  const std::string nobody = std::string(prefix) + ".nobody";
  EXPECT_EQ(Publish(nobody, "x").status, 404);
  EXPECT_EQ(Publish("bad..subject", "x").status, 400);
  EXPECT_EQ(Post("/api/publish/async", PublishBody(nobody + ".async", "x")).status, 200);
  Fetch(subject, id);
  EXPECT_EQ(Call("GET", "/ready").status, 204);
  EXPECT_EQ(Call("GET", "/no/such/path").status, 404);
}

std::optional<std::string> ScrapeMetrics(std::uint16_t metrics_port, std::string* error) {
  HttpClient client(std::chrono::seconds(10));
  HttpResponse response;
  if (!client.Connect(metrics_port) || !client.Request("GET", "/metrics", "", &response)) {
    *error = "GET /metrics: " + client.error();
    return std::nullopt;
  }
  if (response.status != 200) {
    *error = "GET /metrics: " + Describe(response);
    return std::nullopt;
  }
  return std::move(response.body);
}

BrokerOptions MonitoredOptions(std::vector<std::string> flags) {
  BrokerOptions options;
  options.monitoring_address = "127.0.0.1:0";
  options.flags = std::move(flags);
  return options;
}

::testing::AssertionResult Eventually(const std::function<double()>& read,
                                      const std::function<bool(double)>& holds,
                                      std::string_view what, std::string_view expected) {
  const auto deadline = std::chrono::steady_clock::now() + kPollFor;
  double seen = -1;
  for (;;) {
    seen = read();
    if (holds(seen)) return ::testing::AssertionSuccess();
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(kPollPause);
  }
  return ::testing::AssertionFailure()
         << what << " stayed " << seen << ", expected it to become " << expected;
}

std::optional<double> MetricValue(std::string_view exposition, std::string_view name) {
  std::size_t line_start = 0;
  while (line_start < exposition.size()) {
    std::size_t line_end = exposition.find('\n', line_start);
    if (line_end == std::string_view::npos) line_end = exposition.size();
    const std::string_view line = exposition.substr(line_start, line_end - line_start);
    if (line.size() > name.size() && line.starts_with(name) && line[name.size()] == ' ') {
      const std::string value(line.substr(name.size() + 1));
      char* parse_end = nullptr;
      const double parsed = std::strtod(value.c_str(), &parse_end);
      if (parse_end != value.c_str()) return parsed;
      return std::nullopt;
    }
    line_start = line_end + 1;
  }
  return std::nullopt;
}

std::optional<std::vector<std::pair<std::string, std::string>>> PrometheusQuery(
    std::uint16_t port, const std::string& query, std::string* raw) {
  HttpClient client(std::chrono::milliseconds(2'000));
  HttpResponse response;
  if (!client.Connect(port) ||
      !client.Request("GET", "/api/v1/query?query=" + query, "", &response)) {
    *raw = client.error();
    return std::nullopt;
  }
  *raw = response.body;
  if (response.status != 200) return std::nullopt;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(response.body).get(root) != simdjson::SUCCESS) return std::nullopt;
  std::string_view status;
  simdjson::dom::array result;
  if (root["status"].get_string().get(status) != simdjson::SUCCESS || status != "success" ||
      root["data"]["result"].get_array().get(result) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  // Each element: {"metric":{...},"value":[<time>,"<value>"]}; kept as
  // (metric name or job, value).
  std::vector<std::pair<std::string, std::string>> values;
  for (simdjson::dom::element element : result) {
    std::string_view value;
    if (element["value"].at(1).get_string().get(value) != simdjson::SUCCESS) return std::nullopt;
    std::string_view name;
    if (element["metric"]["__name__"].get_string().get(name) != simdjson::SUCCESS) name = "";
    values.emplace_back(std::string(name), std::string(value));
  }
  return values;
}

bool StartPrometheus(Subprocess& server, const std::string& prometheus, const std::string& dir,
                     std::uint16_t web_port, std::string* error) {
  return server.Spawn({prometheus, "--config.file=" + dir + "/prometheus.yml",
                       "--storage.tsdb.path=" + dir + "/prometheus-data",
                       Numbered("--web.listen-address=127.0.0.1:", web_port)},
                      OurEnvironment(), dir, error);
}

}  // namespace gophermq::testing
