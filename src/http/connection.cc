#include "gophermq/connection.h"

#include "gophermq/response_writer.h"

namespace gophermq {

Connection::Connection(std::uint32_t index, const RequestLimits& limits, RequestHandler& handler)
    : index_(index), handler_(handler), parser_(limits, *this) {}

void Connection::open(int socket) {
  fd = socket;
  closing = false;
  parser_.reset();
}

void Connection::reset() {
  fd = -1;
  ++generation_;
  receive_armed = send_in_flight = close_submitted = queued_for_send = false;
  closing = discard_output = peer_closed = write_shut = false;
  linger_started_ms = 0;
  last_activity_ms = request_started_ms = 0;
  output.clear();
  sending.clear();
  sending_offset = 0;
  answers_in_output = answers_sending = 0;
  // An idle slot keeps no large buffers.
  output.shrink_if_above(64 << 10);
  sending.shrink_if_above(64 << 10);
  receive_buffer.shrink_if_above(64 << 10);
  slots_.clear();
  first_slot_sequence_ = 0;
}

void Connection::on_request(const HttpRequest& request) {
  ++requests_read_;
  if (!request.keep_alive) closing = true;
  handler_.handle(*this, request);
}

void Connection::on_continue_expected() { response_buffer().append(kContinueResponse); }

ByteBuffer& Connection::response_buffer() {
  if (slots_.empty()) {
    ++answers_in_output;
    return output;
  }
  slots_.push_back(Slot{true, {}});
  return slots_.back().bytes;
}

std::uint64_t Connection::reserve_response() {
  slots_.push_back(Slot{});
  return first_slot_sequence_ + slots_.size() - 1;
}

ByteBuffer& Connection::reserved_buffer(std::uint64_t sequence) {
  // The oldest outstanding answer may be written straight to the output.
  if (sequence == first_slot_sequence_) return output;
  return slots_[sequence - first_slot_sequence_].bytes;
}

void Connection::finish_response(std::uint64_t sequence) {
  if (sequence != first_slot_sequence_) {
    slots_[sequence - first_slot_sequence_].finished = true;
    return;
  }
  ++answers_in_output;  // written straight to the output
  slots_.pop_front();
  ++first_slot_sequence_;
  release_finished_slots();
}

void Connection::release_finished_slots() {
  while (!slots_.empty() && slots_.front().finished) {
    output.append(slots_.front().bytes.view());
    ++answers_in_output;
    slots_.pop_front();
    ++first_slot_sequence_;
  }
}

}  // namespace gophermq
