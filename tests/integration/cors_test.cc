// Cross-origin answers (api-extensions.md §8, broker.cors-origins): without
// the key nothing changes; with it every answer to an allowed Origin says
// so, a browser's preflight is answered, and other origins get nothing.
#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include "test_support.h"

namespace gophermq::testing {
namespace {

using std::chrono::milliseconds;

constexpr std::string_view kApp = "https://app.example.com";
constexpr std::string_view kLocal = "http://localhost:8080";
const std::string kOrigins =
    "--broker.cors-origins=" + std::string(kApp) + "," + std::string(kLocal);

std::string OriginHeader(std::string_view origin) { return Joined({"Origin: ", origin, "\r\n"}); }

// A preflight as a browser sends it before a JSON POST.
std::string PreflightHeaders(std::string_view origin) {
  return OriginHeader(origin) +
         "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n";
}

// The response's headers whose names start with "Access-Control-", and Vary.
std::vector<std::string> CorsHeaders(const HttpResponse& response) {
  std::vector<std::string> found;
  for (const auto& [name, value] : response.headers) {
    std::string lower;
    for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower.starts_with("access-control-") || lower == "vary")
      found.push_back(name + ": " + value);
  }
  return found;
}

::testing::AssertionResult AllowsOrigin(const HttpResponse& response, std::string_view origin) {
  const std::vector<std::string> expected = {Joined({"Access-Control-Allow-Origin: ", origin}),
                                             "Vary: Origin"};
  if (CorsHeaders(response) == expected) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected only the headers allowing " << origin << "\n"
                                       << Describe(response);
}

::testing::AssertionResult HasNoCorsHeaders(const HttpResponse& response) {
  if (CorsHeaders(response).empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected no CORS headers\n" << Describe(response);
}

// --- Without broker.cors-origins -------------------------------------------

using CorsOffTest = BrokerTest;

TEST_F(CorsOffTest, AnOriginChangesNothing) {
  const std::string origin = OriginHeader(kApp);
  const std::string id = Subscribe("cors.off");
  for (const HttpResponse& response : {
           Call("POST", "/api/publish", PublishBody("cors.off", "x"), origin),
           Call("POST", "/api/fetch", FetchBody("cors.off", id), origin),
           Call("POST", "/api/publish", PublishBody("cors.nobody", "x"), origin),
           Call("GET", "/ready", "", origin),
           Call("GET", "/no/such/path", "", origin),
       }) {
    EXPECT_TRUE(HasNoCorsHeaders(response));
    // Content-Type and Content-Length, or nothing (204): as without an Origin.
    EXPECT_LE(response.headers.size(), 2u) << Describe(response);
  }
}

TEST_F(CorsOffTest, OptionsIsAWrongMethodAsBefore) {
  const HttpResponse response = Call("OPTIONS", "/api/publish", "", PreflightHeaders(kApp));
  EXPECT_TRUE(IsJsonResponse(response, 405, kMethodNotAllowedBody));
  ASSERT_NE(response.Header("Allow"), nullptr) << Describe(response);
  EXPECT_EQ(*response.Header("Allow"), "POST");
  EXPECT_TRUE(HasNoCorsHeaders(response));
}

// --- With a list of origins --------------------------------------------------

class CorsTest : public BrokerTest {
 protected:
  std::optional<BrokerOptions> Options() const override { return MonitoredOptions({kOrigins}); }

  HttpResponse PostFrom(std::string_view origin, std::string_view path, std::string_view body) {
    return Call("POST", path, body, OriginHeader(origin));
  }
};

TEST_F(CorsTest, AnAllowedOriginIsNamedOnEveryAnswer) {
  for (std::string_view origin : {kApp, kLocal}) {
    SCOPED_TRACE(origin);
    const std::string subject = UniqueSubject("cors.every");
    const HttpResponse subscribed = PostFrom(origin, "/api/subscribe", SubscribeBody(subject));
    EXPECT_TRUE(AllowsOrigin(subscribed, origin));
    const std::optional<SubscribeReply> reply = DecodeSubscribeReply(subscribed.body);
    ASSERT_TRUE(reply) << Describe(subscribed);
    const std::string& id = reply->id;

    const HttpResponse published = PostFrom(origin, "/api/publish", PublishBody(subject, "hi"));
    EXPECT_TRUE(IsJsonResponse(published, 200, kOkBody));
    EXPECT_TRUE(AllowsOrigin(published, origin));
    const HttpResponse fetched = PostFrom(origin, "/api/fetch", FetchBody(subject, id));
    EXPECT_TRUE(IsJsonResponse(fetched, 200, ExpectedFetchBody({"hi"}, id, subject)));
    EXPECT_TRUE(AllowsOrigin(fetched, origin));
    EXPECT_TRUE(AllowsOrigin(PostFrom(origin, "/api/info", SubscriberBody(subject, id)), origin));
    EXPECT_TRUE(AllowsOrigin(PostFrom(origin, "/api/publish/async", PublishBody(subject, "async")),
                             origin));
    const HttpResponse not_acks =
        PostFrom(origin, "/api/ack", SubscriberBody(subject, id, R"("seqs":[1])"));
    EXPECT_EQ(not_acks.status, 409) << Describe(not_acks);
    EXPECT_TRUE(AllowsOrigin(not_acks, origin));
    EXPECT_TRUE(
        AllowsOrigin(PostFrom(origin, "/api/unsubscribe", SubscriberBody(subject, id)), origin));

    const HttpResponse ready = Call("GET", "/ready", "", OriginHeader(origin));
    EXPECT_EQ(ready.status, 204);
    EXPECT_TRUE(AllowsOrigin(ready, origin));
    EXPECT_TRUE(AllowsOrigin(Call("GET", "/healthz", "", OriginHeader(origin)), origin));
  }
}

TEST_F(CorsTest, ErrorsNameTheOriginToo) {
  // A page must be able to read why its call failed.
  struct Case {
    std::string_view method;
    std::string_view path;
    std::string body;
    int status;
    std::string_view expected_body;
  };
  for (const Case& c : {
           Case{"POST", "/api/publish", PublishBody("bad..subject", "x"), 400, kInvalidSubjectBody},
           Case{"POST", "/api/subscribe", "not json", 400, kInvalidBodyBody},
           Case{"POST", "/api/publish", PublishBody("cors.nobody", "x"), 404,
                kSubscriberNotFoundBody},
           Case{"POST", "/api/fetch", FetchBody("cors.nobody", "not-an-id"), 404, kBadIdBody},
           Case{"GET", "/api/nothing", "", 404, kNotFoundBody},
           Case{"GET", "/api/publish", "", 405, kMethodNotAllowedBody},
           Case{"OPTIONS", "/ready", "", 405, kMethodNotAllowedBody},
           Case{"OPTIONS", "/api/nothing", "", 404, kNotFoundBody},
       }) {
    SCOPED_TRACE(Joined({c.method, " ", c.path}));
    const HttpResponse response = Call(c.method, c.path, c.body, OriginHeader(kApp));
    EXPECT_TRUE(IsJsonResponse(response, c.status, c.expected_body));
    EXPECT_TRUE(AllowsOrigin(response, kApp));
  }
}

TEST_F(CorsTest, ABrokerOverflowNamesTheOrigin) {
  BrokerOptions full;
  full.flags = {kOrigins, "--broker.max-pending=1"};
  ASSERT_NO_FATAL_FAILURE(StartBroker(full));
  Subscribe("cors.full");
  PublishOk("cors.full", "fills it");
  const HttpResponse refused = PostFrom(kLocal, "/api/publish", PublishBody("cors.full", "x"));
  EXPECT_TRUE(IsJsonResponse(refused, 429, kOverflowBody));
  EXPECT_TRUE(AllowsOrigin(refused, kLocal));
}

TEST_F(CorsTest, OtherOriginsAndNoOriginGetNothing) {
  const std::string id = Subscribe("cors.other");
  for (const std::string& headers : {
           std::string(),
           OriginHeader("https://evil.example"),
           OriginHeader("http://app.example.com"),
           OriginHeader("https://app.example.com.evil.example"),
           OriginHeader("https://app.example.co"),
           OriginHeader("null"),
           OriginHeader("*"),
           // Two Origins name no one origin.
           OriginHeader(kApp) + OriginHeader(kApp),
       }) {
    SCOPED_TRACE(headers);
    EXPECT_TRUE(
        HasNoCorsHeaders(Call("POST", "/api/publish", PublishBody("cors.other", "x"), headers)));
    EXPECT_TRUE(HasNoCorsHeaders(Call("POST", "/api/fetch", FetchBody("cors.other", id), headers)));
    EXPECT_TRUE(HasNoCorsHeaders(Call("GET", "/api/nothing", "", headers)));
    const HttpResponse preflight = Call("OPTIONS", "/api/publish", "", headers);
    EXPECT_EQ(preflight.status, 204) << Describe(preflight);
    EXPECT_TRUE(HasNoCorsHeaders(preflight));
  }
}

TEST_F(CorsTest, APreflightIsAnswered204WithWhatTheBrowserAsks) {
  for (const char* path : {"/api/publish", "/api/publish/async", "/api/subscribe", "/api/fetch",
                           "/api/unsubscribe", "/api/info", "/api/ack", "/api/nack"}) {
    SCOPED_TRACE(path);
    const HttpResponse response = Call("OPTIONS", path, "", PreflightHeaders(kLocal));
    EXPECT_EQ(response.status, 204) << Describe(response);
    EXPECT_EQ(response.body, "");
    EXPECT_EQ(CorsHeaders(response), (std::vector<std::string>{
                                         "Access-Control-Allow-Methods: GET, POST, OPTIONS",
                                         "Access-Control-Allow-Headers: Content-Type",
                                         "Access-Control-Max-Age: 86400",
                                         "Access-Control-Allow-Origin: http://localhost:8080",
                                         "Vary: Origin",
                                     }))
        << Describe(response);
  }
  // The connection goes on: the POST the preflight was for.
  const std::string subject = UniqueSubject("cors.after");
  EXPECT_TRUE(AllowsOrigin(PostFrom(kLocal, "/api/subscribe", SubscribeBody(subject)), kLocal));
  // Counted as the `options` method.
  EXPECT_TRUE(MetricReaches(R"(gophermq_requests_total{method="options",code="204"})", 8));
}

TEST_F(CorsTest, AnswersFromTheOtherShardNameTheOrigin) {
  // The broker runs two shards; of these subjects each owns some, so most
  // answers travel from the owner back to this connection's shard.
  constexpr int kSubjects = 16;
  std::vector<std::string> subjects, ids;
  for (int s = 0; s < kSubjects; ++s) {
    subjects.push_back(SubjectName("cors.shards", s));
    const HttpResponse subscribed = PostFrom(kApp, "/api/subscribe", SubscribeBody(subjects[s]));
    EXPECT_TRUE(AllowsOrigin(subscribed, kApp));
    const std::optional<SubscribeReply> reply = DecodeSubscribeReply(subscribed.body);
    ASSERT_TRUE(reply) << Describe(subscribed);
    ids.push_back(reply->id);
  }
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(subjects[s]);
    EXPECT_TRUE(AllowsOrigin(PostFrom(kApp, "/api/publish", PublishBody(subjects[s], "m")), kApp));
    const HttpResponse fetched = PostFrom(kApp, "/api/fetch", FetchBody(subjects[s], ids[s]));
    EXPECT_TRUE(IsJsonResponse(fetched, 200, ExpectedFetchBody({"m"}, ids[s], subjects[s])));
    EXPECT_TRUE(AllowsOrigin(fetched, kApp));
    // A 404 framed where the call returns, and a 409 framed on the owner.
    EXPECT_TRUE(
        AllowsOrigin(PostFrom(kApp, "/api/fetch",
                              FetchBody(subjects[s], "7c9e6679-7425-40de-944b-e07fc1f90ae7")),
                     kApp));
    EXPECT_TRUE(AllowsOrigin(
        PostFrom(kApp, "/api/nack", SubscriberBody(subjects[s], ids[s], R"("seqs":[1])")), kApp));
  }
  EXPECT_GT(Metric("gophermq_cross_shard_calls_total"), 0);

  // A fetch that waits on the owner, answered when a publish comes.
  for (int s = 0; s < 4; ++s) {
    SCOPED_TRACE(subjects[s]);
    std::unique_ptr<HttpClient> waiting = Connect();
    ASSERT_TRUE(waiting);
    ASSERT_TRUE(waiting->SendRaw(FormatRequest(
        "POST", "/api/fetch", SubscriberBody(subjects[s], ids[s], R"("wait_ms":20000)"),
        OriginHeader(kLocal))));
    ASSERT_TRUE(MetricReaches("gophermq_waiting_fetches", 1));
    PublishOk(subjects[s], "late");
    const HttpResponse answered = Read(*waiting);
    EXPECT_EQ(answered.status, 200) << Describe(answered);
    EXPECT_TRUE(AllowsOrigin(answered, kLocal));
  }
}

// --- Any origin ----------------------------------------------------------------

class CorsAnyOriginTest : public BrokerTest {
 protected:
  std::optional<BrokerOptions> Options() const override {
    BrokerOptions options;
    options.flags = {"--broker.cors-origins=*"};
    return options;
  }
};

TEST_F(CorsAnyOriginTest, EveryOriginGetsAStarWithoutVary) {
  const std::vector<std::string> star = {"Access-Control-Allow-Origin: *"};
  const std::string id = Subscribe("cors.any");
  for (std::string_view origin : {kApp, std::string_view("http://anything.example:1234")}) {
    SCOPED_TRACE(origin);
    const std::string header = OriginHeader(origin);
    EXPECT_EQ(CorsHeaders(Call("POST", "/api/publish", PublishBody("cors.any", "x"), header)),
              star);
    EXPECT_EQ(CorsHeaders(Call("POST", "/api/fetch", FetchBody("cors.any", id), header)), star);
    EXPECT_EQ(CorsHeaders(Call("POST", "/api/publish", PublishBody("bad..s", "x"), header)), star);
    const HttpResponse preflight = Call("OPTIONS", "/api/fetch", "", PreflightHeaders(origin));
    EXPECT_EQ(preflight.status, 204);
    EXPECT_EQ(CorsHeaders(preflight), (std::vector<std::string>{
                                          "Access-Control-Allow-Methods: GET, POST, OPTIONS",
                                          "Access-Control-Allow-Headers: Content-Type",
                                          "Access-Control-Max-Age: 86400",
                                          "Access-Control-Allow-Origin: *",
                                      }));
  }
  // Not a cross-origin request: nothing to allow.
  EXPECT_TRUE(HasNoCorsHeaders(Post("/api/publish", PublishBody("cors.any", "x"))));
}

// --- Configuration -------------------------------------------------------------

TEST(CorsConfigTest, ABadOriginIsOneLineAndExitCode2) {
  const std::vector<std::string> args = {"broker", "--broker.port=0", "--broker.host=127.0.0.1",
                                         "--monitoring.enable=false"};
  auto with = [&args](const std::string& flag) {
    std::vector<std::string> all = args;
    all.push_back(flag);
    return all;
  };
  for (const CommandResult& result : {
           RunCommand(with("--broker.cors-origins=https://app.example.com/"), {},
                      milliseconds(5000)),
           RunCommand(with("--broker.cors-origins=*,http://a.example"), {}, milliseconds(5000)),
           RunCommand(args, {{"GOPHERMQ_BROKER_CORS__ORIGINS", "app.example.com"}},
                      milliseconds(5000)),
           RunCommand(args, {}, milliseconds(5000),
                      "broker:\n  cors-origins:\n    - http://a.example\n    - ftp:/x\n"),
       }) {
    EXPECT_TRUE(result.exited) << result.stderr_text;
    EXPECT_EQ(result.exit_code, 2) << result.stderr_text;
    EXPECT_NE(result.stderr_text.find("broker.cors-origins must be"), std::string::npos)
        << result.stderr_text;
    EXPECT_EQ(std::count(result.stderr_text.begin(), result.stderr_text.end(), '\n'), 1)
        << result.stderr_text;
  }
}

class CorsConfigLayersTest : public BrokerTest {
 protected:
  std::optional<BrokerOptions> Options() const override { return std::nullopt; }
};

TEST_F(CorsConfigLayersTest, AYamlListAndTheEnvironmentAreRead) {
  BrokerOptions from_yaml;
  from_yaml.config_yaml =
      "broker:\n  cors-origins:\n    - HTTPS://App.Example.com:443\n    - http://localhost:8080\n";
  ASSERT_NO_FATAL_FAILURE(StartBroker(from_yaml));
  // Kept as a browser writes it: lower-case, no default port.
  EXPECT_TRUE(AllowsOrigin(Call("GET", "/ready", "", OriginHeader(kApp)), kApp));
  EXPECT_TRUE(AllowsOrigin(Call("GET", "/ready", "", OriginHeader(kLocal)), kLocal));

  BrokerOptions from_environment;
  from_environment.env = {{"GOPHERMQ_BROKER_CORS__ORIGINS", "http://localhost:8080"}};
  ASSERT_NO_FATAL_FAILURE(StartBroker(from_environment));
  EXPECT_TRUE(AllowsOrigin(Call("GET", "/ready", "", OriginHeader(kLocal)), kLocal));
  EXPECT_TRUE(HasNoCorsHeaders(Call("GET", "/ready", "", OriginHeader(kApp))));
}

}  // namespace
}  // namespace gophermq::testing
