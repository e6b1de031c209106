// The store: one per shard, holding the subjects that shard owns, their
// subscribers and each subscriber's queue of pending messages. Only the owning
// shard's thread touches it.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gophermq/metrics/metrics.h"
#include "gophermq/store/ack_queue.h"
#include "gophermq/store/message.h"
#include "gophermq/store/message_arena.h"
#include "gophermq/store/message_queue.h"
#include "gophermq/store/pending_ages.h"
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

// How a queue is kept (api-extensions.md §2, §5, §6): the options of a
// subscriber's own queue, or those the first member of a queue group set.
struct QueueOptions {
  SubscriberBounds bounds;
  // Ack mode when ack_wait_ms > 0: messages stay until acknowledged.
  AckQueue::Settings acks{.ack_wait_ms = 0};
  std::string dead_letter_subject;  // empty: none
  bool uses_acks() const { return acks.ack_wait_ms != 0; }
};

// A queue fed one message at a time by publish, so it can drop, number its
// messages and keep them until acked: a subscriber's own (it has bounds of
// its own, or uses acks) or a queue group's, shared by its members.
struct DeliveryQueue {
  explicit DeliveryQueue(const QueueOptions& options);

  MessageQueue messages;           // without acks
  std::unique_ptr<AckQueue> acks;  // with them
  SubscriberBounds bounds;
  std::string dead_letter_subject;  // with acks: where messages past max_deliver go
  std::uint32_t index = 0;          // in its subject's list of fed queues
  // With acks: its name in the store's deadline heap, and the earliest due
  // time it has there (UINT64_MAX: none).
  std::uint64_t ack_ticket = 0;
  std::uint64_t scheduled_due_ms = UINT64_MAX;

  // Messages held (in flight included) and their payload bytes.
  std::size_t size() const { return acks ? acks->size() : messages.size(); }
  std::uint64_t bytes() const { return acks ? acks->bytes() : messages.bytes(); }
  void push(Message* message) {
    if (acks) {
      acks->push(message);
    } else {
      messages.push(message);
    }
  }
  // Visits the messages held, oldest first, while `visit(message)` is true.
  template <typename Visit>
  void visit_oldest(Visit&& visit) const {
    if (acks) {
      acks->visit_held(visit);
      return;
    }
    for (std::size_t i = 0; i != messages.size() && visit(messages.at(i)); ++i) {
    }
  }
};

// Competing consumers (api-extensions.md §6): the members of (subject,
// group) share one queue, which each message reaches once.
struct QueueGroup {
  explicit QueueGroup(const QueueOptions& options) : options(options), queue(options) {}
  QueueOptions options;  // set by its first member
  DeliveryQueue queue;
  std::string_view name;  // its key in its subject's map
  std::uint64_t members = 0;
  std::uint32_t last_member = 0;  // numbers members 1, 2, ...: never reused
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
  // of its own or acks has its own queue instead, and a group member its
  // group's.
  SubjectLog::Sequence cursor = 0;
  SubjectLog::Sequence sequence_base = 0;  // see PendingMessages
  DeliveryQueue* queue = nullptr;          // null: it reads the log
  std::unique_ptr<DeliveryQueue> own;
  QueueGroup* group = nullptr;
  std::uint32_t member = 0;  // in its group, what its in-flight messages are held by
  // Idle expiry: unsubscribed once inactive this long (0 = never), counted
  // from its subscribe or its last fetch, on the store's clock.
  std::uint64_t inactive_threshold_ms = 0;
  std::uint64_t last_active_ms = 0;
  // Its fetches waiting for messages (kept by WaitingFetches): it does not
  // expire while it has any.
  std::uint32_t waiting_fetches = 0;
  // An event stream feeds it (kept by StreamFeeds): it does not expire
  // while it has one.
  bool streamed = false;

  bool uses_acks() const { return queue != nullptr && queue->acks != nullptr; }
  // Without acks: what it has pending, oldest first.
  PendingMessages pending() const;
  // A fetch would take at least one message now.
  bool has_deliverable() const {
    return uses_acks() ? queue->acks->can_hand_out() : !pending().empty();
  }
};

