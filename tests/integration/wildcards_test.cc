// Wildcard subscriptions (api-extensions.md §10): subscribe with
// "wildcard":true, and in the subject a token "*" matches any one token, a
// last token ">" one or more. A publish is stored for the subject's own
// subscribers and for every pattern that matches it, and is 404 only when
// there is neither; a wildcard subscriber's fetch answers add "subjects".
//
// The broker runs two shards. A subject's shard is fixed (owner_shard() in
// subject.h: the same on every run), and the names below were chosen so that
// each test has patterns and subjects on both shards, and patterns whose
// queue is on another shard than the subjects that match them; the comments
// say which shard owns what. A copy for a pattern on another shard arrives
// there just after the publish is answered, so those are read with long
// polls; nothing sleeps.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ack_test_support.h"
#include "test_support.h"

namespace gophermq::testing {
namespace {

using Clock = std::chrono::steady_clock;
using Delivered = std::pair<std::string, std::string>;  // (subject, data)

constexpr std::string_view kWildcard = R"("wildcard":true)";

// A wildcard fetch answer with §3's fields: its keys in order, and
// "subjects" parallel to "data".
struct WildcardBatch {
  std::vector<std::string> data;
  std::vector<std::string> subjects;
  std::uint64_t pending = 0;
};

class WildcardsTest : public AckBrokerTest {
 protected:
  std::string SubscribePattern(std::string_view pattern, std::string_view fields = {}) {
    std::string all(kWildcard);
    if (!fields.empty()) all = Joined({all, ",", fields});
    return SubscribeWith(pattern, all);
  }

  // One fetch of a wildcard subscriber with `fields` (which use a field of
  // §3): the answer must be exactly {"data","id","pending","seqs","subject",
  // "subjects"}, the lists parallel; a failure otherwise.
  WildcardBatch FetchWildcard(std::string_view pattern, std::string_view id,
                              std::string_view fields) {
    const HttpResponse response = Post("/api/fetch", SubscriberBody(pattern, id, fields));
    const std::optional<JsonObject> object = DecodeJsonObject(response.body);
    WildcardBatch batch;
    std::string subject;
    std::string answered_id;
    std::vector<std::uint64_t> seqs;
    const std::vector<std::string> keys = {"data", "id", "pending", "seqs", "subject", "subjects"};
    if (response.status != 200 || !object || object->keys != keys ||
        !GetField(object->string_arrays, "data", &batch.data) ||
        !GetField(object->string_arrays, "subjects", &batch.subjects) ||
        !GetField(object->number_arrays, "seqs", &seqs) ||
        !GetField(object->numbers, "pending", &batch.pending) ||
        !GetField(object->strings, "subject", &subject) ||
        !GetField(object->strings, "id", &answered_id) || subject != pattern || answered_id != id ||
        batch.subjects.size() != batch.data.size() || seqs.size() != batch.data.size()) {
      ADD_FAILURE() << "fetch " << pattern << " " << id << " " << fields
                    << ": not a wildcard batch answer\n"
                    << Describe(response);
      return {};
    }
    return batch;
  }

  // Long polls until `count` messages have come (kPollFor at most), then,
  // with `drained`, checks nothing more is pending; each as (its subject,
  // its data).
  std::vector<Delivered> Collect(std::string_view pattern, std::string_view id, std::size_t count,
                                 bool drained = true) {
    std::vector<Delivered> delivered;
    const auto deadline = Clock::now() + kPollFor;
    while (delivered.size() < count && Clock::now() < deadline) {
      const std::string fields =
          Joined({R"("wait_ms":1000,"max_messages":)", std::to_string(count - delivered.size())});
      const WildcardBatch batch = FetchWildcard(pattern, id, fields);
      if (batch.subjects.size() != batch.data.size()) break;
      for (std::size_t i = 0; i != batch.data.size(); ++i) {
        delivered.emplace_back(batch.subjects[i], batch.data[i]);
      }
    }
    if (drained) {
      EXPECT_EQ(FetchWildcard(pattern, id, R"("max_messages":1000)").data.size(), 0u)
          << "nothing beyond the " << count << " expected";
    }
    return delivered;
  }

  // Publishes to each subject its own name as data, expecting 200.
  void PublishEach(const std::vector<std::string>& subjects) {
    for (const std::string& subject : subjects) PublishOk(subject, subject);
  }

