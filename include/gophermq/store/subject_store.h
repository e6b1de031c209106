// The store: one per shard, holding the subjects that shard owns, their
// subscribers and each subscriber's queue of pending messages. Only the owning
// shard's thread touches it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gophermq/metrics/metrics.h"
#include "gophermq/store/message.h"
#include "gophermq/store/message_arena.h"
#include "gophermq/store/message_queue.h"
#include "gophermq/store/pending_budget.h"
#include "gophermq/store/store_census.h"
#include "gophermq/store/subject_log.h"
#include "gophermq/store/subject_table.h"
#include "gophermq/store/subscriber_id.h"

namespace gophermq {

struct SubjectEntry;

// A subscriber's own bounds (the subscribe fields max_pending,
// max_pending_bytes and discard). Past them it drops messages for itself
// alone; it never makes a publish fail.
enum class Discard : std::uint8_t {
  new_messages,  // "new": the message that does not fit is dropped
  old_messages,  // "old": its oldest make room
};
struct SubscriberBounds {
  std::uint64_t max_pending = 0;        // messages; 0: no bound of its own
  std::uint64_t max_pending_bytes = 0;  // payload bytes; 0: no bound of its own
  Discard discard = Discard::new_messages;
  bool any() const { return max_pending != 0 || max_pending_bytes != 0; }
};

// Why a message was dropped for one subscriber: the label of
// gophermq_messages_dropped_total.
enum class DropReason : std::uint8_t { discard_new, discard_old };
inline constexpr std::array<std::string_view, 2> kDropReasonNames{"discard_new", "discard_old"};

// A bounded subscriber's own queue: it is fed one by one, so it can drop.
struct OwnQueue {
  MessageQueue messages;
  SubscriberBounds bounds;
  std::uint32_t index = 0;  // in its subject's list of bounded subscribers
};

// What a subscriber has pending, oldest first: the rest of its subject's
// log from its cursor on, or its own queue.
class PendingMessages {
 public:
  // `sequence_base`: the log's sequence just before the subscriber's first
  // message, so its own numbering starts at 1.
  PendingMessages(const SubjectLog& log, SubjectLog::Sequence cursor,
                  SubjectLog::Sequence sequence_base)
      : log_(&log), cursor_(cursor), sequence_base_(sequence_base) {}
  explicit PendingMessages(const MessageQueue& queue) : queue_(&queue) {}

  std::size_t size() const {
    return queue_ != nullptr ? queue_->size() : static_cast<std::size_t>(log_->end() - cursor_);
  }
  // Payload bytes pending.
  std::uint64_t bytes() const {
    return queue_ != nullptr ? queue_->bytes() : log_->bytes_from(cursor_);
  }
  // The subscriber's sequence number (api-extensions.md §4) of the oldest
  // pending message; the next ones follow it without gaps.
  std::uint64_t first_sequence() const {
    return queue_ != nullptr ? queue_->pushed() - queue_->size() + 1 : cursor_ - sequence_base_;
  }
  bool empty() const { return size() == 0; }
  // How many of the oldest fit in `max_bytes` of payload: at least one, so
  // a message larger than the bound still goes, alone.
  std::size_t count_within(std::uint64_t max_bytes) const {
    return queue_ != nullptr ? queue_->count_within(max_bytes)
                             : log_->count_within(cursor_, max_bytes);
  }
  template <typename Visit>
  void for_each(std::size_t count, Visit&& visit) const {
    if (queue_ != nullptr) {
      queue_->for_each(count, visit);
    } else {
      log_->for_each(cursor_, count, visit);
    }
  }
  template <typename Visit>
  void for_each(Visit&& visit) const {
    for_each(size(), visit);
  }

 private:
  const SubjectLog* log_ = nullptr;
  SubjectLog::Sequence cursor_ = 0;
  SubjectLog::Sequence sequence_base_ = 0;
  const MessageQueue* queue_ = nullptr;
};

struct Subscriber {
  SubscriberId id;
  SubjectEntry* subject;  // entries never move (see SubjectTable)
  // A plain subscriber reads its subject's log from here; one with bounds
  // of its own has its own queue instead.
  SubjectLog::Sequence cursor = 0;
  SubjectLog::Sequence sequence_base = 0;  // see PendingMessages
  std::unique_ptr<OwnQueue> own;
  // Idle expiry: unsubscribed once inactive this long (0 = never), counted
  // from its subscribe or its last fetch, on the store's clock.
  std::uint64_t inactive_threshold_ms = 0;
  std::uint64_t last_active_ms = 0;
  // Its fetches waiting for messages (kept by WaitingFetches): it does not
  // expire while it has any.
  std::uint32_t waiting_fetches = 0;

