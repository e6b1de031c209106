// What the batch-publish generators share (batch_load for the broker,
// nats_load for NATS, the reference): numbered messages streamed from a few
// publisher connections to one subscriber connection, paced or flat out,
// each checked to arrive exactly once and in order per publisher, and the
// server's CPU time per message over the run.
//
// The engine knows nothing of the protocol: a generator says how a batch of
// messages is written and how the bytes that come back are read, and the
// engine paces the batches, drives the sockets (one thread, epoll) and
// decides when the run is over.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "load_client.h"

namespace gophermq::load {

// Message `number` (from 1) of publisher `publisher`, exactly `bytes` long:
// "<publisher>-<number>" with the number zero-padded, e.g. "2-00000000000417"
// for 16 bytes. Appended to `out`; fail()s when `bytes` is too short for it.
void append_numbered_payload(std::string& out, unsigned publisher, std::uint64_t number,
                             unsigned bytes);

// Checks that the messages a subscriber takes arrive exactly once and, per
// publisher, in order: the next one of each publisher must be its last + 1.
class DeliveryCheck {
 public:
  explicit DeliveryCheck(unsigned publishers) : last_(publishers, 0) {}
  // fail()s on a payload that is not the next message of its publisher.
  void take(std::string_view payload);
  std::uint64_t delivered() const { return delivered_; }

 private:
  std::vector<std::uint64_t> last_;
  std::uint64_t delivered_ = 0;
};

struct StreamOptions {
  std::uint16_t port = 0;
  long server_pid = 0;       // whose CPU time is measured
  unsigned publishers = 4;   // connections
  unsigned batch = 1;        // messages written as one unit (a request, or one PUB for NATS)
  std::uint64_t rate = 0;    // messages a second; 0: flat out, bounded by `window`
  std::uint64_t window = 0;  // most messages published and not yet delivered
  unsigned seconds = 5;      // of publishing
  unsigned payload_bytes = 16;
};

// Reads the flags from argv[1] on: the server's (--port, --pid), the ones
// every stream takes (--publishers, --rate, --window, --seconds,
// --payload-bytes) into `options`, and every other one to `other(flag,
// value)`, which fail()s on one it does not know. fail()s without --port and
// --pid; a flat-out run (rate 0) without a window gets one of 20000.
void parse_stream_flags(
    int argc, char** argv, StreamOptions& options,
    const std::function<void(std::string_view flag, std::string_view value)>& other);

// The protocol side of a run.
struct StreamProtocol {
  // Writes, on a fresh connection (blocking, before the run), what opens it:
  // the subscriber's (connection 0) subscribe or first fetch, a publisher's
  // handshake. May read what it needs (a NATS PONG) with the bounded
  // blocking helpers of load_client.h. Publishers are connections 1 ...
  std::function<void(int fd, unsigned connection)> open;
  // Appends to `out` publisher p's batch of `count` messages, numbered
  // `first` ... `first + count - 1` (append_numbered_payload).
  std::function<void(unsigned publisher, std::uint64_t first, unsigned count, std::string& out)>
      publish;
  // The subscriber's first request once the run starts, if it asks (a fetch).
  std::function<void(std::string& out)> start_subscriber;
  // Consumes the whole protocol units at the front of `connection.received`
  // (answers, MSG lines), appending any reply or next request to
  // `connection.out`; fail()s on an unexpected one.
  std::function<void(StreamConnection& connection)> on_subscriber_bytes;
  std::function<void(unsigned publisher, StreamConnection& connection)> on_publisher_bytes;
  // Messages the subscriber has taken so far.
  std::function<std::uint64_t()> delivered;
  // Publish requests still waiting for their answer (0 for NATS, whose
  // PUB has none).
  std::function<std::uint64_t()> unanswered;
};

struct StreamRun {
  std::uint64_t published = 0;
  std::uint64_t batches = 0;
  double cpu_seconds = 0;  // the server's, from the first publish to the last delivery
  double seconds = 0;
  double cpu_us_per_message() const;
  double messages_per_second() const;
};

// Publishes for options.seconds, then waits until every message has been
// delivered (and every publish answered); fail()s if that takes over 20 s.
StreamRun run_stream(const StreamOptions& options, const StreamProtocol& protocol);

}  // namespace gophermq::load
