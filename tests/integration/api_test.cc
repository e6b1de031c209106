// The four API endpoints, /ready and routing: api.md parts 1 and 2, with
// exact status codes and exact body bytes.
#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test_support.h"

namespace gophermq::testing {
namespace {

using ApiTest = BrokerTest;

// Subjects the contract calls invalid: empty tokens, or a space, tab, CR or LF.
const std::vector<std::string>& InvalidSubjects() {
  static const std::vector<std::string> subjects = {
      "", ".", ".a", "a.", "a..b", "a b", "a\tb", "a\nb", "a\rb", " a", "a ", "..",
  };
  return subjects;
}

// --- /ready and routing ---

TEST_F(ApiTest, ReadyAnswers204WithNoBody) {
  // Pipelined behind it, a second request shows no stray body bytes followed the 204.
  ASSERT_TRUE(
      client_->SendRaw(FormatRequest("GET", "/ready", "") + FormatRequest("GET", "/ready", "")));
  for (int i = 0; i < 2; ++i) {
    HttpResponse response;
    ASSERT_TRUE(client_->ReadResponse(&response)) << client_->error();
    EXPECT_EQ(response.status, 204) << Describe(response);
    EXPECT_EQ(response.body, "");
    // RFC 9110 8.6: no Content-Length on a 204 (tolerate "0").
    if (const std::string* length = response.Header("Content-Length")) {
      EXPECT_EQ(*length, "0");
    }
    EXPECT_EQ(response.Header("Transfer-Encoding"), nullptr) << Describe(response);
  }
}

TEST_F(ApiTest, ReadyWithWrongMethodIs405) {
  EXPECT_TRUE(IsJsonResponse(Call("POST", "/ready", "{}"), 405, kMethodNotAllowedBody));
  EXPECT_TRUE(IsJsonResponse(Call("DELETE", "/ready"), 405, kMethodNotAllowedBody));
}

TEST_F(ApiTest, UnknownPathIs404NotFound) {
  for (const char* path : {"/", "/api", "/api/", "/api/unknown", "/api/publishx",
                           "/api/publish/sync", "/readyz", "/metrics", "/API/PUBLISH"}) {
    SCOPED_TRACE(path);
    EXPECT_TRUE(IsJsonResponse(Call("GET", path), 404, kNotFoundBody));
    EXPECT_TRUE(IsJsonResponse(Call("POST", path, SubscribeBody("a")), 404, kNotFoundBody));
  }
}

TEST_F(ApiTest, KnownPathWithWrongMethodIs405) {
  for (const char* path : {"/api/publish", "/api/publish/async", "/api/subscribe", "/api/fetch"}) {
    SCOPED_TRACE(path);
    EXPECT_TRUE(IsJsonResponse(Call("GET", path), 405, kMethodNotAllowedBody));
    EXPECT_TRUE(IsJsonResponse(Call("PUT", path, SubscribeBody("a")), 405, kMethodNotAllowedBody));
    EXPECT_TRUE(IsJsonResponse(Call("DELETE", path), 405, kMethodNotAllowedBody));
  }
  // The connection survived every error response.
  EXPECT_EQ(Call("GET", "/ready").status, 204);
}

// --- subscribe ---

TEST_F(ApiTest, SubscribeReturnsUuidV4AndSubjectExactly) {
  const HttpResponse response = Post("/api/subscribe", SubscribeBody("a.b"));
  const std::optional<SubscribeReply> reply = DecodeSubscribeReply(response.body);
  ASSERT_TRUE(reply.has_value()) << Describe(response);
  EXPECT_TRUE(IsUuidV4(reply->id)) << reply->id;
  EXPECT_TRUE(
      IsJsonResponse(response, 200, "{\"id\":\"" + reply->id + "\",\"subject\":\"a.b\"}\n"));
}

TEST_F(ApiTest, SubscribeIdsAreUniqueAcrossManyCalls) {
  std::set<std::string> ids;
  constexpr int kCalls = 600;
  for (int i = 0; i < kCalls; ++i) {
    // Same subject and many subjects: every call makes a new subscriber.
    const std::string id = Subscribe(i % 2 == 0 ? "same.subject" : Numbered("s", i));
    ASSERT_FALSE(id.empty());
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kCalls));
}

TEST_F(ApiTest, SubscribeAcceptsValidSubjects) {
  // Only space, tab, CR, LF and empty tokens make a subject invalid.
  const std::vector<std::string> subjects = {"a",
                                             "a.b.c",
                                             "*",
                                             "a.>",
                                             "load.test",
                                             "a-b_c:d",
                                             "x.*.>",
                                             "\xc3\xa9.\xe6\x97\xa5",
                                             "a\"b",
                                             "a\\b",
                                             "a\fb",
                                             "a\x0b"
                                             "b",
                                             std::string(1000, 'x')};
  for (const std::string& subject : subjects) {
    SCOPED_TRACE(JsonQuote(subject));
    const HttpResponse response = Post("/api/subscribe", SubscribeBody(subject));
    EXPECT_EQ(response.status, 200) << Describe(response);
    EXPECT_EQ(response.MediaType(), "application/json");
    const std::optional<SubscribeReply> reply = DecodeSubscribeReply(response.body);
    ASSERT_TRUE(reply.has_value()) << Describe(response);
    EXPECT_TRUE(IsUuidV4(reply->id)) << reply->id;
    EXPECT_EQ(reply->subject, subject);
    EXPECT_TRUE(response.body.ends_with("}\n")) << Describe(response);
  }
}

TEST_F(ApiTest, SubscribeRejectsInvalidSubjects) {
  for (const std::string& subject : InvalidSubjects()) {
    SCOPED_TRACE(JsonQuote(subject));
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/subscribe", SubscribeBody(subject)), 400, kInvalidSubjectBody));
  }
  // A missing subject is an invalid subject.
  EXPECT_TRUE(IsJsonResponse(Post("/api/subscribe", "{}"), 400, kInvalidSubjectBody));
  EXPECT_TRUE(IsJsonResponse(Post("/api/subscribe", "{\"id\":\"x\"}"), 400, kInvalidSubjectBody));
}

TEST_F(ApiTest, EverySubscribeCreatesAnotherSubscriber) {
  const std::string first = Subscribe("dup");
  const std::string second = Subscribe("dup");
  ASSERT_FALSE(first.empty());
  ASSERT_FALSE(second.empty());
  EXPECT_NE(first, second);
  PublishOk("dup", "m");
  EXPECT_EQ(Fetch("dup", first), std::vector<std::string>{"m"});
  EXPECT_EQ(Fetch("dup", second), std::vector<std::string>{"m"});
}

// --- publish ---

TEST_F(ApiTest, PublishWithoutSubscriberIs404) {
  EXPECT_TRUE(IsJsonResponse(Publish("nobody.here", "x"), 404, kSubscriberNotFoundBody));
  // A subscriber of another subject does not count.
  ASSERT_FALSE(Subscribe("somebody.here").empty());
  EXPECT_TRUE(IsJsonResponse(Publish("nobody.here", "x"), 404, kSubscriberNotFoundBody));
}

TEST_F(ApiTest, PublishRejectsInvalidSubjects) {
  for (const std::string& subject : InvalidSubjects()) {
    SCOPED_TRACE(JsonQuote(subject));
    EXPECT_TRUE(IsJsonResponse(Publish(subject, "x"), 400, kInvalidSubjectBody));
  }
  EXPECT_TRUE(IsJsonResponse(Post("/api/publish", "{\"data\":\"x\"}"), 400, kInvalidSubjectBody));
}

TEST_F(ApiTest, PublishThenFetchReturnsTheMessageExactly) {
  const std::string id = Subscribe("a.b");
  ASSERT_FALSE(id.empty());
  EXPECT_TRUE(IsJsonResponse(Publish("a.b", "hello"), 200, kOkBody));
  EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", FetchBody("a.b", id)), 200,
                             ExpectedFetchBody({"hello"}, id, "a.b")));
}