  PendingMessages pending() const;
};

struct SubjectEntry {
  // By the slot each id carries; a slot an unsubscribe freed is empty until
  // a later subscriber takes it (with a new id).
  std::vector<std::unique_ptr<Subscriber>> subscribers;
  std::vector<std::uint32_t> free_slots;
  std::uint64_t live = 0;  // subscribers, the slots that are not empty
  // Where its messages live. Declared before what holds them, so it goes
  // last.
  MessageArena arena;
  // Every message, once, for the plain subscribers: a publish costs the
  // same for one of them or a hundred thousand.
  SubjectLog log;
  // The subscribers with bounds of their own, each fed its own copy of the
  // pointer (they are the exception: a publish visits each).
  std::vector<Subscriber*> bounded;
  // What the subject holds, against its own bounds: the original's count
  // (a message once per subscriber holding it), and payload bytes (each
  // message once).
  std::uint64_t pending = 0;
  std::uint64_t pending_bytes = 0;
  // Its subscribers with fetches waiting (kept by WaitingFetches): a
  // publish that stores a message wakes them (see take_woken()).
  std::uint32_t waiting_subscribers = 0;
  bool woken = false;  // on the store's list for take_woken()
};

inline PendingMessages Subscriber::pending() const {
  return own ? PendingMessages(own->messages)
             : PendingMessages(subject->log, cursor, sequence_base);
}

enum class PublishOutcome : std::uint8_t {
  stored,
  no_subscriber,
  subject_overflow,  // past the subject's own bounds
  overflow,          // past the broker-wide ones
};

enum class SubscribeOutcome : std::uint8_t {
  subscribed,
  too_many_subscribers,  // of the subject, or broker-wide
  too_many_subjects,     // a new subject, and the broker holds its most
};

struct Subscription {
  SubscribeOutcome outcome;
  SubscriberId id;  // when subscribed
};

// The store's bounds from the configuration (defaults as in Config; the
// broker-wide ones are in StoreCensus and PendingBudget).
struct StoreLimits {
  std::uint64_t max_fetch_bytes = 16 << 20;  // payload in one fetch answer
  std::uint64_t max_fetch_wait_ms = 30'000;  // a fetch's wait_ms is clamped to it
  std::uint64_t max_waiting_fetches = 512;   // per subscriber
  std::uint64_t max_pending_per_subject = 1'000'000;
  std::uint64_t max_pending_bytes_per_subject = std::uint64_t{1} << 26;
  std::uint64_t max_subscribers_per_subject = 1'000'000;
  std::size_t max_subject_bytes = 1024;  // longer is an invalid subject
  // A subscribe without inactive_threshold_ms gets this one (0 = never).
  std::uint64_t default_inactive_threshold_ms = 0;
};

// What a subscribe may ask for beyond the original's fields.
struct SubscribeOptions {
  std::uint64_t inactive_threshold_ms = 0;  // 0: never expires
  SubscriberBounds bounds;
};

// What a fetch may ask for beyond the original's fields (api-extensions.md
// §3): a batch bound, and a wait for messages when none is pending.
struct FetchOptions {
  std::uint64_t wait_ms = 0;  // clamped to broker.max-fetch-wait
  std::uint64_t max_messages = UINT64_MAX;
  std::uint64_t max_bytes = UINT64_MAX;  // and never past broker.max-fetch-bytes
  // One of the fields was given: the answer adds "pending" and "seqs".
  bool extended = false;
};

// The longest inactive_threshold_ms a subscribe may ask for: a year.
inline constexpr std::uint64_t kMaxInactiveThresholdMs = 365ULL * 24 * 3600 * 1000;

class SubjectStore {
 public:
  SubjectStore(PendingBudget& budget, StoreCensus& census, SubscriberIdSource& ids,
               const StoreLimits& limits = {})
      : budget_(budget), census_(census), ids_(ids), limits_(limits) {}
  SubjectStore(const SubjectStore&) = delete;
  SubjectStore& operator=(const SubjectStore&) = delete;