  // Publishes `data` to `subject` until the answer is 404 (kPollFor at most):
  // a removal reaches the other shard a moment after it is answered.
  ::testing::AssertionResult BecomesNotFound(const std::string& subject) {
    const auto deadline = Clock::now() + kPollFor;
    HttpResponse response;
    do {
      response = Publish(subject, "probe");
      if (response.status == 404) return IsJsonResponse(response, 404, kSubscriberNotFoundBody);
    } while (Clock::now() < deadline);
    return ::testing::AssertionFailure() << "publish to " << subject << " still answers\n"
                                         << Describe(response);
  }
};

// Each subject published to its own name: the deliveries expected, sorted.
std::vector<Delivered> SelfNamed(std::vector<std::string> subjects) {
  std::vector<Delivered> expected;
  for (std::string& subject : subjects) expected.emplace_back(subject, subject);
  std::sort(expected.begin(), expected.end());
  return expected;
}

std::vector<Delivered> Sorted(std::vector<Delivered> delivered) {
  std::sort(delivered.begin(), delivered.end());
  return delivered;
}

// --- Matching ---

TEST_F(WildcardsTest, AStarMatchesExactlyOneToken) {
  // wc.star.* is on shard 0; wc.star.b and .c on 0, .a and .f on 1.
  const std::string id = SubscribePattern("wc.star.*");
  ASSERT_FALSE(id.empty());
  const std::vector<std::string> matching = {"wc.star.a", "wc.star.b", "wc.star.c", "wc.star.f"};
  PublishEach(matching);
  // No token, two tokens, another prefix: no subscriber anywhere.
  for (const std::string subject : {"wc.star", "wc.star.a.b", "wc.starx.a", "wc.other.a"}) {
    EXPECT_TRUE(IsJsonResponse(Publish(subject, "x"), 404, kSubscriberNotFoundBody)) << subject;
  }
  EXPECT_EQ(Sorted(Collect("wc.star.*", id, matching.size())), SelfNamed(matching));
}

TEST_F(WildcardsTest, AGreaterThanMatchesOneOrMoreTokens) {
  // wc.gt.> is on shard 1; wc.gt.b, .c and wc.gt.b.c on 0, wc.gt.a and .a.b on 1.
  const std::string id = SubscribePattern("wc.gt.>");
  ASSERT_FALSE(id.empty());
  const std::vector<std::string> matching = {"wc.gt.a",   "wc.gt.b",   "wc.gt.c",
                                             "wc.gt.a.b", "wc.gt.b.c", "wc.gt.b.c.d.e"};
  PublishEach(matching);
  for (const std::string subject : {"wc.gt", "wc.gtx.a", "wc.g.t"}) {
    EXPECT_TRUE(IsJsonResponse(Publish(subject, "x"), 404, kSubscriberNotFoundBody)) << subject;
  }
  EXPECT_EQ(Sorted(Collect("wc.gt.>", id, matching.size())), SelfNamed(matching));
}

TEST_F(WildcardsTest, SeveralPatternsAndExactSubscribersEachGetTheirCopy) {
  // wc.other.*.x and wc.> on shard 1; wc.other.c.x on 0, wc.other.a.x and
  // wc.other.a.y on 1.
  const std::string star_x = SubscribePattern("wc.other.*.x");
  const std::string rest = SubscribePattern("wc.>");
  const std::string exact = Subscribe("wc.other.c.x");
  ASSERT_FALSE(star_x.empty());
  ASSERT_FALSE(rest.empty());
  ASSERT_FALSE(exact.empty());
  PublishEach({"wc.other.c.x", "wc.other.a.x", "wc.other.a.y"});
  EXPECT_EQ(Sorted(Collect("wc.other.*.x", star_x, 2)),
            SelfNamed({"wc.other.c.x", "wc.other.a.x"}));
  EXPECT_EQ(Sorted(Collect("wc.>", rest, 3)),
            SelfNamed({"wc.other.c.x", "wc.other.a.x", "wc.other.a.y"}));
  // The exact subscriber's answer is as in the original: no "subjects".
  EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", FetchBody("wc.other.c.x", exact)), 200,
                             ExpectedFetchBody({"wc.other.c.x"}, exact, "wc.other.c.x")));
}

