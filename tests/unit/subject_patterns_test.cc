// SubjectPatterns: NATS's wildcard rules, counted registrations, freed paths,
// a cache that never answers with a stale result, and agreement with a
// brute-force matcher on random patterns.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gophermq/store/subject.h"
#include "gophermq/store/subject_patterns.h"

namespace gophermq {
namespace {

using namespace std::string_view_literals;
using Key = SubjectPatterns::Key;
using Keys = std::vector<Key>;

// match(), asked three times, so that each answer comes from a walk, a walk
// that admits the subject to the cache, and the cache: all three must agree.
Keys match(SubjectPatterns& patterns, std::string_view subject) {
  Keys answers[3];
  for (Keys& answer : answers) {
    std::span<const Key> found = patterns.match(subject);
    answer.assign(found.begin(), found.end());
  }
  EXPECT_EQ(answers[0], answers[1]) << subject;
  EXPECT_EQ(answers[0], answers[2]) << subject;
  return answers[0];
}

// Whether `pattern` matches `subject` under its name alone: the rules of
// api-extensions.md §10, written as plainly as possible.
std::vector<std::string_view> tokens_of(std::string_view text) {
  std::vector<std::string_view> tokens;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = text.find('.', start);
    if (dot == std::string_view::npos) {
      tokens.push_back(text.substr(start));
      return tokens;
    }
    tokens.push_back(text.substr(start, dot - start));
    start = dot + 1;
  }
}

bool brute_force_matches(std::string_view pattern, std::string_view subject) {
  const std::vector<std::string_view> want = tokens_of(pattern);
  const std::vector<std::string_view> have = tokens_of(subject);
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (want[i] == ">") return i < have.size();  // one or more tokens left
    if (i == have.size()) return false;
    if (want[i] != "*" && want[i] != have[i]) return false;
  }
  return want.size() == have.size();
}

TEST(IsValidPattern, AcceptsWildcardsWhereNatsDoes) {
  for (std::string_view pattern :
       {"a"sv, "a.b.c"sv, "*"sv, ">"sv, "a.*"sv, "a.>"sv, "*.*"sv, "*.>"sv, "a.*.c.>"sv, "a*"sv,
        "*a"sv, "a>"sv, ">a.b"sv, "a.b>c.>"sv}) {
    EXPECT_TRUE(is_valid_pattern(pattern)) << '"' << pattern << '"';
  }
}

TEST(IsValidPattern, RefusesATokenAfterTheRest) {
  for (std::string_view pattern : {"a.>.b"sv, ">.a"sv, ">.>"sv, ">.*"sv, "a.>.>"sv}) {
    EXPECT_FALSE(is_valid_pattern(pattern)) << '"' << pattern << '"';
  }
}

TEST(IsValidPattern, RefusesWhatIsNotAValidSubject) {
  for (std::string_view pattern :
       {""sv, "."sv, ".>"sv, "a."sv, "a..*"sv, "*..>"sv, "a.*."sv, "a *"sv, "a.\t>"sv}) {
    EXPECT_FALSE(is_valid_subject(pattern)) << '"' << pattern << '"';
    EXPECT_FALSE(is_valid_pattern(pattern)) << '"' << pattern << '"';
  }
}

struct Case {
  std::string_view pattern;
  std::vector<std::string_view> matching;
  std::vector<std::string_view> not_matching;
};

TEST(SubjectPatterns, FollowsNatsRules) {
  const std::vector<Case> cases = {
      {"a.*", {"a.b", "a.*", "a.>"}, {"a", "a.b.c", "b.a", "ab"}},
      {"a.>", {"a.b", "a.b.c", "a.b.c.d.e"}, {"a", "b.a", "ab.c"}},
      {"*", {"a", "orders", "*", ">"}, {"a.b", "a.b.c"}},
      {">", {"a", "a.b", "a.b.c"}, {}},
      {"*.*", {"a.b", "x.y"}, {"a", "a.b.c"}},
      {"*.>", {"a.b", "a.b.c"}, {"a"}},
      // A wildcard inside a token is a literal byte.
      {"a*", {"a*"}, {"a", "ab", "a.b"}},
      {"a.b>", {"a.b>"}, {"a.b", "a.b.c"}},
      {"a.*.c.>", {"a.x.c.d", "a.x.c.d.e", "a.c.c.c"}, {"a.x.c", "a.x.d.e", "b.x.c.d", "a.c.d"}},
      // No wildcard: exactly that subject.
      {"a.b", {"a.b"}, {"a", "a.*", "a.b.c", "A.b"}},
  };
  for (const Case& c : cases) {
    SubjectPatterns patterns;
    patterns.add(c.pattern, 1);
    for (std::string_view subject : c.matching) {
      EXPECT_EQ(match(patterns, subject), Keys{1}) << c.pattern << " ~ " << subject;
      EXPECT_TRUE(brute_force_matches(c.pattern, subject)) << c.pattern << " ~ " << subject;
    }
    for (std::string_view subject : c.not_matching) {
      EXPECT_EQ(match(patterns, subject), Keys{}) << c.pattern << " !~ " << subject;
      EXPECT_FALSE(brute_force_matches(c.pattern, subject)) << c.pattern << " !~ " << subject;
    }
  }
}

