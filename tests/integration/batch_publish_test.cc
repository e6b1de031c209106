// Batch publish (api-extensions.md §9): POST /api/publish/batch in its
// one-subject form (all or nothing, answered as a publish) and its
// many-subject form (each entry on its own, answered per entry). The broker
// has two shards and each test uses several subjects, so some fall on the
// shard that reads the request and some on the other.
#include <string>
#include <vector>

#include "test_support.h"

namespace gophermq::testing {
namespace {

// {"subject":S,"data":[...]}; each datum is a JSON string's contents,
// escapes included, as written.
std::string OneSubjectBody(std::string_view subject, const std::vector<std::string>& data) {
  std::string body = Joined({"{\"subject\":\"", subject, "\",\"data\":["});
  for (std::size_t i = 0; i != data.size(); ++i) {
    if (i != 0) body += ",";
    body += Joined({"\"", data[i], "\""});
  }
  return body + "]}";
}

struct Entry {
  std::string subject;
  std::string data;
};

// {"messages":[{"subject":S,"data":D},...]}.
std::string ManySubjectBody(const std::vector<Entry>& entries) {
  std::string body = "{\"messages\":[";
  for (std::size_t i = 0; i != entries.size(); ++i) {
    if (i != 0) body += ",";
    body +=
        Joined({"{\"subject\":\"", entries[i].subject, "\",\"data\":\"", entries[i].data, "\"}"});
  }
  return body + "]}";
}

struct Failure {
  int code;
  std::size_t index;
  std::string_view message;
};

// The exact answer of the many-subject form.
std::string ManySubjectAnswer(const std::vector<Failure>& failed, std::size_t published) {
  std::string body = "{\"failed\":[";
  for (std::size_t i = 0; i != failed.size(); ++i) {
    if (i != 0) body += ",";
    body += Joined({"{\"code\":", std::to_string(failed[i].code), ",\"index\":",
                    std::to_string(failed[i].index), ",\"message\":\"", failed[i].message, "\"}"});
  }
  return body + Joined({"],\"published\":", std::to_string(published), "}\n"});
}

std::vector<std::string> NumberedData(std::string_view prefix, int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back(Numbered(prefix, i));
  return out;
}

class BatchPublishTest : public BrokerTest {
 protected:
  std::optional<BrokerOptions> Options() const override {
    return MonitoredOptions({"--broker.max-batch=50"});
  }
  HttpResponse PublishBatch(std::string_view body) { return Post("/api/publish/batch", body); }
};

TEST_F(BatchPublishTest, OneSubjectStoresEveryMessageInOrderOnEitherShard) {
  for (int s = 0; s < 6; ++s) {
    const std::string subject = SubjectName("batch.one", s);
    const std::string first = Subscribe(subject);
    const std::string second = Subscribe(subject);
    ASSERT_FALSE(first.empty());
    ASSERT_FALSE(second.empty());
    PublishOk(subject, "before");
    EXPECT_TRUE(IsJsonResponse(PublishBatch(OneSubjectBody(subject, NumberedData("m", 0, 10))), 200,
                               kOkBody));
    PublishOk(subject, "after");
    std::vector<std::string> expected = {"before"};
    for (const std::string& datum : NumberedData("m", 0, 10)) expected.push_back(datum);
    expected.push_back("after");
    EXPECT_EQ(Fetch(subject, first), expected) << subject;
    EXPECT_EQ(Fetch(subject, second), expected) << subject << ": every subscriber has each";
  }
}

TEST_F(BatchPublishTest, OneSubjectDataRoundTripsEscapesAndUnicode) {
  // Strings with escapes are unescaped into the decoder's own buffer: each
  // must keep its own bytes, wherever its neighbours were decoded.
  for (int s = 0; s < 4; ++s) {
    const std::string subject = SubjectName("batch.escapes", s);
    const std::string id = Subscribe(subject);
    ASSERT_FALSE(id.empty());
    EXPECT_TRUE(IsJsonResponse(
        PublishBatch(OneSubjectBody(subject, {R"(line\nbreak)", R"(caf\u00e9)", "plain", "",
                                              R"(q\"uote)", "\xe2\x82\xac", R"(\ud83d\ude00)"})),
        200, kOkBody));
    EXPECT_EQ(Fetch(subject, id),
              (std::vector<std::string>{"line\nbreak", "caf\xc3\xa9", "plain", "", "q\"uote",
                                        "\xe2\x82\xac", "\xf0\x9f\x98\x80"}));
  }
}

TEST_F(BatchPublishTest, OneSubjectAnswersAsAPublishDoes) {
  for (int s = 0; s < 4; ++s) {
    const std::string subject = SubjectName("batch.nobody", s);
    EXPECT_TRUE(IsJsonResponse(PublishBatch(OneSubjectBody(subject, {"a", "b"})), 404,
                               kSubscriberNotFoundBody));
  }
  EXPECT_TRUE(
      IsJsonResponse(PublishBatch(OneSubjectBody("no spaces", {"a"})), 400, kInvalidSubjectBody));
  EXPECT_TRUE(IsJsonResponse(PublishBatch(R"({"data":["a"]})"), 400, kInvalidSubjectBody));
  EXPECT_TRUE(IsJsonResponse(Call("GET", "/api/publish/batch"), 405, kMethodNotAllowedBody));
}

class BatchOverflowTest : public BatchPublishTest {
 protected:
  std::optional<BrokerOptions> Options() const override {
    // Ten messages per subject, sixteen broker-wide.
    return MonitoredOptions({"--broker.max-pending=10", "--broker.max-pending-total=16"});
  }
};

TEST_F(BatchOverflowTest, OneSubjectIsAllOrNothingAtTheSubjectsBound) {
  for (int s = 0; s < 4; ++s) {
    const std::string subject = SubjectName("batch.full", s);
    const std::string id = Subscribe(subject);
    ASSERT_FALSE(id.empty());
    EXPECT_TRUE(IsJsonResponse(PublishBatch(OneSubjectBody(subject, NumberedData("a", 0, 7))), 200,
                               kOkBody));
    // Four more would pass ten: none is stored.
    EXPECT_TRUE(IsJsonResponse(PublishBatch(OneSubjectBody(subject, NumberedData("b", 0, 4))), 429,
                               kOverflowBody));
    // Three fit exactly.
    EXPECT_TRUE(IsJsonResponse(PublishBatch(OneSubjectBody(subject, NumberedData("c", 0, 3))), 200,
                               kOkBody));
    std::vector<std::string> expected = NumberedData("a", 0, 7);
    for (const std::string& datum : NumberedData("c", 0, 3)) expected.push_back(datum);
    EXPECT_EQ(Fetch(subject, id), expected) << subject << ": nothing of the refused batch";
  }
  EXPECT_EQ(Metric(R"(gophermq_messages_refused_total{reason="subject_overflow"})"), 16);
}

TEST_F(BatchOverflowTest, OneSubjectIsAllOrNothingAtTheBrokersBound) {
  const std::string first = SubjectName("batch.budget", 0);
  const std::string second = SubjectName("batch.budget", 1);
  const std::string first_id = Subscribe(first);
  const std::string second_id = Subscribe(second);
  ASSERT_FALSE(first_id.empty());
  ASSERT_FALSE(second_id.empty());
  EXPECT_TRUE(
      IsJsonResponse(PublishBatch(OneSubjectBody(first, NumberedData("a", 0, 9))), 200, kOkBody));
  // 9 + 8 > 16 broker-wide, though 8 fit the second subject's own bound.
  EXPECT_TRUE(IsJsonResponse(PublishBatch(OneSubjectBody(second, NumberedData("b", 0, 8))), 429,
                             kOverflowBody));
  EXPECT_TRUE(
      IsJsonResponse(PublishBatch(OneSubjectBody(second, NumberedData("c", 0, 7))), 200, kOkBody));
  EXPECT_EQ(Fetch(second, second_id), NumberedData("c", 0, 7));
  EXPECT_EQ(Fetch(first, first_id), NumberedData("a", 0, 9));
  EXPECT_EQ(Metric(R"(gophermq_messages_refused_total{reason="overflow"})"), 8);
  EXPECT_TRUE(MetricReaches("gophermq_pending_messages", 0));
}

TEST_F(BatchOverflowTest, ManySubjectsRefuseOnlyTheEntriesPastABound) {
  const std::string subject = SubjectName("batch.partial", 0);
  const std::string id = Subscribe(subject);
  ASSERT_FALSE(id.empty());
  PublishOk(subject, "held");
  std::vector<Entry> entries;
  for (int i = 0; i < 12; ++i) entries.push_back({subject, Numbered("m", i)});
  // Nine fit beside the one held; the last three are refused.
  EXPECT_TRUE(IsJsonResponse(
      PublishBatch(ManySubjectBody(entries)), 200,
      ManySubjectAnswer(
          {{429, 9, "broker overflow"}, {429, 10, "broker overflow"}, {429, 11, "broker overflow"}},
          9)));
  std::vector<std::string> expected = {"held"};
  for (const std::string& datum : NumberedData("m", 0, 9)) expected.push_back(datum);
  EXPECT_EQ(Fetch(subject, id), expected);
}

TEST_F(BatchPublishTest, ManySubjectsAnswerPerEntryAcrossShards) {
  std::vector<std::string> subjects;
  std::vector<std::string> ids;
  for (int s = 0; s < 6; ++s) {
    subjects.push_back(SubjectName("batch.many", s));
    ids.push_back(Subscribe(subjects.back()));
    ASSERT_FALSE(ids.back().empty());
  }
  const std::vector<Entry> entries = {
      {subjects[0], "a"},   {"batch.nobody.0", "x"}, {subjects[1], "b"},      {subjects[2], "c"},
      {"bad subject", "y"}, {subjects[3], "d"},      {"batch.nobody.1", "z"}, {subjects[4], "e"},
      {subjects[5], "f"},   {subjects[0], "a2"},     {"", "empty"},           {subjects[5], "f2"},
  };
  EXPECT_TRUE(IsJsonResponse(PublishBatch(ManySubjectBody(entries)), 200,
                             ManySubjectAnswer({{404, 1, "subscriber not found"},
                                                {400, 4, "invalid subject"},
                                                {404, 6, "subscriber not found"},
                                                {400, 10, "invalid subject"}},
                                               8)));
  EXPECT_EQ(Fetch(subjects[0], ids[0]), (std::vector<std::string>{"a", "a2"}));
  EXPECT_EQ(Fetch(subjects[1], ids[1]), (std::vector<std::string>{"b"}));
  EXPECT_EQ(Fetch(subjects[2], ids[2]), (std::vector<std::string>{"c"}));
  EXPECT_EQ(Fetch(subjects[3], ids[3]), (std::vector<std::string>{"d"}));
  EXPECT_EQ(Fetch(subjects[4], ids[4]), (std::vector<std::string>{"e"}));
  EXPECT_EQ(Fetch(subjects[5], ids[5]), (std::vector<std::string>{"f", "f2"}));
  EXPECT_EQ(Metric("gophermq_messages_published_total"), 8);
  EXPECT_EQ(Metric(R"(gophermq_messages_refused_total{reason="no_subscriber"})"), 2);
  EXPECT_EQ(Metric(R"(gophermq_messages_refused_total{reason="invalid_subject"})"), 2);
  EXPECT_EQ(Metric(R"(gophermq_requests_total{method="publish_batch",code="200"})"), 1);
}

TEST_F(BatchPublishTest, ManySubjectsKeepTheOrderOfEachSubject) {
  constexpr int kSubjects = 8;
  constexpr int kRounds = 6;  // 48 entries: within the configured max-batch of 50
  std::vector<std::string> subjects;
  std::vector<std::string> ids;
  for (int s = 0; s < kSubjects; ++s) {
    subjects.push_back(SubjectName("batch.order", s));
    ids.push_back(Subscribe(subjects.back()));
    ASSERT_FALSE(ids.back().empty());
  }
  // Twice, so the second batch's entries must land after the first's on
  // every shard.
  for (int batch = 0; batch < 2; ++batch) {
    std::vector<Entry> entries;
    for (int round = 0; round < kRounds; ++round) {
      for (int s = 0; s < kSubjects; ++s) {
        entries.push_back({subjects[s], Numbered("m", batch * kRounds + round)});
      }
    }
    EXPECT_TRUE(IsJsonResponse(PublishBatch(ManySubjectBody(entries)), 200,
                               ManySubjectAnswer({}, entries.size())));
  }
  for (int s = 0; s < kSubjects; ++s) {
    EXPECT_EQ(Fetch(subjects[s], ids[s]), NumberedData("m", 0, 2 * kRounds)) << subjects[s];
  }
}

TEST_F(BatchPublishTest, ManySubjectEntriesAreReadAsPublishBodiesAre) {
  const std::string subject = SubjectName("batch.fields", 0);
  const std::string id = Subscribe(subject);
  ASSERT_FALSE(id.empty());
  // Keys in any case, unknown fields ignored, null leaving a field unset;
  // a null entry is an entry with no subject.
  const std::string body =
      Joined({R"({"messages":[{"Subject":")", subject,
              R"(","DATA":"upper","extra":{"x":[1,2]}},null,{"subject":")", subject,
              R"(","data":null},{"data":"d","subject":")", subject, R"("}],"unknown":true})"});
  EXPECT_TRUE(
      IsJsonResponse(PublishBatch(body), 200, ManySubjectAnswer({{400, 1, "invalid subject"}}, 3)));
  EXPECT_EQ(Fetch(subject, id), (std::vector<std::string>{"upper", "", "d"}));
}

