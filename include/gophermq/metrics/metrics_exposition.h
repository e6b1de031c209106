// Rendering the shards' counters as Prometheus text (format 0.0.4).
#pragma once

#include <string>
#include <vector>

#include "gophermq/metrics/metrics.h"
#include "gophermq/store/pending_budget.h"
#include "gophermq/store/subject_store.h"

namespace gophermq {

// What a scrape reads: each shard's counters and store gauges (written by
// their shards as it reads them), and the broker-wide budget.
struct MetricsSources {
  std::vector<const ShardMetrics*> shards;
  std::vector<const SubjectStore::Gauges*> stores;
  const PendingBudget* budget = nullptr;
};

// Appends the whole exposition: the broker's families summed over shards,
// then the standard process_* families.
void render_metrics(const MetricsSources& sources, std::string& out);

}  // namespace gophermq
