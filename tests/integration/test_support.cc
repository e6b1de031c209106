#include "test_support.h"

#include <simdjson.h>

#include <atomic>
#include <cctype>

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

std::string Numbered(std::string_view prefix, long long n) {
  std::string text(prefix);
  text += std::to_string(n);
  return text;
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
  std::string body = SubscribeBody(subject);
  body.pop_back();  // the closing brace
  body += ',';
  body += fields;
  body += '}';
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

}  // namespace gophermq::testing
