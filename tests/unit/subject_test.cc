// Subjects: the validity rule the original applies, and the FNV-1a hash that
// picks a subject's owner shard.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "gophermq/store/subject.h"

namespace gophermq {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

TEST(IsValidSubject, AcceptsTheOriginalsExamples) {
  for (std::string_view subject : {"a"sv, "a.b.c"sv, "load.test"sv, "*"sv, "a.>"sv}) {
    EXPECT_TRUE(is_valid_subject(subject)) << '"' << subject << '"';
  }
}

TEST(IsValidSubject, AcceptsUnicodeAndPunctuation) {
  // Only space, tab, CR, LF and empty tokens are refused; every other byte,
  // multi-byte UTF-8 included, is part of a token.
  for (std::string_view subject :
       {"caf\xc3\xa9"sv, "\xe6\x97\xa5\xe6\x9c\xac.\xe8\xaa\x9e"sv, "emoji.\xf0\x9f\x98\x80"sv,
        "a-b_c:d/e"sv, "a.*.>"sv, "x\x7fy"sv, "\"quoted\""sv}) {
    EXPECT_TRUE(is_valid_subject(subject)) << '"' << subject << '"';
  }
}

TEST(IsValidSubject, AcceptsLongSubjects) {
  std::string subject;
  for (int i = 0; i < 1000; ++i) subject += "token.";
  subject += "end";
  EXPECT_TRUE(is_valid_subject(subject));
}

TEST(IsValidSubject, RefusesEmptyTokens) {
  for (std::string_view subject :
       {""sv, "."sv, ".."sv, ".a"sv, "a."sv, "a..b"sv, "a.b."sv, "a...b"sv, "..a"sv}) {
    EXPECT_FALSE(is_valid_subject(subject)) << '"' << subject << '"';
  }
}

TEST(IsValidSubject, RefusesWhitespace) {
  for (std::string_view subject :
       {"a b"sv, "a\tb"sv, "a\rb"sv, "a\nb"sv, " a"sv, "a "sv, " "sv, "a. b"sv, "a\r\n"sv}) {
    EXPECT_FALSE(is_valid_subject(subject)) << '"' << subject << '"';
  }
}

TEST(IsValidSubject, OtherControlCharactersAreAllowed) {
  // The original only names space, tab, CR and LF; NUL or VT are token bytes.
  EXPECT_TRUE(
      is_valid_subject("a\x0b"
                       "b"sv));
  EXPECT_TRUE(is_valid_subject("a\0b"sv));
}

TEST(SubjectHash, IsFnv1a64) {
  // Published FNV-1a 64-bit test vectors.
  EXPECT_EQ(subject_hash(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(subject_hash("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(subject_hash("foobar"), 0x85944171f73967e8ULL);
}

TEST(SubjectHash, TreatsBytesAsUnsigned) {
  // A sign-extended char would XOR 0xffff...ff80 into the hash instead of 0x80.
  constexpr std::uint64_t kExpected = (0xcbf29ce484222325ULL ^ 0x80) * 0x100000001b3ULL;
  EXPECT_EQ(subject_hash("\x80"), kExpected);
}

TEST(SubjectHash, IsUsableAtCompileTime) {
  static_assert(subject_hash("a") == 0xaf63dc4c8601ec8cULL);
  static_assert(owner_shard("a", 1) == 0);
}

TEST(OwnerShard, IsInRangeAndDeterministic) {
  for (unsigned shards : {1u, 2u, 3u, 4u, 7u, 16u, 64u}) {
    for (int i = 0; i < 1000; ++i) {
      std::string subject = "subject."s + std::to_string(i);
      unsigned shard = owner_shard(subject, shards);
      EXPECT_LT(shard, shards);
      EXPECT_EQ(owner_shard(subject, shards), shard);
    }
  }
}

TEST(OwnerShard, SubjectsDifferingInHighBitsStillSpreadOverPowerOfTwoShards) {
  // FNV-1a alone, modulo 2^k, sees only the low k bits of each byte: "a.x"
  // and "A.x" (0x61 vs 0x41) would always share a shard among 16. The mixed
  // hash must separate some of those pairs.
  int separated = 0;
  for (int i = 0; i < 100; ++i) {
    std::string lower = "a.x"s + std::to_string(i);
    std::string upper = "A.x"s + std::to_string(i);
    ASSERT_EQ(subject_hash(lower) % 16, subject_hash(upper) % 16);  // the weakness
    if (owner_shard(lower, 16) != owner_shard(upper, 16)) ++separated;
  }
  EXPECT_GT(separated, 80);
}

TEST(OwnerShard, SpreadsSubjectsEvenlyOverFourShards) {
  constexpr int kSubjects = 10000;
  std::array<int, 4> counts{};
  for (int i = 0; i < kSubjects; ++i) ++counts[owner_shard("subject."s + std::to_string(i), 4)];
  for (std::size_t shard = 0; shard < counts.size(); ++shard) {
    EXPECT_GE(counts[shard], kSubjects * 20 / 100) << "shard " << shard;
    EXPECT_LE(counts[shard], kSubjects * 30 / 100) << "shard " << shard;
  }
}

TEST(OwnerShard, SpreadsAnotherNamingSchemeEvenly) {
  // Subjects shaped like "user.<n>.events" vary in the middle, not at the end.
  constexpr int kSubjects = 10000;
  std::array<int, 4> counts{};
  for (int i = 0; i < kSubjects; ++i) {
    ++counts[owner_shard("user."s + std::to_string(i) + ".events", 4)];
  }
  for (std::size_t shard = 0; shard < counts.size(); ++shard) {
    EXPECT_GE(counts[shard], kSubjects * 20 / 100) << "shard " << shard;
    EXPECT_LE(counts[shard], kSubjects * 30 / 100) << "shard " << shard;
  }
}

}  // namespace
}  // namespace gophermq