struct SubjectEntry {
  explicit SubjectEntry(PendingAges& ages) : arena(&ages) {}

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
  // The queues fed one by one (subscribers with bounds of their own or
  // acks, and queue groups), each its own copy of the pointer: they are the
  // exception, a publish visits each.
  std::vector<DeliveryQueue*> fed;
  // By name; a group goes with its last member.
  std::map<std::string, std::unique_ptr<QueueGroup>, std::less<>> groups;
  // What the subject holds, against its own bounds: the original's count
  // (a message once per subscriber holding it), and payload bytes (each
  // message once).
  std::uint64_t pending = 0;
  std::uint64_t pending_bytes = 0;
  // Its subscribers with fetches waiting (kept by WaitingFetches) or an
  // event stream (StreamFeeds): a publish that stores a message wakes them
  // (see take_woken()).
  std::uint32_t waiting_subscribers = 0;
  bool woken = false;  // on the store's list for take_woken()
  // Its name is a wildcard pattern (api-extensions.md §10): each message it
  // holds carries its own subject (wildcard_message.h).
  bool pattern = false;
};

inline PendingMessages Subscriber::pending() const {
  return queue != nullptr ? PendingMessages(queue->messages)
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
  group_options_differ,  // from those its group's first member set
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
  std::uint64_t max_batch = 1000;            // messages in one batch publish
  std::uint64_t max_pending_per_subject = 1'000'000;
  std::uint64_t max_pending_bytes_per_subject = std::uint64_t{1} << 26;
  std::uint64_t max_subscribers_per_subject = 1'000'000;
  std::size_t max_subject_bytes = 1024;  // longer is an invalid subject
  // A subscribe without inactive_threshold_ms gets this one (0 = never).
  std::uint64_t default_inactive_threshold_ms = 0;
  // An event stream is sent events at most once this often (0 = at once).
  std::uint64_t stream_flush_interval_ms = 0;
};

// What a subscribe may ask for beyond the original's fields.
struct SubscribeOptions {
  std::uint64_t inactive_threshold_ms = 0;  // 0: never expires
  QueueOptions queue;
  std::string group;  // empty: none
  // The subject is a wildcard pattern (api-extensions.md §10), valid by
  // is_valid_pattern(): its subscribers live apart from the literal
  // subject's of the same name.
  bool wildcard = false;
  // Which queue options the request named: a later member of a group may
  // omit them (inherited), not change them.
  enum Named : std::uint8_t {
    max_pending = 1,
    max_pending_bytes = 2,
    discard = 4,
    ack_wait = 8,
    max_ack_pending = 16,
    max_deliver = 32,
    dead_letter_subject = 64,
  };
  std::uint8_t named = 0;
};

// What a fetch may ask for beyond the original's fields (api-extensions.md
// §3): a batch bound, and a wait for messages when none is pending.
struct FetchOptions {
  std::uint64_t wait_ms = 0;  // clamped to broker.max-fetch-wait
  std::uint64_t max_messages = UINT64_MAX;
  // Clamped where the request is read: to broker.max-fetch-bytes, and to
  // the answer's room (see Answers::answer_room()).
  std::uint64_t max_bytes = UINT64_MAX;
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
  // Several messages to one subject, in order, all or none (api-extensions.md
  // §9): refused whole when they would not all fit.
  PublishOutcome publish_batch(std::string_view subject,
                               std::span<const std::string_view> payloads);
  // The subjects stored to since the last call that have subscribers with
  // fetches waiting (they may have something to take now), each once.
  // `into` is replaced (and keeps its memory for the next call).
  void take_woken(std::vector<SubjectEntry*>& into);
  bool has_woken() const { return !woken_.empty(); }

  // A message published to `subject`, for the subscribers of `pattern`,
  // one that matches it: stored as publish() stores it, framed with its
  // subject (wildcard_message.h; `framed` is that), in the pattern's arena.
  PublishOutcome publish_to_pattern(std::string_view pattern, std::string_view framed);
  // A pattern got its first subscriber (`added`), or lost its last: every
  // shard must know, to match its publishes against it.
  struct PatternChange {
    bool added;
    std::string pattern;
  };
  bool has_pattern_changes() const { return !pattern_changes_.empty(); }
  // The changes since the last call, in order; `into` is replaced.
  void take_pattern_changes(std::vector<PatternChange>& into);

