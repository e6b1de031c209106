#include "gophermq/store/pending_ages.h"

#include <algorithm>
#include <cassert>

namespace gophermq {

namespace {

constexpr std::uint64_t kNoneHeld = UINT64_MAX;

}  // namespace

PendingAges::PendingAges(ShardCounter& oldest_stored_s) : oldest_stored_s_(oldest_stored_s) {
  oldest_stored_s_.set(kNoneHeld);
}

void PendingAges::count_in(std::uint32_t second) {
  if (seconds_.empty() || newest_->second < second) {
    seconds_.push_back({second, 1});
    newest_ = &seconds_.back();
    if (seconds_.size() == 1) oldest_stored_s_.set(second);
    return;
  }
  // A second that had emptied behind the front, or an earlier second than
  // the newest (a clock that did step back).
  auto at = at_or_after(second);
  if (at != seconds_.end() && at->second == second) {
    if (at->messages++ == 0) --empty_seconds_;
    return;
  }
  seconds_.insert(at, {second, 1});
  newest_ = &seconds_.back();
  oldest_stored_s_.set(seconds_.front().second);
}

void PendingAges::uncount_later(std::uint32_t second) {
  auto at = at_or_after(second);
  // Every message freed was counted in its second: a miss is a bug, which
  // must not write past the deque in a release build either.
  assert(at != seconds_.end() && at->second == second && at->messages > 0);
  if (at == seconds_.end() || at->second != second || at->messages == 0) return;
  if (--at->messages != 0) return;
  // Behind the front: left in place (the deque's middle is slow to erase),
  // and swept out once such seconds are half of them all.
  if (++empty_seconds_ * 2 > seconds_.size()) {
    std::erase_if(seconds_, [](const Second& kept) { return kept.messages == 0; });
    empty_seconds_ = 0;
    newest_ = &seconds_.back();  // the front has messages: it stays
  }
}

std::deque<PendingAges::Second>::iterator PendingAges::at_or_after(std::uint32_t second) {
  return std::lower_bound(seconds_.begin(), seconds_.end(), second,
                          [](const Second& kept, std::uint32_t s) { return kept.second < s; });
}

void PendingAges::pop_empty_front() {
  while (!seconds_.empty() && seconds_.front().messages == 0) {
    seconds_.pop_front();
    if (seconds_.empty()) newest_ = nullptr;
    // The front itself is never counted in empty_seconds_; those behind it are.
    if (!seconds_.empty() && seconds_.front().messages == 0) --empty_seconds_;
  }
  oldest_stored_s_.set(seconds_.empty() ? kNoneHeld : seconds_.front().second);
}

}  // namespace gophermq
