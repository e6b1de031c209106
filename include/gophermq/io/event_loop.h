// The io_uring event loop of one shard. It knows nothing about HTTP or
// subjects: it sets the ring up with the best features the kernel has, hands
// out submission entries, waits, and passes each completion to the shard.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>

namespace gophermq {

// What a completion is about, packed with the object it concerns into the
// 64-bit user_data: [operation:8][generation:24][object index:32]. The
// generation tells a late completion for a reused connection slot apart.
enum class Operation : std::uint8_t {
  accept = 1,   // index: unused
  receive,      // index: connection
  hangup,       // index: connection; a poll for the client's FIN or reset while nothing is received
  send,         // index: connection
  cancel,       // index: connection; only failures are reported, and ignored
  close,        // index: connection
  wake,         // another shard queued calls for us (its MSG_RING)
  stop_signal,  // the read of our mailbox's eventfd: a stop, or a fallback wake-up
  wake_sent,    // index: the shard we woke; only a failed MSG_RING is reported
};

struct Completion {
  Operation operation;
  std::uint32_t generation;  // low 24 bits of the object's generation
  std::uint32_t index;
  std::int32_t result;
  std::uint32_t flags;
};

constexpr std::uint32_t kGenerationMask = (1u << 24) - 1;

constexpr std::uint64_t make_tag(Operation operation, std::uint32_t index,
                                 std::uint32_t generation = 0) {
  return static_cast<std::uint64_t>(operation) << 56 |
         static_cast<std::uint64_t>(generation & kGenerationMask) << 32 | index;
}

class EventLoop {
 public:
  // What the kernel gave us; logged at start-up so an operator sees fallbacks.
  struct Features {
    bool single_issuer = false;      // IORING_SETUP_SINGLE_ISSUER
    bool defer_taskrun = false;      // IORING_SETUP_DEFER_TASKRUN
    bool multishot_accept = false;   // one accept SQE for every connection (5.19)
    bool provided_buffers = false;   // registered buffer ring (5.19)
    bool multishot_receive = false;  // one receive SQE per connection (6.0)
    bool msg_ring = false;           // IORING_OP_MSG_RING wake-ups (5.18)
  };

  EventLoop() = default;
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  ~EventLoop();

  // Creates the ring. Must run on the thread that will use it (SINGLE_ISSUER
  // binds the ring to its creator). `basic` asks for no optional feature at
  // all. Returns an error line, empty on success.
  std::string start(unsigned entries, bool basic);
  const Features& features() const { return features_; }
  int ring_fd() const { return ring_.ring_fd; }

  // A free submission entry. When the ring's queue is full it submits what
  // is there first; when the kernel takes nothing for now (its completion
  // queue is overflowing, -EBUSY), the entry waits in a backlog, in order,
  // and goes in at the next submit_and_wait(), after this turn's completions
  // were reaped. So this never fails, and entries keep their order.
  io_uring_sqe* next_sqe();
  // Two entries that go to the kernel in the same submit: a linked pair
  // (IOSQE_IO_LINK or IO_HARDLINK on the first), which a submit between the
  // two would cut.
  std::pair<io_uring_sqe*, io_uring_sqe*> next_sqe_pair();

  // Submits everything prepared and, when `may_sleep`, waits for at least one
  // completion or `timeout_us`. Under DEFER_TASKRUN this is also what lets the
  // kernel run our completion work. It does not sleep while entries wait in
  // the backlog: the caller must reap first.
  void submit_and_wait(bool may_sleep, unsigned timeout_us);

  // What went wrong below us, for the metrics: completions the kernel had to
  // drop (it could not even queue them in its overflow list), and submits it
  // refused for a while (a full completion queue, or no memory).
  std::uint64_t lost_completions() const { return lost_completions_; }
  std::uint64_t refused_submits() const { return refused_submits_; }
  std::size_t backlog_size() const { return backlog_.size(); }

  // Hands every ready completion to `handle(const Completion&)`.
  template <typename Handle>
  unsigned for_each_completion(Handle&& handle) {
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      std::uint64_t tag = io_uring_cqe_get_data64(cqe);
      handle(Completion{static_cast<Operation>(tag >> 56),
                        static_cast<std::uint32_t>(tag >> 32) & kGenerationMask,
                        static_cast<std::uint32_t>(tag), cqe->res, cqe->flags});
      ++seen;
    }
    io_uring_cq_advance(&ring_, seen);
    return seen;
  }

  // Provided receive buffers: the kernel picks a free one for each receive,
  // so idle connections hold no buffer. Every buffer is followed by
  // kBufferPadding bytes it never writes, so simdjson may parse in place.
  static constexpr std::size_t kBufferPadding = 64;
  bool setup_provided_buffers(unsigned count, unsigned size);
  unsigned provided_buffer_size() const { return buffer_size_; }
  char* provided_buffer(std::uint16_t id) { return buffers_ + std::size_t{id} * buffer_stride(); }
  // Gives a buffer back to the kernel once its bytes are consumed.
  void recycle_provided_buffer(std::uint16_t id);
  static constexpr std::uint16_t kBufferGroup = 0;

  // Prepares a wake-up of another shard's ring (MSG_RING), whose completion
  // arrives there tagged Operation::wake. Needs features().msg_ring. Should
  // it fail, our ring reports Operation::wake_sent with `target_shard`.
  void prepare_wake(int target_ring_fd, std::uint32_t target_shard);

 private:
  std::size_t buffer_stride() const { return buffer_size_ + kBufferPadding; }
  // io_uring_submit, retried on EINTR; a refusal is counted. Returns what
  // the kernel returned.
  int submit_ready();
  // Moves backlog entries into the ring while they fit, a linked chain whole.
  void move_backlog_into_ring();
  // Reads the kernel's count of dropped completions; logs what is new.
  void check_lost_completions();

  io_uring ring_{};
  bool ring_started_ = false;
  Features features_;
  io_uring_buf_ring* buffer_ring_ = nullptr;
  unsigned buffer_count_ = 0;
  unsigned buffer_size_ = 0;
  char* buffers_ = nullptr;

  std::deque<io_uring_sqe> backlog_;  // entries the ring had no room for (stable addresses)
  std::uint64_t lost_completions_ = 0;
  std::uint64_t refused_submits_ = 0;
};

}  // namespace gophermq
