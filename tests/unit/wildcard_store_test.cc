// The store's side of wildcard subscriptions (api-extensions.md §10): a
// wildcard message's framing, PatternRoutes (which patterns match and where
// each one's queue is), and SubjectStore's patterns: their own namespace,
// ids found across it, and the changes every shard must learn of; and the
// fetch answers of a wildcard subscriber.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gophermq/api/response_encoder.h"
#include "gophermq/byte_buffer.h"
#include "gophermq/store/pattern_routes.h"
#include "gophermq/store/pending_budget.h"
#include "gophermq/store/subject.h"
#include "gophermq/store/subject_store.h"
#include "gophermq/store/subscriber_id.h"
#include "gophermq/store/wildcard_message.h"

namespace gophermq {
namespace {

using namespace std::string_literals;

TEST(WildcardMessage, FramesSubjectAndDataAndGivesThemBack) {
  std::string framed;
  for (const auto& [subject, data] : std::vector<std::pair<std::string, std::string>>{
           {"a.b", "payload"}, {"a", ""}, {std::string(300, 's'), std::string("\0x\0", 3)}}) {
    frame_wildcard_message(subject, data, framed);
    EXPECT_EQ(framed.size(), kWildcardSubjectSizeBytes + subject.size() + data.size());
    const WildcardMessage message = unframe_wildcard_message(framed);
    EXPECT_EQ(message.subject, subject);
    EXPECT_EQ(message.data, data);
  }
}

// The patterns matching `subject`, as "pattern@owner", in match order.
std::vector<std::string> matches(PatternRoutes& routes, std::string_view subject) {
  std::vector<std::string> out;
  routes.for_each_match(subject, [&](const PatternRoutes::Route& route) {
    out.push_back(route.pattern + "@" + std::to_string(route.owner));
  });
  std::sort(out.begin(), out.end());
  return out;
}

std::string at_owner(std::string_view pattern, unsigned shards) {
  return std::string(pattern) + "@" + std::to_string(owner_shard(pattern, shards));
}

std::vector<std::string> sorted(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  return names;
}

TEST(PatternRoutes, MatchesByNatsRulesAndNamesEachPatternsOwner) {
  PatternRoutes routes(4);
  EXPECT_TRUE(routes.empty());
  EXPECT_TRUE(matches(routes, "a.b").empty());
  for (std::string_view pattern : {"a.*", "a.>", "*.b", "a.b", ">", "a.*.c"}) routes.add(pattern);
  routes.add("a.*");  // known already: still one route
  EXPECT_EQ(routes.size(), 6u);
  EXPECT_EQ(matches(routes, "a.b"),
            sorted({at_owner(">", 4), at_owner("*.b", 4), at_owner("a.*", 4), at_owner("a.>", 4),
                    at_owner("a.b", 4)}));
  EXPECT_EQ(matches(routes, "a"), std::vector<std::string>{at_owner(">", 4)});
  EXPECT_EQ(matches(routes, "a.x.c"),
            sorted({at_owner(">", 4), at_owner("a.*.c", 4), at_owner("a.>", 4)}));
  EXPECT_EQ(matches(routes, "b.c"), std::vector<std::string>{at_owner(">", 4)});
}

TEST(PatternRoutes, ARemovedPatternMatchesNoMoreAndItsPlaceIsReused) {
  PatternRoutes routes(2);
  routes.add("a.*");
  routes.add("b.*");
  EXPECT_EQ(matches(routes, "a.x").size(), 1u);
  EXPECT_TRUE(routes.remove("a.*"));
  EXPECT_FALSE(routes.remove("a.*"));
  EXPECT_FALSE(routes.remove("never.*"));
  EXPECT_TRUE(matches(routes, "a.x").empty()) << "no stale cached result";
  routes.add("c.>");
  EXPECT_EQ(matches(routes, "c.x.y"), std::vector<std::string>{at_owner("c.>", 2)});
  EXPECT_EQ(matches(routes, "b.x"), std::vector<std::string>{at_owner("b.*", 2)});
  EXPECT_TRUE(routes.remove("b.*"));
  EXPECT_TRUE(routes.remove("c.>"));
  EXPECT_TRUE(routes.empty());
}

class WildcardStoreTest : public ::testing::Test {
 protected:
  WildcardStoreTest() : store_(budget_, census_, ids_) { wildcard_.wildcard = true; }