TEST_F(ApiTest, PublishFansOutToEverySubscriberInPublishOrder) {
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(Subscribe("fan.out"));
  std::vector<std::string> sent;
  for (int i = 0; i < 20; ++i) {
    sent.push_back(Numbered("m", i));
    PublishOk("fan.out", sent.back());
  }
  for (const std::string& id : ids) {
    SCOPED_TRACE(id);
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", FetchBody("fan.out", id)), 200,
                               ExpectedFetchBody(sent, id, "fan.out")));
  }
}

TEST_F(ApiTest, SubscriberGetsOnlyMessagesPublishedAfterItSubscribed) {
  const std::string early = Subscribe("late.joiner");
  PublishOk("late.joiner", "before");
  const std::string late = Subscribe("late.joiner");
  PublishOk("late.joiner", "after");
  EXPECT_EQ(Fetch("late.joiner", early), (std::vector<std::string>{"before", "after"}));
  EXPECT_EQ(Fetch("late.joiner", late), (std::vector<std::string>{"after"}));
}

TEST_F(ApiTest, SubscribersOfOtherSubjectsGetNothing) {
  const std::string target = Subscribe("a.b");
  // Prefixes, extensions, siblings and case variants are other subjects.
  const std::vector<std::string> others = {"a", "a.b.c", "a.c", "A.B", "b", "ab", "a.bb"};
  std::vector<std::string> other_ids;
  for (const std::string& other : others) other_ids.push_back(Subscribe(other));
  PublishOk("a.b", "only for a.b");
  EXPECT_EQ(Fetch("a.b", target), std::vector<std::string>{"only for a.b"});
  for (std::size_t i = 0; i < others.size(); ++i) {
    SCOPED_TRACE(others[i]);
    EXPECT_TRUE(Fetch(others[i], other_ids[i]).empty());
  }
}

