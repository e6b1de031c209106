#include "gophermq/allocator.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <new>

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

void* allocate_resident(std::size_t bytes) {
  void* block = std::malloc(bytes);
  if (block == nullptr) throw std::bad_alloc();
  static const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto start = reinterpret_cast<std::uintptr_t>(block);
  const std::uintptr_t first = (start + page - 1) & ~(page - 1);
  const std::uintptr_t end = (start + bytes) & ~(page - 1);
  // Best effort: where the advice is refused, the pages fault in as before.
  if (end > first && end - first >= 2 * page) {
    madvise(reinterpret_cast<void*>(first), end - first, MADV_POPULATE_WRITE);
  }
  return block;
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