TEST_F(BatchPublishTest, MalformedBatchesAreRefusedWhole) {
  const std::string subject = SubjectName("batch.malformed", 0);
  const std::string id = Subscribe(subject);
  ASSERT_FALSE(id.empty());
  const std::string s = Joined({"\"", subject, "\""});
  for (const std::string& body : {
           Joined({R"({"subject":)", s, "}"}),                       // neither form
           std::string(R"({})"),                                     // neither
           Joined({R"({"subject":)", s, R"(,"data":[]})"}),          // empty list
           std::string(R"({"messages":[]})"),                        // empty list
           Joined({R"({"subject":)", s, R"(,"data":"one"})"}),       // data not a list
           Joined({R"({"subject":)", s, R"(,"data":["a",1]})"}),     // a number inside
           Joined({R"({"subject":)", s, R"(,"data":["a",null]})"}),  // a null inside
           Joined({R"({"subject":)", s, R"(,"data":["a"],"messages":[{"subject":)", s,
                   R"(,"data":"b"}]})"}),                                      // both forms
           std::string(R"({"messages":[1]})"),                                 // not an object
           Joined({R"({"messages":[{"subject":)", s, R"(,"data":["a"]}]})"}),  // data a list
           std::string(R"({"messages":{"subject":"a"}})"),                     // not a list
           Joined({R"({"subject":)", s, R"(,"data":["a")"}),                   // cut short
       }) {
    EXPECT_TRUE(IsJsonResponse(PublishBatch(body), 400, kInvalidBodyBody)) << body;
  }
  EXPECT_TRUE(IsJsonResponse(Call("POST", "/api/publish/batch", ""), 400, kInvalidBodyBody));
  EXPECT_EQ(Fetch(subject, id), std::vector<std::string>{}) << "nothing was stored";
  EXPECT_EQ(Metric("gophermq_messages_published_total"), 0);
}

