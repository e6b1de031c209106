// allocate_resident: a block's whole pages are in memory when it is handed
// out, so filling it takes no page fault per page.
#include "gophermq/allocator.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <vector>

namespace gophermq {
namespace {

// Whether this kernel takes MADV_POPULATE_WRITE (5.14 on).
bool kernel_populates() {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  void* probe = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  const bool populates = madvise(probe, page, MADV_POPULATE_WRITE) == 0;
  munmap(probe, page);
  return populates;
}

// How many of the whole pages within [block, block + bytes) are resident.
std::size_t resident_pages(const void* block, std::size_t bytes, std::size_t& whole_pages) {
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto start = reinterpret_cast<std::uintptr_t>(block);
  const std::uintptr_t first = (start + page - 1) & ~(page - 1);
  const std::uintptr_t end = (start + bytes) & ~(page - 1);
  whole_pages = (end - first) / page;
  std::vector<unsigned char> in_core(whole_pages);
  EXPECT_EQ(mincore(reinterpret_cast<void*>(first), end - first, in_core.data()), 0) << errno;
  std::size_t resident = 0;
  for (unsigned char flags : in_core) resident += flags & 1;
  return resident;
}

TEST(AllocateResident, EveryWholePageOfTheBlockIsInMemory) {
  if (!kernel_populates()) GTEST_SKIP() << "this kernel has no MADV_POPULATE_WRITE";
  // Large enough that the allocator maps it fresh: none of it was touched.
  constexpr std::size_t kBytes = 16 << 20;
  void* block = allocate_resident(kBytes);
  std::size_t whole_pages = 0;
  EXPECT_EQ(resident_pages(block, kBytes, whole_pages), whole_pages);
  EXPECT_GT(whole_pages, 4000U);
  std::free(block);
}

TEST(AllocateResident, AFreshMappingIsNotResidentUntilWritten) {
  // The control for the test above: mincore tells untouched pages apart.
  constexpr std::size_t kBytes = 16 << 20;
  void* block = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(block, MAP_FAILED);
  std::size_t whole_pages = 0;
  EXPECT_EQ(resident_pages(block, kBytes, whole_pages), 0U);
  munmap(block, kBytes);
}

TEST(AllocateResident, TheBlockHoldsWhatIsWrittenToIt) {
  constexpr std::size_t kBytes = 3 * 4096 + 100;
  auto* block = static_cast<unsigned char*>(allocate_resident(kBytes));
  for (std::size_t i = 0; i < kBytes; ++i) block[i] = static_cast<unsigned char>(i);
  for (std::size_t i = 0; i < kBytes; ++i) ASSERT_EQ(block[i], static_cast<unsigned char>(i));
  std::free(block);
}

}  // namespace
}  // namespace gophermq
