// SubjectStore, MessageQueue and PendingBudget: subscribers, fan-out, fetch
// (drain) and the broker-wide max-pending bound.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gophermq/store/message.h"
#include "gophermq/store/pending_budget.h"
#include "gophermq/store/subject_store.h"
#include "gophermq/store/subscriber_id.h"

namespace gophermq {
namespace {

using namespace std::string_literals;

// prefix + number, e.g. name("m", 7) == "m7".
std::string name(std::string_view prefix, int number) {
  std::string out(prefix);
  out += std::to_string(number);
  return out;
}

// What a subscriber has pending, or what a queue holds, oldest first.
template <typename Messages>
std::vector<std::string> payloads(const Messages& queue) {
  std::vector<std::string> out;
  queue.for_each([&](const Message& message) { out.emplace_back(message.payload()); });
  return out;
}

SubscribeOptions expiring(std::uint64_t inactive_threshold_ms) {
  SubscribeOptions options;
  options.inactive_threshold_ms = inactive_threshold_ms;
  return options;
}

std::vector<std::string> numbered(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back(name("m", i));
  return out;
}

class SubjectStoreTest : public ::testing::Test {
 protected:
  explicit SubjectStoreTest(std::uint64_t max_pending = 1'000'000)
      : budget_(max_pending), store_(budget_, census_, ids_) {}

  Subscriber& subscriber(std::string_view subject, const SubscriberId& id) {
    Subscriber* found = store_.find(subject, id);
    EXPECT_NE(found, nullptr);
    return *found;
  }
  std::vector<std::string> pending_for(std::string_view subject, const SubscriberId& id) {
    return payloads(subscriber(subject, id).pending());
  }

