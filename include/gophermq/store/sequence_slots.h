// The slots of a run of sequence numbers, [begin(), end()): a pointer to a
// Message in each and, when kCounted, a 32-bit count beside it. A subject's
// log and a subscriber's own queue keep their messages here.
//
// A short run is one ring, indexed by the sequence modulo its power-of-two
// capacity, which doubles while it fills, up to kSegmentSlots. A longer one
// is a ring of segments of kSegmentSlots each, one per aligned stretch of
// sequences, added as the run grows and freed as begin() leaves them: adding
// a slot never copies the ones held, however long the run. (A doubling ring
// copies the whole backlog each time it fills: a pause of many milliseconds
// behind a burst of millions.)
#pragma once

#include <cstddef>
#include <cstdint>

#include "gophermq/store/message.h"

namespace gophermq {

template <bool kCounted>
class SequenceSlots {
 public:
  using Sequence = std::uint64_t;

  static constexpr unsigned kSegmentShift = 10;
  static constexpr std::uint64_t kSegmentSlots = std::uint64_t{1} << kSegmentShift;

  SequenceSlots() = default;
  SequenceSlots(const SequenceSlots&) = delete;
  SequenceSlots& operator=(const SequenceSlots&) = delete;
  // Frees the slots; what the messages in them hold is their owner's to
  // release first.
  ~SequenceSlots() { free_slots(); }

  Sequence begin() const { return begin_; }
  Sequence end() const { return end_; }
  std::size_t size() const { return static_cast<std::size_t>(end_ - begin_); }

  // The slot of a sequence in [begin(), end()).
  Message*& message(Sequence sequence) const { return segment_of(sequence)[sequence & mask_]; }
  std::uint32_t& count(Sequence sequence) const requires kCounted {
    Message** segment = segment_of(sequence);
    return reinterpret_cast<std::uint32_t*>(segment + mask_ + 1)[sequence & mask_];
  }

  // A slot at end(), which then moves past it; returns the slot's sequence.
  Sequence push_back() {
    const bool has_room =
        directory_ == nullptr ? ring_ != nullptr && size() <= mask_ : (end_ & mask_) != 0;
    if (!has_room) make_room();
    return end_++;
  }
  // begin() moves past its slot. Emptied, a run in segments gives them all
  // back; a ring, no larger than a segment, is kept for what comes next.
  void pop_front() {
    ++begin_;
    if (directory_ != nullptr && (begin_ & mask_) == 0) free_passed_segment();
    if (begin_ == end_ && directory_ != nullptr) free_slots();
  }

  // Slots allocated now, used or not: for tests of what a run gives back.
  std::size_t slots() const;

 private:
  static constexpr std::size_t kSlotBytes =
      sizeof(Message*) + (kCounted ? sizeof(std::uint32_t) : 0);

  // A segment (or the ring) is one block: the message pointers, then, when
  // counted, the counts (which the pointers keep aligned).
  Message** segment_of(Sequence sequence) const {
    return directory_ == nullptr ? ring_
                                 : directory_[(sequence >> kSegmentShift) & directory_mask_];
  }
  void make_room();
  void grow_ring();
  void split_ring_into_segments();
  void grow_directory();
  void free_passed_segment();
  // Frees every slot: none is in use.
  void free_slots();
  // One past the newest segment made (in segments).
  Sequence segments_end() const;

  Message** ring_ = nullptr;
  Message*** directory_ = nullptr;
  std::uint32_t directory_mask_ = 0;  // the directory's capacity - 1
  std::uint32_t segments_ = 0;        // segments allocated, in segments
  std::uint64_t mask_ = 0;            // a segment's (or the ring's) capacity - 1
  Sequence begin_ = 0;
  Sequence end_ = 0;
};

extern template class SequenceSlots<true>;
extern template class SequenceSlots<false>;

}  // namespace gophermq