  std::vector<std::pair<bool, std::string>> changes() {
    std::vector<SubjectStore::PatternChange> taken;
    store_.take_pattern_changes(taken);
    std::vector<std::pair<bool, std::string>> out;
    for (const auto& change : taken) out.emplace_back(change.added, change.pattern);
    return out;
  }

  std::vector<WildcardMessage> pending_of(std::string_view pattern, const SubscriberId& id) {
    std::vector<WildcardMessage> out;
    store_.find(pattern, id)->pending().for_each([&](const Message& message) {
      out.push_back(unframe_wildcard_message(message.payload()));
    });
    return out;
  }

  PendingBudget budget_{1000};
  StoreCensus census_{1000, 1000};
  SubscriberIdSource ids_;
  SubjectStore store_;
  SubscribeOptions wildcard_;
};

TEST_F(WildcardStoreTest, APatternAndTheLiteralSubjectOfItsNameShareNothing) {
  const SubscriberId literal = store_.subscribe("a.*").id;
  const SubscriberId pattern = store_.subscribe("a.*", wildcard_).id;
  EXPECT_EQ(store_.subject_count(), 2u);
  ASSERT_NE(store_.find("a.*", literal), nullptr);
  ASSERT_NE(store_.find("a.*", pattern), nullptr);
  EXPECT_FALSE(store_.find("a.*", literal)->subject->pattern);
  EXPECT_TRUE(store_.find("a.*", pattern)->subject->pattern);
  EXPECT_EQ(store_.find("a.*", ids_.next(0)), nullptr);

  ASSERT_EQ(store_.publish("a.*", "literal"), PublishOutcome::stored);
  std::string framed;
  frame_wildcard_message("a.x", "matched", framed);
  ASSERT_EQ(store_.publish_to_pattern("a.*", framed), PublishOutcome::stored);
  ASSERT_EQ(store_.find("a.*", literal)->pending().size(), 1u);
  const std::vector<WildcardMessage> held = pending_of("a.*", pattern);
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].subject, "a.x");
  EXPECT_EQ(held[0].data, "matched");
  // Its bytes are what it holds: the subject's too.
  EXPECT_EQ(store_.find("a.*", pattern)->pending().bytes(), framed.size());

  EXPECT_TRUE(store_.unsubscribe("a.*", literal));
  EXPECT_NE(store_.find("a.*", pattern), nullptr);
  EXPECT_EQ(store_.publish("a.*", "nobody"), PublishOutcome::no_subscriber);
  EXPECT_TRUE(store_.unsubscribe("a.*", pattern));
  EXPECT_EQ(store_.publish_to_pattern("a.*", framed), PublishOutcome::no_subscriber);
  EXPECT_EQ(store_.subject_count(), 0u);
  EXPECT_EQ(budget_.pending(), 0u);
}

TEST_F(WildcardStoreTest, APatternsFirstSubscriberAndItsLastAreChanges) {
  store_.subscribe("plain");
  EXPECT_FALSE(store_.has_pattern_changes());
  const SubscriberId first = store_.subscribe("a.>", wildcard_).id;
  const SubscriberId second = store_.subscribe("a.>", wildcard_).id;
  SubscribeOptions member = wildcard_;
  member.group = "g";
  const SubscriberId grouped = store_.subscribe("b.*", member).id;
  EXPECT_EQ(changes(), (std::vector<std::pair<bool, std::string>>{{true, "a.>"}, {true, "b.*"}}));
  EXPECT_FALSE(store_.has_pattern_changes());
  EXPECT_TRUE(store_.unsubscribe("a.>", first));
  EXPECT_FALSE(store_.has_pattern_changes()) << "one subscriber left";
  EXPECT_TRUE(store_.unsubscribe("a.>", second));
  EXPECT_TRUE(store_.unsubscribe("b.*", grouped));
  EXPECT_EQ(changes(), (std::vector<std::pair<bool, std::string>>{{false, "a.>"}, {false, "b.*"}}));
}

TEST_F(WildcardStoreTest, AnExpiredPatternIsAChange) {
  SubscribeOptions expiring = wildcard_;
  expiring.inactive_threshold_ms = 100;
  store_.set_now(1000);
  const SubscriberId id = store_.subscribe("a.*", expiring).id;
  changes();
  store_.set_now(1100);
  EXPECT_EQ(store_.expire_idle(), 1u);
  EXPECT_EQ(store_.find("a.*", id), nullptr);
  EXPECT_EQ(changes(), (std::vector<std::pair<bool, std::string>>{{false, "a.*"}}));
}

