// Bytes on their way to one socket, as a chain of buffers.
//
// Answers are written into the chain's last buffer. A whole answer made
// elsewhere (a fetch framed on the shard that owns its subject, possibly
// megabytes) joins the chain as a buffer of its own instead of being copied
// in behind what is already there, and the send gathers the chain: one
// iovec per buffer. Almost always the chain is a single buffer, sent with a
// plain send.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <string>
#include <vector>

#include "gophermq/byte_buffer.h"

namespace gophermq {

class OutgoingChain {
 public:
  // A whole answer smaller than this is copied into the last buffer: cheaper
  // than an iovec of its own.
  static constexpr std::size_t kOwnBufferFrom = 4096;

  // The buffer the next answer is appended to.
  ByteBuffer& tail();
  // `whole` joins the chain as it is: moved, never copied (unless it is
  // small), and nothing is ever appended to it afterwards, so its bytes are
  // not copied by a growth either.
  void append_whole(ByteBuffer&& whole);

  bool empty() const { return size() == 0; }
  // Bytes in every buffer. O(1): the back-pressure check asks per request.
  std::size_t size() const { return count_ == 0 ? 0 : closed_bytes_ + buffers_[count_ - 1].size(); }
  std::size_t buffer_count() const { return count_; }
  const ByteBuffer& buffer(std::size_t index) const { return buffers_[index]; }

  // Empties the chain. The first buffer's memory is kept for the next
  // answers; the buffers a chain grew (whole answers) are freed.
  void clear();
  // Frees the first buffer's memory too, when empty and above `limit`.
  void shrink_if_above(std::size_t limit);
  void swap(OutgoingChain& other) noexcept;

  // The chain's bytes in one string: for tests and tools, never the send path.
  std::string flatten() const;

  // The bytes from `offset` on as at most `max` iovecs; returns how many.
  std::size_t gather(std::size_t offset, iovec* vectors, std::size_t max) const;

 private:
  std::vector<ByteBuffer> buffers_;  // the first count_ are the chain
  std::size_t count_ = 0;
  bool tail_open_ = false;  // the last buffer may take more answers
  // Bytes in the chain's buffers but its last: only the last one grows.
  std::size_t closed_bytes_ = 0;
};

}  // namespace gophermq
