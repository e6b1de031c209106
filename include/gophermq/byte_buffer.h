// A growable byte buffer that always keeps kPadding readable bytes past its
// end, so simdjson can parse a body accumulated here in place (it reads up to
// SIMDJSON_PADDING bytes beyond the JSON text).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>
#include <utility>

namespace gophermq {

class ByteBuffer {
 public:
  static constexpr std::size_t kPadding = 64;  // == SIMDJSON_PADDING

  ByteBuffer() = default;
  ByteBuffer(const ByteBuffer&) = delete;
  ByteBuffer& operator=(const ByteBuffer&) = delete;
  ByteBuffer(ByteBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)),
        capacity_(std::exchange(other.capacity_, 0)) {}
  ByteBuffer& operator=(ByteBuffer&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(capacity_, other.capacity_);
    return *this;
  }
  ~ByteBuffer() { std::free(data_); }

  char* data() { return data_; }
  const char* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::string_view view() const { return {data_, size_}; }
  // Allocated bytes from data() on, padding included.
  std::size_t padded_capacity() const { return capacity_ + kPadding; }

  void clear() { size_ = 0; }

  // Returns room for `n` more bytes; commit() what was written.
  char* reserve_tail(std::size_t n) {
    if (size_ + n > capacity_) grow(size_ + n);
    return data_ + size_;
  }
  void commit(std::size_t n) { size_ += n; }

  void append(const char* bytes, std::size_t n) {
    if (n == 0) return;
    std::memcpy(reserve_tail(n), bytes, n);
    size_ += n;
  }
  void append(std::string_view s) { append(s.data(), s.size()); }
  void push_back(char c) {
    if (size_ == capacity_) grow(size_ + 1);
    data_[size_++] = c;
  }

  // Drops the first `n` bytes (a partially sent buffer keeps its tail).
  void discard_front(std::size_t n) {
    std::memmove(data_, data_ + n, size_ - n);
    size_ -= n;
  }

  // Returns memory to the allocator when a buffer grew far past its usual
  // size (one huge response must not pin megabytes on an idle connection).
  void shrink_if_above(std::size_t limit) {
    if (capacity_ > limit && size_ == 0) {
      std::free(std::exchange(data_, nullptr));
      capacity_ = 0;
    }
  }

 private:
  void grow(std::size_t needed) {
    std::size_t next = capacity_ < 256 ? 256 : capacity_ * 2;
    while (next < needed) next *= 2;
    void* grown = std::realloc(data_, next + kPadding);
    if (grown == nullptr) throw std::bad_alloc();
    data_ = static_cast<char*>(grown);
    capacity_ = next;
  }

  char* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;  // usable bytes, kPadding more are allocated
};

}  // namespace gophermq
