#include "gophermq/store/subscriber_id.h"

#include <sys/random.h>

#include <cerrno>
#include <system_error>

#include "gophermq/ascii.h"
#include "gophermq/store/subject_hasher.h"

namespace gophermq {
namespace {

// Byte index -> is a dash written before it (8-4-4-4-12 grouping).
constexpr bool dash_before(std::size_t byte) {
  return byte == 4 || byte == 6 || byte == 8 || byte == 10;
}

// The slot mask's keyed hash: SipHash under a key drawn once per process, so
// ids parse the same on every shard. Made on first use, so no static
// initialiser can meet it unkeyed.
const SubjectHasher& slot_mask_hash() {
  static const SubjectHasher hasher;
  return hasher;
}

// A hex digit of the canonical, lower-case form, or -1.
int lower_hex_value(char c) { return ascii_lower(c) == c ? hex_value(c) : -1; }

}  // namespace

void SubscriberId::write_text(char* out) const {
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (dash_before(i)) *out++ = '-';
    *out++ = kHexDigits[bytes[i] >> 4];
    *out++ = kHexDigits[bytes[i] & 0xf];
  }
}

std::uint32_t SubscriberId::slot_mask() const {
  return static_cast<std::uint32_t>(
      slot_mask_hash()(std::string_view(reinterpret_cast<const char*>(bytes.data()), 4)));
}

std::optional<SubscriberId> SubscriberId::parse(std::string_view text) {
  if (text.size() != kTextLength) return std::nullopt;
  SubscriberId id;
  std::size_t pos = 0;
  for (std::size_t i = 0; i < id.bytes.size(); ++i) {
    if (dash_before(i) && text[pos++] != '-') return std::nullopt;
    int high = lower_hex_value(text[pos++]);
    int low = lower_hex_value(text[pos++]);
    if (high < 0 || low < 0) return std::nullopt;
    id.bytes[i] = static_cast<std::uint8_t>(high << 4 | low);
  }
  return id;
}

SubscriberId SubscriberIdSource::next(std::uint32_t slot) {
  SubscriberId id;
  if (used_ + id.bytes.size() > pool_.size()) {
    std::size_t filled = 0;
    while (filled < pool_.size()) {
      ssize_t got = ::getrandom(pool_.data() + filled, pool_.size() - filled, 0);
      if (got < 0) {
        if (errno == EINTR) continue;
        throw std::system_error(errno, std::generic_category(), "getrandom");
      }
      filled += static_cast<std::size_t>(got);
    }
    used_ = 0;
  }
  std::memcpy(id.bytes.data(), pool_.data() + used_, id.bytes.size());
  used_ += id.bytes.size();
  id.bytes[6] = static_cast<std::uint8_t>((id.bytes[6] & 0x0f) | 0x40);  // version 4
  id.bytes[8] = static_cast<std::uint8_t>((id.bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
  const std::uint32_t folded = slot ^ id.slot_mask();
  std::memcpy(id.bytes.data() + 12, &folded, sizeof folded);
  return id;
}

}  // namespace gophermq
