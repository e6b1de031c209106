// What wildcard patterns cost a publish that none of them matches: the target
// (api-extensions.md §10) is at most 1.3 times the cost with none registered,
// with 10,000 registered. Run pinned, and compare medians:
//   taskset -c 1 build/bench/subject_patterns_bench --benchmark_repetitions=5
// Each case runs with 0 and 10,000 patterns, and publishes to one hot subject
// (a cached result) or cycles through 65,536 subjects, more than the cache
// holds (a walk of the trie each time).
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "gophermq/store/pending_budget.h"
#include "gophermq/store/store_census.h"
#include "gophermq/store/subject_patterns.h"
#include "gophermq/store/subject_store.h"
#include "gophermq/store/subscriber_id.h"

namespace gophermq {
namespace {

constexpr std::size_t kManySubjects = 65536;

// Half "orders.<i>.*", half "metrics.host<i>.>": shapes a dashboard or a
// per-tenant consumer would subscribe with.
void register_patterns(SubjectPatterns& patterns, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    const std::string n = std::to_string(i / 2);
    patterns.add(i % 2 == 0 ? "orders." + n + ".*" : "metrics.host" + n + ".>", i);
  }
}

// Subjects none of those patterns match, in three kinds: one that follows
// "orders.<i>" a token too far, one that stops at "metrics" (no host
// matches), and one whose first token no pattern has. The hot subject is of
// the first kind, the most costly to walk.
std::vector<std::string> unmatched_subjects(std::size_t count) {
  std::vector<std::string> subjects;
  for (std::size_t i = 0; i < count; ++i) {
    const std::string n = std::to_string(i);
    switch (i % 3) {
      case 0:
        subjects.push_back("orders." + std::to_string(i % 5000) + ".created." + n);
        break;
      case 1:
        subjects.push_back("metrics.gpu" + n + ".load");
        break;
      default:
        subjects.push_back("payments.eu." + n);
        break;
    }
  }
  return subjects;
}

// match() alone.
void BM_PatternMatchNoneMatching(benchmark::State& state) {
  SubjectPatterns patterns;
  register_patterns(patterns, static_cast<std::size_t>(state.range(0)));
  const std::vector<std::string> subjects =
      unmatched_subjects(static_cast<std::size_t>(state.range(1)));
  std::size_t next = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(patterns.match(subjects[next]).size());
    if (++next == subjects.size()) next = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PatternMatchNoneMatching)
    ->ArgNames({"patterns", "subjects"})
    ->ArgsProduct({{0, 10000}, {1, kManySubjects}});

// A store publish (one plain subscriber per subject) followed by match(), as
// a publish would run once the store asks the patterns. Each cycle through
// the subjects the subscribers are drained, off the clock, so the store stays
// small.
void BM_PublishWithPatterns(benchmark::State& state) {
  SubjectPatterns patterns;
  register_patterns(patterns, static_cast<std::size_t>(state.range(0)));
  const std::vector<std::string> subjects =
      unmatched_subjects(static_cast<std::size_t>(state.range(1)));
  PendingBudget budget(std::uint64_t{1} << 40, std::uint64_t{1} << 40);
  SubscriberIdSource ids;
  StoreCensus census(1 << 20, 1 << 20);
  StoreLimits limits;
  limits.max_pending_per_subject = std::uint64_t{1} << 40;
  SubjectStore store(budget, census, ids, limits);
  std::vector<Subscriber*> subscribers;
  for (const std::string& subject : subjects) {
    subscribers.push_back(store.find(subject, store.subscribe(subject).id));
  }
  constexpr std::size_t kDrainEvery = kManySubjects;
  std::size_t next = 0;
  std::size_t published = 0;
  for (auto _ : state) {
    const std::string& subject = subjects[next];
    benchmark::DoNotOptimize(store.publish(subject, "a sixteen byte m"));
    benchmark::DoNotOptimize(patterns.match(subject).size());
    if (++next == subjects.size()) next = 0;
    if (++published % kDrainEvery == 0) {
      state.PauseTiming();
      for (Subscriber* subscriber : subscribers) store.drain(*subscriber);
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PublishWithPatterns)
    ->ArgNames({"patterns", "subjects"})
    ->ArgsProduct({{0, 10000}, {1, kManySubjects}});

}  // namespace
}  // namespace gophermq

BENCHMARK_MAIN();
