// A subject's log: every message published to it, stored once, read by each
// of its plain subscribers through a cursor of its own. A publish costs the
// same however many subscribers read it, and a message is freed when the
// slowest cursor passes it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gophermq/store/message.h"
#include "gophermq/store/sequence_slots.h"

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

  Sequence begin() const { return slots_.begin(); }
  Sequence end() const { return slots_.end(); }
  // Messages held: those some reader has not passed yet.
  std::size_t size() const { return slots_.size(); }
  std::size_t readers() const { return readers_; }

  // A new reader, whose cursor starts at end(): it reads only what is
  // appended after it came.
  Sequence add_reader() {
    ++readers_;
    ++readers_at_end_;
    return end();
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
      visit(*slots_.message(sequence));
    }
  }

  // Message slots allocated now, held or not: for tests of what a log
  // gives back.
  std::size_t slots() const { return slots_.slots(); }

 private:
  // Frees the oldest messages while no cursor is at or behind them; returns
  // their payload bytes that were freed.
  std::uint64_t trim();

  // Each message held, and beside it the number of cursors sitting at it.
  SequenceSlots<true> slots_;
  std::uint64_t bytes_ = 0;  // payload of the messages held
  std::size_t readers_ = 0;
  std::size_t readers_at_end_ = 0;  // cursors at end(): they have taken everything
};

}  // namespace gophermq
