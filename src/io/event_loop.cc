#include "gophermq/event_loop.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

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
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

void EventLoop::submit_and_wait(bool may_sleep, unsigned timeout_us) {
  if (!may_sleep) {
    // Submits and, under DEFER_TASKRUN, runs pending completion work.
    io_uring_submit_and_get_events(&ring_);
    return;
  }
  io_uring_cqe* cqe = nullptr;
  __kernel_timespec timeout{};
  timeout.tv_sec = timeout_us / 1'000'000;
  timeout.tv_nsec = static_cast<long long>(timeout_us % 1'000'000) * 1000;
  io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &timeout, nullptr);
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

void EventLoop::prepare_wake(int target_ring_fd) {
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_msg_ring(sqe, target_ring_fd, 0, make_tag(Operation::wake, 0), 0);
  // Our own ring needs no word that the message went out.
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  io_uring_sqe_set_data64(sqe, make_tag(Operation::wake, 1));
}

}  // namespace gophermq