  PendingBudget budget_;
  StoreCensus census_{1'000'000, 1'000'000};
  SubscriberIdSource ids_;
  SubjectStore store_;
};

// --- Subscribe and find ---------------------------------------------------------

TEST_F(SubjectStoreTest, SubscribeGivesUniqueIds) {
  std::set<std::array<std::uint8_t, 16>> seen;
  for (int i = 0; i < 1000; ++i) {
    // Same subject and different subjects alike: every call is a new subscriber.
    EXPECT_TRUE(seen.insert(store_.subscribe("a").id.bytes).second);
    EXPECT_TRUE(seen.insert(store_.subscribe(name("s", i)).id.bytes).second);
  }
  EXPECT_EQ(store_.subscriber_count(), 2000u);
  EXPECT_EQ(store_.subject_count(), 1001u);
}

TEST_F(SubjectStoreTest, FindReturnsTheSubscriberOfThatSubject) {
  const SubscriberId id = store_.subscribe("a.b").id;
  Subscriber* found = store_.find("a.b", id);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->id, id);
  EXPECT_TRUE(found->pending().empty());
}

TEST_F(SubjectStoreTest, EverySubscriberOfACrowdedSubjectIsFoundByItsOwnId) {
  constexpr int kSubscribers = 20000;
  std::vector<SubscriberId> ids;
  for (int i = 0; i < kSubscribers; ++i) {
    ids.push_back(store_.subscribe("crowd").id);
    store_.subscribe(name("other", i % 7)).id;  // other subjects' slots interleave
  }
  for (const SubscriberId& id : ids) {
    Subscriber* found = store_.find("crowd", id);
    ASSERT_NE(found, nullptr);
    ASSERT_EQ(found->id, id);
  }
}

TEST_F(SubjectStoreTest, AnIdAlteredOutsideItsSlotIsNotFound) {
  store_.subscribe("a").id;
  const SubscriberId real = store_.subscribe("a").id;
  ASSERT_NE(store_.find("a", real), nullptr);
  // Bytes 4 to 11 do not encode the slot: the altered id still points at the
  // real subscriber's slot, and only the whole-id comparison refuses it.
  for (std::size_t byte = 4; byte < 12; ++byte) {
    SubscriberId forged = real;
    forged.bytes[byte] ^= 0x01;
    ASSERT_EQ(forged.slot(), real.slot());
    EXPECT_EQ(store_.find("a", forged), nullptr) << "byte " << byte;
  }
}

TEST_F(SubjectStoreTest, FindWithTheWrongSubjectOrAnUnknownIdIsNull) {
  const SubscriberId on_a = store_.subscribe("a").id;
  const SubscriberId on_b = store_.subscribe("b").id;
  // The original's "bad id": the id exists, but not for this subject.
  EXPECT_EQ(store_.find("b", on_a), nullptr);
  EXPECT_EQ(store_.find("a", on_b), nullptr);
  // A subject nobody subscribed to.
  EXPECT_EQ(store_.find("c", on_a), nullptr);
  // An id nobody was given, though its slot (0) is taken on "a".
  SubscriberIdSource other_source;
  EXPECT_EQ(store_.find("a", other_source.next(0)), nullptr);
  EXPECT_EQ(store_.find("a", SubscriberId{}), nullptr);
  // A slot past the subject's last subscriber.
  EXPECT_EQ(store_.find("a", other_source.next(1)), nullptr);
  EXPECT_EQ(store_.find("a", other_source.next(0xffffffff)), nullptr);
  // Subjects are compared exactly.
  EXPECT_EQ(store_.find("A", on_a), nullptr);
  EXPECT_EQ(store_.find("a ", on_a), nullptr);
}

// --- Publish --------------------------------------------------------------------

TEST_F(SubjectStoreTest, PublishWithNoSubscriberStoresNothing) {
  EXPECT_EQ(store_.publish("nobody", "x"), PublishOutcome::no_subscriber);
  EXPECT_EQ(budget_.pending(), 0u);
  // A publish does not create the subject.
  EXPECT_EQ(store_.subject_count(), 0u);
  // Subscribers of another subject do not count.
  store_.subscribe("somebody").id;
  EXPECT_EQ(store_.publish("nobody", "x"), PublishOutcome::no_subscriber);
  EXPECT_EQ(budget_.pending(), 0u);
}

TEST_F(SubjectStoreTest, PublishFansOutToEverySubscriberInOrder) {
  const SubscriberId first = store_.subscribe("s").id;
  const SubscriberId second = store_.subscribe("s").id;
  const SubscriberId third = store_.subscribe("s").id;
  const SubscriberId elsewhere = store_.subscribe("other").id;
  for (const std::string& message : numbered(0, 5)) {
    ASSERT_EQ(store_.publish("s", message), PublishOutcome::stored);
  }
  for (const SubscriberId& id : {first, second, third}) {
    EXPECT_EQ(pending_for("s", id), numbered(0, 5));
  }
  EXPECT_TRUE(pending_for("other", elsewhere).empty());
  EXPECT_EQ(budget_.pending(), 15u);  // one per message and subscriber
}

TEST_F(SubjectStoreTest, PublishCopiesThePayload) {
  const SubscriberId id = store_.subscribe("s").id;
  std::string payload = "original";
  ASSERT_EQ(store_.publish("s", payload), PublishOutcome::stored);
  payload.assign("changed!");
  EXPECT_EQ(pending_for("s", id), std::vector<std::string>{"original"});
}

TEST_F(SubjectStoreTest, PublishKeepsBinaryAndEmptyPayloads) {
  const SubscriberId id = store_.subscribe("s").id;
  const std::string binary("a\0b\xff", 4);
  ASSERT_EQ(store_.publish("s", binary), PublishOutcome::stored);
  ASSERT_EQ(store_.publish("s", ""), PublishOutcome::stored);
  EXPECT_EQ(pending_for("s", id), (std::vector<std::string>{binary, ""}));
}

TEST_F(SubjectStoreTest, ASubscriberOnlyGetsMessagesPublishedAfterItSubscribed) {
  const SubscriberId early = store_.subscribe("s").id;
  ASSERT_EQ(store_.publish("s", "before"), PublishOutcome::stored);
  const SubscriberId late = store_.subscribe("s").id;
  ASSERT_EQ(store_.publish("s", "after"), PublishOutcome::stored);
  EXPECT_EQ(pending_for("s", early), (std::vector<std::string>{"before", "after"}));
  EXPECT_EQ(pending_for("s", late), std::vector<std::string>{"after"});
  EXPECT_EQ(budget_.pending(), 3u);
}

// --- Drain (fetch) ----------------------------------------------------------------

TEST_F(SubjectStoreTest, DrainEmptiesTheQueueAndReturnsTheBudget) {
  const SubscriberId first = store_.subscribe("s").id;
  const SubscriberId second = store_.subscribe("s").id;
  for (const std::string& message : numbered(0, 4)) store_.publish("s", message);
  ASSERT_EQ(budget_.pending(), 8u);

  store_.drain(subscriber("s", first));
  EXPECT_TRUE(subscriber("s", first).pending().empty());
  EXPECT_EQ(budget_.pending(), 4u);
  // The other subscriber still has every message (shared, not freed).
  EXPECT_EQ(pending_for("s", second), numbered(0, 4));

  store_.drain(subscriber("s", second));
  EXPECT_EQ(budget_.pending(), 0u);

  // Draining an empty queue changes nothing.
  store_.drain(subscriber("s", first));
  EXPECT_EQ(budget_.pending(), 0u);
}

TEST_F(SubjectStoreTest, MessagesAfterADrainArriveNormally) {
  const SubscriberId id = store_.subscribe("s").id;
  store_.publish("s", "one");
  store_.drain(subscriber("s", id));
  store_.publish("s", "two");
  store_.publish("s", "three");
  EXPECT_EQ(pending_for("s", id), (std::vector<std::string>{"two", "three"}));
}

// --- Overflow -----------------------------------------------------------------------

class SubjectStoreOverflowTest : public SubjectStoreTest {
 protected:
  SubjectStoreOverflowTest() : SubjectStoreTest(5) {}
};

TEST_F(SubjectStoreOverflowTest, APublishThatWouldPassMaxPendingStoresNothing) {
  const SubscriberId a = store_.subscribe("s").id;
  const SubscriberId b = store_.subscribe("s").id;
  const SubscriberId c = store_.subscribe("s").id;

  ASSERT_EQ(store_.publish("s", "first"), PublishOutcome::stored);
  EXPECT_EQ(budget_.pending(), 3u);

  // 3 + 3 > 5: refused whole, not delivered to the first two subscribers.
  EXPECT_EQ(store_.publish("s", "second"), PublishOutcome::overflow);
  EXPECT_EQ(budget_.pending(), 3u);
  for (const SubscriberId& id : {a, b, c}) {
    EXPECT_EQ(pending_for("s", id), std::vector<std::string>{"first"});
  }

  // A fetch by one subscriber makes room: 2 + 3 = 5 fits exactly.
  store_.drain(subscriber("s", a));
  EXPECT_EQ(budget_.pending(), 2u);
  EXPECT_EQ(store_.publish("s", "third"), PublishOutcome::stored);
  EXPECT_EQ(budget_.pending(), 5u);
  EXPECT_EQ(pending_for("s", a), std::vector<std::string>{"third"});
  EXPECT_EQ(pending_for("s", b), (std::vector<std::string>{"first", "third"}));

  // Full: even a single-subscriber subject is refused now.
  const SubscriberId lone = store_.subscribe("lone").id;
  EXPECT_EQ(store_.publish("lone", "x"), PublishOutcome::overflow);
  EXPECT_TRUE(pending_for("lone", lone).empty());
  EXPECT_EQ(budget_.pending(), 5u);
}

TEST_F(SubjectStoreOverflowTest, TheBoundIsBrokerWideAcrossSubjects) {
  // The budget is shared: many subjects together are bounded too.
  for (int i = 0; i < 5; ++i) {
    store_.subscribe(name("s", i)).id;
    EXPECT_EQ(store_.publish(name("s", i), "x"), PublishOutcome::stored);
  }
  store_.subscribe("s5").id;
  EXPECT_EQ(store_.publish("s5", "x"), PublishOutcome::overflow);
  EXPECT_EQ(budget_.pending(), 5u);
}

TEST_F(SubjectStoreOverflowTest, MoreSubscribersThanMaxPendingNeverStore) {
  for (int i = 0; i < 6; ++i) store_.subscribe("crowd").id;
  EXPECT_EQ(store_.publish("crowd", "x"), PublishOutcome::overflow);
  EXPECT_EQ(budget_.pending(), 0u);
}

// --- Queue growth ---------------------------------------------------------------------

// --- Per-subject bounds ----------------------------------------------------------

class SubjectBoundsTest : public ::testing::Test {
 protected:
  // Per subject: 4 messages (one per subscriber queue), 1000 payload bytes;
  // broker-wide: 10 messages, 1500 bytes.
  SubjectBoundsTest()
      : budget_(10, 1500),
        store_(budget_, census_, ids_,
               StoreLimits{.max_fetch_bytes = 1 << 20,
                           .max_pending_per_subject = 4,
                           .max_pending_bytes_per_subject = 1000}) {}

