#include "gophermq/http/http_connection.h"

#include <algorithm>
#include <utility>

#include "gophermq/http/response_writer.h"

namespace gophermq {

namespace {

// Held input above this is freed once read, not kept for the next hold.
constexpr std::size_t kKeepHeldInputCapacity = 64 << 10;

}  // namespace

HttpConnection::HttpConnection(std::uint32_t index, const RequestLimits& limits,
                               const PipelineLimits& pipeline, const UnsentTotal& shard_unsent,
                               RequestHandler& handler, OutgoingBytes& out)
    : index_(index),
      pipeline_(pipeline),
      shard_unsent_(shard_unsent),
      handler_(handler),
      out_(out),
      parser_(limits, *this) {}

void HttpConnection::reset() {
  parser_.reset();
  slots_.clear();
  first_slot_sequence_ = 0;
  out_.reserved = 0;
  input_held_ = false;
  event_stream_ = false;
  held_input_.clear();
  held_input_.shrink_if_above(kKeepHeldInputCapacity);
}

ParseStatus HttpConnection::feed(const char* data, std::size_t size, std::size_t padded_capacity) {
  if (input_held_) {
    // Sent before the socket's receive was stopped: kept, in order.
    held_input_.append(data, size);
    return ParseStatus::ok;
  }
  const ParseStatus status = read(data, size, padded_capacity);
  if (input_held_) {
    held_input_.append(parser_.held_at(),
                       static_cast<std::size_t>(data + size - parser_.held_at()));
  }
  return status;
}

ParseStatus HttpConnection::resume() {
  if (!input_held_ || event_stream_ || bytes_owed() > pipeline_.max_unsent_bytes / 2 ||
      answers_owed() > pipeline_.max_answers_owed / 2) {
    return ParseStatus::ok;
  }
  input_held_ = false;
  parser_.resume();
  if (held_input_.empty()) return ParseStatus::ok;
  const ParseStatus status =
      read(held_input_.data(), held_input_.size(), held_input_.padded_capacity());
  if (input_held_) {
    // Held again, further on: keep only what is still unread.
    held_input_.discard_front(static_cast<std::size_t>(parser_.held_at() - held_input_.data()));
  } else {
    held_input_.clear();
    held_input_.shrink_if_above(kKeepHeldInputCapacity);
  }
  return status;
}

ParseStatus HttpConnection::read(const char* data, std::size_t size, std::size_t padded_capacity) {
  const ParseStatus status = parser_.feed(data, size, padded_capacity);
  if (status != ParseStatus::held) return status;
  input_held_ = true;
  return ParseStatus::ok;
}

void HttpConnection::on_request(const HttpRequest& request) {
  ++requests_read_;
  handler_.handle(*this, request);
  // Checked after each request, so however many a client pipelines into one
  // receive, what a connection owes stays near its bounds.
  if (answers_owed() >= pipeline_.max_answers_owed || bytes_owed() > pipeline_.max_unsent_bytes) {
    parser_.hold();
  }
}

void HttpConnection::on_continue_expected() {
  // Interim: it goes out in order, but the request's answer is still owed.
  if (slots_.empty()) {
    out_.output.tail().append(kContinueResponse);
    return;
  }
  slots_.push_back(Slot{true, {}, true});
  slots_.back().bytes.append(kContinueResponse);
}

ByteBuffer& HttpConnection::answer_now() {
  if (slots_.empty()) {
    ++out_.answers_in_output;
    return out_.output.tail();
  }
  slots_.push_back(Slot{true, {}});
  return slots_.back().bytes;
}

std::uint64_t HttpConnection::reserve_answer(std::uint64_t reserved_bytes) {
  slots_.push_back(Slot{});
  slots_.back().reserved_bytes = reserved_bytes;
  out_.reserved += reserved_bytes;
  return first_slot_sequence_ + slots_.size() - 1;
}

void HttpConnection::release_reservation(std::uint64_t sequence) {
  Slot& slot = slots_[sequence - first_slot_sequence_];
  out_.reserved -= slot.reserved_bytes;
  slot.reserved_bytes = 0;
}

std::uint64_t HttpConnection::answer_room() const {
  // The shard's connections as last counted, with what this one added since.
  const std::uint64_t shard_owed = shard_unsent_.owed - out_.counted + bytes_owed();
  const std::uint64_t room =
      shard_owed < shard_unsent_.limit ? shard_unsent_.limit - shard_owed : 0;
  return std::max(room, kLeastAnswerRoom);
}

ByteBuffer& HttpConnection::reserved_buffer(std::uint64_t sequence) {
  // The oldest outstanding answer may be written straight to the output.
  if (sequence == first_slot_sequence_) return out_.output.tail();
  return slots_[sequence - first_slot_sequence_].bytes;
}

void HttpConnection::finish_answer(std::uint64_t sequence) {
  release_reservation(sequence);
  if (sequence != first_slot_sequence_) {
    slots_[sequence - first_slot_sequence_].finished = true;
    return;
  }
  ++out_.answers_in_output;  // written straight to the output
  slots_.pop_front();
  ++first_slot_sequence_;
  release_finished_slots();
}

void HttpConnection::hand_over(std::uint64_t sequence, ByteBuffer&& whole_answer) {
  release_reservation(sequence);
  if (sequence != first_slot_sequence_) {
    Slot& slot = slots_[sequence - first_slot_sequence_];
    slot.bytes = std::move(whole_answer);
    slot.finished = true;
    return;
  }
  emit(whole_answer);
  ++out_.answers_in_output;
  slots_.pop_front();
  ++first_slot_sequence_;
  release_finished_slots();
}

void HttpConnection::begin_event_stream(std::uint64_t sequence) {
  event_stream_ = true;
  slots_[sequence - first_slot_sequence_].streaming = true;
  parser_.hold();
}

void HttpConnection::emit(ByteBuffer& answer) { out_.output.append_whole(std::move(answer)); }

void HttpConnection::release_finished_slots() {
  while (!slots_.empty() && slots_.front().finished) {
    emit(slots_.front().bytes);
    if (!slots_.front().interim) ++out_.answers_in_output;
    slots_.pop_front();
    ++first_slot_sequence_;
  }
  // An event stream now first: what was written of it meanwhile goes out,
  // and the rest is written straight to the output.
  if (!slots_.empty() && slots_.front().streaming && !slots_.front().bytes.empty()) {
    emit(slots_.front().bytes);
    slots_.front().bytes = ByteBuffer();
  }
}

}  // namespace gophermq
