// SubjectLog: one copy of each message, a cursor per reader, and messages
// freed exactly when the slowest cursor passes them.
#include "gophermq/store/subject_log.h"

#include "gophermq/store/sequence_slots.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gophermq {
namespace {

// "m<n>", the payload of the n-th message a test appends.
std::string label(std::uint64_t n) {
  std::string out = "m";
  out += std::to_string(n);
  return out;
}

// A log whose messages the test also holds (one holder of its own on each),
// so it can see which ones the log has let go of without their being freed.
class SubjectLogTest : public ::testing::Test {
 protected:
  ~SubjectLogTest() override {
    for (Message* message : messages_) message->release();
  }

  // Appends "m<n>" of `size` bytes (at least the name's); returns its index.
  std::size_t append(std::size_t size = 0) {
    std::string payload = label(messages_.size());
    if (payload.size() < size) payload.resize(size, '.');
    Message* message = Message::create(payload);
    message->set_holders(2);  // the log's and the test's
    messages_.push_back(message);
    log_.append(message);
    return messages_.size() - 1;
  }
  // Whether the log still holds message `index`.
  bool held(std::size_t index) const { return messages_[index]->holders() == 2; }
  std::vector<std::string> read(SubjectLog::Sequence cursor, std::size_t count) const {
    std::vector<std::string> out;
    log_.for_each(cursor, count,
                  [&](const Message& message) { out.emplace_back(message.payload()); });
    return out;
  }