TEST_F(WildcardStoreTest, APatternQueueKeepsItsOwnBounds) {
  SubscribeOptions bounded = wildcard_;
  bounded.queue.bounds.max_pending = 2;
  const SubscriberId id = store_.subscribe("a.*", bounded).id;
  std::string framed;
  for (std::string_view data : {"1", "2", "3"}) {
    frame_wildcard_message("a.x", data, framed);
    EXPECT_EQ(store_.publish_to_pattern("a.*", framed), PublishOutcome::stored);
  }
  const std::vector<WildcardMessage> held = pending_of("a.*", id);
  ASSERT_EQ(held.size(), 2u) << "the third dropped, as discard:new drops";
  EXPECT_EQ(held[1].data, "2");
}

// A wildcard subscriber's messages carry their subjects: "subjects" follows
// the pattern's "subject", parallel to "data", in every kind of answer.
TEST(WildcardFetchBody, AddsEachMessagesSubjectAfterThePattern) {
  PendingBudget budget{100};
  SubscriberIdSource ids;
  StoreCensus census{10, 10};
  SubjectStore store(budget, census, ids);
  SubscribeOptions wildcard;
  wildcard.wildcard = true;
  const SubscriberId id = store.subscribe("a.>", wildcard).id;
  std::string framed;
  frame_wildcard_message("a.<b>", "x\n", framed);
  ASSERT_EQ(store.publish_to_pattern("a.>", framed), PublishOutcome::stored);
  frame_wildcard_message("a.c.d", "", framed);
  ASSERT_EQ(store.publish_to_pattern("a.>", framed), PublishOutcome::stored);
  const PendingMessages pending = store.find("a.>", id)->pending();
  std::string id_text(SubscriberId::kTextLength, '?');
  id.write_text(id_text.data());
  for (std::size_t count : {std::size_t{0}, std::size_t{1}, std::size_t{2}}) {
    SCOPED_TRACE(count);
    const char* const data[] = {"", "\"x\\n\"", "\"x\\n\",\"\""};
    const char* const subjects[] = {"", "\"a.\\u003cb\\u003e\"", "\"a.\\u003cb\\u003e\",\"a.c.d\""};
    ByteBuffer out;
    const std::size_t size = fetch_body_size(pending, count, "a.>", nullptr, true);
    append_fetch_body(out, size, pending, count, id, "a.>", nullptr, true);
    EXPECT_EQ(out.view(), "{\"data\":["s + data[count] + "],\"id\":\"" + id_text +
                              "\",\"subject\":\"a.\\u003e\",\"subjects\":[" + subjects[count] +
                              "]}\n");
    EXPECT_EQ(out.size(), size);
    const FetchAnswerExtras extras{2 - count, 1};
    ByteBuffer with_extras;
    const std::size_t extras_size = fetch_body_size(pending, count, "a.>", &extras, true);
    append_fetch_body(with_extras, extras_size, pending, count, id, "a.>", &extras, true);
    EXPECT_EQ(with_extras.size(), extras_size);
    EXPECT_NE(with_extras.view().find("\"seqs\":["s +
                                      (count == 0   ? ""
                                       : count == 1 ? "1"
                                                    : "1,2") +
                                      "],\"subject\":\"a.\\u003e\",\"subjects\":["),
              std::string_view::npos)
        << with_extras.view();
  }
  std::vector<AckQueue::Delivery> deliveries;
  pending.for_each([&](const Message& message) { deliveries.push_back({3, 1, &message}); });
  ByteBuffer acked;
  const std::size_t size = ack_fetch_body_size(deliveries, 0, "a.>", true);
  append_ack_fetch_body(acked, size, deliveries, id, 0, "a.>", true);
  EXPECT_EQ(acked.view(), "{\"data\":[\"x\\n\",\"\"],\"deliveries\":[1,1],\"id\":\""s + id_text +
                              "\",\"pending\":0,\"seqs\":[3,3],\"subject\":\"a.\\u003e\","
                              "\"subjects\":[\"a.\\u003cb\\u003e\",\"a.c.d\"]}\n");
  EXPECT_EQ(acked.size(), size);
}

}  // namespace
}  // namespace gophermq
