// One client socket on a shard, as the connection table sees it: its I/O
// state, the bytes on their way out, and its clocks. What the bytes mean is
// the protocol's business above (see http_connection.h).
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>

#include "gophermq/net/outgoing_chain.h"

namespace gophermq {

// Answers on their way to the client: `output` fills while `sending` is on
// the wire. The answers in each are counted: a connection may owe only so
// many (see PipelineLimits in http_connection.h).
struct OutgoingBytes {
  OutgoingChain output;
  OutgoingChain sending;
  std::size_t sending_offset = 0;
  std::uint32_t answers_in_output = 0;
  std::uint32_t answers_sending = 0;
  // Answers still to come (a fetch answered on another shard, say), as
  // large as each may be (see HttpConnection::reserve_answer()).
  std::uint64_t reserved = 0;
  // What this connection owed when its shard last counted it (see
  // UnsentTotal).
  std::uint64_t counted = 0;

  // Bytes the kernel has not taken yet.
  std::size_t unsent() const { return output.size() + sending.size() - sending_offset; }
  // Answer bytes the connection owes its client: unsent, and still to come.
  std::uint64_t owed() const { return unsent() + reserved; }

  // A send of a chain of several buffers: the iovecs and message header the
  // kernel reads until it completes. Made on first need: most connections
  // never send more than one buffer at once.
  struct Gather {
    static constexpr std::size_t kMostBuffers = 64;  // a longer chain goes in several sends
    iovec vectors[kMostBuffers];
    msghdr message;
  };
  std::unique_ptr<Gather> gather;
};

// The answer bytes a shard's connections owe together (each one's
// OutgoingBytes::owed() as the table last counted it), against the shard's
// share of broker.max-unsent-bytes-total. Past that share a fetch carries
// little (see HttpConnection::answer_room()), so clients that do not read
// cannot make the broker hold more than a bounded amount of answers.
struct UnsentTotal {
  std::uint64_t owed = 0;
  std::uint64_t limit = UINT64_MAX;
};

class Connection {
 public:
  explicit Connection(std::uint32_t index) : index_(index) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  std::uint32_t index() const { return index_; }
  std::uint32_t generation() const { return generation_; }

  // Takes a freshly accepted socket (the object is reused across sockets).
  void open(int socket, std::uint64_t now_ms);
  // Forgets the socket once it is closed and nothing refers to it; bumps the
  // generation so late answers addressed to the old socket are recognised.
  void reset();

  OutgoingBytes out;

  int fd = -1;
  bool receive_armed = false;    // a receive is in the kernel
  bool hangup_watched = false;   // a poll for the client's FIN or reset is in the kernel
  bool send_in_flight = false;   // a send is in the kernel
  bool close_submitted = false;  // the socket's close is in the kernel
  bool queued_for_send = false;  // on the table's list of connections to flush
  // No more requests will be read: the peer closed, a request ended
  // keep-alive, or a protocol error. The socket closes once every answer is
  // sent.
  bool closing = false;
  // Answers can no longer reach the client (send failed, or it was cut off
  // for not reading): they are dropped instead of sent.
  bool discard_output = false;
  // The client closed its side, or the socket failed: nothing more to read.
  bool peer_closed = false;
  // Seen while its input was held (see ConnectionTable::watch_for_hangup()):
  // the client closed its side or reset, and the bytes it sent before that
  // may still wait in the kernel, unread.
  bool hangup_seen = false;
  // Over broker.max-connections: it gets the refusal, then a lingering
  // close; it is not counted as open.
  bool refused = false;
  // Our FIN is sent; input is read and dropped until the client closes.
  bool write_shut = false;
  // The protocol reads no more of this client's requests until it has taken
  // some of its answers: nothing is received meanwhile (back-pressure).
  bool input_held = false;
  std::uint64_t linger_started_ms = 0;
  // Receive buffer when the kernel has no provided-buffer rings.
  ByteBuffer receive_buffer;

  // --- Timing, on the shard's loop-turn clock (milliseconds) ---
  // Last bytes of a request in, or of an answer out (blank lines between
  // requests are not activity).
  std::uint64_t last_activity_ms = 0;
  // What the kernel held of our answers, not yet taken by the client, when
  // the sweep last looked: a client downloading slowly is neither idle nor
  // stalled.
  std::size_t kernel_unsent = 0;
  std::uint64_t request_started_ms = 0;  // the request now arriving; 0 when none
  // While a send waits on the client: when it last took bytes (or the wait
  // began). Only the client's reading moves it, never its sending.
  std::uint64_t last_send_progress_ms = 0;
  // A client taking none of this connection's output for this long is cut
  // off; 0: the table's write timeout. An event stream has no answers to
  // wait on but its own, so it gets the idle timeout when that is shorter.
  std::uint64_t write_timeout_ms = 0;

 private:
  std::uint32_t index_;
  std::uint32_t generation_ = 0;
};

}  // namespace gophermq
