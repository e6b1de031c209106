// The hash of a shard's subject table: SipHash (Aumasson and Bernstein) with
// a key drawn at random when the table is made. With a fixed, public hash a
// client could compute offline many subjects that fall into one bucket and
// make every lookup on that shard walk them; keyed, it cannot. (Which shard
// owns a subject is a different hash, fixed on purpose: see subject.h.)
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace gophermq {

namespace siphash_detail {

struct SipState {
  std::uint64_t v0, v1, v2, v3;

  void round() {
    v0 += v1;
    v1 = std::rotl(v1, 13);
    v1 ^= v0;
    v0 = std::rotl(v0, 32);
    v2 += v3;
    v3 = std::rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = std::rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = std::rotl(v1, 17);
    v1 ^= v2;
    v2 = std::rotl(v2, 32);
  }

  template <int kRounds>
  void absorb(std::uint64_t word) {
    v3 ^= word;
    for (int i = 0; i < kRounds; ++i) round();
    v0 ^= word;
  }
};

// Eight bytes, little-endian (x86 and arm64 Linux are).
inline std::uint64_t load_word(const char* bytes) {
  std::uint64_t word;
  std::memcpy(&word, bytes, sizeof word);
  return word;
}

// The last `count` (0 to 7) bytes, little-endian, in at most two loads that
// may overlap: most subjects are short, and a byte at a time costs a third
// of the hash.
inline std::uint64_t load_tail(const char* bytes, std::size_t count) {
  if (count >= 4) {
    std::uint32_t low, high;
    std::memcpy(&low, bytes, sizeof low);
    std::memcpy(&high, bytes + count - 4, sizeof high);
    return low | static_cast<std::uint64_t>(high) << (8 * (count - 4));
  }
  if (count == 0) return 0;
  const auto byte = [bytes](std::size_t i) {
    return static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  };
  return byte(0) | byte(count / 2) | byte(count - 1);
}

}  // namespace siphash_detail

// SipHash-c-d of `text` under the 128-bit key (k0, k1).
template <int kCompressionRounds, int kFinalRounds>
std::uint64_t siphash(std::uint64_t k0, std::uint64_t k1, std::string_view text) {
  using siphash_detail::load_word;
  siphash_detail::SipState state{k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
                                 k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL};
  const std::size_t whole = text.size() & ~std::size_t{7};
  for (std::size_t i = 0; i < whole; i += 8) {
    state.absorb<kCompressionRounds>(load_word(text.data() + i));
  }
  // The last 0 to 7 bytes, and the length in the top byte.
  state.absorb<kCompressionRounds>(
      siphash_detail::load_tail(text.data() + whole, text.size() - whole) |
      static_cast<std::uint64_t>(text.size()) << 56);
  state.v2 ^= 0xff;
  for (int i = 0; i < kFinalRounds; ++i) state.round();
  return state.v0 ^ state.v1 ^ state.v2 ^ state.v3;
}

class SubjectHasher {
 public:
  // A fresh random key (getrandom).
  SubjectHasher();
  // SipHash-1-3, the variant hash tables use (Rust's, Python's): a
  // collision-resistant keyed hash at a few nanoseconds per short subject.
  std::uint64_t operator()(std::string_view subject) const {
    return siphash<1, 3>(k0_, k1_, subject);
  }

 private:
  std::uint64_t k0_;
  std::uint64_t k1_;
};

}  // namespace gophermq
