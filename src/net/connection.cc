#include "gophermq/net/connection.h"

namespace gophermq {

void Connection::open(int socket, std::uint64_t now_ms) {
  fd = socket;
  closing = false;
  last_activity_ms = now_ms;
}

void Connection::reset() {
  fd = -1;
  ++generation_;
  receive_armed = hangup_watched = send_in_flight = close_submitted = queued_for_send = false;
  closing = discard_output = peer_closed = hangup_seen = refused = write_shut = input_held = false;
  linger_started_ms = 0;
  last_activity_ms = request_started_ms = last_send_progress_ms = write_timeout_ms = 0;
  kernel_unsent = 0;
  out.output.clear();
  out.sending.clear();
  out.gather.reset();
  out.sending_offset = 0;
  out.answers_in_output = out.answers_sending = 0;
  out.reserved = out.counted = 0;
  // An idle slot keeps no large buffers.
  out.output.shrink_if_above(64 << 10);
  out.sending.shrink_if_above(64 << 10);
  receive_buffer.shrink_if_above(64 << 10);
}

}  // namespace gophermq
