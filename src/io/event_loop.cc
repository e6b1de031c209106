#include "gophermq/io/event_loop.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "gophermq/log.h"

namespace gophermq {

EventLoop::~EventLoop() {
  if (buffer_ring_ != nullptr) {
    io_uring_unregister_buf_ring(&ring_, kBufferGroup);
    munmap(buffer_ring_, buffer_count_ * sizeof(io_uring_buf));
  }
  if (buffers_ != nullptr) munmap(buffers_, buffer_count_ * buffer_stride());
  if (ring_started_) io_uring_queue_exit(&ring_);
}

std::string EventLoop::start(unsigned entries, bool basic) {
  io_uring_params params{};
  // A completion queue four times the submission queue: one multishot
  // receive can post many completions per submission, and an overflowing CQ
  // costs the kernel a slow path.
  params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
  params.cq_entries = entries * 4;
  // SINGLE_ISSUER: only this thread submits, so the kernel skips its
  // submission locking. DEFER_TASKRUN: the kernel runs our completion work
  // only when we ask for events, in batches, instead of interrupting us with
  // task work at random points; this is the lowest-overhead mode for a
  // thread-per-core loop. Both need 6.1; older kernels get the plain ring.
  int rc = -EINVAL;
  if (!basic) {
    params.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    rc = io_uring_queue_init_params(entries, &ring_, &params);
  }
  if (rc == -EINVAL && !basic) {
    params = io_uring_params{};
    // COOP_TASKRUN (5.19) keeps the kernel from interrupting us with task
    // work, the next best thing to deferring it.
    params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN;
    params.cq_entries = entries * 4;
    rc = io_uring_queue_init_params(entries, &ring_, &params);
  }
  if (rc == -EINVAL) {
    params = io_uring_params{};
    params.flags = IORING_SETUP_CQSIZE;
    params.cq_entries = entries * 4;
    rc = io_uring_queue_init_params(entries, &ring_, &params);
  }
  if (rc < 0) {
    std::string reason = std::strerror(-rc);
    if (rc == -EPERM || rc == -ENOSYS) {
      reason +=
          " (io_uring is disabled: check sysctl kernel.io_uring_disabled, or the "
          "container's seccomp profile)";
    } else if (rc == -ENOMEM) {
      reason += " (raise the memlock limit, e.g. LimitMEMLOCK=infinity)";
    }
    return "io_uring_queue_init: " + reason;
  }
  ring_started_ = true;
  // A registered ring fd spares io_uring_enter a file-table lookup on every
  // call (5.18). liburing falls back to the plain fd where it fails; the plain
  // fd stays what other shards target with MSG_RING.
  if (!basic) io_uring_register_ring_fd(&ring_);
  features_.single_issuer = (params.flags & IORING_SETUP_SINGLE_ISSUER) != 0;
  features_.defer_taskrun = (params.flags & IORING_SETUP_DEFER_TASKRUN) != 0;

  // The probe lists opcodes, not flags. Multishot accept and provided-buffer
  // rings arrived in 5.19 together with IORING_OP_SOCKET; multishot receive in
  // 6.0 together with IORING_OP_SEND_ZC: those opcodes stand in for the flags.
  std::unique_ptr<io_uring_probe, void (*)(io_uring_probe*)> probe(io_uring_get_probe_ring(&ring_),
                                                                   io_uring_free_probe);
  if (probe && !basic) {
    features_.msg_ring = io_uring_opcode_supported(probe.get(), IORING_OP_MSG_RING);
    features_.multishot_accept = io_uring_opcode_supported(probe.get(), IORING_OP_SOCKET);
    features_.multishot_receive = io_uring_opcode_supported(probe.get(), IORING_OP_SEND_ZC);
  }
  return {};
}

io_uring_sqe* EventLoop::next_sqe() {
  if (backlog_.empty()) {
    if (io_uring_sq_space_left(&ring_) == 0) submit_ready();
    if (io_uring_sqe* sqe = io_uring_get_sqe(&ring_)) return sqe;
  }
  return &backlog_.emplace_back();  // zeroed, like a ring entry before its prep
}

std::pair<io_uring_sqe*, io_uring_sqe*> EventLoop::next_sqe_pair() {
  if (backlog_.empty()) {
    if (io_uring_sq_space_left(&ring_) < 2) submit_ready();
    if (io_uring_sq_space_left(&ring_) >= 2) {
      io_uring_sqe* first = io_uring_get_sqe(&ring_);
      return {first, io_uring_get_sqe(&ring_)};
    }
  }
  io_uring_sqe* first = &backlog_.emplace_back();
  return {first, &backlog_.emplace_back()};
}

int EventLoop::submit_ready() {
  int rc;
  do {
    rc = io_uring_submit(&ring_);
  } while (rc == -EINTR);
  // -EBUSY or -EAGAIN: the kernel keeps the entries in the queue and takes
  // them once completions are reaped; the loop turns without sleeping.
  if (rc < 0) ++refused_submits_;
  return rc;
}

void EventLoop::move_backlog_into_ring() {
  while (!backlog_.empty()) {
    unsigned chain = 1;
    while (chain < backlog_.size() &&
           (backlog_[chain - 1].flags & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK)) != 0) {
      ++chain;
    }
    if (io_uring_sq_space_left(&ring_) < chain) {
      if (submit_ready() < 0 || io_uring_sq_space_left(&ring_) < chain) return;
    }
    for (unsigned i = 0; i < chain; ++i) {
      *io_uring_get_sqe(&ring_) = backlog_.front();
      backlog_.pop_front();
    }
  }
}

