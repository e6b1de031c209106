// StreamFeeds: the event streams a shard feeds, by subscriber and by
// subject, the counts it keeps on subscribers and subjects, and the
// coalescing of sends (broker.stream-flush-interval): a stream quiet for an
// interval is sent at once, a busier one is held until its interval has
// passed, and held streams come due in time order.
#include "gophermq/api/stream_feeds.h"

#include <gtest/gtest.h>

#include <vector>

namespace gophermq {
namespace {

constexpr std::uint64_t kInterval = 10;

class StreamFeedsTest : public ::testing::Test {
 protected:
  Subscriber& subscribe(std::string_view subject) {
    const SubscriberId id = store_.subscribe(subject).id;
    return *store_.find(subject, id);
  }

  static StreamFeed feed(Subscriber& subscriber, std::uint64_t token) {
    return StreamFeed{&subscriber, token, 0, 0, 0, false, StreamFeeds::kWindowBytes, "s"};
  }

  // A stream of `subscriber`, last sent events at `last_sent_ms`.
  StreamFeed& attach_sent(Subscriber& subscriber, std::uint64_t token, std::uint64_t last_sent_ms) {
    feeds_.attach(feed(subscriber, token));
    StreamFeed& attached = *feeds_.find(subscriber);
    attached.last_sent_ms = last_sent_ms;
    return attached;
  }

  std::vector<StreamFeed*> due(std::uint64_t now_ms) {
    std::vector<StreamFeed*> out;
    feeds_.take_due(now_ms, out);
    return out;
  }

  PendingBudget budget_{1000};
  SubscriberIdSource ids_;
  StoreCensus census_{100, 100};
  SubjectStore store_{budget_, census_, ids_};
  StreamFeeds feeds_{kInterval};
};

TEST_F(StreamFeedsTest, AttachingCountsTheSubscriberAsWaitingAndReplacesAnOlderStream) {
  Subscriber& a = subscribe("s");
  EXPECT_FALSE(feeds_.attach(feed(a, 1)).has_value());
  EXPECT_TRUE(a.streamed);
  EXPECT_EQ(a.subject->waiting_subscribers, 1u);
  const std::optional<StreamFeed> replaced = feeds_.attach(feed(a, 2));
  ASSERT_TRUE(replaced.has_value());
  EXPECT_EQ(replaced->token, 1u);
  EXPECT_EQ(feeds_.find(a)->token, 2u);
  EXPECT_EQ(a.subject->waiting_subscribers, 1u) << "one stream per subscriber";

  std::vector<Subscriber*> streamed;
  feeds_.streamed_subscribers(*a.subject, streamed);
  EXPECT_EQ(streamed, std::vector<Subscriber*>{&a});

  ASSERT_TRUE(feeds_.detach(a).has_value());
  EXPECT_FALSE(a.streamed);
  EXPECT_EQ(a.subject->waiting_subscribers, 0u);
  EXPECT_EQ(feeds_.find(a), nullptr);
  feeds_.streamed_subscribers(*a.subject, streamed);
  EXPECT_TRUE(streamed.empty());
}

TEST_F(StreamFeedsTest, AStreamQuietForAnIntervalIsNotHeld) {
  StreamFeed& stream = attach_sent(subscribe("s"), 1, 1000);
  EXPECT_FALSE(feeds_.hold(stream, 1000 + kInterval));
  EXPECT_FALSE(feeds_.hold(stream, 5000));
  EXPECT_EQ(feeds_.next_flush_ms(), UINT64_MAX);
}

TEST_F(StreamFeedsTest, AStreamSentWithinTheIntervalIsHeldOnceUntilItPasses) {
  StreamFeed& stream = attach_sent(subscribe("s"), 1, 1000);
  EXPECT_TRUE(feeds_.hold(stream, 1001));
  EXPECT_TRUE(feeds_.hold(stream, 1009)) << "still within the interval";
  EXPECT_EQ(feeds_.next_flush_ms(), 1000 + kInterval);
  EXPECT_TRUE(due(1009).empty());
  const std::vector<StreamFeed*> taken = due(1010);
  ASSERT_EQ(taken.size(), 1u) << "held twice, due once";
  EXPECT_EQ(taken[0], &stream);
  EXPECT_EQ(stream.flush_due_ms, 0u);
  EXPECT_EQ(feeds_.next_flush_ms(), UINT64_MAX);
  EXPECT_TRUE(due(UINT64_MAX).empty());
}

TEST_F(StreamFeedsTest, HeldStreamsComeDueInTimeOrder) {
  StreamFeed& a = attach_sent(subscribe("s"), 1, 1005);
  StreamFeed& b = attach_sent(subscribe("s"), 2, 1000);
  StreamFeed& c = attach_sent(subscribe("t"), 3, 1003);
  // Held in another order than they fall due.
  EXPECT_TRUE(feeds_.hold(a, 1006));
  EXPECT_TRUE(feeds_.hold(b, 1006));
  EXPECT_TRUE(feeds_.hold(c, 1006));
  EXPECT_EQ(feeds_.next_flush_ms(), 1010u);
  EXPECT_EQ(due(1012), (std::vector<StreamFeed*>{&b}));
  EXPECT_EQ(feeds_.next_flush_ms(), 1013u);
  EXPECT_EQ(due(1015), (std::vector<StreamFeed*>{&c, &a}));
}

TEST_F(StreamFeedsTest, AStreamThatWentWhileHeldIsSkipped) {
  Subscriber& a = subscribe("s");
  Subscriber& b = subscribe("s");
  EXPECT_TRUE(feeds_.hold(attach_sent(a, 1, 1000), 1001));
  EXPECT_TRUE(feeds_.hold(attach_sent(b, 2, 1000), 1001));
  feeds_.detach(a);
  // A newer stream of b, not held itself: the older one's turn is not its.
  feeds_.attach(feed(b, 3));
  EXPECT_TRUE(due(UINT64_MAX).empty());
}

TEST_F(StreamFeedsTest, TheBrokersStopTakesEveryHeldStreamAndDetachesAll) {
  Subscriber& a = subscribe("s");
  Subscriber& b = subscribe("t");
  StreamFeed& held = attach_sent(a, 1, 1000);
  attach_sent(b, 2, 1000);
  EXPECT_TRUE(feeds_.hold(held, 1001));
  EXPECT_EQ(due(UINT64_MAX), (std::vector<StreamFeed*>{&held}));
  const std::vector<StreamFeed> detached = feeds_.detach_all();
  EXPECT_EQ(detached.size(), 2u);
  EXPECT_EQ(feeds_.size(), 0u);
  EXPECT_FALSE(a.streamed);
  EXPECT_EQ(b.subject->waiting_subscribers, 0u);
}

TEST(StreamFeedsWithoutInterval, NeverHold) {
  PendingBudget budget{10};
  SubscriberIdSource ids;
  StoreCensus census{10, 10};
  SubjectStore store{budget, census, ids};
  const SubscriberId id = store.subscribe("s").id;
  Subscriber& subscriber = *store.find("s", id);
  StreamFeeds feeds{0};
  feeds.attach(StreamFeed{&subscriber, 1, 0, 0, 0, false, StreamFeeds::kWindowBytes, "s"});
  StreamFeed& stream = *feeds.find(subscriber);
  stream.last_sent_ms = 1000;
  EXPECT_FALSE(feeds.hold(stream, 1000));
  EXPECT_EQ(feeds.next_flush_ms(), UINT64_MAX);
}

}  // namespace
}  // namespace gophermq
