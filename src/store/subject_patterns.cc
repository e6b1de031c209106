#include "gophermq/store/subject_patterns.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <unordered_map>
#include <utility>

#include "gophermq/store/subject.h"

namespace gophermq {

namespace {

constexpr std::string_view kAnyToken = "*";
constexpr std::string_view kAnyRest = ">";

// The token of `text` that starts at byte `start`; `next` is where the one
// after it starts, past the end of `text` when there is none.
// Tokens are short: a plain loop beats a call to memchr.
std::string_view token_at(std::string_view text, std::size_t start, std::size_t& next) {
  std::size_t end = start;
  while (end < text.size() && text[end] != '.') ++end;
  next = end + 1;
  return text.substr(start, end - start);
}

// A key registered at a node, and how many adds it has there. A node's list
// is sorted by key: a popular pattern may have many keys.
struct Registration {
  SubjectPatterns::Key key;
  std::uint64_t count;
};
using Registrations = std::vector<Registration>;

Registrations::iterator position_of(Registrations& registrations, SubjectPatterns::Key key) {
  return std::lower_bound(registrations.begin(), registrations.end(), key,
                          [](const Registration& registration, SubjectPatterns::Key k) {
                            return registration.key < k;
                          });
}

// The cache's hash: a multiply-fold (wyhash's) per 8 bytes, a third of
// SipHash's cost on a short subject. It is not collision-resistant, and need
// not be: subjects made to collide only evict each other's cached results,
// and a miss costs a walk of the trie, whose tokens are hashed with SipHash.
std::uint64_t fold(std::uint64_t a, std::uint64_t b) {
  const unsigned __int128 product = static_cast<unsigned __int128>(a) * b;
  return static_cast<std::uint64_t>(product) ^ static_cast<std::uint64_t>(product >> 64);
}

std::uint64_t cache_hash(std::uint64_t seed, std::string_view subject) {
  using siphash_detail::load_tail;
  using siphash_detail::load_word;
  constexpr std::uint64_t kWordSecret = 0xa0761d6478bd642fULL;
  constexpr std::uint64_t kTailSecret = 0xe7037ed1a0b428dbULL;
  std::uint64_t hash = seed ^ subject.size();
  const std::size_t whole = subject.size() & ~std::size_t{7};
  for (std::size_t i = 0; i < whole; i += 8) {
    hash = fold(load_word(subject.data() + i) ^ kWordSecret, hash);
  }
  return fold(load_tail(subject.data() + whole, subject.size() - whole) ^ kTailSecret, hash);
}

// a == b, inline: libc's memcmp, called for a 20-byte subject, cost as much
// as the hash.
bool same_text(std::string_view a, std::string_view b) {
  using siphash_detail::load_word;
  const std::size_t size = a.size();
  if (size != b.size()) return false;
  if (size < 8)
    return siphash_detail::load_tail(a.data(), size) == siphash_detail::load_tail(b.data(), size);
  // Whole words, then the last eight bytes (which may overlap the words).
  for (std::size_t i = 0; i + 8 <= size; i += 8) {
    if (load_word(a.data() + i) != load_word(b.data() + i)) return false;
  }
  return load_word(a.data() + size - 8) == load_word(b.data() + size - 8);
}

void append_keys(const Registrations& registrations, std::vector<SubjectPatterns::Key>& out) {
  for (const Registration& registration : registrations) out.push_back(registration.key);
}

}  // namespace

// A trie node: the patterns whose tokens so far spell the path to it. A walk
// that passes through a node reads only its first cache line (the fields
// before ending_here); one that ends there reads ending_here.
struct alignas(64) SubjectPatterns::Node {
  // Tokens are hashed with the shard's keyed hash, as subject names are
  // (subject_table.h): patterns come from clients, who could otherwise pile
  // thousands of tokens into one bucket.
  struct TokenHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view token) const { return (*hasher)(token); }
    const SubjectHasher* hasher;
  };
  struct TokenEqual {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const { return a == b; }
  };

  explicit Node(const SubjectHasher& hasher) : tokens(0, TokenHash{&hasher}) {}

  bool unused() const {
    return tokens.empty() && !any_token && ending_here.empty() && ending_in_rest.empty();
  }

  Registrations ending_in_rest;     // patterns whose next and last token is ">"
  std::unique_ptr<Node> any_token;  // the next token is "*"
  std::unordered_map<std::string, std::unique_ptr<Node>, TokenHash, TokenEqual> tokens;
  Registrations ending_here;  // patterns with no token after this node
};

bool is_valid_pattern(std::string_view pattern) {
  if (!is_valid_subject(pattern)) return false;
  // ">" matches the rest of the subject, so nothing may follow it.
  std::size_t next = 0;
  while (next <= pattern.size()) {
    if (token_at(pattern, next, next) == kAnyRest && next <= pattern.size()) return false;
  }
  return true;
}

SubjectPatterns::SubjectPatterns(std::size_t cached_subjects)
    : root_(std::make_unique<Node>(hasher_)),
      cache_seed_(hasher_({})),
      cache_sets_(std::bit_ceil(std::max<std::size_t>(cached_subjects / 2, 1))) {}

SubjectPatterns::~SubjectPatterns() {
  // A pattern may have thousands of tokens: freed recursively, node by node,
  // its path could overflow the shard's stack. Each node here is freed with
  // its children already taken away.
  std::vector<std::unique_ptr<Node>> doomed;
  doomed.push_back(std::move(root_));
  while (!doomed.empty()) {
    std::unique_ptr<Node> node = std::move(doomed.back());
    doomed.pop_back();
    for (auto& [token, child] : node->tokens) doomed.push_back(std::move(child));
    if (node->any_token) doomed.push_back(std::move(node->any_token));
  }
}

