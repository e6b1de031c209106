// Wildcard subscriptions (api-extensions.md §10), end to end.
//
// A wildcard subscriber is a subscriber whose subject is its pattern: its
// queue lives on owner_shard(pattern), as a subject's would, in the store's
// table of patterns (apart from literal subjects: a literal subscriber of
// "a.*" and a wildcard one of "a.*" share nothing). Fetch, info, ack, nack
// and unsubscribe name it by its pattern and id, like any subscriber.
//
// Every shard knows every pattern (PatternRoutes): the owner tells each
// other shard when a pattern gets its first subscriber and when it loses its
// last (unsubscribe, expiry). The answer to the subscribe that adds a
// pattern waits until every shard has said it knows (PatternNote::seen), so a
// publish sent after that answer, on any connection, reaches the subscriber.
// A removal is not waited for: until a shard learns of it, a publish there
// may still match the pattern (and be answered 200); its copy is then
// dropped on the owner, which holds the pattern no more.
//
// A publish to S is served on owner(S): its own subscribers as always,
// then, only when some pattern exists anywhere, each pattern that matches S
// gets a copy, framed with S (wildcard_message.h): stored here when its
// queue is here, else sent to its owner as a call that needs no answer,
// after the publish has been answered (as publish/async is): one call per
// owner shard, carrying the copy once for all of that shard's patterns that
// matched. So a wildcard subscriber on another shard sees the message a
// moment later (a fetch with wait_ms waits for it), and in publish order for
// each subject.
//
// A copy is stored as any publish is, under the pattern's own bounds: its
// subscribers' max_pending (and discard), its per-subject bounds and the
// broker-wide budget. A copy refused there is counted in
// gophermq_messages_refused_total with its reason and never refuses the
// publish, which is counted once. The publish is 429 only when the
// subject's own subscribers refuse it (and then no pattern gets a copy
// either), 404 only when it has none and no pattern matches.
#include <cassert>
#include <utility>

#include "gophermq/api/broker_api.h"
#include "gophermq/store/wildcard_message.h"

