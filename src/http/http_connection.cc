#include "gophermq/http/http_connection.h"

#include <utility>

#include "gophermq/http/response_writer.h"

namespace gophermq {

HttpConnection::HttpConnection(std::uint32_t index, const RequestLimits& limits,
                               RequestHandler& handler, OutgoingBytes& out)
    : index_(index), handler_(handler), out_(out), parser_(limits, *this) {}

void HttpConnection::reset() {
  parser_.reset();
  slots_.clear();
  first_slot_sequence_ = 0;
}

void HttpConnection::on_request(const HttpRequest& request) {
  ++requests_read_;
  handler_.handle(*this, request);
}

void HttpConnection::on_continue_expected() { answer_now().append(kContinueResponse); }

ByteBuffer& HttpConnection::answer_now() {
  if (slots_.empty()) {
    ++out_.answers_in_output;
    return out_.output.tail();
  }
  slots_.push_back(Slot{true, {}});
  return slots_.back().bytes;
}

std::uint64_t HttpConnection::reserve_answer() {
  slots_.push_back(Slot{});
  return first_slot_sequence_ + slots_.size() - 1;
}

ByteBuffer& HttpConnection::reserved_buffer(std::uint64_t sequence) {
  // The oldest outstanding answer may be written straight to the output.
  if (sequence == first_slot_sequence_) return out_.output.tail();
  return slots_[sequence - first_slot_sequence_].bytes;
}

void HttpConnection::finish_answer(std::uint64_t sequence) {
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

void HttpConnection::emit(ByteBuffer& answer) { out_.output.append_whole(std::move(answer)); }

void HttpConnection::release_finished_slots() {
  while (!slots_.empty() && slots_.front().finished) {
    emit(slots_.front().bytes);
    ++out_.answers_in_output;
    slots_.pop_front();
    ++first_slot_sequence_;
  }
}

}  // namespace gophermq