TEST_F(ApiTest, MessagesOnManySubjectsStaySeparate) {
  // 24 subjects: both shards own some (the owner is a hash of the subject).
  std::vector<std::string> subjects, ids;
  for (int i = 0; i < 24; ++i) {
    subjects.push_back(Numbered("many.s", i));
    ids.push_back(Subscribe(subjects.back()));
  }
  for (int round = 0; round < 3; ++round) {
    for (std::size_t i = 0; i < subjects.size(); ++i) {
      PublishOk(subjects[i], subjects[i] + Numbered("#", round));
    }
  }
  for (std::size_t i = 0; i < subjects.size(); ++i) {
    const std::string& s = subjects[i];
    EXPECT_EQ(Fetch(s, ids[i]), (std::vector<std::string>{s + "#0", s + "#1", s + "#2"}));
  }
}

// --- fetch ---

TEST_F(ApiTest, FetchWithNothingPendingIsAnEmptyList) {
  const std::string id = Subscribe("empty");
  EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", FetchBody("empty", id)), 200,
                             "{\"data\":[],\"id\":\"" + id + "\",\"subject\":\"empty\"}\n"));
}

TEST_F(ApiTest, FetchDrainsOldestFirst) {
  const std::string id = Subscribe("drain");
  PublishOk("drain", "one");
  PublishOk("drain", "two");
  PublishOk("drain", "three");
  EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", FetchBody("drain", id)), 200,
                             ExpectedFetchBody({"one", "two", "three"}, id, "drain")));
  EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", FetchBody("drain", id)), 200,
                             ExpectedFetchBody({}, id, "drain")));
  PublishOk("drain", "four");
  EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", FetchBody("drain", id)), 200,
                             ExpectedFetchBody({"four"}, id, "drain")));
}

TEST_F(ApiTest, FetchingOneSubscriberLeavesTheOthersQueued) {
  const std::string first = Subscribe("shared");
  const std::string second = Subscribe("shared");
  PublishOk("shared", "x");
  EXPECT_EQ(Fetch("shared", first), std::vector<std::string>{"x"});
  PublishOk("shared", "y");
  EXPECT_EQ(Fetch("shared", second), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(Fetch("shared", first), std::vector<std::string>{"y"});
}

TEST_F(ApiTest, FetchWithUnknownIdIs404BadId) {
  ASSERT_FALSE(Subscribe("known").empty());
  // A well-formed v4 UUID nobody was given.
  EXPECT_TRUE(
      IsJsonResponse(Post("/api/fetch", FetchBody("known", "9b2f1c3e-4d5a-4b6c-8d7e-0f1a2b3c4d5e")),
                     404, kBadIdBody));
  // A subject nobody subscribed to.
  EXPECT_TRUE(IsJsonResponse(
      Post("/api/fetch", FetchBody("unknown", "9b2f1c3e-4d5a-4b6c-8d7e-0f1a2b3c4d5e")), 404,
      kBadIdBody));
}

TEST_F(ApiTest, FetchWithIdOfAnotherSubjectIs404BadId) {
  const std::string id = Subscribe("mine");
  ASSERT_FALSE(Subscribe("theirs").empty());
  PublishOk("mine", "kept");
  EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", FetchBody("theirs", id)), 404, kBadIdBody));
  EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", FetchBody("nobody", id)), 404, kBadIdBody));
  // The failed fetches drained nothing.
  EXPECT_EQ(Fetch("mine", id), std::vector<std::string>{"kept"});
}

TEST_F(ApiTest, FetchWithMalformedIdIs404BadId) {
  const std::string id = Subscribe("malformed");
  const std::vector<std::string> bad_ids = {"",           "not-a-uuid", id + "0",
                                            id.substr(1), "{}",         std::string(40, 'f')};
  for (const std::string& bad : bad_ids) {
    SCOPED_TRACE(bad);
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", FetchBody("malformed", bad)), 404, kBadIdBody));
  }
  // A missing id is the empty id.
  EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", "{\"subject\":\"malformed\"}"), 404, kBadIdBody));
}

