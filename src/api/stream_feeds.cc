#include "gophermq/api/stream_feeds.h"

#include <algorithm>

namespace gophermq {

std::optional<StreamFeed> StreamFeeds::attach(const StreamFeed& feed) {
  std::optional<StreamFeed> replaced = detach(*feed.subscriber);
  feeds_.emplace(feed.subscriber, feed);
  by_subject_[feed.subscriber->subject].push_back(feed.subscriber);
  feed.subscriber->streamed = true;
  ++feed.subscriber->subject->waiting_subscribers;
  return replaced;
}

StreamFeed* StreamFeeds::find(const Subscriber& subscriber) {
  auto found = feeds_.find(&subscriber);
  return found == feeds_.end() ? nullptr : &found->second;
}

std::optional<StreamFeed> StreamFeeds::detach(Subscriber& subscriber) {
  auto found = feeds_.find(&subscriber);
  if (found == feeds_.end()) return std::nullopt;
  StreamFeed feed = found->second;
  feeds_.erase(found);
  auto subject = by_subject_.find(subscriber.subject);
  std::vector<Subscriber*>& streamed = subject->second;
  streamed.erase(std::find(streamed.begin(), streamed.end(), &subscriber));
  if (streamed.empty()) by_subject_.erase(subject);
  subscriber.streamed = false;
  --subscriber.subject->waiting_subscribers;
  return feed;
}

std::vector<StreamFeed> StreamFeeds::detach_all() {
  std::vector<StreamFeed> detached;
  while (!feeds_.empty()) detached.push_back(*detach(*feeds_.begin()->second.subscriber));
  return detached;
}

void StreamFeeds::streamed_subscribers(const SubjectEntry& entry,
                                       std::vector<Subscriber*>& out) const {
  out.clear();
  auto found = by_subject_.find(&entry);
  if (found != by_subject_.end()) out = found->second;
}

bool StreamFeeds::hold(StreamFeed& feed, std::uint64_t now_ms) {
  if (flush_interval_ms_ == 0 || now_ms >= feed.last_sent_ms + flush_interval_ms_) return false;
  if (feed.flush_due_ms == 0) {
    feed.flush_due_ms = feed.last_sent_ms + flush_interval_ms_;
    due_.push({feed.flush_due_ms, feed.subscriber});
  }
  return true;
}

void StreamFeeds::take_due(std::uint64_t now_ms, std::vector<StreamFeed*>& out) {
  out.clear();
  while (!due_.empty() && due_.top().due_ms <= now_ms) {
    const Due due = due_.top();
    due_.pop();
    // The stream that was held may have gone; one attached since to the
    // same subscriber is taken only when it is itself held and due.
    auto found = feeds_.find(due.subscriber);
    if (found == feeds_.end()) continue;
    StreamFeed& feed = found->second;
    if (feed.flush_due_ms == 0 || feed.flush_due_ms > now_ms) continue;
    feed.flush_due_ms = 0;
    out.push_back(&feed);
  }
}

}  // namespace gophermq
