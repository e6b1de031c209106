// The process allocator: which one is linked, blocks made resident before
// they are filled, and handing the memory it has freed back to the
// operating system.
#pragma once

#include <cstddef>
#include <string>

namespace gophermq {

// "mimalloc-<version>", or "libc" when the broker is built without mimalloc
// (the sanitizer builds), for the startup log.
std::string allocator_name();

// malloc for a block the caller is about to fill (a growing backlog's
// message chunks and slot segments): its whole pages are made resident by
// one madvise(MADV_POPULATE_WRITE) rather than by a page fault each as they
// are first written. A fault is a trap into the kernel per 4 KiB page, and
// the trap costs more than the page; under a hypervisor, several times more
// (pipelined publishes into a backlog on this project's VM: 11 faults per
// 1,000, 8% of the broker's CPU). A block with fewer than two whole pages is
// left to fault, as is one on a kernel without the advice (before 5.14).
// Throws std::bad_alloc when there is no memory; free it with std::free.
void* allocate_resident(std::size_t bytes);

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
