// SubjectHasher: SipHash, checked against the reference vectors of its
// authors, and keyed at random per hasher.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "gophermq/store/subject_hasher.h"

namespace gophermq {
namespace {

// The reference key 00 01 .. 0f, and messages 00 01 .. (n-1).
constexpr std::uint64_t kK0 = 0x0706050403020100ULL;
constexpr std::uint64_t kK1 = 0x0f0e0d0c0b0a0908ULL;

std::string reference_message(std::size_t length) {
  std::string message;
  for (std::size_t i = 0; i < length; ++i) message.push_back(static_cast<char>(i));
  return message;
}

TEST(SipHash, MatchesTheReferenceVectorsOfSipHash24) {
  // From the SipHash paper's vectors.h (read there as little-endian bytes):
  // every path through the code (no whole word, some, a tail of 0 to 7).
  const std::pair<std::size_t, std::uint64_t> vectors[] = {
      {0, 0x726fdb47dd0e0e31ULL},  {1, 0x74f839c593dc67fdULL}, {2, 0x0d6c8009d9a94f5aULL},
      {3, 0x85676696d7fb7e2dULL},  {4, 0xcf2794e0277187b7ULL}, {5, 0x18765564cd99a68dULL},
      {6, 0xcbc9466e58fee3ceULL},  {7, 0xab0200f58b01d137ULL}, {8, 0x93f5f5799a932462ULL},
      {15, 0xa129ca6149be45e5ULL},
  };
  for (const auto& [length, expected] : vectors) {
    EXPECT_EQ((siphash<2, 4>(kK0, kK1, reference_message(length))), expected)
        << "message of " << length << " bytes";
  }
}

TEST(SipHash, EveryByteAndTheLengthCount) {
  const std::string base = "orders.eu.shipping";
  const std::uint64_t hash = siphash<1, 3>(kK0, kK1, base);
  for (std::size_t i = 0; i < base.size(); ++i) {
    std::string changed = base;
    changed[i] ^= 1;
    EXPECT_NE((siphash<1, 3>(kK0, kK1, changed)), hash) << "byte " << i;
  }
  EXPECT_NE((siphash<1, 3>(kK0, kK1, base + '\0')), hash) << "a trailing zero byte";
}

TEST(SubjectHasher, EachHasherHasItsOwnRandomKey) {
  const SubjectHasher first;
  const SubjectHasher second;
  EXPECT_EQ(first("a.b"), first("a.b"));
  // Equal by chance once in 2^64.
  EXPECT_NE(first("a.b"), second("a.b"));
}

}  // namespace
}  // namespace gophermq