namespace gophermq {

PublishOutcome BrokerApi::publish(std::string_view subject, std::string_view payload) {
  const PublishOutcome outcome = store_.publish(subject, payload);
  if (pattern_routes_.empty()) return outcome;  // the usual case: one branch
  if (outcome != PublishOutcome::stored && outcome != PublishOutcome::no_subscriber) {
    return outcome;
  }
  const bool matched = publish_to_patterns(subject, payload);
  return matched ? PublishOutcome::stored : outcome;
}

PublishOutcome BrokerApi::publish_batch(std::string_view subject,
                                        std::span<const std::string_view> payloads) {
  const PublishOutcome outcome = store_.publish_batch(subject, payloads);
  if (pattern_routes_.empty()) return outcome;
  if (outcome != PublishOutcome::stored && outcome != PublishOutcome::no_subscriber) {
    return outcome;
  }
  bool matched = false;
  for (std::string_view payload : payloads) matched |= publish_to_patterns(subject, payload);
  return matched ? PublishOutcome::stored : outcome;
}

namespace {

// Between the patterns one call carries (see publish_to_patterns()).
constexpr char kPatternSeparator = '\n';

}  // namespace

bool BrokerApi::publish_to_patterns(std::string_view subject, std::string_view payload) {
  bool matched = false;
  pattern_routes_.for_each_match(subject, [&](const PatternRoutes::Route& route) {
    if (!matched) frame_wildcard_message(subject, payload, wildcard_message_);
    matched = true;
    if (route.owner == shard_id_) {
      const PublishOutcome outcome = store_.publish_to_pattern(route.pattern, wildcard_message_);
      // A pattern gone from this shard's store is gone from its routes too:
      // only its bounds can refuse the copy.
      if (outcome != PublishOutcome::stored) count_publish(outcome, false);
      return;
    }
    std::string& patterns = patterns_by_owner_[route.owner];
    if (patterns.empty()) {
      copy_owners_.push_back(route.owner);
    } else {
      patterns += kPatternSeparator;
    }
    patterns += route.pattern;
  });
  for (unsigned owner : copy_owners_) {
    ShardCall call{};
    call.endpoint = Endpoint::publish_async;
    call.pattern_note = PatternNote::delivery;
    call.origin_shard = static_cast<std::uint16_t>(shard_id_);
    call.subject = SubjectCopy(patterns_by_owner_[owner]);
    call.message.reset(Message::create(wildcard_message_));
    pattern_calls_.emplace_back(owner, std::move(call));
    metrics_.cross_shard_calls.add();
    patterns_by_owner_[owner].clear();
  }
  copy_owners_.clear();
  return matched;
}

void BrokerApi::announce_pattern_changes_now() {
  store_.take_pattern_changes(pattern_changes_);
  for (const SubjectStore::PatternChange& change : pattern_changes_) {
    if (change.added) {
      pattern_routes_.add(change.pattern);
    } else {
      pattern_routes_.remove(change.pattern);
    }
    if (shard_count_ == 1) continue;
    if (change.added) announcements_[change.pattern].unseen += shard_count_ - 1;
    for (unsigned shard = 0; shard != shard_count_; ++shard) {
      if (shard == shard_id_) continue;
      ShardCall call{};
      call.endpoint = change.added ? Endpoint::subscribe : Endpoint::unsubscribe;
      call.pattern_note = change.added ? PatternNote::added : PatternNote::removed;
      call.origin_shard = static_cast<std::uint16_t>(shard_id_);
      call.subject = SubjectCopy(change.pattern);
      pattern_calls_.emplace_back(shard, std::move(call));
    }
  }
}

bool BrokerApi::hold_until_known(ShardCall& call) {
  announce_pattern_changes();
  // A later subscriber of a pattern still being announced waits as well.
  auto announcement = announcements_.find(call.subject.view());
  if (announcement == announcements_.end()) return false;
  announcement->second.subscribes.push_back(std::move(call));
  return true;
}

void BrokerApi::serve_pattern_note(ShardCall& call) {
  const std::string_view pattern = call.subject.view();
  switch (call.pattern_note) {
    case PatternNote::delivery: {
      // The copy, for each of this shard's patterns that matched: the
      // "subject" is their list, one a line.
      const std::string_view patterns = pattern;
      for (std::size_t from = 0; from <= patterns.size();) {
        std::size_t end = patterns.find(kPatternSeparator, from);
        if (end == std::string_view::npos) end = patterns.size();
        const PublishOutcome outcome =
            store_.publish_to_pattern(patterns.substr(from, end - from), call.message->payload());
        // No subscriber: the pattern lost its last one after the copy was sent.
        if (outcome != PublishOutcome::stored && outcome != PublishOutcome::no_subscriber) {
          count_publish(outcome, false);
        }
        from = end + 1;
      }
      return;
    }
    case PatternNote::added: {
      pattern_routes_.add(pattern);
      ShardCall seen{};
      seen.endpoint = Endpoint::subscribe;
      seen.pattern_note = PatternNote::seen;
      seen.origin_shard = static_cast<std::uint16_t>(shard_id_);
      seen.subject = SubjectCopy(pattern);
      pattern_calls_.emplace_back(call.origin_shard, std::move(seen));
      return;
    }
    case PatternNote::removed:
      pattern_routes_.remove(pattern);
      return;
    case PatternNote::seen: {
      // Each `added` this shard sent is answered once: its announcement waits.
      auto announcement = announcements_.find(pattern);
      assert(announcement != announcements_.end());
      if (--announcement->second.unseen != 0) return;
      for (ShardCall& subscribe : announcement->second.subscribes) {
        answered_waits_.push_back(std::move(subscribe));
      }
      announcements_.erase(announcement);
      return;
    }
    case PatternNote::none:
      return;
  }
}

}  // namespace gophermq
