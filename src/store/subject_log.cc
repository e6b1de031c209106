#include "gophermq/store/subject_log.h"

namespace gophermq {

SubjectLog::~SubjectLog() {
  for (Sequence sequence = begin(); sequence != end(); ++sequence) {
    slots_.message(sequence)->release();
  }
}

void SubjectLog::append(Message* message) {
  const Sequence sequence = slots_.push_back();
  slots_.message(sequence) = message;
  // The readers that had taken everything now sit at this message.
  slots_.count(sequence) = static_cast<std::uint32_t>(readers_at_end_);
  readers_at_end_ = 0;
  bytes_ += message->payload().size();
}

std::size_t SubjectLog::count_within(Sequence cursor, std::uint64_t max_bytes) const {
  // The slowest reader (often the only one) takes everything held when it
  // fits, without a look at each message.
  if (cursor == begin() && bytes_ <= max_bytes) return size();
  std::uint64_t bytes = 0;
  for (Sequence sequence = cursor; sequence != end(); ++sequence) {
    bytes += slots_.message(sequence)->payload().size();
    if (bytes > max_bytes) {
      return sequence == cursor ? 1 : static_cast<std::size_t>(sequence - cursor);
    }
  }
  return static_cast<std::size_t>(end() - cursor);
}

std::uint64_t SubjectLog::bytes_from(Sequence cursor) const {
  if (cursor == begin()) return bytes_;
  std::uint64_t bytes = 0;
  for (Sequence sequence = cursor; sequence != end(); ++sequence) {
    bytes += slots_.message(sequence)->payload().size();
  }
  return bytes;
}

std::uint64_t SubjectLog::advance(Sequence from, Sequence to) {
  if (from == to) return 0;
  --slots_.count(from);  // `from` is below end(): there was a message to take
  if (to == end()) {
    ++readers_at_end_;
  } else {
    ++slots_.count(to);
  }
  return from == begin() ? trim() : 0;
}

std::uint64_t SubjectLog::remove_reader(Sequence cursor) {
  --readers_;
  if (cursor == end()) {
    --readers_at_end_;
    return 0;
  }
  --slots_.count(cursor);
  return cursor == begin() ? trim() : 0;
}

std::uint64_t SubjectLog::trim() {
  // Every cursor is at or after begin(), so the oldest message is held only
  // while a cursor sits at it.
  std::uint64_t freed = 0;
  while (size() != 0 && slots_.count(begin()) == 0) {
    Message* message = slots_.message(begin());
    const std::size_t payload = message->payload().size();
    bytes_ -= payload;
    if (message->release()) freed += payload;
    slots_.pop_front();
  }
  return freed;
}

}  // namespace gophermq
