// Subscriber ids: random version-4 UUIDs in the canonical lower-case text
// form the original's uuid.New().String() writes.
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "gophermq/store/subscriber_id.h"

namespace gophermq {
namespace {

std::string text_of(const SubscriberId& id) {
  std::string text(SubscriberId::kTextLength, '?');
  id.write_text(text.data());
  return text;
}

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ by
// hand: std::regex is too slow to run 100000 times under a sanitizer.
bool is_canonical_v4(std::string_view text) {
  if (text.size() != 36) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return false;
    } else if (!is_lower_hex(text[i])) {
      return false;
    }
  }
  return text[14] == '4' && std::string_view("89ab").find(text[19]) != std::string_view::npos;
}

const std::regex kUuidV4("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");

TEST(SubscriberIdSource, IdsMatchTheVersion4Pattern) {
  SubscriberIdSource source;
  // The regex itself on a sample, so the hand-written check is checked too.
  for (int i = 0; i < 1000; ++i) {
    std::string text = text_of(source.next(static_cast<std::uint32_t>(i)));
    EXPECT_TRUE(std::regex_match(text, kUuidV4)) << text;
    EXPECT_TRUE(is_canonical_v4(text)) << text;
  }
}

TEST(SubscriberIdSource, HundredThousandIdsAreUniqueAndWellFormed) {
  // 100000 ids span many refills of the 4096-byte random pool.
  constexpr int kIds = 100000;
  SubscriberIdSource source;
  std::unordered_set<std::string> seen;
  seen.reserve(kIds);
  for (int i = 0; i < kIds; ++i) {
    // Slot 0 for all: the random bits alone must keep them apart.
    std::string text = text_of(source.next(0));
    ASSERT_TRUE(is_canonical_v4(text)) << "id " << i << ": " << text;
    ASSERT_TRUE(seen.insert(text).second) << "duplicate id " << i << ": " << text;
  }
}

TEST(SubscriberIdSource, RandomBitsAreBalanced) {
  // Each of the 122 random bits should be set in about half the ids; a bit
  // stuck at 0 or 1 (a pool reused, a mask gone wrong) is far outside 45-55%.
  // The slots count up from 0, as they do for one subject's subscribers:
  // folded into the id, they must not show through.
  constexpr int kIds = 20000;
  SubscriberIdSource source;
  std::array<int, 128> set_counts{};
  for (int i = 0; i < kIds; ++i) {
    SubscriberId id = source.next(static_cast<std::uint32_t>(i));
    for (int bit = 0; bit < 128; ++bit) {
      if (id.bytes[bit / 8] >> (7 - bit % 8) & 1) ++set_counts[bit];
    }
  }
  for (int bit = 0; bit < 128; ++bit) {
    const int byte = bit / 8;
    const int high_bit = 7 - bit % 8;  // 7 is the most significant bit of the byte
    if (byte == 6 && high_bit >= 4) {
      // Version nibble 0100.
      EXPECT_EQ(set_counts[bit], high_bit == 6 ? kIds : 0) << "bit " << bit;
    } else if (byte == 8 && high_bit >= 6) {
      // Variant bits 10.
      EXPECT_EQ(set_counts[bit], high_bit == 7 ? kIds : 0) << "bit " << bit;
    } else {
      EXPECT_GT(set_counts[bit], kIds * 45 / 100) << "bit " << bit;
      EXPECT_LT(set_counts[bit], kIds * 55 / 100) << "bit " << bit;
    }
  }
}

TEST(SubscriberIdSource, SeparateSourcesDoNotRepeatEachOther) {
  // One source per shard: they must not share a seed.
  SubscriberIdSource first;
  SubscriberIdSource second;
  std::unordered_set<std::string> seen;
  for (int i = 0; i < 5000; ++i) {
    ASSERT_TRUE(seen.insert(text_of(first.next(0))).second);
    ASSERT_TRUE(seen.insert(text_of(second.next(0))).second);
  }
}

TEST(SubscriberId, WriteTextIsLowerCaseHexInEightFourFourFourTwelve) {
  SubscriberId id;
  for (std::size_t i = 0; i < id.bytes.size(); ++i) {
    id.bytes[i] = static_cast<std::uint8_t>(0x01 + i * 0x11);  // 01 12 23 ... ef 00 (wraps)
  }
  // write_text writes exactly 36 characters and nothing past them.
  std::string buffer(40, '#');
  id.write_text(buffer.data());
  EXPECT_EQ(buffer, "01122334-4556-6778-899a-abbccddeef00####");
}

TEST(SubscriberId, TextRoundTrips) {
  SubscriberIdSource source;
  for (int i = 0; i < 1000; ++i) {
    SubscriberId id = source.next(static_cast<std::uint32_t>(i * 7919));
    std::optional<SubscriberId> parsed = SubscriberId::parse(text_of(id));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(*parsed, id);
  }
}