  PendingBudget budget_;
  StoreCensus census_{100, 100};
  SubscriberIdSource ids_;
  SubjectStore store_;
};

TEST_F(SubjectBoundsTest, AFullSubjectIsRefusedAndOthersStillPublish) {
  const SubscriberId stale = store_.subscribe("stale").id;  // never fetches
  for (int i = 0; i < 4; ++i) ASSERT_EQ(store_.publish("stale", "x"), PublishOutcome::stored);
  EXPECT_EQ(store_.publish("stale", "x"), PublishOutcome::subject_overflow);
  // Another subject is untouched by the full one.
  const SubscriberId live = store_.subscribe("live").id;
  for (int i = 0; i < 4; ++i) EXPECT_EQ(store_.publish("live", "y"), PublishOutcome::stored);
  EXPECT_EQ(budget_.pending(), 8u);
  // Draining the stale subject gives its room back.
  store_.drain(*store_.find("stale", stale), 2);
  EXPECT_EQ(store_.publish("stale", "z"), PublishOutcome::stored);
  EXPECT_EQ(store_.publish("stale", "z"), PublishOutcome::stored);
  EXPECT_EQ(store_.publish("stale", "z"), PublishOutcome::subject_overflow);
  EXPECT_EQ(budget_.pending(), 8u);
  store_.drain(*store_.find("live", live));
  EXPECT_EQ(budget_.pending(), 4u);
}

TEST_F(SubjectBoundsTest, TheSubjectCountIsPerSubscriberQueueAsTheOriginalCounts) {
  const SubscriberId a = store_.subscribe("pair").id;
  const SubscriberId b = store_.subscribe("pair").id;
  ASSERT_EQ(store_.publish("pair", "1"), PublishOutcome::stored);  // 2
  ASSERT_EQ(store_.publish("pair", "2"), PublishOutcome::stored);  // 4
  EXPECT_EQ(store_.publish("pair", "3"), PublishOutcome::subject_overflow);
  store_.drain(*store_.find("pair", a));                           // 2 left, in b's queue
  ASSERT_EQ(store_.publish("pair", "3"), PublishOutcome::stored);  // 4
  EXPECT_EQ(payloads(store_.find("pair", b)->pending()), (std::vector<std::string>{"1", "2", "3"}));
}

TEST_F(SubjectBoundsTest, BytesCountEachMessageOnceHoweverManyQueuesHoldIt) {
  const SubscriberId a = store_.subscribe("fan").id;
  const SubscriberId b = store_.subscribe("fan").id;
  const std::string payload(400, 'p');
  ASSERT_EQ(store_.publish("fan", payload), PublishOutcome::stored);
  ASSERT_EQ(store_.publish("fan", payload), PublishOutcome::stored);
  EXPECT_EQ(budget_.pending_bytes(), 800u) << "two messages held, each once";
  EXPECT_EQ(store_.publish("fan", payload), PublishOutcome::subject_overflow) << "1200 > 1000";
  // One queue drained: the messages are still held by the other.
  store_.drain(*store_.find("fan", a));
  EXPECT_EQ(budget_.pending_bytes(), 800u);
  EXPECT_EQ(store_.publish("fan", payload), PublishOutcome::subject_overflow);
  store_.drain(*store_.find("fan", b));
  EXPECT_EQ(budget_.pending_bytes(), 0u);
  EXPECT_EQ(store_.publish("fan", payload), PublishOutcome::stored);
}

TEST_F(SubjectBoundsTest, TheBrokerWideBoundsStandBehindTheSubjects) {
  for (int i = 0; i < 3; ++i) {
    const std::string subject = name("s", i);
    store_.subscribe(subject).id;
    store_.subscribe(subject).id;
    ASSERT_EQ(store_.publish(subject, std::string(400, 'b')), PublishOutcome::stored);
  }
  // 6 of 10 messages, 1200 of 1500 bytes: a 400-byte message fits nowhere.
  store_.subscribe("s3").id;
  EXPECT_EQ(store_.publish("s3", std::string(400, 'b')), PublishOutcome::overflow);
  EXPECT_EQ(store_.publish("s3", std::string(300, 'b')), PublishOutcome::stored);
}

// --- Unsubscribe -------------------------------------------------------------------

TEST_F(SubjectStoreTest, UnsubscribeReleasesTheQueueAndTheIdStopsWorking) {
  const SubscriberId a = store_.subscribe("s").id;
  const SubscriberId b = store_.subscribe("s").id;
  ASSERT_EQ(store_.publish("s", "one"), PublishOutcome::stored);
  ASSERT_EQ(store_.publish("s", "two"), PublishOutcome::stored);
  EXPECT_EQ(budget_.pending(), 4u);
  EXPECT_TRUE(store_.unsubscribe("s", a));
  EXPECT_EQ(budget_.pending(), 2u) << "its queue is released at once";
  EXPECT_EQ(store_.find("s", a), nullptr);
  EXPECT_FALSE(store_.unsubscribe("s", a)) << "a second time: bad id";
  EXPECT_FALSE(store_.unsubscribe("other", b)) << "the id of another subject";
  // The other subscriber is untouched, and alone now gets new messages.
  ASSERT_EQ(store_.publish("s", "three"), PublishOutcome::stored);
  EXPECT_EQ(pending_for("s", b), (std::vector<std::string>{"one", "two", "three"}));
  EXPECT_EQ(budget_.pending(), 3u);
  EXPECT_EQ(store_.subscriber_count(), 1u);
}

TEST_F(SubjectStoreTest, ASubjectGoesWithItsLastSubscriberAndComesBackFresh) {
  const SubscriberId only = store_.subscribe("gone").id;
  ASSERT_EQ(store_.publish("gone", std::string(100, 'x')), PublishOutcome::stored);
  EXPECT_EQ(census_.subjects.value(), 1u);
  EXPECT_TRUE(store_.unsubscribe("gone", only));
  EXPECT_EQ(store_.subject_count(), 0u);
  EXPECT_EQ(census_.subjects.value(), 0u);
  EXPECT_EQ(census_.subscribers.value(), 0u);
  EXPECT_EQ(budget_.pending(), 0u);
  EXPECT_EQ(budget_.pending_bytes(), 0u);
  EXPECT_EQ(store_.publish("gone", "x"), PublishOutcome::no_subscriber);
  const SubscriberId again = store_.subscribe("gone").id;
  EXPECT_FALSE(again == only);
  EXPECT_EQ(store_.find("gone", only), nullptr) << "the old id names nobody in the new subject";
  ASSERT_EQ(store_.publish("gone", "fresh"), PublishOutcome::stored);
  EXPECT_EQ(pending_for("gone", again), std::vector<std::string>{"fresh"});
}

TEST_F(SubjectStoreTest, AFreedSlotIsReusedWithANewId) {
  const SubscriberId a = store_.subscribe("s").id;
  const SubscriberId b = store_.subscribe("s").id;
  EXPECT_TRUE(store_.unsubscribe("s", a));
  const SubscriberId c = store_.subscribe("s").id;
  EXPECT_EQ(c.slot(), a.slot()) << "the freed slot is taken first";
  EXPECT_FALSE(c == a);
  EXPECT_EQ(store_.find("s", a), nullptr);
  EXPECT_NE(store_.find("s", c), nullptr);
  ASSERT_EQ(store_.publish("s", "m"), PublishOutcome::stored);
  EXPECT_EQ(budget_.pending(), 2u) << "one per live subscriber";
  EXPECT_EQ(pending_for("s", b), std::vector<std::string>{"m"});
  EXPECT_EQ(pending_for("s", c), std::vector<std::string>{"m"});
}

TEST_F(SubjectStoreTest, ManySubscribeUnsubscribeCyclesLeaveNothingBehind) {
  for (int round = 0; round < 100; ++round) {
    std::vector<std::pair<std::string, SubscriberId>> held;
    for (int i = 0; i < 100; ++i) {
      held.emplace_back(name("cycle", i % 37), SubscriberId{});
      held.back().second = store_.subscribe(held.back().first).id;
      ASSERT_EQ(store_.publish(held.back().first, "m"), PublishOutcome::stored);
    }
    for (const auto& [subject, id] : held) ASSERT_TRUE(store_.unsubscribe(subject, id));
  }
  EXPECT_EQ(store_.subject_count(), 0u);
  EXPECT_EQ(store_.subscriber_count(), 0u);
  EXPECT_EQ(census_.subscribers.value(), 0u);
  EXPECT_EQ(census_.subjects.value(), 0u);
  EXPECT_EQ(budget_.pending(), 0u);
  EXPECT_EQ(budget_.pending_bytes(), 0u);
}

// --- Idle expiry ------------------------------------------------------------------

TEST_F(SubjectStoreTest, AnIdleSubscriberExpiresAtItsThresholdAndAFetchPostponesIt) {
  store_.set_now(1000);
  const SubscriberId idle = store_.subscribe("s", expiring(500)).id;
  const SubscriberId busy = store_.subscribe("s", expiring(500)).id;
  const SubscriberId forever = store_.subscribe("s").id;
  ASSERT_EQ(store_.publish("s", "m"), PublishOutcome::stored);
  store_.set_now(1400);
  store_.touch(subscriber("s", busy));  // a fetch at 1400: busy is due at 1900
  EXPECT_EQ(store_.expire_idle(), 0u);
  store_.set_now(1499);
  EXPECT_EQ(store_.expire_idle(), 0u) << "not before its threshold";
  store_.set_now(1500);
  EXPECT_EQ(store_.expire_idle(), 1u);
  EXPECT_EQ(store_.find("s", idle), nullptr);
  EXPECT_EQ(budget_.pending(), 2u) << "its queue went with it";
  store_.set_now(1899);
  EXPECT_EQ(store_.expire_idle(), 0u);
  store_.set_now(1900);
  EXPECT_EQ(store_.expire_idle(), 1u);
  EXPECT_EQ(store_.find("s", busy), nullptr);
  store_.set_now(1'000'000'000);
  EXPECT_EQ(store_.expire_idle(), 0u);
  EXPECT_NE(store_.find("s", forever), nullptr) << "no threshold: it never expires";
}

TEST_F(SubjectStoreTest, AnUnsubscribedSubscriberIsNotExpiredLater) {
  store_.set_now(0);
  const SubscriberId gone = store_.subscribe("s", expiring(100)).id;
  ASSERT_TRUE(store_.unsubscribe("s", gone));
  // Its slot is taken by a new subscriber without a threshold.
  const SubscriberId taker = store_.subscribe("s").id;
  EXPECT_EQ(taker.slot(), gone.slot());
  store_.set_now(200);
  EXPECT_EQ(store_.expire_idle(), 0u);
  EXPECT_NE(store_.find("s", taker), nullptr);
}

TEST_F(SubjectStoreTest, ExpiryChecksOfUnsubscribedSubscribersDoNotPileUp) {
  store_.set_now(0);
  const SubscriberId kept = store_.subscribe("kept", expiring(3'600'000)).id;
  // Subscribe and unsubscribe in a loop, each with an hour's threshold: each
  // leaves a check due in an hour, and they must not accumulate for that hour.
  for (int i = 0; i < 100'000; ++i) {
    ASSERT_TRUE(store_.unsubscribe("loop", store_.subscribe("loop", expiring(3'600'000)).id));
    ASSERT_LE(store_.expiry_checks_held(), 4096u) << "after " << i << " cycles";
  }
  EXPECT_NE(store_.find("kept", kept), nullptr) << "a live subscriber's check is kept";
  store_.set_now(3'600'000);
  EXPECT_EQ(store_.expire_idle(), 1u);
  EXPECT_EQ(store_.find("kept", kept), nullptr);
}

// --- Subscriber and subject bounds ---------------------------------------------

// --- A subscriber's own bounds ------------------------------------------------------

SubscribeOptions bounded(std::uint64_t max_pending, std::uint64_t max_pending_bytes,
                         Discard discard) {
  SubscribeOptions options;
  options.queue.bounds = {max_pending, max_pending_bytes, discard};
  return options;
}

std::uint64_t dropped(const SubjectStore& store, DropReason reason) {
  return store.gauges().messages_dropped[static_cast<std::size_t>(reason)].read();
}

TEST_F(SubjectStoreTest, DiscardNewKeepsTheOldestThatFit) {
  const SubscriberId id = store_.subscribe("s", bounded(3, 0, Discard::new_messages)).id;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(store_.publish("s", name("m", i)), PublishOutcome::stored);
  EXPECT_EQ(pending_for("s", id), numbered(0, 3));
  EXPECT_EQ(dropped(store_, DropReason::discard_new), 2u);
  EXPECT_EQ(budget_.pending(), 3u) << "what was dropped holds nothing";
  // Room again after a fetch of two: the next two fit, the third does not.
  store_.drain(subscriber("s", id), 2);
  for (int i = 5; i < 8; ++i) EXPECT_EQ(store_.publish("s", name("m", i)), PublishOutcome::stored);
  EXPECT_EQ(pending_for("s", id), (std::vector<std::string>{"m2", "m5", "m6"}));
  EXPECT_EQ(dropped(store_, DropReason::discard_new), 3u);
  EXPECT_EQ(dropped(store_, DropReason::discard_old), 0u);
}

TEST_F(SubjectStoreTest, DiscardOldKeepsTheNewest) {
  const SubscriberId id = store_.subscribe("s", bounded(3, 0, Discard::old_messages)).id;
  for (int i = 0; i < 7; ++i) EXPECT_EQ(store_.publish("s", name("m", i)), PublishOutcome::stored);
  EXPECT_EQ(pending_for("s", id), numbered(4, 7));
  EXPECT_EQ(dropped(store_, DropReason::discard_old), 4u);
  EXPECT_EQ(budget_.pending(), 3u);
  EXPECT_EQ(budget_.pending_bytes(), 6u) << "the dropped messages were freed";
}

TEST_F(SubjectStoreTest, AByteBoundDropsByBytes) {
  // 10 bytes: "aaaa" + "bbbb" fit, "cccc" does not.
  const SubscriberId fresh = store_.subscribe("s", bounded(0, 10, Discard::new_messages)).id;
  const SubscriberId recent = store_.subscribe("s", bounded(0, 10, Discard::old_messages)).id;
  for (std::string payload : {"aaaa", "bbbb", "cccc", "dd", "eeeeeeeeeee"}) {
    EXPECT_EQ(store_.publish("s", payload), PublishOutcome::stored) << payload;
  }
  // discard new: "dd" still fit after "cccc" was dropped; 11 bytes never fit.
  EXPECT_EQ(pending_for("s", fresh), (std::vector<std::string>{"aaaa", "bbbb", "dd"}));
  // discard old: each arrival pushed out what no longer fit with it; the
  // 11-byte message is larger than the bound and is dropped itself.
  EXPECT_EQ(pending_for("s", recent), (std::vector<std::string>{"bbbb", "cccc", "dd"}));
  EXPECT_EQ(dropped(store_, DropReason::discard_new), 2u);
  EXPECT_EQ(dropped(store_, DropReason::discard_old), 2u);
}

TEST_F(SubjectStoreTest, PlainAndBoundedSubscribersOfOneSubjectEachGetTheirShare) {
  const SubscriberId plain = store_.subscribe("s").id;
  const SubscriberId small = store_.subscribe("s", bounded(2, 0, Discard::old_messages)).id;
  for (int i = 0; i < 6; ++i) ASSERT_EQ(store_.publish("s", name("m", i)), PublishOutcome::stored);
  EXPECT_EQ(pending_for("s", plain), numbered(0, 6));
  EXPECT_EQ(pending_for("s", small), numbered(4, 6));
  EXPECT_EQ(budget_.pending(), 8u);
  EXPECT_EQ(budget_.pending_bytes(), 12u) << "six messages, held once each";
  store_.drain(subscriber("s", plain));
  EXPECT_EQ(budget_.pending_bytes(), 4u) << "m4 and m5 stay, for the bounded one";
  EXPECT_TRUE(store_.unsubscribe("s", small));
  EXPECT_EQ(budget_.pending(), 0u);
  EXPECT_EQ(budget_.pending_bytes(), 0u);
}

TEST_F(SubjectStoreTest, ABoundedSubscriberWhoseCopiesAllDropStoresNothing) {
  const SubscriberId id = store_.subscribe("s", bounded(1, 0, Discard::new_messages)).id;
  ASSERT_EQ(store_.publish("s", "kept"), PublishOutcome::stored);
  // Full: the publish still succeeds; nothing is allocated or counted.
  EXPECT_EQ(store_.publish("s", "dropped"), PublishOutcome::stored);
  EXPECT_EQ(pending_for("s", id), std::vector<std::string>{"kept"});
  EXPECT_EQ(budget_.pending_bytes(), 4u);
}

TEST_F(SubjectBoundsTest, ASubscriberWithItsOwnBoundNeverCausesA429) {
  // The subject holds 4; a discard-old subscriber bounded at 4 keeps
  // publishes flowing by dropping its oldest, even with the subject full.
  const SubscriberId id = store_.subscribe("s", bounded(4, 0, Discard::old_messages)).id;
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(store_.publish("s", name("m", i)), PublishOutcome::stored) << i;
  }
  EXPECT_EQ(payloads(store_.find("s", id)->pending()), numbered(16, 20));
  // A plain subscriber beside it still fills the subject: then it is 429.
  store_.subscribe("s");
  EXPECT_EQ(store_.publish("s", "x"), PublishOutcome::subject_overflow);
  EXPECT_EQ(payloads(store_.find("s", id)->pending()), numbered(16, 20))
      << "a refused publish drops nothing";
}

TEST(SubscriberBounds, PerSubjectThenBrokerWideSubscribersAndSubjects) {
  PendingBudget budget(100);
  StoreCensus census(/*max_subscribers=*/5, /*max_subjects=*/2);
  SubscriberIdSource ids;
  StoreLimits limits;
  limits.max_subscribers_per_subject = 3;
  SubjectStore store(budget, census, ids, limits);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(store.subscribe("a").outcome, SubscribeOutcome::subscribed);
  }
  EXPECT_EQ(store.subscribe("a").outcome, SubscribeOutcome::too_many_subscribers);
  EXPECT_EQ(store.subscribe("b").outcome, SubscribeOutcome::subscribed);
  EXPECT_EQ(store.subscribe("c").outcome, SubscribeOutcome::too_many_subjects);
  EXPECT_EQ(store.subscribe("b").outcome, SubscribeOutcome::subscribed);
  // Five subscribers broker-wide: b has room of its own, the broker none.
  EXPECT_EQ(store.subscribe("b").outcome, SubscribeOutcome::too_many_subscribers);
  EXPECT_EQ(census.subscribers.value(), 5u);
  EXPECT_EQ(census.subjects.value(), 2u);
  EXPECT_EQ(store.subscriber_count(), 5u);
  EXPECT_EQ(store.subject_count(), 2u) << "a refused subject is not added";
}