template <bool kCreate>
auto SubjectPatterns::registrations_of(std::string_view pattern) {
  path_.clear();
  Node* node = root_.get();
  std::size_t next = 0;
  while (true) {
    const std::string_view token = token_at(pattern, next, next);
    if (token == kAnyRest) return &node->ending_in_rest;
    std::unique_ptr<Node>* child = nullptr;
    if (token == kAnyToken) {
      child = &node->any_token;
    } else if (auto found = node->tokens.find(token); found != node->tokens.end()) {
      child = &found->second;
    } else if (kCreate) {
      child = &node->tokens.emplace(token, nullptr).first->second;
    }
    if (child == nullptr || (!kCreate && !*child)) return static_cast<Registrations*>(nullptr);
    if (!*child) {
      *child = std::make_unique<Node>(hasher_);
      ++nodes_;
    }
    node = child->get();
    path_.push_back({node, token});
    if (next > pattern.size()) return &node->ending_here;
  }
}

void SubjectPatterns::add(std::string_view pattern, Key key) {
  assert(is_valid_pattern(pattern));
  Registrations* registrations = registrations_of<true>(pattern);
  ++registrations_;
  auto position = position_of(*registrations, key);
  if (position != registrations->end() && position->key == key) {
    // Another subscriber of a pattern the key already has: the results stand.
    ++position->count;
    return;
  }
  registrations->insert(position, Registration{key, 1});
  ++pairs_;
  forget_cached();
}

bool SubjectPatterns::remove(std::string_view pattern, Key key) {
  Registrations* registrations = registrations_of<false>(pattern);
  if (registrations == nullptr) return false;
  auto position = position_of(*registrations, key);
  if (position == registrations->end() || position->key != key) return false;
  --registrations_;
  if (--position->count != 0) return true;
  registrations->erase(position);
  --pairs_;
  forget_cached();

  // Free the nodes this pattern alone kept, deepest first.
  while (!path_.empty() && path_.back().node->unused()) {
    const PathStep step = path_.back();
    path_.pop_back();
    Node* parent = path_.empty() ? root_.get() : path_.back().node;
    if (parent->any_token.get() == step.node) {
      parent->any_token.reset();
    } else {
      parent->tokens.erase(parent->tokens.find(step.token));
      // A node that once had many children gives its bucket array back
      // (a map never shrinks it by itself).
      constexpr std::size_t kKeepBuckets = 64;
      if (parent->tokens.bucket_count() > kKeepBuckets &&
          parent->tokens.size() * 8 < parent->tokens.bucket_count()) {
        parent->tokens.rehash(0);
      }
    }
    --nodes_;
  }
  return true;
}

std::span<const SubjectPatterns::Key> SubjectPatterns::match_registered(std::string_view subject) {
  if (subject.size() > kLargestCachedSubject) {
    walk(subject);
    return found_;
  }
  if (cache_.empty()) {
    cache_.resize(cache_sets_);
    cached_.resize(2 * cache_sets_);
  }
  const std::uint64_t hash = cache_hash(cache_seed_, subject);
  const std::size_t set_index = hash & (cache_sets_ - 1);
  CacheSet& set = cache_[set_index];
  for (unsigned way = 0; way < 2; ++way) {
    if (set.hashes[way] != hash || set.generations[way] != generation_) continue;
    CachedResult& cached = cached_[2 * set_index + way];
    if (!same_text(cached.subject, subject)) continue;
    set.recent = way;
    return cached.keys;
  }

  walk(subject);
  if (found_.size() > kMostCachedKeys) return found_;
  if (set.missed_hash != hash) {
    set.missed_hash = hash;
    return found_;
  }
  // A stale way is overwritten first; otherwise the one used less recently.
  unsigned way = 1 - set.recent;
  if (set.generations[set.recent] != generation_) way = set.recent;
  set.hashes[way] = hash;
  set.generations[way] = generation_;
  set.recent = way;
  CachedResult& cached = cached_[2 * set_index + way];
  // assign() reuses the slot's buffers: once warm, a miss allocates nothing.
  cached.subject.assign(subject);
  cached.keys.assign(found_.begin(), found_.end());
  return cached.keys;
}

void SubjectPatterns::walk(std::string_view subject) {
  found_.clear();
  frames_.clear();
  // Each frame is a node reached by the subject's tokens so far. A node is
  // reached at most once (its depth is the token it consumes), so a walk
  // costs at most the trie's size, however the wildcards branch.
  frames_.push_back({root_.get(), 0});
  while (!frames_.empty()) {
    const Frame frame = frames_.back();
    frames_.pop_back();
    const Node& node = *frame.node;
    if (frame.next_token > subject.size()) {
      append_keys(node.ending_here, found_);
      continue;
    }
    append_keys(node.ending_in_rest, found_);
    std::size_t next = 0;
    const std::string_view token = token_at(subject, frame.next_token, next);
    if (node.any_token) frames_.push_back({node.any_token.get(), next});
    // An empty map would still hash the token.
    if (node.tokens.empty()) continue;
    if (auto found = node.tokens.find(token); found != node.tokens.end()) {
      frames_.push_back({found->second.get(), next});
    }
  }
  // Several patterns may give one key; and the order must not depend on the
  // trie's hashing.
  if (found_.size() > 1) {
    std::sort(found_.begin(), found_.end());
    found_.erase(std::unique(found_.begin(), found_.end()), found_.end());
  }
}

}  // namespace gophermq
