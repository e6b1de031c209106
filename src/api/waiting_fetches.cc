#include "gophermq/api/waiting_fetches.h"

#include <algorithm>
#include <functional>
#include <utility>

namespace gophermq {

namespace {

// Leftover deadlines of fetches answered early are dropped once there are
// more of them than this and than live ones.
constexpr std::size_t kKeepStaleDeadlines = 1024;

template <typename T>
void erase_one(std::vector<T>& items, const T& item) {
  auto found = std::find(items.begin(), items.end(), item);
  if (found != items.end()) items.erase(found);
}

}  // namespace

void WaitingFetches::park(Subscriber& subscriber, ShardCall&& call, std::uint64_t deadline_ms) {
  const Ticket ticket = next_ticket_++;
  by_connection_.emplace(connection_key(call.origin_shard, call.connection_index), ticket);
  parked_.emplace(ticket, Parked{&subscriber, std::move(call)});
  std::vector<Ticket>& tickets = by_subscriber_[&subscriber];
  if (tickets.empty()) {
    by_subject_[subscriber.subject].push_back(&subscriber);
    ++subscriber.subject->waiting_subscribers;
  }
  tickets.push_back(ticket);
  ++subscriber.waiting_fetches;
  deadlines_.push_back({deadline_ms, ticket});
  std::push_heap(deadlines_.begin(), deadlines_.end(), std::greater<>{});
}

std::uint64_t WaitingFetches::next_deadline_ms() {
  while (!deadlines_.empty() && !parked_.contains(deadlines_.front().ticket)) {
    std::pop_heap(deadlines_.begin(), deadlines_.end(), std::greater<>{});
    deadlines_.pop_back();
    --stale_deadlines_;
  }
  return deadlines_.empty() ? UINT64_MAX : deadlines_.front().due_ms;
}

void WaitingFetches::waiting_subscribers(const SubjectEntry& entry,
                                         std::vector<Subscriber*>& out) const {
  out.clear();
  auto found = by_subject_.find(&entry);
  if (found != by_subject_.end()) out.assign(found->second.begin(), found->second.end());
}

bool WaitingFetches::take_oldest(Subscriber& subscriber, ShardCall& call) {
  auto found = by_subscriber_.find(&subscriber);
  if (found == by_subscriber_.end()) return false;
  take(found->second.front(), call, true);
  return true;
}

Subscriber* WaitingFetches::take(Ticket ticket, ShardCall& call, bool deadline_in_heap) {
  auto parked = parked_.find(ticket);
  Subscriber* subscriber = parked->second.subscriber;
  call = std::move(parked->second.call);
  parked_.erase(parked);

  auto [first, last] =
      by_connection_.equal_range(connection_key(call.origin_shard, call.connection_index));
  for (auto it = first; it != last; ++it) {
    if (it->second == ticket) {
      by_connection_.erase(it);
      break;
    }
  }
  auto tickets = by_subscriber_.find(subscriber);
  erase_one(tickets->second, ticket);
  --subscriber->waiting_fetches;
  if (tickets->second.empty()) {
    by_subscriber_.erase(tickets);
    auto subject = by_subject_.find(subscriber->subject);
    erase_one(subject->second, subscriber);
    if (subject->second.empty()) by_subject_.erase(subject);
    --subscriber->subject->waiting_subscribers;
  }
  // Its deadline stays in the heap; once such leftovers are most of it, they go.
  if (deadline_in_heap && ++stale_deadlines_ > kKeepStaleDeadlines &&
      stale_deadlines_ * 2 > deadlines_.size()) {
    std::erase_if(deadlines_, [this](const Deadline& d) { return !parked_.contains(d.ticket); });
    std::make_heap(deadlines_.begin(), deadlines_.end(), std::greater<>{});
    stale_deadlines_ = 0;
  }
  return subscriber;
}

Subscriber* WaitingFetches::take_next_due(std::uint64_t now_ms, ShardCall& call) {
  if (next_deadline_ms() > now_ms) return nullptr;
  const Ticket ticket = deadlines_.front().ticket;
  std::pop_heap(deadlines_.begin(), deadlines_.end(), std::greater<>{});
  deadlines_.pop_back();
  return take(ticket, call, false);
}

Subscriber* WaitingFetches::take_one_for_connection(unsigned origin_shard, std::uint32_t index,
                                                    std::uint32_t generation, ShardCall& call) {
  auto [first, last] = by_connection_.equal_range(connection_key(origin_shard, index));
  for (auto it = first; it != last; ++it) {
    const Parked& parked = parked_.at(it->second);
    if (parked.call.connection_generation == generation) return take(it->second, call, true);
  }
  return nullptr;
}

}  // namespace gophermq
