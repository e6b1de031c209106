// A shard's subjects by name, for the store.
//
// One std::unordered_map grows by rehashing every entry at once: with a
// million subjects (a subject per user, say) that stalled the shard for about
// 80 ms, every connection on it waiting. Here the subjects are split over 256
// maps by the top bits of the name's hash, so a growth rehashes a 256th of
// them. The hash is computed once per lookup and handed to the map with the
// name. Entries never move: a map rehash relinks nodes, it does not copy them.
// The hash is keyed at random per table (see subject_hasher.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "gophermq/store/subject_hasher.h"

namespace gophermq {

template <typename Entry>
class SubjectTable {
 public:
  SubjectTable() {
    for (Map& map : maps_) map = Map(0, Hash{&hasher_});
  }
  // The maps point at the table's hasher: it stays where it is.
  SubjectTable(const SubjectTable&) = delete;
  SubjectTable& operator=(const SubjectTable&) = delete;

  Entry* find(std::string_view subject) {
    const HashedName name = hashed(subject);
    Map& map = map_for(name);
    auto found = map.find(name);
    return found == map.end() ? nullptr : &found->second;
  }

  // The entry of `subject`, added (constructed from `arguments`) if there
  // was none; `added` says which.
  template <typename... Arguments>
  Entry& find_or_add(std::string_view subject, bool& added, Arguments&&... arguments) {
    const HashedName name = hashed(subject);
    Map& map = map_for(name);
    auto found = map.find(name);
    added = found == map.end();
    if (added) {
      found = map.try_emplace(std::string(subject), std::forward<Arguments>(arguments)...).first;
      ++size_;
    }
    return found->second;
  }

  // Forgets `subject` and its entry, if there is one.
  void erase(std::string_view subject) {
    const HashedName name = hashed(subject);
    Map& map = map_for(name);
    auto found = map.find(name);
    if (found == map.end()) return;
    map.erase(found);
    --size_;
    // A map that once held many subjects gives its bucket array back when
    // most have gone (a map never shrinks it by itself).
    if (map.bucket_count() > kKeepBuckets && map.size() * 8 < map.bucket_count()) map.rehash(0);
  }

  std::size_t size() const { return size_; }

  // Visits every entry (in no particular order).
  template <typename Visit>
  void for_each(Visit&& visit) const {
    for (const Map& map : maps_) {
      for (const auto& [name, entry] : map) visit(entry);
    }
  }

 private:
  static constexpr unsigned kMapBits = 8;
  static constexpr std::size_t kKeepBuckets = 64;
  static_assert(sizeof(std::size_t) == 8, "the map is picked by the top bits of a 64-bit hash");

  struct HashedName {
    std::string_view text;
    std::size_t hash;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view name) const { return (*hasher)(name); }
    std::size_t operator()(const HashedName& name) const { return name.hash; }
    const SubjectHasher* hasher = nullptr;
  };
  struct Equal {
    using is_transparent = void;
    bool operator()(const std::string& a, const std::string& b) const { return a == b; }
    bool operator()(const HashedName& a, const std::string& b) const { return a.text == b; }
    bool operator()(const std::string& a, const HashedName& b) const { return a == b.text; }
  };
  using Map = std::unordered_map<std::string, Entry, Hash, Equal>;

  HashedName hashed(std::string_view subject) const { return {subject, hasher_(subject)}; }
  Map& map_for(const HashedName& name) { return maps_[name.hash >> (64 - kMapBits)]; }

  SubjectHasher hasher_;
  std::array<Map, std::size_t{1} << kMapBits> maps_;
  std::size_t size_ = 0;
};

}  // namespace gophermq
