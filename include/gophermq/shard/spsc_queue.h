// A bounded single-producer single-consumer queue: the cross-shard channel,
// one per ordered pair of shards.
//
// The producer stages items and publishes them in a batch (one release store
// per loop turn, not one per item), as Seastar does: the consumer's cache line
// is touched once per batch. Each side caches the other's index and rereads
// the shared one only when its cached view says full (or empty).
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace gophermq {

template <typename T>
class SpscQueue {
  struct Slot {
    alignas(T) unsigned char storage[sizeof(T)];
  };

 public:
  // `capacity` is rounded up to a power of two.
  explicit SpscQueue(std::size_t capacity) {
    mask_ = rounded_capacity(capacity) - 1;
    // Default-initialised, not zero-filled: a slot is written only when an
    // item is first staged there.
    owned_slots_.reset(new Slot[mask_ + 1]);
    slots_ = owned_slots_.get();
  }
  // Slots in memory the caller owns and keeps until the queue is gone:
  // storage_bytes(capacity) bytes, aligned for T, `capacity` a power of two.
  // The cross-shard matrix carves every queue out of one lazily faulted
  // mapping, so a queue that never fills costs only the pages it used.
  SpscQueue(std::size_t capacity, void* storage) : slots_(static_cast<Slot*>(storage)) {
    mask_ = capacity - 1;
  }
  static constexpr std::size_t rounded_capacity(std::size_t capacity) {
    std::size_t rounded = 2;
    while (rounded < capacity) rounded *= 2;
    return rounded;
  }
  static constexpr std::size_t storage_bytes(std::size_t capacity) {
    return rounded_capacity(capacity) * sizeof(Slot);
  }
  SpscQueue(const SpscQueue&) = delete;
  SpscQueue& operator=(const SpscQueue&) = delete;
  ~SpscQueue() {
    publish();
    consume([](T&&) {});
  }

  std::size_t capacity() const { return mask_ + 1; }

  // Producer: puts an item in the next slot without showing it to the
  // consumer yet. False when the queue is full (back-pressure: the caller
  // keeps the item and retries later).
  bool try_stage(T&& item) {
    if (staged_tail_ - producer_.cached_head == capacity()) {
      producer_.cached_head = head_.load(std::memory_order_acquire);
      if (staged_tail_ - producer_.cached_head == capacity()) return false;
    }
    new (slots_[staged_tail_ & mask_].storage) T(std::move(item));
    ++staged_tail_;
    return true;
  }

  // Producer: shows every staged item to the consumer. Returns whether there
  // was anything new.
  bool publish() {
    if (staged_tail_ == published_tail_) return false;
    published_tail_ = staged_tail_;
    tail_.store(staged_tail_, std::memory_order_release);
    return true;
  }

  // Consumer: hands up to `max` published items to `take`, oldest first.
  // Taking fewer than `max` means the queue was found empty after the call
  // began: its cached view of the tail is refreshed whenever it runs out, so
  // an item published before the call is never left behind (the doorbell
  // protocol in cross_shard.h relies on it). A `take` that returns bool
  // stops it early by returning false (after taking that item).
  template <typename Take>
  std::size_t consume(Take&& take, std::size_t max = static_cast<std::size_t>(-1)) {
    std::size_t head = head_.load(std::memory_order_relaxed);
    std::size_t taken = 0;
    while (taken < max) {
      if (head == consumer_.cached_tail) {
        consumer_.cached_tail = tail_.load(std::memory_order_acquire);
        if (head == consumer_.cached_tail) break;
      }
      T* item = std::launder(reinterpret_cast<T*>(slots_[head & mask_].storage));
      bool more = true;
      if constexpr (std::is_same_v<std::invoke_result_t<Take&, T&&>, bool>) {
        more = take(std::move(*item));
      } else {
        take(std::move(*item));
      }
      item->~T();
      ++head;
      ++taken;
      if (!more) break;
    }
    if (taken != 0) head_.store(head, std::memory_order_release);
    return taken;
  }

  // Either side: whether published items are waiting (a fresh look).
  bool has_published_items() const {
    return tail_.load(std::memory_order_acquire) != head_.load(std::memory_order_acquire);
  }

 private:
  std::size_t mask_;
  std::unique_ptr<Slot[]> owned_slots_;  // empty when the caller owns the slots
  Slot* slots_;

  // Written by the consumer, read by the producer.
  alignas(64) std::atomic<std::size_t> head_{0};
  // Written by the producer, read by the consumer.
  alignas(64) std::atomic<std::size_t> tail_{0};
  // Producer-private.
  alignas(64) struct { std::size_t cached_head = 0; } producer_;
  std::size_t staged_tail_ = 0;
  std::size_t published_tail_ = 0;
  // Consumer-private.
  alignas(64) struct { std::size_t cached_tail = 0; } consumer_;
};

}  // namespace gophermq
