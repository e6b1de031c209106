#include "gophermq/store/pattern_routes.h"

#include <utility>

#include "gophermq/store/subject.h"

namespace gophermq {

void PatternRoutes::add(std::string_view pattern) {
  auto [place, added] = by_pattern_.try_emplace(std::string(pattern), 0);
  if (!added) return;
  SubjectPatterns::Key key = routes_.size();
  if (free_keys_.empty()) {
    routes_.emplace_back();
  } else {
    key = free_keys_.back();
    free_keys_.pop_back();
  }
  routes_[key] = Route{std::string(pattern), owner_shard(pattern, shard_count_)};
  place->second = key;
  patterns_.add(pattern, key);
}

bool PatternRoutes::remove(std::string_view pattern) {
  auto place = by_pattern_.find(pattern);
  if (place == by_pattern_.end()) return false;
  const SubjectPatterns::Key key = place->second;
  patterns_.remove(pattern, key);
  free_keys_.push_back(key);
  by_pattern_.erase(place);
  return true;
}

}  // namespace gophermq