// --- POST /api/unsubscribe ---

// GET /healthz's pending count (messages stored, one per queue), from its
// answer.
long long PendingIn(const HttpResponse& health) {
  const std::size_t at = health.body.find("\"pending\":");
  return at == std::string::npos ? -1 : std::stoll(health.body.substr(at + 10));
}

TEST_F(ApiTest, UnsubscribeReleasesTheQueueAndTheIdThenAnswersBadId) {
  // Subjects on both shards: the owner answers, wherever it is.
  for (int i = 0; i < 6; ++i) {
    const std::string subject = Numbered("leaving.s", i);
    SCOPED_TRACE(subject);
    const std::string leaving = Subscribe(subject);
    const std::string staying = Subscribe(subject);
    PublishOk(subject, "before");
    ASSERT_EQ(PendingIn(Call("GET", "/healthz")), 2);
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/unsubscribe", FetchBody(subject, leaving)), 200, kOkBody));
    EXPECT_EQ(PendingIn(Call("GET", "/healthz")), 1) << "the queue is released at once";
    EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", FetchBody(subject, leaving)), 404, kBadIdBody));
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/unsubscribe", FetchBody(subject, leaving)), 404, kBadIdBody));
    PublishOk(subject, "after");
    EXPECT_EQ(Fetch(subject, staying), (std::vector<std::string>{"before", "after"}));
    // The last one out takes the subject with it.
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/unsubscribe", FetchBody(subject, staying)), 200, kOkBody));
    EXPECT_TRUE(IsJsonResponse(Publish(subject, "nobody"), 404, kSubscriberNotFoundBody));
    EXPECT_EQ(PendingIn(Call("GET", "/healthz")), 0);
  }
}

TEST_F(ApiTest, UnsubscribeWithABadIdOrSubjectChangesNothing) {
  const std::string id = Subscribe("kept");
  PublishOk("kept", "m");
  EXPECT_TRUE(IsJsonResponse(Post("/api/unsubscribe", FetchBody("other", id)), 404, kBadIdBody));
  EXPECT_TRUE(
      IsJsonResponse(Post("/api/unsubscribe", FetchBody("kept", "not-a-uuid")), 404, kBadIdBody));
  EXPECT_TRUE(IsJsonResponse(
      Post("/api/unsubscribe", FetchBody("kept", "9b2f1c3e-4d5a-4b6c-8d7e-0f1a2b3c4d5e")), 404,
      kBadIdBody));
  EXPECT_TRUE(
      IsJsonResponse(Post("/api/unsubscribe", FetchBody("a..b", id)), 400, kInvalidSubjectBody));
  EXPECT_TRUE(IsJsonResponse(Post("/api/unsubscribe", "[]"), 400, kInvalidBodyBody));
  EXPECT_EQ(Call("GET", "/api/unsubscribe").status, 405);
  EXPECT_EQ(Fetch("kept", id), std::vector<std::string>{"m"});
}

TEST_F(ApiTest, FetchWithInvalidSubjectIs400) {
  const std::string id = Subscribe("valid");
  for (const std::string& subject : InvalidSubjects()) {
    SCOPED_TRACE(JsonQuote(subject));
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/fetch", FetchBody(subject, id)), 400, kInvalidSubjectBody));
  }
  EXPECT_TRUE(
      IsJsonResponse(Post("/api/fetch", "{\"id\":\"" + id + "\"}"), 400, kInvalidSubjectBody));
}

// --- publish/async ---

// Fetches until `want` messages arrived or 5 s passed: an async publish lands
// some time after its 200.
std::vector<std::string> FetchUntil(std::size_t want,
                                    const std::function<std::vector<std::string>()>& fetch) {
  std::vector<std::string> got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
    std::vector<std::string> more = fetch();
    if (more.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    got.insert(got.end(), more.begin(), more.end());
  }
  return got;
}

TEST_F(ApiTest, PublishAsyncAnswersOkAndTheMessageArrives) {
  const std::string id = Subscribe("async.s");
  EXPECT_TRUE(
      IsJsonResponse(Post("/api/publish/async", PublishBody("async.s", "later")), 200, kOkBody));
  const std::vector<std::string> got = FetchUntil(1, [&] { return Fetch("async.s", id); });
  EXPECT_EQ(got, std::vector<std::string>{"later"});
}