  // A new subscriber, unless the subject or the broker holds as many as it
  // may; it receives only what is published after this call. With an
  // inactive threshold it expires once idle that long; with bounds of its
  // own it drops what does not fit them.
  Subscription subscribe(std::string_view subject, const SubscribeOptions& options = {});
  // The store's clock, in milliseconds, set once per loop turn.
  void set_now(std::uint64_t now_ms) { now_ms_ = now_ms; }
  std::uint64_t now_ms() const { return now_ms_; }
  // The subscriber was active (a fetch): its idle clock restarts.
  void touch(Subscriber& subscriber) { subscriber.last_active_ms = now_ms_; }
  // Unsubscribes every subscriber whose idle time has passed its threshold;
  // returns how many. Costs one comparison while none is due: the checks
  // wait in a heap by due time, one per expiring subscriber, and one that
  // finds its subscriber active since goes back with its new due time.
  std::size_t expire_idle();
  // Expiry checks waiting in the heap, those of subscribers gone included.
  std::size_t expiry_checks_held() const { return expiry_checks_.size(); }

  // Appends to every subscriber of `subject`, in publish order, or stores
  // nothing: when the subject, or the broker, would pass its bounds. The
  // payload is copied once, only when it is stored. A subscriber with
  // bounds of its own that it would pass drops a message instead (the new
  // one, or its oldest): that never refuses the publish.
  PublishOutcome publish(std::string_view subject, std::string_view payload);
  // Same, for a message another shard copied out of its receive buffer: it
  // is copied once more, into the subject's arena, and freed.
  PublishOutcome publish(std::string_view subject, MessagePtr message);
  // The subjects stored to since the last call that have subscribers with
  // fetches waiting (they may have something to take now), each once.
  // `into` is replaced (and keeps its memory for the next call).
  void take_woken(std::vector<SubjectEntry*>& into);
  bool has_woken() const { return !woken_.empty(); }

  // The subscriber `id` of `subject`, or null when there is none (the
  // original's "bad id").
  Subscriber* find(std::string_view subject, const SubscriberId& id);

  // Removes the subscriber `id` of `subject`, releasing what it held; the
  // subject goes with its last subscriber. False when there is none.
  bool unsubscribe(std::string_view subject, const SubscriberId& id);

  // Called after a fetch has encoded a subscriber's `count` oldest messages:
  // drops them and returns them to the budget.
  void drain(Subscriber& subscriber, std::size_t count);
  void drain(Subscriber& subscriber) { drain(subscriber, subscriber.pending().size()); }

  std::size_t subject_count() const { return subjects_.size(); }
  std::size_t subscriber_count() const { return subscriber_count_; }

  // Read by the monitoring thread while the shard writes them.
  struct Gauges {
    ShardCounter subjects;
    ShardCounter subscribers;
    std::array<ShardCounter, kDropReasonNames.size()> messages_dropped;  // by DropReason
  };
  const Gauges& gauges() const { return gauges_; }

 private:
  void mark_woken(SubjectEntry& entry);
  // publish() when every subscriber of the subject is plain (the usual case).
  PublishOutcome publish_to_log(SubjectEntry& entry, std::string_view payload);
  // What a bounded subscriber does with a new message of `bytes`.
  struct Intake {
    bool take;                // it keeps the new message
    std::size_t drop_oldest;  // after dropping this many of its oldest
  };
  static Intake intake(const OwnQueue& queue, std::uint64_t bytes);
  // Removes a subscriber of `subject`, releasing what it held; its subject
  // goes with its last subscriber.
  void remove(Subscriber& subscriber, std::string_view subject);
  // Rebuilds the expiry heap without the checks of subscribers now gone.
  void drop_stale_expiry_checks();

  // When to look at whether an expiring subscriber has been idle long
  // enough. By name, not pointer: the subscriber may be gone by then.
  struct ExpiryCheck {
    std::uint64_t due_ms;
    std::string subject;
    SubscriberId id;
    bool operator>(const ExpiryCheck& other) const { return due_ms > other.due_ms; }
  };

  PendingBudget::Lease budget_;  // this shard's share: no shared RMW per publish
  StoreCensus& census_;
  SubscriberIdSource& ids_;
  const StoreLimits limits_;
  SubjectTable<SubjectEntry> subjects_;
  std::size_t subscriber_count_ = 0;
  Gauges gauges_;
  std::uint64_t now_ms_ = 0;
  std::vector<SubjectEntry*> woken_;        // see take_woken()
  std::vector<ExpiryCheck> expiry_checks_;  // a heap, earliest due first
  // A publish's plan for each bounded subscriber of its subject, made once
  // before the bounds are checked and carried out after (kept to reuse).
  std::vector<Intake> intakes_;
  // Checks in the heap whose subscriber was unsubscribed since; past this
  // many, and half the heap, they are dropped.
  static constexpr std::size_t kKeepStaleExpiryChecks = 1024;
  std::size_t stale_expiry_checks_ = 0;
};

}  // namespace gophermq
