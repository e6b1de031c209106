#include "gophermq/store/subject_log.h"

#include <cstdlib>
#include <new>

namespace gophermq {

namespace {

// A log that once held a burst gives its ring back when it empties, so
// memory returns to its resting level once the burst is read.
constexpr std::uint64_t kKeepCapacity = 1024;

}  // namespace

SubjectLog::~SubjectLog() {
  for (Sequence sequence = begin_; sequence != end_; ++sequence) {
    messages_[sequence & mask_]->release();
  }
  std::free(messages_);
}

void SubjectLog::grow() {
  const std::uint64_t capacity = messages_ == nullptr ? 8 : (mask_ + 1) * 2;
  // One block: the message pointers, then the reader counts (the pointers
  // keep the counts aligned).
  void* block = std::malloc(capacity * (sizeof(Message*) + sizeof(std::uint32_t)));
  if (block == nullptr) throw std::bad_alloc();
  auto* messages = static_cast<Message**>(block);
  auto* readers_at = reinterpret_cast<std::uint32_t*>(messages + capacity);
  const std::uint64_t mask = capacity - 1;
  for (Sequence sequence = begin_; sequence != end_; ++sequence) {
    messages[sequence & mask] = messages_[sequence & mask_];
    readers_at[sequence & mask] = readers_at_[sequence & mask_];
  }
  std::free(messages_);
  messages_ = messages;
  readers_at_ = readers_at;
  mask_ = mask;
}

void SubjectLog::append(Message* message) {
  if (messages_ == nullptr || size() == mask_ + 1) grow();
  messages_[end_ & mask_] = message;
  // The readers that had taken everything now sit at this message.
  readers_at_[end_ & mask_] = static_cast<std::uint32_t>(readers_at_end_);
  readers_at_end_ = 0;
  ++end_;
  bytes_ += message->payload().size();
}

std::size_t SubjectLog::count_within(Sequence cursor, std::uint64_t max_bytes) const {
  // The slowest reader (often the only one) takes everything held when it
  // fits, without a look at each message.
  if (cursor == begin_ && bytes_ <= max_bytes) return size();
  std::uint64_t bytes = 0;
  for (Sequence sequence = cursor; sequence != end_; ++sequence) {
    bytes += messages_[sequence & mask_]->payload().size();
    if (bytes > max_bytes) {
      return sequence == cursor ? 1 : static_cast<std::size_t>(sequence - cursor);
    }
  }
  return static_cast<std::size_t>(end_ - cursor);
}

std::uint64_t SubjectLog::bytes_from(Sequence cursor) const {
  if (cursor == begin_) return bytes_;
  std::uint64_t bytes = 0;
  for (Sequence sequence = cursor; sequence != end_; ++sequence) {
    bytes += messages_[sequence & mask_]->payload().size();
  }
  return bytes;
}

std::uint64_t SubjectLog::advance(Sequence from, Sequence to) {
  if (from == to) return 0;
  --readers_at_[from & mask_];  // `from` is below end(): there was a message to take
  if (to == end_) {
    ++readers_at_end_;
  } else {
    ++readers_at_[to & mask_];
  }
  return from == begin_ ? trim() : 0;
}

std::uint64_t SubjectLog::remove_reader(Sequence cursor) {
  --readers_;
  if (cursor == end_) {
    --readers_at_end_;
    return 0;
  }
  --readers_at_[cursor & mask_];
  return cursor == begin_ ? trim() : 0;
}

std::uint64_t SubjectLog::trim() {
  // Every cursor is at or after begin_, so the oldest message is held only
  // while a cursor sits at it.
  std::uint64_t freed = 0;
  while (begin_ != end_ && readers_at_[begin_ & mask_] == 0) {
    Message* message = messages_[begin_ & mask_];
    const std::size_t size = message->payload().size();
    bytes_ -= size;
    if (message->release()) freed += size;
    ++begin_;
  }
  if (begin_ == end_ && mask_ + 1 > kKeepCapacity) {
    std::free(messages_);
    messages_ = nullptr;
    readers_at_ = nullptr;
    mask_ = 0;
  }
  return freed;
}

}  // namespace gophermq