TEST_F(SubjectStoreTest, QueueGrowsPastEightAndKeepsOrder) {
  const SubscriberId id = store_.subscribe("s").id;
  for (const std::string& message : numbered(0, 9)) store_.publish("s", message);
  EXPECT_EQ(pending_for("s", id), numbered(0, 9));
  EXPECT_EQ(subscriber("s", id).pending().size(), 9u);
}

TEST_F(SubjectStoreTest, QueueGrowsPast1024DrainsAndGrowsAgain) {
  const SubscriberId id = store_.subscribe("s").id;
  const SubscriberId other = store_.subscribe("s").id;
  for (int round = 0; round < 3; ++round) {
    // 3000 messages: the ring doubles from 8 up to 4096; a drain past 1024
    // gives the ring back, and the next burst starts from nothing.
    for (const std::string& message : numbered(0, 3000)) store_.publish("s", message);
    EXPECT_EQ(pending_for("s", id), numbered(0, 3000)) << "round " << round;
    store_.drain(subscriber("s", id));
    EXPECT_TRUE(subscriber("s", id).pending().empty());
    // Messages are shared: the other subscriber's copies are intact.
    EXPECT_EQ(pending_for("s", other), numbered(0, 3000)) << "round " << round;
    store_.drain(subscriber("s", other));
    EXPECT_EQ(budget_.pending(), 0u);
    // A small burst after the big one.
    for (const std::string& message : numbered(0, 10)) store_.publish("s", message);
    EXPECT_EQ(pending_for("s", id), numbered(0, 10));
    store_.drain(subscriber("s", id));
    store_.drain(subscriber("s", other));
  }
}