void EventLoop::check_lost_completions() {
  // Only when the kernel cannot allocate room in its overflow list does it
  // drop a completion and count it here (-EBADR from a wait says the same).
  // The operation it belonged to is never reported: the slot or buffer it
  // held stays taken. Rare, and never silent.
  const unsigned dropped = IO_URING_READ_ONCE(*ring_.cq.koverflow);
  if (dropped == lost_completions_) return;
  log::error("io_uring dropped completions: their operations will never report",
             {{"dropped", std::to_string(dropped - lost_completions_)},
              {"total", std::to_string(dropped)}});
  lost_completions_ = dropped;
}

void EventLoop::submit_and_wait(bool may_sleep, unsigned timeout_us) {
  move_backlog_into_ring();
  // Entries still waiting: the kernel wants its completions reaped first.
  if (!backlog_.empty()) may_sleep = false;
  int rc;
  if (!may_sleep) {
    // Submits and, under DEFER_TASKRUN, runs pending completion work.
    rc = io_uring_submit_and_get_events(&ring_);
  } else {
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec timeout{};
    timeout.tv_sec = timeout_us / 1'000'000;
    timeout.tv_nsec = static_cast<long long>(timeout_us % 1'000'000) * 1000;
    rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &timeout, nullptr);
  }
  // -ETIME: nothing came in time. -EINTR: a signal; the loop just turns.
  if (rc == -EBUSY || rc == -EAGAIN) ++refused_submits_;
  check_lost_completions();
}

bool EventLoop::setup_provided_buffers(unsigned count, unsigned size) {
  // The ring of buffer descriptors must be page-aligned memory the kernel
  // maps; mmap gives that.
  std::size_t ring_bytes = count * sizeof(io_uring_buf);
  void* ring_memory =
      mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (ring_memory == MAP_FAILED) return false;
  auto* buffer_ring = static_cast<io_uring_buf_ring*>(ring_memory);
  io_uring_buf_ring_init(buffer_ring);
  io_uring_buf_reg registration{};
  registration.ring_addr = reinterpret_cast<std::uint64_t>(buffer_ring);
  registration.ring_entries = count;
  registration.bgid = kBufferGroup;
  if (io_uring_register_buf_ring(&ring_, &registration, 0) != 0) {
    munmap(ring_memory, ring_bytes);
    return false;
  }
  buffer_ring_ = buffer_ring;
  buffer_count_ = count;
  buffer_size_ = size;
  // Mapped, not allocated: a buffer's pages are faulted in only when the
  // kernel first receives into it, so an idle shard holds almost none of the
  // pool. Under load the kernel hands the buffers out in ring order and we
  // give each back at the tail, so the whole pool (count x size) becomes
  // resident and stays so: growth bounded by the pool, not a leak.
  void* buffer_memory = mmap(nullptr, count * buffer_stride(), PROT_READ | PROT_WRITE,
                             MAP_ANONYMOUS | MAP_PRIVATE | MAP_NORESERVE, -1, 0);
  if (buffer_memory == MAP_FAILED) return false;
  buffers_ = static_cast<char*>(buffer_memory);
  for (unsigned id = 0; id < count; ++id) {
    io_uring_buf_ring_add(buffer_ring_, provided_buffer(static_cast<std::uint16_t>(id)), size,
                          static_cast<unsigned short>(id), io_uring_buf_ring_mask(count),
                          static_cast<int>(id));
  }
  io_uring_buf_ring_advance(buffer_ring_, static_cast<int>(count));
  features_.provided_buffers = true;
  return true;
}

void EventLoop::recycle_provided_buffer(std::uint16_t id) {
  io_uring_buf_ring_add(buffer_ring_, provided_buffer(id), buffer_size_, id,
                        io_uring_buf_ring_mask(buffer_count_), 0);
  io_uring_buf_ring_advance(buffer_ring_, 1);
}

void EventLoop::prepare_wake(int target_ring_fd, std::uint32_t target_shard) {
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_msg_ring(sqe, target_ring_fd, 0, make_tag(Operation::wake, 0), 0);
  // Our own ring needs no word that the message went out, only that it
  // failed (the target's completion queue overflowing, say): then the shard
  // falls back to the target's eventfd.
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  io_uring_sqe_set_data64(sqe, make_tag(Operation::wake_sent, target_shard));
}

}  // namespace gophermq
