// Subscriber ids: random (version 4) UUIDs, written in the canonical
// lower-case 8-4-4-4-12 form exactly as the original's uuid.New().String().
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
};

struct SubscriberIdHash {
  // The bytes are random already; any 8 of them are a good hash.
  std::size_t operator()(const SubscriberId& id) const {
    std::uint64_t h;
    std::memcpy(&h, id.bytes.data(), sizeof h);
    return static_cast<std::size_t>(h);
  }
};

// Hands out version-4 ids from kernel randomness (getrandom), fetched in
// batches so a subscribe costs no syscall most of the time. One per shard;
// not thread-safe.
class SubscriberIdSource {
 public:
  SubscriberId next();

 private:
  std::array<std::uint8_t, 4096> pool_{};
  std::size_t used_ = sizeof(pool_);
};

}  // namespace gophermq