TEST_F(WildcardsTest, PatternsOnOneOtherShardShareOneCallPerPublish) {
  // grp.a.c is on shard 0; four patterns that match it on shard 1. Each
  // publish sends that shard one call carrying the copy once for all four
  // (and, from a connection on shard 1, the publish itself to shard 0): at
  // most two calls, where a call per pattern would be four or five.
  const std::vector<std::string> patterns = {"grp.>", "grp.a.*", "grp.*.*", "*.a.*"};
  std::vector<std::string> ids;
  for (const std::string& pattern : patterns) {
    ids.push_back(SubscribePattern(pattern));
    ASSERT_FALSE(ids.back().empty()) << pattern;
  }
  constexpr int kPublishes = 10;
  const double calls_before = Metric("gophermq_cross_shard_calls_total");
  std::vector<Delivered> expected;
  for (int i = 0; i < kPublishes; ++i) {
    const std::string data = Joined({"m", std::to_string(i)});
    PublishOk("grp.a.c", data);
    expected.emplace_back("grp.a.c", data);
  }
  // Counted as each publish is served, before it is answered.
  EXPECT_TRUE(MetricBecomes(
      "gophermq_cross_shard_calls_total",
      [&](double calls) { return calls - calls_before >= kPublishes; }, ">= one per publish"));
  EXPECT_LE(Metric("gophermq_cross_shard_calls_total") - calls_before, 2 * kPublishes)
      << "a call per pattern";
  for (std::size_t p = 0; p != patterns.size(); ++p) {
    EXPECT_EQ(Collect(patterns[p], ids[p], kPublishes), expected) << patterns[p];
  }
}

TEST_F(WildcardsTest, WithoutTheFlagStarAndGreaterThanAreLiteral) {
  // wc.lit.* (shard 0) as a literal subject, and as a pattern: two
  // subscribers that share nothing. wc.lit.a is on shard 1.
  const std::string literal = Subscribe("wc.lit.*");
  ASSERT_FALSE(literal.empty());
  EXPECT_TRUE(IsJsonResponse(Publish("wc.lit.a", "x"), 404, kSubscriberNotFoundBody))
      << "a literal * matches nothing";
  const std::string pattern = SubscribePattern("wc.lit.*");
  ASSERT_FALSE(pattern.empty());
  PublishOk("wc.lit.a", "to the pattern");
  PublishOk("wc.lit.*", "to both");
  EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", FetchBody("wc.lit.*", literal)), 200,
                             ExpectedFetchBody({"to both"}, literal, "wc.lit.*")));
  EXPECT_EQ(Sorted(Collect("wc.lit.*", pattern, 2)),
            Sorted({{"wc.lit.a", "to the pattern"}, {"wc.lit.*", "to both"}}));
  // Each id is its own subscriber's: unsubscribing the literal one leaves
  // the pattern.
  EXPECT_TRUE(
      IsJsonResponse(Post("/api/unsubscribe", SubscriberBody("wc.lit.*", literal)), 200, kOkBody));
  EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", FetchBody("wc.lit.*", literal)), 404, kBadIdBody));
  PublishOk("wc.lit.b", "still");
  EXPECT_EQ(Collect("wc.lit.*", pattern, 1), (std::vector<Delivered>{{"wc.lit.b", "still"}}));
  // ">" without the flag: a literal subject anywhere.
  const std::string greater = Subscribe("wc.>.lit");
  ASSERT_FALSE(greater.empty());
  PublishOk("wc.>.lit", "literal");
  EXPECT_EQ(Fetch("wc.>.lit", greater), std::vector<std::string>{"literal"});
}

TEST_F(WildcardsTest, AGreaterThanNotLastIsAnInvalidSubject) {
  for (const std::string pattern : {"wc.>.b", ">.a", "wc..*", "wc.* .a", ""}) {
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/subscribe", WithFields(SubscribeBody(pattern), kWildcard)), 400,
                       kInvalidSubjectBody))
        << pattern;
  }
  for (const std::string fields : {R"("wildcard":"true")", R"("wildcard":1)", R"("wildcard":[])"}) {
    EXPECT_TRUE(IsJsonResponse(Post("/api/subscribe", WithFields(SubscribeBody("wc.*"), fields)),
                               400, kInvalidBodyBody))
        << fields;
  }
  // Valid patterns: ">" alone, "*" inside a token is a literal byte.
  EXPECT_FALSE(SubscribePattern(">").empty());
  EXPECT_FALSE(SubscribePattern("wc.a*.>").empty());
  // "wildcard":false and null are the original's subscribe.
  EXPECT_FALSE(SubscribeWith("wc.x.>.y", R"("wildcard":false)").empty());
  EXPECT_FALSE(SubscribeWith("wc.x.>.z", R"("wildcard":null)").empty());
}

// --- Answers ---

