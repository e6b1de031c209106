// PendingAges: a shard's stored messages by second, the oldest one held
// known at once.
#include "gophermq/store/pending_ages.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace gophermq {
namespace {

class PendingAgesTest : public ::testing::Test {
 protected:
  std::uint64_t oldest() const { return oldest_stored_s_.read(); }

  ShardCounter oldest_stored_s_;
  PendingAges ages_{oldest_stored_s_};
};

TEST_F(PendingAgesTest, NothingHeldReadsAsNone) { EXPECT_EQ(oldest(), UINT64_MAX); }

TEST_F(PendingAgesTest, TheOldestIsTheFirstSecondWithAMessageLeft) {
  ages_.stored(10);
  ages_.stored(10);
  ages_.stored(12);
  EXPECT_EQ(oldest(), 10u);
  ages_.freed(10);
  EXPECT_EQ(oldest(), 10u) << "one message of second 10 is still held";
  ages_.freed(10);
  EXPECT_EQ(oldest(), 12u);
  ages_.freed(12);
  EXPECT_EQ(oldest(), UINT64_MAX);
  EXPECT_EQ(ages_.seconds_kept(), 0u);
}

TEST_F(PendingAgesTest, AMessageFreedOutOfOrderLeavesTheOldestAlone) {
  ages_.stored(1);
  ages_.stored(2);
  ages_.stored(3);
  ages_.freed(2);  // a subscriber's own queue dropped it, say
  EXPECT_EQ(oldest(), 1u);
  ages_.freed(1);
  EXPECT_EQ(oldest(), 3u) << "second 2, emptied behind the front, is passed over";
}

TEST_F(PendingAgesTest, ASecondThatEmptiedTakesMessagesAgain) {
  ages_.stored(1);
  ages_.stored(5);
  ages_.freed(5);  // second 5 is still the clock's: more come in it
  ages_.stored(5);
  ages_.freed(1);
  EXPECT_EQ(oldest(), 5u);
  ages_.freed(5);
  EXPECT_EQ(oldest(), UINT64_MAX);
  ages_.stored(6);
  EXPECT_EQ(oldest(), 6u);
}

TEST_F(PendingAgesTest, SecondsEmptiedBehindAnOldMessageDoNotPileUp) {
  // One message stuck for good while every later one comes and goes: the
  // seconds kept stay a small multiple of those that hold messages.
  ages_.stored(0);
  for (std::uint32_t second = 1; second <= 100'000; ++second) {
    ages_.stored(second);
    ages_.freed(second);
    ASSERT_LE(ages_.seconds_kept(), 3u) << "at second " << second;
  }
  EXPECT_EQ(oldest(), 0u);
  ages_.freed(0);
  EXPECT_EQ(oldest(), UINT64_MAX);
  EXPECT_EQ(ages_.seconds_kept(), 0u);
}

TEST_F(PendingAgesTest, AClockThatStepsBackIsCountedInItsPlace) {
  ages_.stored(20);
  ages_.stored(10);
  EXPECT_EQ(oldest(), 10u);
  ages_.stored(15);
  ages_.freed(10);
  EXPECT_EQ(oldest(), 15u);
  ages_.freed(15);
  EXPECT_EQ(oldest(), 20u);
}

}  // namespace
}  // namespace gophermq
