#include "gophermq/allocator.h"

#include "gophermq/sanitizers.h"

#ifdef GOPHERMQ_WITH_MIMALLOC
#include <mimalloc.h>

#include <mutex>
#else
#include <malloc.h>
#endif

namespace gophermq {

std::string allocator_name() {
#ifdef GOPHERMQ_WITH_MIMALLOC
  return "mimalloc-" + std::to_string(mi_version());
#else
  return "libc";
#endif
}

void return_freed_memory() {
#ifdef GOPHERMQ_WITH_MIMALLOC
  // The collect frees the pages whose blocks other threads freed, and
  // mimalloc decommits a freed span decommit_delay (25 ms) later, but only
  // when something touches its segment again: in a quiet shard, nothing
  // does. So for the collect the delay is 0, and those spans go at once.
  // The option is the process's: one thread at a time sets it, and puts
  // back the value it had before anyone did.
  static std::mutex mutex;
  const std::lock_guard lock(mutex);
  static const long configured_delay = mi_option_get(mi_option_decommit_delay);
  mi_option_set(mi_option_decommit_delay, 0);
  // Not forced: a forced collect also takes over the segments of threads
  // that ended, and shards live as long as the broker.
  mi_collect(false);
  mi_option_set(mi_option_decommit_delay, configured_delay);
#else
  // A sanitizer's allocator stands in for glibc's, whose malloc_trim would
  // then walk arenas nobody set up (and crashed, two shards at once).
  if constexpr (!kAddressSanitizer && !kThreadSanitizer) malloc_trim(0);
#endif
}

}  // namespace gophermq