TEST_F(WildcardsTest, FetchAnswersAddSubjectsParallelToData) {
  // wc.body.* and wc.body.d are on shard 1, wc.body.a and wc.body.<"q"> on
  // 0: their copies cross shards, wc.body.d's is stored where it is
  // published.
  const std::string id = SubscribePattern("wc.body.*");
  ASSERT_FALSE(id.empty());
  PublishOk("wc.body.a", "from shard 0");
  ASSERT_EQ(Collect("wc.body.*", id, 1), (std::vector<Delivered>{{"wc.body.a", "from shard 0"}}));
  PublishOk("wc.body.d", "one");
  PublishOk("wc.body.<\"q\">", "two");  // escaped in the answer as any JSON string
  // The second arrives a moment after its publish is answered.
  ASSERT_TRUE(Eventually([&] { return static_cast<double>(GetInfo("wc.body.*", id).pending); },
                         [](double pending) { return pending == 2; }, "pending", "2"));
  EXPECT_TRUE(IsJsonResponse(
      Post("/api/fetch", FetchBody("wc.body.*", id)), 200,
      Joined({R"({"data":["one","two"],"id":")", id,
              R"(","subject":"wc.body.*","subjects":["wc.body.d","wc.body.\u003c\"q\"\u003e"]})",
              "\n"})));
  PublishOk("wc.body.d", "three");
  EXPECT_TRUE(IsJsonResponse(
      Post("/api/fetch", SubscriberBody("wc.body.*", id, R"("max_messages":5)")), 200,
      Joined({R"({"data":["three"],"id":")", id,
              R"(","pending":0,"seqs":[4],"subject":"wc.body.*","subjects":["wc.body.d"]})",
              "\n"})));
  // An empty answer has an empty list.
  EXPECT_TRUE(IsJsonResponse(
      Post("/api/fetch", FetchBody("wc.body.*", id)), 200,
      Joined({R"({"data":[],"id":")", id, R"(","subject":"wc.body.*","subjects":[]})", "\n"})));
}

TEST_F(WildcardsTest, AckModeAnswersAddSubjectsAfterSeqs) {
  // wc.body.> and wc.body.e.f are both on shard 1.
  const std::string id = SubscribePattern("wc.body.>", R"("ack_wait_ms":60000)");
  ASSERT_FALSE(id.empty());
  PublishOk("wc.body.e.f", "acked");
  const auto deadline = Clock::now() + kPollFor;
  HttpResponse response;
  do {
    response = Post("/api/fetch", SubscriberBody("wc.body.>", id, R"("wait_ms":1000)"));
  } while (response.body.find("acked") == std::string::npos && Clock::now() < deadline);
  EXPECT_TRUE(IsJsonResponse(
      response, 200,
      Joined({R"({"data":["acked"],"deliveries":[1],"id":")", id,
              R"(","pending":0,"seqs":[1],"subject":"wc.body.\u003e","subjects":["wc.body.e.f"]})",
              "\n"})));
  EXPECT_TRUE(IsJsonResponse(Ack("wc.body.>", id, R"("seqs":[1])"), 200, AckedBody(1)));
}

// --- Across shards, and the 404 rule ---

TEST_F(WildcardsTest, UnsubscribeRemovesThePatternFromEveryShard) {
  // wc.un.* and wc.un.a are on shard 1, wc.un.c on 0.
  const std::string id = SubscribePattern("wc.un.*");
  ASSERT_FALSE(id.empty());
  PublishEach({"wc.un.a", "wc.un.c"});
  EXPECT_EQ(Sorted(Collect("wc.un.*", id, 2)), SelfNamed({"wc.un.a", "wc.un.c"}));
  EXPECT_TRUE(
      IsJsonResponse(Post("/api/unsubscribe", SubscriberBody("wc.un.*", id)), 200, kOkBody));
  EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", FetchBody("wc.un.*", id)), 404, kBadIdBody));
  EXPECT_TRUE(IsJsonResponse(Publish("wc.un.a", "x"), 404, kSubscriberNotFoundBody))
      << "on the pattern's own shard at once";
  EXPECT_TRUE(BecomesNotFound("wc.un.c"));
  // Subscribed again, it matches again everywhere.
  const std::string again = SubscribePattern("wc.un.*");
  ASSERT_FALSE(again.empty());
  PublishEach({"wc.un.a", "wc.un.c"});
  EXPECT_EQ(Sorted(Collect("wc.un.*", again, 2)), SelfNamed({"wc.un.a", "wc.un.c"}));
}

