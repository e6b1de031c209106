// Subscriber ids: random (version 4) UUIDs, written in the canonical
// lower-case 8-4-4-4-12 form exactly as the original's uuid.New().String().
//
// Each id also carries its subscriber's slot, the index among its subject's
// subscribers, so a fetch finds the subscriber by indexing, with no id table
// to search or to grow. A table of millions of ids grows by rehashing all of
// them at once, which stalled the shard for tens of milliseconds. The last
// four bytes hold the slot XORed with a keyed hash of the first four, which
// are random: with the key secret (drawn at start), the id still looks
// random, and neither the slot nor how many subscribers a subject has shows
// through (a plain XOR with the first four made the last group repeat them
// for the first subscriber). The other 90 random bits are what a fetch must
// match: guessing someone's id is as hopeless as before.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace gophermq {

struct SubscriberId {
  static constexpr std::size_t kTextLength = 36;
  std::array<std::uint8_t, 16> bytes{};

  bool operator==(const SubscriberId&) const = default;

  // Writes exactly kTextLength characters.
  void write_text(char* out) const;
  // Only the canonical lower-case form parses: the original compared id
  // strings, so "ABC..." never matched an id it had handed out.
  static std::optional<SubscriberId> parse(std::string_view text);

  // The slot folded in by SubscriberIdSource::next().
  std::uint32_t slot() const { return word(12) ^ slot_mask(); }

 private:
  friend class SubscriberIdSource;
  // What the slot is XORed with: a keyed hash of bytes 0 to 3.
  std::uint32_t slot_mask() const;
  std::uint32_t word(std::size_t at) const {
    std::uint32_t value;
    std::memcpy(&value, bytes.data() + at, sizeof value);
    return value;
  }
};

// Hands out version-4 ids from kernel randomness (getrandom), fetched in
// batches so a subscribe costs no syscall most of the time. One per shard;
// not thread-safe.
class SubscriberIdSource {
 public:
  // A fresh random id that carries `slot` (see above).
  SubscriberId next(std::uint32_t slot);

 private:
  std::array<std::uint8_t, 4096> pool_{};
  std::size_t used_ = sizeof(pool_);
};

}  // namespace gophermq
