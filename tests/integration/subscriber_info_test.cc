// POST /api/info (api-extensions.md §7): what one subscriber holds and does,
// {"id","idle_ms","inflight","pending","pending_bytes","subject","waiting"},
// for subjects on both shards.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "test_support.h"

namespace gophermq::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kSubjects = 6;

// GetInfo checks that every answer is exactly the documented object, keys
// sorted, for the id and subject asked about.
class SubscriberInfoTest : public BrokerTest {};

TEST_F(SubscriberInfoTest, CountsWhatIsPendingAndItsBytes) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = Numbered("info.pending.", s);
    const std::string id = Subscribe(subject);
    SubscriberInfo info = GetInfo(subject, id);
    EXPECT_EQ(info.pending, 0u);
    EXPECT_EQ(info.pending_bytes, 0u);
    EXPECT_EQ(info.inflight, 0u);
    EXPECT_EQ(info.waiting, 0u);
    PublishOk(subject, "abc");
    PublishOk(subject, "de");
    // A second subscriber joins after the first message: it holds only the
    // second (its bytes are counted from its own cursor).
    const std::string later = Subscribe(subject);
    PublishOk(subject, "fghi");
    info = GetInfo(subject, id);
    EXPECT_EQ(info.pending, 3u);
    EXPECT_EQ(info.pending_bytes, 9u);
    info = GetInfo(subject, later);
    EXPECT_EQ(info.pending, 1u);
    EXPECT_EQ(info.pending_bytes, 4u);
    EXPECT_EQ(Fetch(subject, id), (std::vector<std::string>{"abc", "de", "fghi"}));
    info = GetInfo(subject, id);
    EXPECT_EQ(info.pending, 0u);
    EXPECT_EQ(info.pending_bytes, 0u);
  }
}

TEST_F(SubscriberInfoTest, ABoundedSubscriberCountsItsOwnQueue) {
  const std::string id = SubscribeWith("info.bounded", R"("max_pending":2,"discard":"old")");
  for (const char* data : {"a", "bb", "ccc", "dddd"}) PublishOk("info.bounded", data);
  const SubscriberInfo info = GetInfo("info.bounded", id);
  EXPECT_EQ(info.pending, 2u);
  EXPECT_EQ(info.pending_bytes, 7u);
}

TEST_F(SubscriberInfoTest, IdleTimeGrowsAndAnInfoRestartsIt) {
  const std::string id = Subscribe("info.idle");
  const Clock::time_point subscribed = Clock::now();  // after its answer came
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  const auto waited =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - subscribed).count();
  const Clock::time_point asked = Clock::now();
  EXPECT_GE(GetInfo("info.idle", id).idle_ms, static_cast<std::uint64_t>(waited) - 1);
  // That info restarted its clock: the next one reads at most the time since.
  const std::uint64_t next = GetInfo("info.idle", id).idle_ms;
  const auto since =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - asked).count();
  EXPECT_LE(next, static_cast<std::uint64_t>(since) + 1);
}

TEST_F(SubscriberInfoTest, CountsWaitingFetches) {
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(s);
    const std::string subject = Numbered("info.waiting.", s);
    const std::string id = Subscribe(subject);
    std::unique_ptr<HttpClient> waiting = Connect();
    std::string body = FetchBody(subject, id);
    body.insert(body.size() - 1, ",\"wait_ms\":20000");
    ASSERT_TRUE(waiting->SendRaw(FormatRequest("POST", "/api/fetch", body)));
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    SubscriberInfo info;
    while (Clock::now() < deadline && (info = GetInfo(subject, id)).waiting == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_EQ(info.waiting, 1u);
    EXPECT_EQ(info.idle_ms, 0u) << "a subscriber with a fetch waiting is active";
    PublishOk(subject, "x");
    HttpResponse answer;
    ASSERT_TRUE(waiting->ReadResponse(&answer)) << waiting->error();
    EXPECT_EQ(answer.status, 200);
    EXPECT_EQ(GetInfo(subject, id).waiting, 0u);
  }
}

TEST_F(SubscriberInfoTest, AnUnknownIdIs404BadIdAndABadSubject400) {
  const std::string id = Subscribe("info.known");
  for (int s = 0; s < kSubjects; ++s) {
    EXPECT_TRUE(IsJsonResponse(Post("/api/info", FetchBody(Numbered("info.known.", s), id)), 404,
                               kBadIdBody));
  }
  EXPECT_TRUE(
      IsJsonResponse(Post("/api/info", FetchBody("info.known", "not-an-id")), 404, kBadIdBody));
  EXPECT_TRUE(
      IsJsonResponse(Post("/api/info", FetchBody("info known", id)), 400, kInvalidSubjectBody));
  EXPECT_TRUE(IsJsonResponse(Call("GET", "/api/info"), 405, kMethodNotAllowedBody));
  EXPECT_TRUE(IsJsonResponse(Post("/api/unsubscribe", FetchBody("info.known", id)), 200, kOkBody));
  EXPECT_TRUE(IsJsonResponse(Post("/api/info", FetchBody("info.known", id)), 404, kBadIdBody));
}

}  // namespace
}  // namespace gophermq::testing
