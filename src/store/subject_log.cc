#include "gophermq/store/subject_log.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace gophermq {

namespace {

constexpr std::uint64_t kFirstRingSlots = 8;
constexpr std::uint64_t kFirstDirectorySlots = 8;

// A segment (or ring) of `capacity` slots: the message pointers, then the
// reader counts.
Message** allocate_segment(std::uint64_t capacity) {
  void* block = std::malloc(capacity * (sizeof(Message*) + sizeof(std::uint32_t)));
  if (block == nullptr) throw std::bad_alloc();
  return static_cast<Message**>(block);
}

}  // namespace

SubjectLog::~SubjectLog() {
  for (Sequence sequence = begin_; sequence != end_; ++sequence) message_at(sequence)->release();
  free_slots();
}

std::size_t SubjectLog::slots() const {
  if (directory_ == nullptr) return ring_ == nullptr ? 0 : mask_ + 1;
  return segments_ * kSegmentSlots;
}

SubjectLog::Sequence SubjectLog::segments_end() const {
  // The segments made are those from begin_'s to the last message's: none
  // when the log is empty at a segment's start. (A log in segments has held
  // a segment's worth, so end_ is never 0 here.)
  return ((end_ - 1) >> kSegmentShift) + 1;
}

void SubjectLog::append(Message* message) {
  // A slot for end() is missing when the ring is full (or was never made),
  // or when end() starts a segment.
  const bool has_room =
      directory_ == nullptr ? ring_ != nullptr && size() <= mask_ : (end_ & mask_) != 0;
  if (!has_room) make_room();
  message_at(end_) = message;
  // The readers that had taken everything now sit at this message.
  readers_at(end_) = static_cast<std::uint32_t>(readers_at_end_);
  readers_at_end_ = 0;
  ++end_;
  bytes_ += message->payload().size();
}

void SubjectLog::make_room() {
  if (directory_ == nullptr) {
    if (mask_ + 1 < kSegmentSlots || ring_ == nullptr) return grow_ring();
    split_ring_into_segments();
    // end() may fall in the second segment, made by the split.
    if ((end_ & mask_) != 0) return;
  }
  // end() starts a segment: the directory must hold one more, from the
  // oldest message's segment to it.
  const Sequence oldest = begin_ >> kSegmentShift;
  const Sequence newest = end_ >> kSegmentShift;
  if (newest - oldest > directory_mask_) grow_directory();
  directory_[newest & directory_mask_] = allocate_segment(kSegmentSlots);
  ++segments_;
}

void SubjectLog::grow_ring() {
  const std::uint64_t capacity = ring_ == nullptr ? kFirstRingSlots : (mask_ + 1) * 2;
  Message** ring = allocate_segment(capacity);
  auto* readers = reinterpret_cast<std::uint32_t*>(ring + capacity);
  const std::uint64_t mask = capacity - 1;
  for (Sequence sequence = begin_; sequence != end_; ++sequence) {
    ring[sequence & mask] = message_at(sequence);
    readers[sequence & mask] = readers_at(sequence);
  }
  std::free(ring_);
  ring_ = ring;
  mask_ = mask;
}

void SubjectLog::split_ring_into_segments() {
  // The full ring holds kSegmentSlots messages from begin_ on, each at its
  // sequence modulo kSegmentSlots: those in begin_'s aligned stretch are
  // where that stretch's segment wants them, so the ring becomes that
  // segment. Those past the stretch (at the ring's front, when begin_ is not
  // aligned) move to a segment of their own, at the same slots.
  const std::uint64_t wrapped = begin_ & mask_;
  Message** next = wrapped == 0 ? nullptr : allocate_segment(kSegmentSlots);
  auto** directory = static_cast<Message***>(std::malloc(kFirstDirectorySlots * sizeof(Message**)));
  if (directory == nullptr) {
    std::free(next);
    throw std::bad_alloc();
  }
  directory_ = directory;
  directory_mask_ = static_cast<std::uint32_t>(kFirstDirectorySlots - 1);
  const Sequence oldest = begin_ >> kSegmentShift;
  directory_[oldest & directory_mask_] = ring_;
  segments_ = 1;
  if (next != nullptr) {
    std::memcpy(next, ring_, wrapped * sizeof(Message*));
    std::memcpy(next + kSegmentSlots, ring_ + kSegmentSlots, wrapped * sizeof(std::uint32_t));
    directory_[(oldest + 1) & directory_mask_] = next;
    segments_ = 2;
  }
  ring_ = nullptr;
}

void SubjectLog::grow_directory() {
  const std::uint64_t capacity = (std::uint64_t{directory_mask_} + 1) * 2;
  auto** directory = static_cast<Message***>(std::malloc(capacity * sizeof(Message**)));
  if (directory == nullptr) throw std::bad_alloc();
  const std::uint64_t mask = capacity - 1;
  for (Sequence segment = begin_ >> kSegmentShift; segment < segments_end(); ++segment) {
    directory[segment & mask] = directory_[segment & directory_mask_];
  }
  std::free(directory_);
  directory_ = directory;
  directory_mask_ = static_cast<std::uint32_t>(mask);
}

void SubjectLog::free_slots() {
  if (directory_ == nullptr) {
    std::free(ring_);
  } else {
    for (Sequence segment = begin_ >> kSegmentShift; segment < segments_end(); ++segment) {
      std::free(directory_[segment & directory_mask_]);
    }
  }
  std::free(directory_);
  ring_ = nullptr;
  directory_ = nullptr;
  directory_mask_ = 0;
  segments_ = 0;
  mask_ = 0;
}

std::size_t SubjectLog::count_within(Sequence cursor, std::uint64_t max_bytes) const {
  // The slowest reader (often the only one) takes everything held when it
  // fits, without a look at each message.
  if (cursor == begin_ && bytes_ <= max_bytes) return size();
  std::uint64_t bytes = 0;
  for (Sequence sequence = cursor; sequence != end_; ++sequence) {
    bytes += message_at(sequence)->payload().size();
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
    bytes += message_at(sequence)->payload().size();
  }
  return bytes;
}

std::uint64_t SubjectLog::advance(Sequence from, Sequence to) {
  if (from == to) return 0;
  --readers_at(from);  // `from` is below end(): there was a message to take
  if (to == end_) {
    ++readers_at_end_;
  } else {
    ++readers_at(to);
  }
  return from == begin_ ? trim() : 0;
}

std::uint64_t SubjectLog::remove_reader(Sequence cursor) {
  --readers_;
  if (cursor == end_) {
    --readers_at_end_;
    return 0;
  }
  --readers_at(cursor);
  return cursor == begin_ ? trim() : 0;
}

std::uint64_t SubjectLog::trim() {
  // Every cursor is at or after begin_, so the oldest message is held only
  // while a cursor sits at it.
  std::uint64_t freed = 0;
  while (begin_ != end_ && readers_at(begin_) == 0) {
    Message* message = message_at(begin_);
    const std::size_t size = message->payload().size();
    bytes_ -= size;
    if (message->release()) freed += size;
    ++begin_;
    // Past a segment's last message: no one needs that segment any more.
    if (directory_ != nullptr && (begin_ & mask_) == 0) {
      std::free(directory_[((begin_ - 1) >> kSegmentShift) & directory_mask_]);
      --segments_;
    }
  }
  // An emptied log in segments gives them all back; a ring, no larger than a
  // segment, is kept for the next message.
  if (begin_ == end_ && directory_ != nullptr) free_slots();
  return freed;
}

}  // namespace gophermq
