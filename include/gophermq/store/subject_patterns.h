// Wildcard subscriptions' patterns (api-extensions.md §10), and which of them
// match a published subject: one per shard, touched by its thread alone.
//
// A pattern is a subject whose tokens may be wildcards: a token that is
// exactly "*" matches any one token, and a last token ">" matches one or more
// (NATS's rules). Every shard knows every pattern, so a publish finds its
// wildcard subscribers on the shard that owns the subject; the store keys each
// registration with a number of its choosing (say, "pattern P, whose queue
// lives on shard K") and this gives those keys back.
//
// The patterns are a trie with a node per distinct token per level, so a
// publish walks the tokens of its subject, not the list of patterns: with
// thousands registered and none matching, the walk usually stops within the
// first two tokens. Results are cached by subject, as NATS's sublist does, so
// a publish to a hot subject is one hash lookup.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gophermq/store/subject_hasher.h"

namespace gophermq {

// A valid subject (see subject.h) in which ">", if it is a whole token, is the
// last one: "a.*", "*.b.>", ">" and "a*" are valid; "a.>.b" and "a..*" are
// not. A "*" or ">" inside a token ("a*", "b>c") is a literal byte, as in NATS.
// The length limit (broker.max-subject-bytes) is the caller's, as for subjects.
bool is_valid_pattern(std::string_view pattern);

class SubjectPatterns {
 public:
  using Key = std::uint64_t;

  // About this many subjects' results are cached: the cache is two-way
  // set-associative, its sets a power of two. A subject is cached at its
  // second miss in a row (see CacheSet).
  static constexpr std::size_t kDefaultCachedSubjects = 4096;
  // Longer subjects, and results with more keys, are not cached, so the
  // cache's memory is bounded whatever is published: a subject that long, or
  // with that many wildcard subscribers, costs a walk (or as many stores) anyway.
  static constexpr std::size_t kLargestCachedSubject = 256;
  static constexpr std::size_t kMostCachedKeys = 32;

  explicit SubjectPatterns(std::size_t cached_subjects = kDefaultCachedSubjects);
  SubjectPatterns(const SubjectPatterns&) = delete;
  SubjectPatterns& operator=(const SubjectPatterns&) = delete;
  ~SubjectPatterns();

  // Registers `key` under `pattern`, which must be valid (is_valid_pattern).
  // Registrations are counted: adding the same pair again takes another
  // remove to undo, and a pattern shared by several keys is one path.
  void add(std::string_view pattern, Key key);
  // Undoes one add of the pair; false (and nothing changes) if it has none.
  // A path left with no registration is freed.
  bool remove(std::string_view pattern, Key key);

  // Nothing registered: no subject can match, and match() costs one branch.
  bool empty() const { return registrations_ == 0; }

  // The keys registered under every pattern that matches `subject` (a valid
  // subject), each once, in ascending order. The span is valid until the next
  // call of a non-const member.
  std::span<const Key> match(std::string_view subject) {
    if (empty()) return {};
    return match_registered(subject);
  }

  // Distinct (pattern, key) pairs registered.
  std::size_t size() const { return pairs_; }
  // Trie nodes held, the root included: a path goes with its last pattern.
  std::size_t node_count() const { return nodes_; }

 private:
  struct Node;
  struct Frame {
    const Node* node;
    std::size_t next_token;  // byte offset in the subject; past its end: no tokens left
  };
  struct PathStep {
    Node* node;
    std::string_view token;  // the node's, in its parent
  };
  // A set of the cache: two ways, their tags in one cache line, so a miss
  // (a stream of distinct subjects, say) reads one line of the cache.
  struct alignas(64) CacheSet {
    std::uint64_t hashes[2] = {0, 0};
    std::uint64_t generations[2] = {0, 0};  // a way holds a result when it is generation_'s
    // The last subject that missed here and was not cached: one is cached
    // when it misses twice in a row. A stream of distinct subjects, more
    // than the cache holds, would otherwise evict the hot ones and pay an
    // insert each, for nothing.
    std::uint64_t missed_hash = 0;
    unsigned recent = 0;  // the way hit or filled last; the other gives way
  };
  struct CachedResult {
    std::string subject;
    std::vector<Key> keys;
  };

  // Where `pattern`'s registrations are, each node on the way to them
  // recorded in path_: made where missing with kCreate, else null when one
  // is.
  template <bool kCreate>
  auto registrations_of(std::string_view pattern);
  std::span<const Key> match_registered(std::string_view subject);
  // Sets found_ to match()'s answer, without the cache.
  void walk(std::string_view subject);
  // Every cached result is stale: the set of (pattern, key) pairs changed.
  void forget_cached() { ++generation_; }

  SubjectHasher hasher_;
  std::unique_ptr<Node> root_;
  std::size_t registrations_ = 0;  // counting repeats
  std::size_t pairs_ = 0;
  std::size_t nodes_ = 1;

  // Kept between calls, so a warm match allocates nothing.
  std::vector<Frame> frames_;
  std::vector<Key> found_;
  std::vector<PathStep> path_;

  // Way w of set s is cached_[2 * s + w]. Allocated at the first match, so
  // a shard with no patterns holds none.
  std::vector<CacheSet> cache_;
  std::vector<CachedResult> cached_;
  std::uint64_t cache_seed_;  // drawn from the hasher's random key
  std::size_t cache_sets_;
  std::uint64_t generation_ = 1;
};

}  // namespace gophermq
