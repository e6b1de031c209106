// The process allocator: which one is linked, and handing the memory it has
// freed back to the operating system.
#pragma once

#include <string>

namespace gophermq {

// "mimalloc-<version>", or "libc" when the broker is built without mimalloc
// (the sanitizer builds), for the startup log.
std::string allocator_name();

// Gives the pages this thread's heap has freed, and those other threads have
// freed into it, back to the operating system. mimalloc keeps freed pages
// for reuse and decommits them only when the thread next allocates near
// them; a shard that goes quiet after a backlog is fetched would hold its
// peak for good (1M messages of 200 bytes: 233 MB resident before the
// fetch, 217 MB after; 10 MB with this). Walks the thread's pages: call it
// on idle turns, not per request. Without mimalloc it is glibc's
// malloc_trim, and under a sanitizer (whose allocator stands in) nothing.
void return_freed_memory();

}  // namespace gophermq
