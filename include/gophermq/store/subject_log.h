// A subject's log: every message published to it, stored once, read by each
// of its plain subscribers through a cursor of its own. A publish costs the
// same however many subscribers read it, and a message is freed when the
// slowest cursor passes it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gophermq/store/message.h"

namespace gophermq {

class SubjectLog {
 public:
  // Positions in the log: the n-th message appended has sequence n - 1. A
  // cursor is the sequence of the next message its reader has not taken;
  // end() when it has taken all of them.
  using Sequence = std::uint64_t;

  SubjectLog() = default;
  SubjectLog(const SubjectLog&) = delete;
  SubjectLog& operator=(const SubjectLog&) = delete;
  ~SubjectLog();

  Sequence begin() const { return begin_; }
  Sequence end() const { return end_; }
  // Messages held: those some reader has not passed yet.
  std::size_t size() const { return static_cast<std::size_t>(end_ - begin_); }
  std::size_t readers() const { return readers_; }

  // A new reader, whose cursor starts at end(): it reads only what is
  // appended after it came.
  Sequence add_reader() {
    ++readers_;
    ++readers_at_end_;
    return end_;
  }
  // The reader at `cursor` leaves; returns the payload bytes of the
  // messages that no one holds any more, now freed.
  std::uint64_t remove_reader(Sequence cursor);
  // The reader at `from` has taken the messages up to `to` (at most end()).
  // Returns the payload bytes freed, as remove_reader does.
  std::uint64_t advance(Sequence from, Sequence to);

  // Appends a message for every reader: the log holds one of its holders
  // (and releases it when the last cursor passes). Needs a reader.
  void append(Message* message);

  // How many of the messages from `cursor` on fit in `max_bytes` of
  // payload: at least one when there is one, so a message larger than the
  // bound still goes, alone.
  std::size_t count_within(Sequence cursor, std::uint64_t max_bytes) const;
  // Payload bytes of the messages from `cursor` on (a scan unless `cursor`
  // is the oldest: for /api/info, not for fetches).
  std::uint64_t bytes_from(Sequence cursor) const;
  // Visits `count` messages from `cursor` on, oldest first.
  template <typename Visit>
  void for_each(Sequence cursor, std::size_t count, Visit&& visit) const {
    for (Sequence sequence = cursor; sequence != cursor + count; ++sequence) {
      visit(*message_at(sequence));
    }
  }

  // Message slots allocated now, held or not: for tests of what a log
  // gives back.
  std::size_t slots() const;

  // A log longer than this many messages lives in segments of this many.
  static constexpr unsigned kSegmentShift = 10;
  static constexpr std::uint64_t kSegmentSlots = std::uint64_t{1} << kSegmentShift;

 private:
  // Where `sequence`'s slot lives, and the slot itself. A segment is one
  // block: the message pointers, then beside them (kept aligned by the
  // pointers) the count of cursors sitting at each message.
  Message** segment_of(Sequence sequence) const {
    return directory_ == nullptr ? ring_
                                 : directory_[(sequence >> kSegmentShift) & directory_mask_];
  }
  Message*& message_at(Sequence sequence) const { return segment_of(sequence)[sequence & mask_]; }
  std::uint32_t& readers_at(Sequence sequence) const {
    Message** segment = segment_of(sequence);
    return reinterpret_cast<std::uint32_t*>(segment + mask_ + 1)[sequence & mask_];
  }

  // Frees the oldest messages while no cursor is at or behind them; returns
  // their payload bytes that were freed.
  std::uint64_t trim();
  // Makes a slot for end(), which has none.
  void make_room();
  void grow_ring();
  void split_ring_into_segments();
  void grow_directory();
  // Frees every slot (the log holds nothing).
  void free_slots();
  // One past the newest segment made (in segments).
  Sequence segments_end() const;

  // A short log is one ring (ring_), indexed by the sequence modulo its
  // power-of-two capacity, which doubles while it fills, up to
  // kSegmentSlots. A longer one is a ring of segments (directory_) of
  // kSegmentSlots each, one per aligned stretch of sequences, added as the
  // log grows and freed as the oldest cursor leaves them: appending never
  // copies what is held, however long the log (a doubling ring would copy
  // the whole backlog each time it fills, a pause of many milliseconds
  // behind a burst of millions).
  Message** ring_ = nullptr;
  Message*** directory_ = nullptr;
  std::uint32_t directory_mask_ = 0;  // the directory's capacity - 1
  std::uint32_t segments_ = 0;        // segments allocated, in segments
  std::uint64_t mask_ = 0;            // a segment's (or the ring's) capacity - 1
  Sequence begin_ = 0;
  Sequence end_ = 0;
  std::uint64_t bytes_ = 0;  // payload of the messages held
  std::size_t readers_ = 0;
  std::size_t readers_at_end_ = 0;  // cursors at end(): they have taken everything
};

}  // namespace gophermq