TEST(SubjectPatterns, AnswersEachKeyOnceInAscendingOrder) {
  SubjectPatterns patterns;
  patterns.add("a.*", 7);
  patterns.add("a.>", 7);
  patterns.add("*.b", 3);
  patterns.add("a.b", 5);
  patterns.add(">", 9);
  patterns.add("a.c", 1);
  EXPECT_EQ(match(patterns, "a.b"), (Keys{3, 5, 7, 9}));
  EXPECT_EQ(match(patterns, "a.b"), (Keys{3, 5, 7, 9}));  // from the cache
  EXPECT_EQ(match(patterns, "a.c"), (Keys{1, 7, 9}));
  EXPECT_EQ(match(patterns, "b"), (Keys{9}));
}

TEST(SubjectPatterns, EmptyUntilSomethingIsAdded) {
  SubjectPatterns patterns;
  EXPECT_TRUE(patterns.empty());
  EXPECT_TRUE(patterns.match("a").empty());
  patterns.add("a", 1);
  EXPECT_FALSE(patterns.empty());
  EXPECT_TRUE(patterns.remove("a", 1));
  EXPECT_TRUE(patterns.empty());
  EXPECT_TRUE(patterns.match("a").empty());
}

TEST(SubjectPatterns, CountsRepeatedRegistrations) {
  SubjectPatterns patterns;
  patterns.add("a.*", 1);
  patterns.add("a.*", 1);
  EXPECT_EQ(patterns.size(), 1u);
  EXPECT_TRUE(patterns.remove("a.*", 1));
  EXPECT_EQ(match(patterns, "a.b"), Keys{1});  // one add left
  EXPECT_FALSE(patterns.empty());
  EXPECT_TRUE(patterns.remove("a.*", 1));
  EXPECT_EQ(match(patterns, "a.b"), Keys{});
  EXPECT_TRUE(patterns.empty());
  EXPECT_FALSE(patterns.remove("a.*", 1));
  EXPECT_EQ(patterns.size(), 0u);
}

TEST(SubjectPatterns, RemovingWhatIsNotThereChangesNothing) {
  SubjectPatterns patterns;
  patterns.add("a.*.c", 1);
  const std::size_t nodes = patterns.node_count();
  EXPECT_FALSE(patterns.remove("a.*.c", 2));  // another key
  EXPECT_FALSE(patterns.remove("a.*", 1));    // a prefix
  EXPECT_FALSE(patterns.remove("a.*.c.d", 1));
  EXPECT_FALSE(patterns.remove("a.b.c", 1));  // a literal where the wildcard is
  EXPECT_FALSE(patterns.remove("a.*.>", 1));
  EXPECT_FALSE(patterns.remove("x", 1));
  EXPECT_EQ(patterns.node_count(), nodes);
  EXPECT_EQ(patterns.size(), 1u);
  EXPECT_EQ(match(patterns, "a.b.c"), Keys{1});
}

