// Subjects: what makes one valid, and which shard owns it.
#pragma once

#include <cstdint>
#include <string_view>

namespace gophermq {

// The original's rule: no space, tab, CR or LF, and splitting on '.' gives no
// empty token. So "a", "a.b.c", "*", "a.>" are valid; "", ".a", "a.", "a..b",
// "a b" are not.
bool is_valid_subject(std::string_view subject);

// FNV-1a, 64-bit: stable across runs and builds, so a subject always lands on
// the same shard, and cheap for the short strings subjects are.
constexpr std::uint64_t subject_hash(std::string_view subject) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (char c : subject) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

// A subject belongs to shard hash % shards: that shard alone holds its
// subscribers and their queues. FNV-1a's low k bits depend only on the low k
// bits of each byte ("a.x" and "A.x" agree modulo 16), so the hash is mixed
// (the 64-bit finaliser of MurmurHash3) before taking the remainder.
constexpr unsigned owner_shard(std::string_view subject, unsigned shard_count) {
  if (shard_count == 1) return 0;  // no hash to pay for (broker.cores=1)
  std::uint64_t mixed = subject_hash(subject);
  mixed ^= mixed >> 33;
  mixed *= 0xff51afd7ed558ccdULL;
  mixed ^= mixed >> 33;
  mixed *= 0xc4ceb93c185ec53bULL;
  mixed ^= mixed >> 33;
  return static_cast<unsigned>(mixed % shard_count);
}

}  // namespace gophermq