  // The subscriber `id` of `subject`, or null when there is none (the
  // original's "bad id"). A request does not say whether it names a pattern:
  // ids are unique, so one not found among the literal subject's subscribers
  // is looked for among the pattern's of that name.
  Subscriber* find(std::string_view subject, const SubscriberId& id);

  // Removes the subscriber `id` of `subject`, releasing what it held; the
  // subject goes with its last subscriber. False when there is none.
  bool unsubscribe(std::string_view subject, const SubscriberId& id);

  // Acknowledgements (api-extensions.md §5), for a subscriber that uses
  // them. hand_out() gives up to `max_messages` available messages within
  // `max_bytes` (at least one when any is available) and max_ack_pending;
  // they stay held, in flight.
  void hand_out(Subscriber& subscriber, std::size_t max_messages, std::uint64_t max_bytes,
                std::vector<AckQueue::Delivery>& out);
  // Acks the in-flight messages named in `sequences`, and every one it
  // holds up to `through` (when not kNoThrough: in a group, only those
  // handed to this member); returns how many.
  std::size_t ack(Subscriber& subscriber, std::span<const std::uint64_t> sequences,
                  std::uint64_t through);
  // The in-flight messages named become available again `delay_ms` from
  // now; returns how many.
  std::size_t nack(Subscriber& subscriber, std::span<const std::uint64_t> sequences,
                   std::uint64_t delay_ms);
  static constexpr std::uint64_t kNoThrough = UINT64_MAX;
  // Messages past their ack deadline or nack delay become available again
  // (their subjects' waiting fetches are woken) or, delivered max_deliver
  // times, leave their queue: a copy of each that has a dead-letter subject
  // is appended to `dead`. Costs one comparison while nothing is due: the
  // queues wait in a heap by their earliest due time.
  struct DeadLetter {
    std::string subject;
    MessagePtr message;
  };
  void expire_acks(std::vector<DeadLetter>& dead);
  // When the earliest ack deadline or nack delay ends; UINT64_MAX if none.
  std::uint64_t next_ack_due_ms() const {
    return ack_dues_.empty() ? UINT64_MAX : ack_dues_.front().due_ms;
  }
  // Due times in the heap, stale ones included.
  std::size_t ack_dues_held() const { return ack_dues_.size(); }

  // Called after a fetch has encoded a subscriber's `count` oldest messages:
  // drops them and returns them to the budget.
  void drain(Subscriber& subscriber, std::size_t count);
  void drain(Subscriber& subscriber) { drain(subscriber, subscriber.pending().size()); }

  // Wildcard patterns with subscribers count as subjects (and against
  // broker.max-subjects): each holds a queue like a subject's.
  std::size_t subject_count() const { return subjects_.size() + patterns_.size(); }
  std::size_t subscriber_count() const { return subscriber_count_; }

  // Read by the monitoring thread while the shard writes them.
  struct Gauges {
    ShardCounter subjects;
    ShardCounter subscribers;
    std::array<ShardCounter, kDropReasonNames.size()> messages_dropped;  // by DropReason
    ShardCounter inflight;       // messages handed out and not yet acked
    ShardCounter redelivered;    // handed out again after a deadline or nack
    ShardCounter dead_lettered;  // past max_deliver
    // For gophermq_oldest_pending_age_seconds: the second of the shard's
    // clock its oldest message held was stored in, UINT64_MAX when it holds
    // none (kept by PendingAges).
    ShardCounter oldest_stored_s;
  };
  const Gauges& gauges() const { return gauges_; }

