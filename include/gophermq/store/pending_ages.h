// A shard's stored messages counted by the second they were stored in,
// oldest first, for gophermq_oldest_pending_age_seconds. The oldest message
// held is then the first second with a count, known at once. Before this,
// each scrape had every shard walk all of its subjects for their oldest
// message: 65 ms with 500,000 subjects on 2 shards, a stall of every
// connection on them, every scrape.
//
// A message is counted when its subject's arena stores it and uncounted when
// the arena frees it (message_arena.cc), whoever held it last: its log, a
// subscriber's own queue, an ack queue. Messages mostly go in the order they
// came, so an uncount almost always lands on the first second.
#pragma once

#include <cstdint>
#include <deque>

#include "gophermq/metrics/metrics.h"

namespace gophermq {

class PendingAges {
 public:
  // The oldest second is kept in `oldest_stored_s` (UINT64_MAX while nothing
  // is held) for the monitoring thread to read at any time.
  explicit PendingAges(ShardCounter& oldest_stored_s);
  PendingAges(const PendingAges&) = delete;
  PendingAges& operator=(const PendingAges&) = delete;

  // A message stored in `second`. Per publish: inline, and nearly always
  // the newest second (the shard's clock does not go back).
  void stored(std::uint32_t second) {
    if (newest_ != nullptr && newest_->second == second && newest_->messages != 0) {
      ++newest_->messages;
      return;
    }
    count_in(second);
  }
  // A message stored in `second` was freed. Per message fetched: inline,
  // and nearly always the oldest second.
  void freed(std::uint32_t second) {
    if (seconds_.empty() || seconds_.front().second != second) return uncount_later(second);
    if (--seconds_.front().messages == 0) pop_empty_front();
  }

  // Seconds with a count kept, those whose messages are all gone but which
  // sit behind an older one included: for tests of the bound on them.
  std::size_t seconds_kept() const { return seconds_.size(); }

 private:
  struct Second {
    std::uint32_t second;
    std::uint32_t messages;  // stored in it and not yet freed
  };
  // stored() past its common case: a new second, or one that had emptied.
  void count_in(std::uint32_t second);
  // freed() of a message from a later second than the oldest (or,
  // wrongly, of one never counted).
  void uncount_later(std::uint32_t second);
  // The first second kept that is `second` or later.
  std::deque<Second>::iterator at_or_after(std::uint32_t second);
  // Drops the seconds at the front with no message left and publishes the
  // new oldest.
  void pop_empty_front();

  // By second, increasing. One whose messages are all gone stays until it
  // reaches the front, or until such seconds are half of the whole (then
  // they go in one pass): at most twice as many seconds as have messages.
  std::deque<Second> seconds_;
  std::size_t empty_seconds_ = 0;  // of those in seconds_, behind the front
  // seconds_.back(), or null when it is empty. Its end keeps references
  // valid as the deque grows and shrinks at its ends; only an insert or
  // erase in the middle (count_in, uncount_later) moves it.
  Second* newest_ = nullptr;
  ShardCounter& oldest_stored_s_;
};

}  // namespace gophermq
