#include "gophermq/cross_shard.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

namespace gophermq {

CrossShardMatrix::CrossShardMatrix(unsigned shards, std::size_t queue_capacity)
    : shards_(shards),
      queues_(std::size_t{shards} * shards),
      mailboxes_(std::make_unique<ShardMailbox[]>(shards)) {
  for (unsigned from = 0; from < shards; ++from) {
    for (unsigned to = 0; to < shards; ++to) {
      if (from != to) {
        queues_[from * shards + to] = std::make_unique<SpscQueue<ShardCall>>(queue_capacity);
      }
    }
  }
  for (unsigned shard = 0; shard < shards; ++shard) {
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    mailboxes_[shard].event_fd = fd;
  }
}

CrossShardMatrix::~CrossShardMatrix() {
  for (unsigned shard = 0; shard < shards_; ++shard) close(mailboxes_[shard].event_fd);
}

void CrossShardMatrix::wake_by_event_fd(unsigned shard) {
  std::uint64_t one = 1;
  // EAGAIN means the counter is saturated: the shard is being woken anyway.
  [[maybe_unused]] ssize_t written = write(mailboxes_[shard].event_fd, &one, sizeof one);
}

}  // namespace gophermq
