// The clock requests are timed with.
#pragma once

#include <time.h>

#include <cstdint>

namespace gophermq {

// CLOCK_MONOTONIC through the vDSO: no syscall.
inline std::uint64_t monotonic_ns() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000 +
         static_cast<std::uint64_t>(now.tv_nsec);
}

}  // namespace gophermq