TEST(SubscriberId, CarriesItsSlotThroughTheTextForm) {
  SubscriberIdSource source;
  const std::vector<std::uint32_t> slots = {
      0, 1, 2, 255, 256, 65'535, 65'536, 1u << 20, 123'456'789, 1u << 31, 0xfffffffe, 0xffffffff};
  for (std::uint32_t slot : slots) {
    for (int repeat = 0; repeat < 50; ++repeat) {
      const SubscriberId id = source.next(slot);
      EXPECT_EQ(id.slot(), slot);
      std::optional<SubscriberId> parsed = SubscriberId::parse(text_of(id));
      ASSERT_TRUE(parsed.has_value());
      EXPECT_EQ(parsed->slot(), slot) << text_of(id);
    }
  }
}

TEST(SubscriberId, SameSlotGivesDifferentIds) {
  // The slot is folded into random bits: two ids of one slot differ there too.
  SubscriberIdSource source;
  const SubscriberId first = source.next(42);
  const SubscriberId second = source.next(42);
  EXPECT_NE(first, second);
  EXPECT_NE(text_of(first).substr(24), text_of(second).substr(24))
      << "the last group shows no plain counter";
}

TEST(SubscriberId, TheSlotDoesNotShowThroughTheOtherBytes) {
  // The last group must not be the slot XORed with another group of the id:
  // the first subscriber's id would end in its own first eight digits, and
  // anyone could read how many subscribers a subject has. By chance a group
  // matches once in 2^32; with 3 groups and 20000 ids, almost never.
  constexpr std::uint32_t kIds = 20000;
  SubscriberIdSource source;
  int shown = 0;
  for (std::uint32_t slot = 0; slot < kIds; ++slot) {
    const SubscriberId id = source.next(slot);
    const auto group = [&id](std::size_t at) {
      return static_cast<std::uint32_t>(id.bytes[at]) | id.bytes[at + 1] << 8 |
             id.bytes[at + 2] << 16 | static_cast<std::uint32_t>(id.bytes[at + 3]) << 24;
    };
    for (std::size_t at = 0; at < 12; at += 4) {
      if ((group(12) ^ group(at)) == slot) ++shown;
    }
    ASSERT_EQ(id.slot(), slot);
  }
  EXPECT_LE(shown, 1) << "ids whose last group is the slot XOR another group";
}

TEST(SubscriberId, ParsesKnownText) {
  std::optional<SubscriberId> parsed = SubscriberId::parse("f47ac10b-58cc-4372-a567-0e02b2c3d479");
  ASSERT_TRUE(parsed.has_value());
  const std::array<std::uint8_t, 16> expected = {0xf4, 0x7a, 0xc1, 0x0b, 0x58, 0xcc, 0x43, 0x72,
                                                 0xa5, 0x67, 0x0e, 0x02, 0xb2, 0xc3, 0xd4, 0x79};
  EXPECT_EQ(parsed->bytes, expected);
}

TEST(SubscriberId, ParseRefusesNonCanonicalText) {
  const std::string good = "f47ac10b-58cc-4372-a567-0e02b2c3d479";
  ASSERT_TRUE(SubscriberId::parse(good).has_value());

  std::vector<std::string> bad = {
      "",
      "F47AC10B-58CC-4372-A567-0E02B2C3D479",  // upper case: the original compared strings
      "f47ac10b-58cc-4372-a567-0e02b2c3d47A",  // one upper-case digit
      good.substr(0, 35),                      // too short
      good + "0",                              // too long
      good + "\n",
      "f47ac10b58cc4372a5670e02b2c3d479",      // no dashes (32 chars)
      "f47ac10b058cc04372-a567-0e02b2c3d479",  // dashes replaced by hex digits
      "f47ac10b-58cc-4372-a567_0e02b2c3d479",  // wrong separator
      "f47ac10-b58cc-4372-a567-0e02b2c3d479",  // dash one place early
      "f47ac10bf-8cc-4372-a567-0e02b2c3d479",  // dash one place late
      "f47ac10b-58cc-4372-a5670-e02b2c3d479",  // last dash moved
      "g47ac10b-58cc-4372-a567-0e02b2c3d479",  // non-hex letter
      "f47ac10b-58cc-4372-a567-0e02b2c3d47 ",  // space
      "-f47ac10b58cc-4372-a567-0e02b2c3d479",  // dash first
      "f47ac10b-58cc-4372-a567-0e02b2c3d4-9",  // dash inside the last group
      "{47ac10b-58cc-4372-a567-0e02b2c3d479",  // brace
      std::string("f47ac10b-58cc-4372-a567-0e02b2c3d47\0", 36),
  };
  for (const std::string& text : bad) {
    EXPECT_FALSE(SubscriberId::parse(text).has_value()) << '"' << text << '"';
  }
}

}  // namespace
}  // namespace gophermq
