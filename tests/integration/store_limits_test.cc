// The named bounds on what the store holds, each with its own answer:
// broker.max-subject-bytes (400 invalid subject), broker.max-subscribers and
// broker.max-subscribers-per-subject (429 too many subscribers),
// broker.max-subjects (429 too many subjects). Subjects spread over both
// shards, so the broker-wide bounds are seen to be broker-wide.
#include <string>
#include <vector>

#include "test_support.h"

namespace gophermq::testing {
namespace {

constexpr std::string_view kTooManySubscribersBody = "{\"message\":\"too many subscribers\"}\n";
constexpr std::string_view kTooManySubjectsBody = "{\"message\":\"too many subjects\"}\n";

class StoreLimitsTest : public BrokerTest {
 protected:
  std::optional<BrokerOptions> Options() const override { return std::nullopt; }

  void StartWith(std::vector<std::string> flags) {
    BrokerOptions options;
    options.flags = std::move(flags);
    StartBroker(options);
  }
};

TEST_F(StoreLimitsTest, ASubjectLongerThanMaxSubjectBytesIsInvalidEverywhere) {
  ASSERT_NO_FATAL_FAILURE(StartWith({"--broker.max-subject-bytes=1024"}));
  const std::string longest(1024, 's');
  const std::string too_long(2048, 's');
  const std::string id = Subscribe(longest);
  ASSERT_FALSE(id.empty());
  PublishOk(longest, "fits");
  EXPECT_EQ(Fetch(longest, id), std::vector<std::string>{"fits"});
  EXPECT_TRUE(IsJsonResponse(Post("/api/subscribe", "{\"subject\":\"" + too_long + "\"}"), 400,
                             kInvalidSubjectBody));
  EXPECT_TRUE(IsJsonResponse(Publish(too_long, "x"), 400, kInvalidSubjectBody));
  EXPECT_TRUE(IsJsonResponse(Post("/api/publish/async", PublishBody(too_long, "x")), 400,
                             kInvalidSubjectBody));
  EXPECT_TRUE(
      IsJsonResponse(Post("/api/fetch", FetchBody(too_long, id)), 400, kInvalidSubjectBody));
}

TEST_F(StoreLimitsTest, TheDefaultRefusesTheIssues2KiBSubject) {
  ASSERT_NO_FATAL_FAILURE(StartWith({}));
  EXPECT_TRUE(
      IsJsonResponse(Post("/api/subscribe", "{\"subject\":\"" + std::string(2048, 'x') + "\"}"),
                     400, kInvalidSubjectBody));
}

TEST_F(StoreLimitsTest, SubscribersPerSubjectAndBrokerWide) {
  ASSERT_NO_FATAL_FAILURE(
      StartWith({"--broker.max-subscribers-per-subject=3", "--broker.max-subscribers=10"}));
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(Subscribe("crowded").empty());
  EXPECT_TRUE(IsJsonResponse(Post("/api/subscribe", "{\"subject\":\"crowded\"}"), 429,
                             kTooManySubscribersBody));
  // Seven more, on subjects both shards own, reach the broker-wide ten.
  for (int i = 0; i < 7; ++i) EXPECT_FALSE(Subscribe(Numbered("spread.s", i)).empty());
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(IsJsonResponse(
        Post("/api/subscribe", "{\"subject\":\"" + Numbered("spread.more", i) + "\"}"), 429,
        kTooManySubscribersBody));
  }
  // The subscribers there still work.
  PublishOk("crowded", "still served");
}

TEST_F(StoreLimitsTest, SubjectsBrokerWide) {
  ASSERT_NO_FATAL_FAILURE(StartWith({"--broker.max-subjects=6"}));
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(Subscribe(Numbered("subject.s", i)));
  for (int i = 6; i < 10; ++i) {
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/subscribe", "{\"subject\":\"" + Numbered("subject.s", i) + "\"}"),
                       429, kTooManySubjectsBody));
  }
  // An existing subject takes more subscribers.
  EXPECT_FALSE(Subscribe(Numbered("subject.s", 0)).empty());
  PublishOk(Numbered("subject.s", 5), "x");
  EXPECT_EQ(Fetch(Numbered("subject.s", 5), ids[5]), std::vector<std::string>{"x"});
}

}  // namespace
}  // namespace gophermq::testing