 private:
  void mark_woken(SubjectEntry& entry);
  // The clock in whole seconds, what a stored message is stamped with.
  std::uint32_t now_s() const { return static_cast<std::uint32_t>(now_ms_ / 1000); }
  // publish() into `entry` (null: a subject with no subscriber).
  PublishOutcome publish_to(SubjectEntry* entry, std::string_view payload);
  static Subscriber* find_in(SubjectTable<SubjectEntry>& table, std::string_view subject,
                             const SubscriberId& id);
  // publish() when every subscriber of the subject is plain (the usual case).
  PublishOutcome publish_to_log(SubjectEntry& entry, std::string_view payload);
  // What a bounded subscriber does with a new message of `bytes`.
  struct Intake {
    bool take;                // it keeps the new message
    std::size_t drop_oldest;  // after dropping this many of its oldest
  };
  static Intake intake(const DeliveryQueue& queue, std::uint64_t bytes);
  // What one message does to a subject with bounded subscribers: made
  // before the bounds are checked (with each fed queue's Intake in intakes_)
  // and carried out by store_planned() after.
  struct PublishPlan {
    std::uint64_t takers;          // holders of the message: the log's readers and fed queues
    std::uint64_t bounded_takers;  // fed queues that keep it
    std::uint64_t dropping;        // oldest messages the fed queues drop for it
    std::uint64_t freeing_bytes;   // what those drops free, at least
    std::uint64_t stored_bytes;    // its payload, when anyone keeps it
  };
  PublishPlan plan_publish(const SubjectEntry& entry, std::uint64_t bytes);
  // What storing a message changed in its subject's held count and bytes (a
  // fall when drops made room), for the budget's reservation to settle.
  struct NetChange {
    std::int64_t count;
    std::int64_t bytes;
  };
  // Stores the message as planned (or, in a subject of plain subscribers
  // only, in its log), with its budget already reserved.
  NetChange store_planned(SubjectEntry& entry, std::string_view payload, const PublishPlan& plan);
  NetChange store_in_log(SubjectEntry& entry, std::string_view payload);
  // Drops a fed queue's `count` oldest messages; returns the payload bytes
  // freed (of messages no other queue held).
  std::uint64_t drop_oldest(DeliveryQueue& queue, std::size_t count);
  // A new fed queue of `entry`, its own or a group's.
  void add_fed(SubjectEntry& entry, DeliveryQueue& queue);
  // A fed queue leaves its subject, releasing everything it holds.
  void release_queue(SubjectEntry& entry, DeliveryQueue& queue);
  // What left an ack queue goes back to its subject's and the budget's
  // counts, and the in-flight gauge follows the queue.
  void account(SubjectEntry& entry, const AckQueue::Released& released,
               std::size_t in_flight_before, const AckQueue& queue);
  // The queue's earliest due time goes into the heap when it is earlier
  // than what the heap holds for it.
  void schedule(DeliveryQueue& queue);
  // Ack mode, once joined: whether the named options of `options` match a
  // group's.
  static bool same_options(const SubscribeOptions& options, const QueueOptions& group);
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
  Gauges gauges_;
  // Every stored message by its second; before the subjects, whose messages
  // it counts until the last is gone.
  PendingAges ages_{gauges_.oldest_stored_s};
  SubjectTable<SubjectEntry> subjects_;
  // Wildcard patterns' entries, by pattern: a namespace of their own.
  SubjectTable<SubjectEntry> patterns_;
  std::vector<PatternChange> pattern_changes_;  // see take_pattern_changes()
  std::size_t subscriber_count_ = 0;
  std::uint64_t now_ms_ = 0;
  std::vector<SubjectEntry*> woken_;        // see take_woken()
  std::vector<ExpiryCheck> expiry_checks_;  // a heap, earliest due first
  // A publish's plan for each bounded subscriber of its subject, made once
  // before the bounds are checked and carried out after (kept to reuse).
  std::vector<Intake> intakes_;
  // Ack queues by ticket, and their due times in a heap (earliest first):
  // an entry whose queue is gone, or has an earlier one, is stale.
  struct AckDue {
    std::uint64_t due_ms;
    std::uint64_t ticket;
    bool operator>(const AckDue& other) const { return due_ms > other.due_ms; }
  };
  struct AckQueueRef {
    DeliveryQueue* queue;
    SubjectEntry* subject;
  };
  std::unordered_map<std::uint64_t, AckQueueRef> ack_queues_;
  std::vector<AckDue> ack_dues_;
  std::uint64_t next_ack_ticket_ = 1;
  std::vector<AckDue> ack_dues_now_;  // reused by expire_acks()
  // Checks in the heap whose subscriber was unsubscribed since; past this
  // many, and half the heap, they are dropped.
  static constexpr std::size_t kKeepStaleExpiryChecks = 1024;
  std::size_t stale_expiry_checks_ = 0;
};

}  // namespace gophermq