  SubjectLog log_;
  std::vector<Message*> messages_;
};

TEST_F(SubjectLogTest, AReaderSeesOnlyWhatIsAppendedAfterItCame) {
  const SubjectLog::Sequence early = log_.add_reader();
  append();
  append();
  const SubjectLog::Sequence late = log_.add_reader();
  append();
  EXPECT_EQ(early, 0u);
  EXPECT_EQ(late, 2u);
  EXPECT_EQ(log_.end(), 3u);
  EXPECT_EQ(read(early, 3), (std::vector<std::string>{"m0", "m1", "m2"}));
  EXPECT_EQ(read(late, 1), (std::vector<std::string>{"m2"}));
  EXPECT_EQ(log_.readers(), 2u);
}

TEST_F(SubjectLogTest, AMessageIsFreedOnlyWhenTheSlowestCursorPassesIt) {
  SubjectLog::Sequence fast = log_.add_reader();
  SubjectLog::Sequence slow = log_.add_reader();
  for (int i = 0; i < 5; ++i) append();
  // The fast reader takes everything: the slow one still holds it all.
  EXPECT_EQ(log_.advance(fast, 5), 0u);
  fast = 5;
  for (std::size_t i = 0; i < 5; ++i) EXPECT_TRUE(held(i)) << i;
  EXPECT_EQ(log_.size(), 5u);
  // The slow one takes two: exactly those two go.
  log_.advance(slow, 2);
  slow = 2;
  EXPECT_FALSE(held(0));
  EXPECT_FALSE(held(1));
  EXPECT_TRUE(held(2));
  EXPECT_EQ(log_.begin(), 2u);
  // A third reader, caught up, does not hold what came before it.
  SubjectLog::Sequence third = log_.add_reader();
  append();  // m5: held by all three
  log_.advance(slow, 6);
  slow = 6;
  for (std::size_t i = 2; i < 5; ++i) EXPECT_FALSE(held(i)) << i;
  EXPECT_TRUE(held(5)) << "the fast and the third reader have not taken m5";
  log_.advance(fast, 6);
  EXPECT_TRUE(held(5));
  log_.advance(third, 6);
  EXPECT_FALSE(held(5));
  EXPECT_EQ(log_.size(), 0u);
}

TEST_F(SubjectLogTest, FreedBytesCountOnlyMessagesNoOneElseHolds) {
  SubjectLog::Sequence reader = log_.add_reader();
  // Held by the test too: the log lets go, but nothing is freed.
  append(100);
  EXPECT_EQ(log_.advance(reader, 1), 0u);
  reader = 1;
  // Held by the log alone: freed, and its bytes counted.
  Message* alone = Message::create(std::string(300, 'x'));
  alone->set_holders(1);
  log_.append(alone);
  EXPECT_EQ(log_.advance(reader, 2), 300u);
}

TEST_F(SubjectLogTest, ALeavingReaderReleasesWhatOnlyItHeld) {
  const SubjectLog::Sequence leaving = log_.add_reader();
  append();
  const SubjectLog::Sequence staying = log_.add_reader();
  append();
  log_.remove_reader(leaving);
  EXPECT_FALSE(held(0)) << "only the leaving reader was behind m0";
  EXPECT_TRUE(held(1));
  EXPECT_EQ(log_.readers(), 1u);
  EXPECT_EQ(read(staying, 1), std::vector<std::string>{"m1"});
  log_.remove_reader(staying);
  EXPECT_FALSE(held(1));
  EXPECT_EQ(log_.size(), 0u);
}

TEST_F(SubjectLogTest, TheRingWrapsAroundInPlaceAndKeepsOrder) {
  SubjectLog::Sequence reader = log_.add_reader();
  // Eight slots at first; keeping five or six held while appending makes
  // the ring wrap many times without growing past its first capacity.
  for (int round = 0; round < 40; ++round) {
    append();
    if (log_.size() > 5) {
      const std::vector<std::string> oldest = read(reader, 1);
      EXPECT_EQ(oldest, std::vector<std::string>{label(reader)});
      log_.advance(reader, reader + 1);
      ++reader;
    }
  }
  std::vector<std::string> expected;
  for (std::size_t i = reader; i < 40; ++i) expected.push_back(label(i));
  EXPECT_EQ(read(reader, 40 - reader), expected);
  EXPECT_EQ(log_.begin(), reader);
}

TEST_F(SubjectLogTest, GrowingWhileWrappedKeepsOrder) {
  SubjectLog::Sequence reader = log_.add_reader();
  for (int i = 0; i < 6; ++i) append();
  log_.advance(reader, 5);  // begin is now in the middle of the ring
  reader = 5;
  for (int i = 0; i < 30; ++i) append();  // wraps, then grows twice
  std::vector<std::string> expected;
  for (int i = 5; i < 36; ++i) expected.push_back(label(i));
  EXPECT_EQ(read(reader, 31), expected);
  log_.advance(reader, 36);
  EXPECT_EQ(log_.size(), 0u);
}

TEST_F(SubjectLogTest, CursorsAtTheEndMoveOntoTheNextMessage) {
  // Readers that took everything wait at end(); the next message is theirs.
  SubjectLog::Sequence a = log_.add_reader();
  SubjectLog::Sequence b = log_.add_reader();
  append();
  log_.advance(a, 1);
  log_.advance(b, 1);
  a = b = 1;
  EXPECT_EQ(log_.size(), 0u);
  append();  // m1: a and b both hold it
  log_.advance(a, 2);
  EXPECT_TRUE(held(1)) << "b has not taken m1";
  log_.advance(b, 2);
  EXPECT_FALSE(held(1));
}

TEST_F(SubjectLogTest, CountWithinStopsAtTheByteBoundButTakesOneAtLeast) {
  const SubjectLog::Sequence reader = log_.add_reader();
  append(1000);
  append(10);
  append(10);
  EXPECT_EQ(log_.count_within(reader, 100), 1u) << "one message larger than the bound goes alone";
  EXPECT_EQ(log_.count_within(reader, 1010), 2u);
  EXPECT_EQ(log_.count_within(reader, 1'000'000), 3u);
  EXPECT_EQ(log_.count_within(1, 15), 1u);
  EXPECT_EQ(log_.count_within(3, 15), 0u) << "nothing pending";
}

// Past one segment's worth, the log lives in segments: the messages are in
// order across their edges, wherever in a segment the oldest one sat when
// the ring was split.
TEST_F(SubjectLogTest, SplittingTheRingKeepsOrderWhereverTheOldestSat) {
  constexpr std::uint64_t kSegment = SequenceSlots<true>::kSegmentSlots;
  for (const std::uint64_t offset :
       {std::uint64_t{0}, std::uint64_t{1}, kSegment / 2 + 3, kSegment - 1}) {
    SCOPED_TRACE(offset);
    SubjectLog log;
    std::vector<Message*> messages;
    auto append_one = [&] {
      Message* message = Message::create(label(messages.size()));
      message->set_holders(1);
      messages.push_back(message);
      log.append(message);
    };
    SubjectLog::Sequence reader = log.add_reader();
    for (std::uint64_t i = 0; i < offset; ++i) append_one();
    log.advance(reader, offset);
    reader = offset;
    const std::uint64_t count = 3 * kSegment + 5;
    for (std::uint64_t i = 0; i < count; ++i) append_one();
    ASSERT_EQ(log.size(), count);
    EXPECT_GE(log.slots(), count);
    EXPECT_LE(log.slots(), count + 2 * kSegment) << "no more than the segments in use";
    std::uint64_t seen = 0;
    bool in_order = true;
    log.for_each(reader, count, [&](const Message& message) {
      in_order = in_order && message.payload() == label(offset + seen);
      ++seen;
    });
    EXPECT_EQ(seen, count);
    EXPECT_TRUE(in_order);
    // A second reader joins at the end; the first takes it all in steps
    // that straddle the segments' edges.
    const SubjectLog::Sequence second = log.add_reader();
    while (reader != log.end()) {
      const SubjectLog::Sequence to = std::min<SubjectLog::Sequence>(reader + 333, log.end());
      log.advance(reader, to);
      reader = to;
    }
    EXPECT_EQ(log.size(), 0u);
    EXPECT_EQ(log.slots(), 0u) << "an emptied log in segments gives them all back";
    append_one();
    std::string first_after;
    log.for_each(second, 1, [&](const Message& message) { first_after = message.payload(); });
    EXPECT_EQ(first_after, label(messages.size() - 1));
    log.advance(second, log.end());
    log.advance(reader, log.end());
    EXPECT_EQ(log.size(), 0u);
  }
}

TEST_F(SubjectLogTest, SegmentsAreFreedAsTheSlowestCursorPassesThem) {
  constexpr std::uint64_t kSegment = SequenceSlots<true>::kSegmentSlots;
  SubjectLog::Sequence slow = log_.add_reader();
  SubjectLog::Sequence middle = log_.add_reader();
  // Ten segments: more than the directory first holds, so it grows too.
  for (std::uint64_t i = 0; i < 10 * kSegment; ++i) append();
  EXPECT_EQ(log_.slots(), 10 * kSegment);
  log_.advance(middle, 4 * kSegment + 7);
  middle = 4 * kSegment + 7;
  EXPECT_EQ(log_.slots(), 10 * kSegment) << "the slow cursor still holds the first segments";
  // The slow cursor passes the middle one: what is behind the middle one
  // goes, its own segment stays.
  log_.advance(slow, 6 * kSegment);
  slow = 6 * kSegment;
  EXPECT_EQ(log_.begin(), middle);
  EXPECT_FALSE(held(middle - 1));
  EXPECT_TRUE(held(middle));
  EXPECT_EQ(log_.slots(), 6 * kSegment);
  log_.advance(middle, 10 * kSegment);
  middle = 10 * kSegment;
  EXPECT_EQ(log_.begin(), slow);
  EXPECT_EQ(log_.slots(), 4 * kSegment);
  EXPECT_EQ(read(slow, 2), (std::vector<std::string>{label(slow), label(slow + 1)}));
  log_.advance(slow, 10 * kSegment);
  EXPECT_EQ(log_.size(), 0u);
  EXPECT_EQ(log_.slots(), 0u);
  for (std::size_t i = 0; i < messages_.size(); ++i) ASSERT_FALSE(held(i)) << i;
  // Empty again, it starts over with a small ring.
  append();
  EXPECT_LT(log_.slots(), kSegment);
}

TEST_F(SubjectLogTest, AReaderThatKeepsUpHoldsAFewSegmentsHoweverMuchPasses) {
  // 3,000 messages behind the reader, 100,000 through: the segments are
  // reused around the directory and the memory held stays flat.
  constexpr std::uint64_t kSegment = SequenceSlots<true>::kSegmentSlots;
  SubjectLog::Sequence reader = log_.add_reader();
  std::size_t most_slots = 0;
  bool in_order = true;
  for (std::uint64_t i = 0; i < 100'000; ++i) {
    append();
    if (log_.size() > 3000) {
      log_.for_each(reader, 1, [&](const Message& message) {
        in_order = in_order && message.payload() == label(reader);
      });
      log_.advance(reader, reader + 1);
      ++reader;
    }
    most_slots = std::max(most_slots, log_.slots());
  }
  EXPECT_TRUE(in_order);
  EXPECT_LE(most_slots, 5 * kSegment);
  EXPECT_FALSE(held(reader - 1));
  EXPECT_TRUE(held(reader));
}

TEST(SubjectLog, DestructionReleasesWhatItStillHolds) {
  Message* kept = Message::create("kept");
  kept->set_holders(2);
  {
    SubjectLog log;
    log.add_reader();
    log.append(kept);
    Message* owned = Message::create("owned");  // freed with the log (LeakSanitizer checks)
    owned->set_holders(1);
    log.append(owned);
  }
  EXPECT_EQ(kept->holders(), 1u);
  kept->release();
}

TEST(SubjectLog, ABurstIsReadAndTheRingGoesBack) {
  // 100,000 messages behind one slow cursor, then read: every one is freed
  // as it is passed (LeakSanitizer sees any that is not), and the empty log
  // returns its ring.
  SubjectLog log;
  SubjectLog::Sequence reader = log.add_reader();
  std::uint64_t bytes = 0;
  for (int i = 0; i < 100'000; ++i) {
    Message* message = Message::create("payload");
    message->set_holders(1);
    log.append(message);
    bytes += 7;
  }
  std::uint64_t freed = 0;
  while (reader != log.end()) {
    const SubjectLog::Sequence to = std::min<SubjectLog::Sequence>(reader + 999, log.end());
    freed += log.advance(reader, to);
    reader = to;
  }
  EXPECT_EQ(freed, bytes);
  EXPECT_EQ(log.size(), 0u);
  EXPECT_EQ(log.begin(), 100'000u);
}

}  // namespace
}  // namespace gophermq
