#include "gophermq/store/sequence_slots.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace gophermq {

namespace {

constexpr std::uint64_t kFirstRingSlots = 8;
constexpr std::uint64_t kFirstDirectorySlots = 8;

template <typename T>
T* allocate(std::uint64_t count, std::size_t bytes_each) {
  void* block = std::malloc(count * bytes_each);
  if (block == nullptr) throw std::bad_alloc();
  return static_cast<T*>(block);
}

}  // namespace

template <bool kCounted>
std::size_t SequenceSlots<kCounted>::slots() const {
  if (directory_ == nullptr) return ring_ == nullptr ? 0 : mask_ + 1;
  return segments_ * kSegmentSlots;
}

template <bool kCounted>
typename SequenceSlots<kCounted>::Sequence SequenceSlots<kCounted>::segments_end() const {
  // The segments made are those from begin_'s to the last slot's: none when
  // the run is empty at a segment's start. (A run in segments has held a
  // segment's worth, so end_ is never 0 here.)
  return ((end_ - 1) >> kSegmentShift) + 1;
}

template <bool kCounted>
void SequenceSlots<kCounted>::make_room() {
  if (directory_ == nullptr) {
    if (mask_ + 1 < kSegmentSlots || ring_ == nullptr) return grow_ring();
    split_ring_into_segments();
    // end() may fall in the second segment, made by the split.
    if ((end_ & mask_) != 0) return;
  }
  // end() starts a segment: the directory must hold one more, from the
  // oldest slot's segment to it.
  const Sequence oldest = begin_ >> kSegmentShift;
  const Sequence newest = end_ >> kSegmentShift;
  if (newest - oldest > directory_mask_) grow_directory();
  directory_[newest & directory_mask_] = allocate<Message*>(kSegmentSlots, kSlotBytes);
  ++segments_;
}

template <bool kCounted>
void SequenceSlots<kCounted>::grow_ring() {
  const std::uint64_t capacity = ring_ == nullptr ? kFirstRingSlots : (mask_ + 1) * 2;
  Message** ring = allocate<Message*>(capacity, kSlotBytes);
  const std::uint64_t mask = capacity - 1;
  for (Sequence sequence = begin_; sequence != end_; ++sequence) {
    ring[sequence & mask] = message(sequence);
    if constexpr (kCounted) {
      reinterpret_cast<std::uint32_t*>(ring + capacity)[sequence & mask] = count(sequence);
    }
  }
  std::free(ring_);
  ring_ = ring;
  mask_ = mask;
}

template <bool kCounted>
void SequenceSlots<kCounted>::split_ring_into_segments() {
  // The full ring holds kSegmentSlots slots from begin_ on, each at its
  // sequence modulo kSegmentSlots: those in begin_'s aligned stretch are
  // where that stretch's segment wants them, so the ring becomes that
  // segment. Those past the stretch (at the ring's front, when begin_ is not
  // aligned) move to a segment of their own, at the same places.
  const std::uint64_t wrapped = begin_ & mask_;
  Message** next = wrapped == 0 ? nullptr : allocate<Message*>(kSegmentSlots, kSlotBytes);
  Message*** directory = nullptr;
  try {
    directory = allocate<Message**>(kFirstDirectorySlots, sizeof(Message**));
  } catch (const std::bad_alloc&) {
    std::free(next);
    throw;
  }
  directory_ = directory;
  directory_mask_ = static_cast<std::uint32_t>(kFirstDirectorySlots - 1);
  const Sequence oldest = begin_ >> kSegmentShift;
  directory_[oldest & directory_mask_] = ring_;
  segments_ = 1;
  if (next != nullptr) {
    std::memcpy(next, ring_, wrapped * sizeof(Message*));
    if constexpr (kCounted) {
      std::memcpy(next + kSegmentSlots, ring_ + kSegmentSlots, wrapped * sizeof(std::uint32_t));
    }
    directory_[(oldest + 1) & directory_mask_] = next;
    segments_ = 2;
  }
  ring_ = nullptr;
}

template <bool kCounted>
void SequenceSlots<kCounted>::grow_directory() {
  const std::uint64_t capacity = (std::uint64_t{directory_mask_} + 1) * 2;
  Message*** directory = allocate<Message**>(capacity, sizeof(Message**));
  const std::uint64_t mask = capacity - 1;
  for (Sequence segment = begin_ >> kSegmentShift; segment < segments_end(); ++segment) {
    directory[segment & mask] = directory_[segment & directory_mask_];
  }
  std::free(directory_);
  directory_ = directory;
  directory_mask_ = static_cast<std::uint32_t>(mask);
}

template <bool kCounted>
void SequenceSlots<kCounted>::free_passed_segment() {
  std::free(directory_[((begin_ - 1) >> kSegmentShift) & directory_mask_]);
  --segments_;
}

template <bool kCounted>
void SequenceSlots<kCounted>::free_slots() {
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

template class SequenceSlots<true>;
template class SequenceSlots<false>;

}  // namespace gophermq