TEST(SubjectPatterns, SharesPathsAndFreesThemWithTheirLastPattern) {
  SubjectPatterns patterns;
  EXPECT_EQ(patterns.node_count(), 1u);  // the root
  patterns.add("a.b.c", 1);
  patterns.add("a.b.c", 2);
  EXPECT_EQ(patterns.node_count(), 4u);
  patterns.add("a.b.d", 1);
  patterns.add("a.b.>", 1);  // ends at b: no node of its own
  patterns.add("a.*", 3);
  EXPECT_EQ(patterns.node_count(), 6u);
  EXPECT_EQ(patterns.size(), 5u);

  EXPECT_TRUE(patterns.remove("a.b.c", 1));
  EXPECT_EQ(patterns.node_count(), 6u);  // key 2 keeps a.b.c
  EXPECT_TRUE(patterns.remove("a.b.c", 2));
  EXPECT_EQ(patterns.node_count(), 5u);
  EXPECT_TRUE(patterns.remove("a.b.d", 1));
  EXPECT_EQ(patterns.node_count(), 4u);  // a.b.> keeps b
  EXPECT_TRUE(patterns.remove("a.b.>", 1));
  EXPECT_EQ(patterns.node_count(), 3u);
  EXPECT_TRUE(patterns.remove("a.*", 3));
  EXPECT_EQ(patterns.node_count(), 1u);
  EXPECT_EQ(patterns.size(), 0u);
}

TEST(SubjectPatterns, ACachedResultNeverOutlivesAChange) {
  SubjectPatterns patterns;
  patterns.add("x.y", 1);
  EXPECT_EQ(match(patterns, "a.b"), Keys{});
  patterns.add("a.*", 2);
  EXPECT_EQ(match(patterns, "a.b"), Keys{2});
  patterns.add("a.b", 3);
  EXPECT_EQ(match(patterns, "a.b"), (Keys{2, 3}));
  patterns.add("a.b", 3);  // counted: the same answer
  EXPECT_EQ(match(patterns, "a.b"), (Keys{2, 3}));
  EXPECT_TRUE(patterns.remove("a.b", 3));
  EXPECT_EQ(match(patterns, "a.b"), (Keys{2, 3}));
  EXPECT_TRUE(patterns.remove("a.b", 3));
  EXPECT_EQ(match(patterns, "a.b"), Keys{2});
  EXPECT_TRUE(patterns.remove("a.*", 2));
  EXPECT_EQ(match(patterns, "a.b"), Keys{});
}

TEST(SubjectPatterns, ACacheOfOneSetStillAnswersRight) {
  SubjectPatterns patterns(1);
  patterns.add("s.*", 1);
  patterns.add("s.1", 2);
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 5; ++i) {
      const std::string subject = "s." + std::to_string(i);
      EXPECT_EQ(match(patterns, subject), i == 1 ? (Keys{1, 2}) : Keys{1}) << subject;
    }
  }
}

TEST(SubjectPatterns, LongSubjectsAndLargeResultsBypassTheCache) {
  SubjectPatterns patterns;
  std::string subject = "long";
  while (subject.size() <= SubjectPatterns::kLargestCachedSubject) subject += ".token";
  patterns.add("long.>", 1);
  EXPECT_EQ(match(patterns, subject), Keys{1});
  EXPECT_EQ(match(patterns, subject), Keys{1});

  Keys many;
  for (Key key = 0; key <= SubjectPatterns::kMostCachedKeys; ++key) {
    patterns.add("many.*", key);
    many.push_back(key);
  }
  EXPECT_EQ(match(patterns, "many.x"), many);
  EXPECT_EQ(match(patterns, "many.x"), many);
  EXPECT_TRUE(patterns.remove("many.*", 0));
  many.erase(many.begin());
  EXPECT_EQ(match(patterns, "many.x"), many);
}

TEST(SubjectPatterns, TenThousandPatternsMatchOnlyTheirOwn) {
  constexpr int kEach = 5000;
  SubjectPatterns patterns;
  for (int i = 0; i < kEach; ++i) {
    patterns.add("orders." + std::to_string(i) + ".*", static_cast<Key>(i));
    patterns.add("metrics.host" + std::to_string(i) + ".>", static_cast<Key>(kEach + i));
  }
  EXPECT_EQ(patterns.size(), 2u * kEach);
  for (int i = 0; i < kEach; i += 97) {
    const std::string n = std::to_string(i);
    EXPECT_EQ(match(patterns, "orders." + n + ".created"), Keys{static_cast<Key>(i)});
    EXPECT_EQ(match(patterns, "orders." + n), Keys{});
    EXPECT_EQ(match(patterns, "orders." + n + ".created.eu"), Keys{});
    EXPECT_EQ(match(patterns, "metrics.host" + n + ".cpu.load"), Keys{static_cast<Key>(kEach + i)});
    EXPECT_EQ(match(patterns, "metrics.host" + n), Keys{});
  }
  EXPECT_EQ(match(patterns, "payments.eu.created"), Keys{});
  for (int i = 0; i < kEach; ++i) {
    ASSERT_TRUE(patterns.remove("orders." + std::to_string(i) + ".*", static_cast<Key>(i)));
    ASSERT_TRUE(
        patterns.remove("metrics.host" + std::to_string(i) + ".>", static_cast<Key>(kEach + i)));
  }
  EXPECT_TRUE(patterns.empty());
  EXPECT_EQ(patterns.node_count(), 1u);
}

