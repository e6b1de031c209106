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

void StreamFeeds::detach_all() {
  while (!feeds_.empty()) detach(*feeds_.begin()->second.subscriber);
}

void StreamFeeds::streamed_subscribers(const SubjectEntry& entry,
                                       std::vector<Subscriber*>& out) const {
  out.clear();
  auto found = by_subject_.find(&entry);
  if (found != by_subject_.end()) out = found->second;
}

}  // namespace gophermq