TEST_F(WildcardsTest, AnExpiredPatternIsRemovedFromEveryShard) {
  // wc.exp.* and wc.exp.b are on shard 0, wc.exp.a on 1.
  const std::string id = SubscribePattern("wc.exp.*", R"("inactive_threshold_ms":100)");
  ASSERT_FALSE(id.empty());
  EXPECT_TRUE(MetricReaches("gophermq_subscribers_expired_total", 1));
  EXPECT_TRUE(BecomesNotFound("wc.exp.b"));
  EXPECT_TRUE(BecomesNotFound("wc.exp.a"));
  EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", FetchBody("wc.exp.*", id)), 404, kBadIdBody));
}

TEST_F(WildcardsTest, PublishAsyncReachesPatterns) {
  // wc.gt.> is on shard 1, wc.gt.b on 0.
  const std::string id = SubscribePattern("wc.gt.>");
  ASSERT_FALSE(id.empty());
  EXPECT_TRUE(
      IsJsonResponse(Post("/api/publish/async", PublishBody("wc.gt.b", "async")), 200, kOkBody));
  EXPECT_EQ(Collect("wc.gt.>", id, 1), (std::vector<Delivered>{{"wc.gt.b", "async"}}));
}

TEST_F(WildcardsTest, BatchPublishReachesPatterns) {
  // wc.batch.* and wc.batch.b are on shard 1, wc.batch.a on 0.
  const std::string id = SubscribePattern("wc.batch.*");
  ASSERT_FALSE(id.empty());
  // One subject with no subscriber of its own: stored for the pattern, in order.
  EXPECT_TRUE(
      IsJsonResponse(Post("/api/publish/batch", R"({"subject":"wc.batch.a","data":["1","2","3"]})"),
                     200, kOkBody));
  EXPECT_EQ(
      Collect("wc.batch.*", id, 3),
      (std::vector<Delivered>{{"wc.batch.a", "1"}, {"wc.batch.a", "2"}, {"wc.batch.a", "3"}}));
  EXPECT_TRUE(
      IsJsonResponse(Post("/api/publish/batch", R"({"subject":"wc.nobody","data":["1","2"]})"), 404,
                     kSubscriberNotFoundBody));
  // Many subjects: only the one no pattern matches fails.
  EXPECT_TRUE(IsJsonResponse(
      Post("/api/publish/batch",
           R"({"messages":[{"subject":"wc.batch.a","data":"a"},{"subject":"wc.nobody","data":"n"},)"
           R"({"subject":"wc.batch.b","data":"b"}]})"),
      200,
      "{\"failed\":[{\"code\":404,\"index\":1,\"message\":\"subscriber not "
      "found\"}],\"published\":2}\n"));
  EXPECT_EQ(Sorted(Collect("wc.batch.*", id, 2)),
            Sorted({{"wc.batch.a", "a"}, {"wc.batch.b", "b"}}));
}

TEST_F(WildcardsTest, AQueueGroupOnAPatternSharesOneQueue) {
  // wc.g.* is on shard 1; wc.g.a and .b on 0, wc.g.d and .e on 1.
  const std::optional<std::string> first = JoinedId(
      Post("/api/subscribe", JoinBody("wc.g.*", "workers", kWildcard)), "wc.g.*", "workers");
  const std::optional<std::string> second = JoinedId(
      Post("/api/subscribe", JoinBody("wc.g.*", "workers", kWildcard)), "wc.g.*", "workers");
  ASSERT_TRUE(first && second);
  const std::vector<std::string> subjects = {"wc.g.a", "wc.g.b", "wc.g.d", "wc.g.e"};
  std::vector<std::string> data;
  for (int i = 0; i < 12; ++i) {
    data.push_back(Numbered("m", i));
    PublishOk(subjects[i % subjects.size()], data.back());
  }
  // Each message reaches one member, whichever fetches first.
  std::vector<Delivered> delivered = Collect("wc.g.*", *first, 6, false);
  const std::vector<Delivered> rest = Collect("wc.g.*", *second, 6);
  delivered.insert(delivered.end(), rest.begin(), rest.end());
  std::vector<Delivered> expected;
  for (int i = 0; i < 12; ++i) expected.emplace_back(subjects[i % subjects.size()], data[i]);
  EXPECT_EQ(Sorted(delivered), Sorted(expected));
  EXPECT_EQ(HealthzPending(), 0);
}

}  // namespace
}  // namespace gophermq::testing