TEST_F(BatchPublishTest, MoreThanMaxBatchIsBatchTooLarge) {
  constexpr std::string_view kBatchTooLarge = "{\"message\":\"batch too large\"}\n";
  const std::string subject = SubjectName("batch.large", 0);
  const std::string id = Subscribe(subject);
  ASSERT_FALSE(id.empty());
  EXPECT_TRUE(IsJsonResponse(PublishBatch(OneSubjectBody(subject, NumberedData("m", 0, 51))), 400,
                             kBatchTooLarge));
  std::vector<Entry> entries(51, Entry{subject, "x"});
  EXPECT_TRUE(IsJsonResponse(PublishBatch(ManySubjectBody(entries)), 400, kBatchTooLarge));
  EXPECT_EQ(Fetch(subject, id), std::vector<std::string>{});
  // The bound itself is allowed.
  EXPECT_TRUE(IsJsonResponse(PublishBatch(OneSubjectBody(subject, NumberedData("m", 0, 50))), 200,
                             kOkBody));
  EXPECT_EQ(Fetch(subject, id).size(), 50u);
}

TEST_F(BatchPublishTest, APlainPublishStillRefusesAListAsData) {
  const std::string subject = SubjectName("batch.plain", 0);
  const std::string id = Subscribe(subject);
  ASSERT_FALSE(id.empty());
  // A plain publish reads `data` as the original does (a string), and its
  // unknown `messages` field is ignored.
  EXPECT_TRUE(IsJsonResponse(
      Post("/api/publish", Joined({R"({"subject":")", subject, R"(","data":["a"]})"})), 400,
      kInvalidBodyBody));
  EXPECT_TRUE(IsJsonResponse(
      Post("/api/publish", Joined({R"({"subject":")", subject, R"(","data":"a","messages":[1]})"})),
      200, kOkBody));
  EXPECT_EQ(Fetch(subject, id), (std::vector<std::string>{"a"}));
}

}  // namespace
}  // namespace gophermq::testing
