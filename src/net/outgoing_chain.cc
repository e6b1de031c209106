#include "gophermq/net/outgoing_chain.h"

#include <utility>

namespace gophermq {

ByteBuffer& OutgoingChain::tail() {
  if (count_ == 0 || !tail_open_) {
    if (count_ != 0) closed_bytes_ += buffers_[count_ - 1].size();
    if (buffers_.size() == count_) buffers_.emplace_back();
    ++count_;
    tail_open_ = true;
  }
  return buffers_[count_ - 1];
}

void OutgoingChain::append_whole(ByteBuffer&& whole) {
  if (whole.size() < kOwnBufferFrom) {
    tail().append(whole.view());
    return;
  }
  if (count_ == 1 && buffers_[0].empty()) count_ = 0;  // an empty first buffer: replace it
  if (count_ != 0) closed_bytes_ += buffers_[count_ - 1].size();
  if (buffers_.size() == count_) buffers_.emplace_back();
  std::swap(buffers_[count_], whole);
  ++count_;
  tail_open_ = false;
}

void OutgoingChain::clear() {
  if (!buffers_.empty()) buffers_[0].clear();
  // Whole answers are usually large: give their memory back now.
  if (buffers_.size() > 1) buffers_.resize(1);
  count_ = 0;
  tail_open_ = false;
  closed_bytes_ = 0;
}

void OutgoingChain::shrink_if_above(std::size_t limit) {
  if (!buffers_.empty()) buffers_[0].shrink_if_above(limit);
}

void OutgoingChain::swap(OutgoingChain& other) noexcept {
  std::swap(buffers_, other.buffers_);
  std::swap(count_, other.count_);
  std::swap(tail_open_, other.tail_open_);
  std::swap(closed_bytes_, other.closed_bytes_);
}

std::string OutgoingChain::flatten() const {
  std::string bytes;
  for (std::size_t i = 0; i < count_; ++i) bytes += buffers_[i].view();
  return bytes;
}

std::size_t OutgoingChain::gather(std::size_t offset, iovec* vectors, std::size_t max) const {
  std::size_t filled = 0;
  for (std::size_t i = 0; i < count_ && filled < max; ++i) {
    const ByteBuffer& buffer = buffers_[i];
    if (offset >= buffer.size()) {
      offset -= buffer.size();
      continue;
    }
    vectors[filled].iov_base = const_cast<char*>(buffer.data() + offset);
    vectors[filled].iov_len = buffer.size() - offset;
    ++filled;
    offset = 0;
  }
  return filled;
}

}  // namespace gophermq