TEST_F(SubjectStoreTest, TheOldestPendingSecondIsThatOfTheOldestMessageHeld) {
  const auto oldest = [this] { return store_.gauges().oldest_stored_s.read(); };
  EXPECT_EQ(oldest(), UINT64_MAX) << "nothing held";
  const SubscriberId plain = store_.subscribe("logged").id;
  // Its own queue, which drops its oldest to take a new one.
  const SubscriberId own = store_.subscribe("queued", bounded(2, 0, Discard::old_messages)).id;
  store_.set_now(5'000);
  ASSERT_EQ(store_.publish("logged", "a"), PublishOutcome::stored);
  store_.set_now(7'000);
  ASSERT_EQ(store_.publish("queued", "b"), PublishOutcome::stored);
  store_.set_now(9'000);
  ASSERT_EQ(store_.publish("logged", "c"), PublishOutcome::stored);
  EXPECT_EQ(oldest(), 5u);
  store_.drain(subscriber("logged", plain), 1);
  EXPECT_EQ(oldest(), 7u) << "the log's first message was fetched";
  store_.set_now(11'000);
  ASSERT_EQ(store_.publish("queued", "d"), PublishOutcome::stored);
  ASSERT_EQ(store_.publish("queued", "e"), PublishOutcome::stored);
  EXPECT_EQ(oldest(), 9u) << "the queue dropped b (second 7) for e";
  store_.drain(subscriber("logged", plain));
  EXPECT_EQ(oldest(), 11u);
  store_.drain(subscriber("queued", own));
  EXPECT_EQ(oldest(), UINT64_MAX);
}

TEST_F(SubjectStoreTest, ASubjectThatGoesFreesItsPendingMessages) {
  // Messages still queued when their subject goes (its last subscriber
  // leaves, or the store itself goes: both destroy the subject's entry) must
  // be released with it. The test keeps one holder of its own on each: once
  // the subject is gone, that one must be all that is left, and releasing it
  // frees the message. (Not past the store itself, whose PendingAges counts
  // every message it stored until the message is freed.)
  PendingBudget budget(100);
  SubscriberIdSource ids;
  StoreCensus census(100, 100);
  SubjectStore store(budget, census, ids);
  const SubscriberId first = store.subscribe("s").id;
  const SubscriberId second = store.subscribe("s").id;
  // Copied by the store from each payload: each is pending for both
  // subscribers.
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(store.publish("s", name("copied", i)), PublishOutcome::stored);
  }
  std::vector<Message*> held;
  store.find("s", first)->pending().for_each([&](const Message& message) {
    held.push_back(const_cast<Message*>(&message));
  });
  ASSERT_EQ(held.size(), 20u);
  std::vector<std::uint32_t> holders_in_store;
  for (Message* message : held) {
    holders_in_store.push_back(message->holders());
    message->set_holders(message->holders() + 1);
  }
  EXPECT_EQ(holders_in_store, std::vector<std::uint32_t>(20, 1u))
      << "each message is held once, by the subject's log, however many subscribers read it";
  // Then one subscriber's queue is drained: those messages stay in the other.
  store.drain(*store.find("s", first));
  ASSERT_TRUE(store.unsubscribe("s", first));
  ASSERT_TRUE(store.unsubscribe("s", second));
  ASSERT_EQ(store.subject_count(), 0u);
  for (Message* message : held) {
    EXPECT_EQ(message->holders(), 1u)
        << std::string(message->payload()) << ": the subject did not release it";
    message->release();
  }
  EXPECT_EQ(store.gauges().oldest_stored_s.read(), UINT64_MAX) << "a freed message still counted";
  // Messages with no holder outside the store, left when it goes:
  // LeakSanitizer checks they are freed with it.
  store.subscribe("s");
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(store.publish("s", name("late", i)), PublishOutcome::stored);
  }
}

// --- MessageQueue alone -----------------------------------------------------------------

TEST(MessageQueue, PushDrainAndReuse) {
  // The last message carries a holder of the test's own: once the queue is
  // gone, that one must be all that is left (its destructor released the
  // queue's), and releasing it frees the message.
  Message* last = Message::create("again");
  {
    MessageQueue queue;
    EXPECT_TRUE(queue.empty());
    EXPECT_EQ(queue.size(), 0u);
    for (int i = 0; i < 2000; ++i) {
      Message* message = Message::create(name("p", i));
      message->set_holders(1);
      queue.push(message);
    }
    EXPECT_EQ(queue.size(), 2000u);
    EXPECT_EQ(payloads(queue), [] {
      std::vector<std::string> expected;
      for (int i = 0; i < 2000; ++i) expected.push_back(name("p", i));
      return expected;
    }());
    queue.drain();
    EXPECT_TRUE(queue.empty());
    last->set_holders(2);
    queue.push(last);
    EXPECT_EQ(payloads(queue), std::vector<std::string>{"again"});
  }
  EXPECT_EQ(last->holders(), 1u);
  last->release();
}

// --- PendingBudget -----------------------------------------------------------------------

TEST(PendingBudget, ReservesUpToMaxAndNoFurther) {
  PendingBudget budget(10);
  EXPECT_EQ(budget.max_pending(), 10u);
  EXPECT_TRUE(budget.try_reserve(4));
  EXPECT_TRUE(budget.try_reserve(6));
  EXPECT_EQ(budget.pending(), 10u);
  EXPECT_FALSE(budget.try_reserve(1));
  EXPECT_EQ(budget.pending(), 10u);
  budget.release(3);
  EXPECT_FALSE(budget.try_reserve(4));
  EXPECT_TRUE(budget.try_reserve(3));
  EXPECT_EQ(budget.pending(), 10u);
}

TEST(PendingBudget, ACountLargerThanMaxNeverFits) {
  PendingBudget budget(10);
  EXPECT_FALSE(budget.try_reserve(11));
  // No unsigned wrap-around for huge counts.
  EXPECT_FALSE(budget.try_reserve(UINT64_MAX));
  EXPECT_EQ(budget.pending(), 0u);
}

TEST(PendingBudget, ZeroMaxRefusesEverything) {
  PendingBudget budget(0);
  EXPECT_FALSE(budget.try_reserve(1));
  EXPECT_EQ(budget.pending(), 0u);
}

TEST(PendingBudget, ConcurrentReserveAndReleaseNeverExceedMax) {
  // 4 threads reserve 1 and give it back, over and over, against a max of 2:
  // the number held at once must never pass 2, and all is returned at the end.
  constexpr std::uint64_t kMax = 2;
  constexpr int kThreads = 4;
  constexpr int kIterations = 200000;
  PendingBudget budget(kMax);
  std::atomic<std::uint64_t> held{0};
  std::atomic<std::uint64_t> max_held{0};
  std::atomic<std::uint64_t> max_pending_seen{0};
  std::atomic<std::uint64_t> refusals{0};
  std::atomic<std::uint64_t> successes{0};

  auto raise = [](std::atomic<std::uint64_t>& maximum, std::uint64_t value) {
    std::uint64_t current = maximum.load();
    while (value > current && !maximum.compare_exchange_weak(current, value)) {
    }
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIterations; ++i) {
        if (!budget.try_reserve(1)) {
          refusals.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        successes.fetch_add(1, std::memory_order_relaxed);
        // `held` counts reservations between a successful reserve and the
        // release, so it is never more than what the budget has granted.
        raise(max_held, held.fetch_add(1) + 1);
        raise(max_pending_seen, budget.pending());
        held.fetch_sub(1);
        budget.release(1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_LE(max_held.load(), kMax);
  EXPECT_LE(max_pending_seen.load(), kMax);
  EXPECT_EQ(budget.pending(), 0u);
  EXPECT_GT(successes.load(), 0u);
  EXPECT_EQ(successes.load() + refusals.load(), std::uint64_t{kThreads} * kIterations);
}

// --- Acknowledgements and queue groups --------------------------------------------

SubscribeOptions with_acks(std::uint64_t ack_wait_ms, std::uint64_t max_deliver = 0,
                           std::string dead_letter_subject = {}) {
  SubscribeOptions options;
  options.queue.acks = {
      .ack_wait_ms = ack_wait_ms, .max_ack_pending = 1000, .max_deliver = max_deliver};
  options.queue.dead_letter_subject = std::move(dead_letter_subject);
  return options;
}

SubscribeOptions in_group(std::string group, SubscribeOptions options = {}) {
  options.group = std::move(group);
  return options;
}

// Hands out up to `most` of the subscriber's messages, as their payloads.
std::vector<std::string> hand_out(SubjectStore& store, Subscriber& subscriber, std::size_t most) {
  std::vector<AckQueue::Delivery> out;
  store.hand_out(subscriber, most, UINT64_MAX, out);
  std::vector<std::string> payloads;
  for (const AckQueue::Delivery& delivery : out) payloads.emplace_back(delivery.message->payload());
  return payloads;
}

TEST_F(SubjectStoreTest, InFlightMessagesStayPendingUntilAcked) {
  const SubscriberId id = store_.subscribe("s", with_acks(1000)).id;
  const SubscriberId plain = store_.subscribe("s").id;
  for (int i = 0; i < 3; ++i) store_.publish("s", name("m", i));
  Subscriber& acking = subscriber("s", id);
  EXPECT_EQ(hand_out(store_, acking, 10), numbered(0, 3));
  EXPECT_EQ(store_.gauges().inflight.read(), 3u);
  EXPECT_EQ(budget_.pending(), 6u) << "in flight still counts, beside the plain subscriber's";
  store_.drain(subscriber("s", plain));
  const std::uint64_t two[] = {2};
  EXPECT_EQ(store_.ack(acking, two, SubjectStore::kNoThrough), 1u);
  EXPECT_EQ(budget_.pending(), 2u);
  EXPECT_EQ(budget_.pending_bytes(), 4u) << "m1's bytes went with its last holder";
  EXPECT_EQ(store_.ack(acking, {}, 3), 2u) << "through 3: 1 and 3";
  EXPECT_EQ(budget_.pending(), 0u);
  EXPECT_EQ(budget_.pending_bytes(), 0u);
  EXPECT_EQ(store_.gauges().inflight.read(), 0u);
}

TEST_F(SubjectStoreTest, ADeadlineRedeliversAndPastMaxDeliverADeadLetterIsCopied) {
  const SubscriberId id = store_.subscribe("s", with_acks(100, 2, "dlq")).id;
  store_.publish("s", "poison");
  Subscriber& acking = subscriber("s", id);
  std::vector<SubjectStore::DeadLetter> dead;
  store_.set_now(0);
  EXPECT_EQ(hand_out(store_, acking, 10), std::vector<std::string>{"poison"});
  EXPECT_EQ(store_.next_ack_due_ms(), 100u);
  store_.set_now(99);
  store_.expire_acks(dead);
  EXPECT_TRUE(hand_out(store_, acking, 10).empty()) << "still in flight";
  store_.set_now(100);
  store_.expire_acks(dead);
  EXPECT_EQ(hand_out(store_, acking, 10), std::vector<std::string>{"poison"});
  EXPECT_EQ(store_.gauges().redelivered.read(), 1u);
  EXPECT_TRUE(dead.empty());
  store_.set_now(200);
  store_.expire_acks(dead);
  ASSERT_EQ(dead.size(), 1u) << "two deliveries, no ack: dead";
  EXPECT_EQ(dead[0].subject, "dlq");
  EXPECT_EQ(dead[0].message->payload(), "poison");
  EXPECT_EQ(store_.gauges().dead_lettered.read(), 1u);
  EXPECT_EQ(budget_.pending(), 0u) << "the copy is the dead letter's, not the queue's";
  EXPECT_EQ(store_.next_ack_due_ms(), UINT64_MAX);
}

TEST_F(SubjectStoreTest, AnUnsubscribeReleasesWhatAnAckQueueHoldsInFlightOrNot) {
  const SubscriberId id = store_.subscribe("s", with_acks(100)).id;
  for (int i = 0; i < 4; ++i) store_.publish("s", name("m", i));
  hand_out(store_, subscriber("s", id), 2);
  EXPECT_TRUE(store_.unsubscribe("s", id));
  EXPECT_EQ(budget_.pending(), 0u);
  EXPECT_EQ(budget_.pending_bytes(), 0u);
  EXPECT_EQ(store_.gauges().inflight.read(), 0u);
  // Its deadlines are stale: they come and go without a queue.
  std::vector<SubjectStore::DeadLetter> dead;
  store_.set_now(1000);
  store_.expire_acks(dead);
  EXPECT_TRUE(dead.empty());
}

TEST_F(SubjectStoreTest, AFullAckQueueThatDiscardsOldDropsInFlightMessagesToo) {
  SubscribeOptions options = with_acks(1000);
  options.queue.bounds = {2, 0, Discard::old_messages};
  const SubscriberId id = store_.subscribe("s", options).id;
  store_.publish("s", "m0");
  store_.publish("s", "m1");
  Subscriber& acking = subscriber("s", id);
  EXPECT_EQ(hand_out(store_, acking, 1), std::vector<std::string>{"m0"});
  store_.publish("s", "m2");  // m0, in flight, makes room
  EXPECT_EQ(store_.gauges().inflight.read(), 0u);
  EXPECT_EQ(budget_.pending(), 2u);
  EXPECT_EQ(hand_out(store_, acking, 10), (std::vector<std::string>{"m1", "m2"}));
  const std::uint64_t first[] = {1};
  EXPECT_EQ(store_.ack(acking, first, SubjectStore::kNoThrough), 0u) << "m0 is gone";
}

TEST_F(SubjectStoreTest, AGroupStoresOneCopyAndEachMessageReachesOneMember) {
  const SubscriberId a = store_.subscribe("s", in_group("g")).id;
  const SubscriberId b = store_.subscribe("s", in_group("g")).id;
  const SubscriberId plain = store_.subscribe("s").id;
  for (int i = 0; i < 4; ++i) EXPECT_EQ(store_.publish("s", name("m", i)), PublishOutcome::stored);
  EXPECT_EQ(budget_.pending(), 8u) << "one copy for the group, one for the plain subscriber";
  EXPECT_EQ(subscriber("s", a).queue, subscriber("s", b).queue);
  store_.drain(subscriber("s", a), 1);
  EXPECT_EQ(pending_for("s", b), numbered(1, 4)) << "what a took is gone for b";
  EXPECT_EQ(pending_for("s", plain), numbered(0, 4));
  // The queue outlives a member, and goes with the last.
  EXPECT_TRUE(store_.unsubscribe("s", a));
  EXPECT_EQ(pending_for("s", b), numbered(1, 4));
  EXPECT_TRUE(store_.unsubscribe("s", b));
  EXPECT_EQ(budget_.pending(), 4u);
  const SubscriberId later = store_.subscribe("s", in_group("g")).id;
  EXPECT_TRUE(pending_for("s", later).empty()) << "a new group queue";
}

TEST_F(SubjectStoreTest, AGroupKeepsItsFirstMembersOptions) {
  SubscribeOptions first = in_group("g", with_acks(500, 3));
  first.named = SubscribeOptions::ack_wait | SubscribeOptions::max_deliver;
  ASSERT_EQ(store_.subscribe("s", first).outcome, SubscribeOutcome::subscribed);
  SubscribeOptions same = first;
  EXPECT_EQ(store_.subscribe("s", same).outcome, SubscribeOutcome::subscribed);
  SubscribeOptions silent = in_group("g");  // names nothing: inherits
  const Subscription inherited = store_.subscribe("s", silent);
  ASSERT_EQ(inherited.outcome, SubscribeOutcome::subscribed);
  EXPECT_TRUE(subscriber("s", inherited.id).uses_acks());
  SubscribeOptions other = in_group("g", with_acks(500, 4));
  other.named = SubscribeOptions::max_deliver;
  EXPECT_EQ(store_.subscribe("s", other).outcome, SubscribeOutcome::group_options_differ);
  SubscribeOptions bounded_member = in_group("g");
  bounded_member.queue.bounds.max_pending = 10;
  bounded_member.named = SubscribeOptions::max_pending;
  EXPECT_EQ(store_.subscribe("s", bounded_member).outcome, SubscribeOutcome::group_options_differ);
  EXPECT_EQ(store_.subscriber_count(), 3u) << "the refused ones were not added";
}

TEST_F(SubjectStoreTest, AnAckModeGroupRedeliversToAnyMember) {
  const SubscriberId a = store_.subscribe("s", in_group("g", with_acks(100))).id;
  const SubscriberId b = store_.subscribe("s", in_group("g")).id;
  store_.publish("s", "job");
  store_.set_now(0);
  EXPECT_EQ(hand_out(store_, subscriber("s", a), 10), std::vector<std::string>{"job"});
  EXPECT_TRUE(hand_out(store_, subscriber("s", b), 10).empty()) << "in flight with a";
  std::vector<SubjectStore::DeadLetter> dead;
  store_.set_now(100);
  store_.expire_acks(dead);
  EXPECT_EQ(hand_out(store_, subscriber("s", b), 10), std::vector<std::string>{"job"});
  EXPECT_EQ(store_.ack(subscriber("s", a), {}, 1), 0u) << "through: only what a holds";
  EXPECT_EQ(store_.ack(subscriber("s", b), {}, 1), 1u);
  EXPECT_EQ(budget_.pending(), 0u);
}

TEST_F(SubjectStoreTest, TheDeadlineHeapStaysBoundedUnderChurn) {
  // Ack-mode subscribers come and go, each leaving a deadline behind: the
  // heap drops the stale ones rather than growing with every cycle.
  for (int i = 0; i < 20'000; ++i) {
    const SubscriberId id = store_.subscribe("s", with_acks(1'000'000)).id;
    store_.publish("s", "m");
    hand_out(store_, subscriber("s", id), 1);
    store_.unsubscribe("s", id);
  }
  EXPECT_LT(store_.ack_dues_held(), 5000u);
}

// --- Batch publish ---------------------------------------------------------------

std::vector<std::string_view> views(const std::vector<std::string>& strings) {
  return {strings.begin(), strings.end()};
}

TEST_F(SubjectStoreOverflowTest, ABatchIsStoredWholeOrNotAtAll) {
  const SubscriberId a = store_.subscribe("s").id;
  const SubscriberId b = store_.subscribe("s").id;
  const std::vector<std::string> first = numbered(0, 2);
  ASSERT_EQ(store_.publish_batch("s", views(first)), PublishOutcome::stored);
  EXPECT_EQ(budget_.pending(), 4u);
  // Two more messages, two subscribers: 4 + 4 > 5, though one of them would
  // fit. Nothing is stored.
  const std::vector<std::string> second = numbered(2, 4);
  EXPECT_EQ(store_.publish_batch("s", views(second)), PublishOutcome::overflow);
  EXPECT_EQ(budget_.pending(), 4u);
  EXPECT_EQ(pending_for("s", a), numbered(0, 2));
  EXPECT_EQ(pending_for("s", b), numbered(0, 2));
  EXPECT_EQ(store_.publish_batch("nobody", views(second)), PublishOutcome::no_subscriber);
  store_.drain(subscriber("s", a));
  store_.drain(subscriber("s", b));
  EXPECT_EQ(store_.publish_batch("s", views(second)), PublishOutcome::stored);
  EXPECT_EQ(pending_for("s", a), numbered(2, 4));
  EXPECT_EQ(budget_.pending(), 4u);
}

TEST_F(SubjectBoundsTest, ABatchPastTheSubjectsBoundStoresNothing) {
  const SubscriberId id = store_.subscribe("s").id;
  const std::vector<std::string> three = {"a", "b", "c"};
  ASSERT_EQ(store_.publish_batch("s", views(three)), PublishOutcome::stored);
  const std::vector<std::string> two = {"d", "e"};
  EXPECT_EQ(store_.publish_batch("s", views(two)), PublishOutcome::subject_overflow);
  // Bytes too: 1000 per subject.
  store_.drain(*store_.find("s", id));
  const std::vector<std::string> large = {std::string(600, 'x'), std::string(600, 'y')};
  EXPECT_EQ(store_.publish_batch("s", views(large)), PublishOutcome::subject_overflow);
  EXPECT_EQ(budget_.pending(), 0u);
  EXPECT_EQ(budget_.pending_bytes(), 0u);
  EXPECT_EQ(payloads(store_.find("s", id)->pending()), std::vector<std::string>{});
}

TEST_F(SubjectStoreTest, ABatchMeetsBoundedSubscribersAsSinglePublishesWould) {
  // The same messages, one batch against one publish each: every
  // subscriber ends with the same messages, and the budget holds the same.
  const std::vector<std::string> messages = numbered(0, 9);
  for (const bool batch : {false, true}) {
    const std::string subject = batch ? "batched" : "single";
    const SubscriberId plain = store_.subscribe(subject).id;
    const SubscriberId newest = store_.subscribe(subject, bounded(3, 0, Discard::old_messages)).id;
    const SubscriberId oldest = store_.subscribe(subject, bounded(4, 0, Discard::new_messages)).id;
    if (batch) {
      ASSERT_EQ(store_.publish_batch(subject, views(messages)), PublishOutcome::stored);
    } else {
      for (const std::string& message : messages) {
        ASSERT_EQ(store_.publish(subject, message), PublishOutcome::stored);
      }
    }
    EXPECT_EQ(pending_for(subject, plain), numbered(0, 9)) << subject;
    EXPECT_EQ(pending_for(subject, newest), numbered(6, 9)) << subject;
    EXPECT_EQ(pending_for(subject, oldest), numbered(0, 4)) << subject;
  }
  EXPECT_EQ(budget_.pending(), 2u * (9 + 3 + 4));
  EXPECT_EQ(budget_.pending_bytes(), 2u * 9 * 2) << "each message's bytes once";
}

}  // namespace
}  // namespace gophermq