TEST_F(ApiTest, PublishAsyncFansOutToEverySubscriber) {
  const std::string first = Subscribe("async.fan");
  const std::string second = Subscribe("async.fan");
  EXPECT_TRUE(
      IsJsonResponse(Post("/api/publish/async", PublishBody("async.fan", "both")), 200, kOkBody));
  EXPECT_EQ(FetchUntil(1, [&] { return Fetch("async.fan", first); }),
            std::vector<std::string>{"both"});
  EXPECT_EQ(FetchUntil(1, [&] { return Fetch("async.fan", second); }),
            std::vector<std::string>{"both"});
}

TEST_F(ApiTest, PublishAsyncWithoutSubscriberStillAnswersOk) {
  // The answer comes once the request is decoded; the failure happens later.
  EXPECT_TRUE(IsJsonResponse(Post("/api/publish/async", PublishBody("async.nobody", "lost")), 200,
                             kOkBody));
  // A later subscriber does not get it.
  const std::string id = Subscribe("async.nobody");
  PublishOk("async.nobody", "sync");
  EXPECT_EQ(Fetch("async.nobody", id), std::vector<std::string>{"sync"});
}

TEST_F(ApiTest, PublishAsyncRejectsInvalidSubjects) {
  for (const std::string& subject : InvalidSubjects()) {
    SCOPED_TRACE(JsonQuote(subject));
    EXPECT_TRUE(IsJsonResponse(Post("/api/publish/async", PublishBody(subject, "x")), 400,
                               kInvalidSubjectBody));
  }
  EXPECT_TRUE(
      IsJsonResponse(Post("/api/publish/async", "{\"data\":\"x\"}"), 400, kInvalidSubjectBody));
}

// A fetch answer far larger than broker.max-unsent-bytes is one answer going
// out: it must arrive whole. (It was once cut off, losing the messages its
// fetch had drained.)
class LargeFetchTest : public BrokerTest {
 protected:
  std::optional<BrokerOptions> Options() const override {
    BrokerOptions options;
    options.flags.push_back("--broker.max-unsent-bytes=64KiB");
    return options;
  }
};

TEST_F(LargeFetchTest, AnswerLargerThanTheUnsentBoundArrivesWhole) {
  const std::string id = Subscribe("big.fetch");
  ASSERT_FALSE(id.empty());
  std::vector<std::string> published;
  for (int i = 0; i < 192; ++i) {  // 192 KiB of data: three times the bound
    std::string data(1024, static_cast<char>('a' + i % 26));
    data.replace(0, std::to_string(i).size(), std::to_string(i));
    PublishOk("big.fetch", data);
    published.push_back(data);
  }
  EXPECT_EQ(Fetch("big.fetch", id), published);
  EXPECT_TRUE(Fetch("big.fetch", id).empty());
}

// broker.max-fetch-bytes bounds one answer's messages; the rest stays queued,
// in order, for the next fetch.
class FetchBoundTest : public BrokerTest {
 protected:
  std::optional<BrokerOptions> Options() const override {
    BrokerOptions options;
    options.flags.push_back("--broker.max-fetch-bytes=1KiB");
    return options;
  }
};

TEST_F(FetchBoundTest, AFetchTakesTheOldestMessagesUpToTheBound) {
  const std::string id = Subscribe("bounded.fetch");
  ASSERT_FALSE(id.empty());
  std::vector<std::string> published;
  for (int i = 0; i < 5; ++i) {  // 400 bytes each: two fit in 1 KiB, three do not
    published.push_back(std::string(400, static_cast<char>('a' + i)));
    PublishOk("bounded.fetch", published.back());
  }
  EXPECT_EQ(Fetch("bounded.fetch", id), std::vector<std::string>(&published[0], &published[2]));
  EXPECT_EQ(Fetch("bounded.fetch", id), std::vector<std::string>(&published[2], &published[4]));
  EXPECT_EQ(Fetch("bounded.fetch", id), std::vector<std::string>{published[4]});
  EXPECT_TRUE(Fetch("bounded.fetch", id).empty());
}

TEST_F(FetchBoundTest, AMessageLargerThanTheBoundStillGoesAlone) {
  const std::string id = Subscribe("bounded.big");
  const std::string big(3000, 'b');
  PublishOk("bounded.big", big);
  PublishOk("bounded.big", "small");
  EXPECT_EQ(Fetch("bounded.big", id), std::vector<std::string>{big});
  EXPECT_EQ(Fetch("bounded.big", id), std::vector<std::string>{"small"});
}

}  // namespace
}  // namespace gophermq::testing