TEST(SubjectPatterns, DeepPatternsAreWalkedAndFreedWithoutRecursion) {
  // Far more tokens than a recursive walk or teardown could afford frames for.
  constexpr int kTokens = 100000;
  std::string deep = "a";
  for (int i = 1; i < kTokens; ++i) deep += ".a";
  SubjectPatterns patterns;
  patterns.add(deep, 1);
  patterns.add(deep.substr(0, deep.size() - 1) + "*", 2);
  patterns.add(deep.substr(0, deep.size() - 1) + ">", 3);
  EXPECT_EQ(patterns.node_count(), static_cast<std::size_t>(kTokens) + 2);
  EXPECT_EQ(match(patterns, deep), (Keys{1, 2, 3}));
  EXPECT_EQ(match(patterns, deep + ".a"), Keys{3});
}

// Random adds, removes and matches over a small alphabet, so that patterns
// overlap a lot, checked against brute_force_matches over every registration.
void check_against_brute_force(std::size_t cached_subjects, std::uint32_t seed) {
  std::mt19937 random(seed);
  const auto pick = [&random](std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(random);
  };
  static constexpr std::string_view kPatternTokens[] = {"a", "b", "c", "ab", "*", ">"};
  // "x" is in no pattern: only a wildcard matches it.
  static constexpr std::string_view kSubjectTokens[] = {"a", "b", "c", "ab", "x"};
  const auto make = [&](bool pattern) {
    const std::size_t count = 1 + pick(pattern ? 4 : 5);
    std::string text;
    for (std::size_t i = 0; i < count; ++i) {
      std::string_view token = pattern ? kPatternTokens[pick(6)] : kSubjectTokens[pick(5)];
      if (token == ">" && i + 1 < count) token = "a";
      if (i != 0) text += '.';
      text += token;
    }
    return text;
  };

  SubjectPatterns patterns(cached_subjects);
  std::map<std::pair<std::string, Key>, int> registered;  // pair -> adds
  std::vector<std::pair<std::string, Key>> added;
  for (int step = 0; step < 10000; ++step) {
    const std::size_t action = pick(20);
    if (action < 5) {
      std::pair<std::string, Key> pair{make(true), pick(8)};
      ASSERT_TRUE(is_valid_pattern(pair.first)) << pair.first;
      patterns.add(pair.first, pair.second);
      ++registered[pair];
      added.push_back(std::move(pair));
    } else if (action < 10 && !added.empty()) {
      const std::size_t which = pick(added.size());
      const auto pair = added[which];
      added.erase(added.begin() + static_cast<std::ptrdiff_t>(which));
      ASSERT_TRUE(patterns.remove(pair.first, pair.second)) << pair.first;
      if (--registered[pair] == 0) registered.erase(pair);
    } else {
      const std::string subject = make(false);
      std::set<Key> expected;
      for (const auto& [pair, adds] : registered) {
        if (brute_force_matches(pair.first, subject)) expected.insert(pair.second);
      }
      ASSERT_EQ(match(patterns, subject), Keys(expected.begin(), expected.end()))
          << subject << " at step " << step;
    }
    ASSERT_EQ(patterns.size(), registered.size());
    ASSERT_EQ(patterns.empty(), registered.empty());
  }
  for (const auto& [pattern, key] : added) ASSERT_TRUE(patterns.remove(pattern, key));
  EXPECT_EQ(patterns.node_count(), 1u);
}

TEST(SubjectPatterns, AgreesWithABruteForceMatcher) {
  check_against_brute_force(SubjectPatterns::kDefaultCachedSubjects, 1);
  check_against_brute_force(SubjectPatterns::kDefaultCachedSubjects, 2);
}

TEST(SubjectPatterns, AgreesWithABruteForceMatcherThroughATinyCache) {
  check_against_brute_force(4, 3);
}

}  // namespace
}  // namespace gophermq
