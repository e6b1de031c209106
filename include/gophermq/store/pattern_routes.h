// Every wildcard pattern that has subscribers anywhere in the broker, as one
// shard knows them (api-extensions.md §10): which of them match a published
// subject, and the shard that holds each one's queue (the pattern's owner,
// owner_shard(pattern), as for a subject). One per shard, touched by its
// thread alone; the owner of a pattern tells every other shard when the
// pattern gets its first subscriber and when it loses its last.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "gophermq/store/subject_patterns.h"

namespace gophermq {

class PatternRoutes {
 public:
  struct Route {
    std::string pattern;
    unsigned owner;  // the shard that holds its queue
  };

  explicit PatternRoutes(unsigned shard_count) : shard_count_(shard_count) {}

  // `pattern` (valid: is_valid_pattern) has subscribers now; adding one
  // known already changes nothing.
  void add(std::string_view pattern);
  // It has none left; false when it was not known.
  bool remove(std::string_view pattern);

  // No pattern anywhere: a publish pays this one branch.
  bool empty() const { return patterns_.empty(); }
  std::size_t size() const { return by_pattern_.size(); }

  // visit(route) for each pattern that matches `subject`, each once. The
  // trie (and its cache of results) finds them: with thousands of patterns
  // and none matching, a publish walks its own tokens, not the patterns.
  template <typename Visit>
  void for_each_match(std::string_view subject, Visit&& visit) {
    for (const SubjectPatterns::Key key : patterns_.match(subject)) visit(routes_[key]);
  }

 private:
  const unsigned shard_count_;
  SubjectPatterns patterns_;  // keyed by place in routes_
  std::vector<Route> routes_;
  std::vector<SubjectPatterns::Key> free_keys_;  // places in routes_ a removal emptied
  std::map<std::string, SubjectPatterns::Key, std::less<>> by_pattern_;
};

}  // namespace gophermq
