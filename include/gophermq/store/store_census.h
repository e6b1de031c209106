// Broker-wide counts of what every shard's store holds, against their bounds
// (broker.max-subscribers, broker.max-subjects). Touched when a subscriber or
// a subject comes or goes, never per publish or fetch.
#pragma once

#include <cstdint>

#include "gophermq/store/shared_limit.h"

namespace gophermq {

struct StoreCensus {
  StoreCensus(std::uint64_t max_subscribers, std::uint64_t max_subjects)
      : subscribers(max_subscribers), subjects(max_subjects) {}

  SharedLimit subscribers;
  SharedLimit subjects;
};

}  // namespace gophermq
