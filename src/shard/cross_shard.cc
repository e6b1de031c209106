#include "gophermq/shard/cross_shard.h"

#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <system_error>

namespace gophermq {

std::size_t CrossShardMatrix::queue_capacity_for(unsigned shards) {
  const std::size_t peers = shards > 1 ? shards - 1 : 1;
  std::size_t capacity = kMaxQueueCapacity;
  while (capacity > kMinQueueCapacity && capacity * peers > kOutgoingSlotsPerShard) capacity /= 2;
  return capacity;
}

CrossShardMatrix::CrossShardMatrix(unsigned shards, std::size_t queue_capacity)
    : shards_(shards),
      queue_capacity_(queue_capacity != 0 ? queue_capacity : queue_capacity_for(shards)),
      queues_(std::size_t{shards} * shards),
      mailboxes_(std::make_unique<ShardMailbox[]>(shards)) {
  queue_capacity_ = SpscQueue<ShardCall>::rounded_capacity(queue_capacity_);
  const std::size_t queue_bytes = SpscQueue<ShardCall>::storage_bytes(queue_capacity_);
  slot_memory_bytes_ = std::max<std::size_t>(1, std::size_t{shards} * (shards - 1) * queue_bytes);
  slot_memory_ = mmap(nullptr, slot_memory_bytes_, PROT_READ | PROT_WRITE,
                      MAP_ANONYMOUS | MAP_PRIVATE | MAP_NORESERVE, -1, 0);
  if (slot_memory_ == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap");
  char* next_slots = static_cast<char*>(slot_memory_);
  for (unsigned from = 0; from < shards; ++from) {
    for (unsigned to = 0; to < shards; ++to) {
      if (from == to) continue;
      queues_[from * shards + to] =
          std::make_unique<SpscQueue<ShardCall>>(queue_capacity_, next_slots);
      next_slots += queue_bytes;
    }
  }
  for (unsigned shard = 0; shard < shards; ++shard) {
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    mailboxes_[shard].event_fd = fd;
    mailboxes_[shard].doorbell = std::make_unique<DoorbellWord[]>(doorbell_words());
  }
}

CrossShardMatrix::~CrossShardMatrix() {
  for (unsigned shard = 0; shard < shards_; ++shard) close(mailboxes_[shard].event_fd);
  queues_.clear();  // destroys what is left in the slots before they are unmapped
  munmap(slot_memory_, slot_memory_bytes_);
}

void CrossShardMatrix::wake_by_event_fd(unsigned shard) {
  std::uint64_t one = 1;
  // EAGAIN means the counter is saturated: the shard is being woken anyway.
  [[maybe_unused]] ssize_t written = write(mailboxes_[shard].event_fd, &one, sizeof one);
}

}  // namespace gophermq
