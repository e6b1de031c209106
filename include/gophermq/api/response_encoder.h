// Encoding response bodies by hand, byte for byte as the original's Go
// encoder writes them: keys in sorted order, HTML-safe string escaping, and a
// trailing newline.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include "gophermq/byte_buffer.h"
#include "gophermq/store/ack_queue.h"
#include "gophermq/store/subject_store.h"
#include "gophermq/store/subscriber_id.h"

namespace gophermq {

namespace body {
inline constexpr std::string_view kOk = "{\"status\":\"ok\"}\n";
inline constexpr std::string_view kInvalidSubject = "{\"message\":\"invalid subject\"}\n";
inline constexpr std::string_view kInvalidBody = "{\"message\":\"request's body is invalid\"}\n";
inline constexpr std::string_view kSubscriberNotFound = "{\"message\":\"subscriber not found\"}\n";
inline constexpr std::string_view kBrokerOverflow = "{\"message\":\"broker overflow\"}\n";
inline constexpr std::string_view kBadId = "{\"message\":\"bad id\"}\n";
inline constexpr std::string_view kNotFound = "{\"message\":\"Not Found\"}\n";
inline constexpr std::string_view kMethodNotAllowed = "{\"message\":\"Method Not Allowed\"}\n";
inline constexpr std::string_view kServerError = "{\"message\":\"server error\"}\n";
inline constexpr std::string_view kTooManySubscribers = "{\"message\":\"too many subscribers\"}\n";
inline constexpr std::string_view kTooManySubjects = "{\"message\":\"too many subjects\"}\n";
inline constexpr std::string_view kTooManyWaitingFetches =
    "{\"message\":\"too many waiting fetches\"}\n";
inline constexpr std::string_view kDoesNotUseAcks =
    "{\"message\":\"subscriber does not use acks\"}\n";
inline constexpr std::string_view kGroupOptionsDiffer = "{\"message\":\"group options differ\"}\n";
inline constexpr std::string_view kBatchTooLarge = "{\"message\":\"batch too large\"}\n";
}  // namespace body

// A JSON string literal (quotes included) as Go's encoding/json writes it:
// `"` and `\` backslash-escaped; \n, \r, \t short; other control characters,
// `<`, `>`, `&`, U+2028 and U+2029 as \u00XX / \u20XX. Input is valid UTF-8
// (simdjson validated it on the way in).
std::size_t json_string_size(std::string_view text);
char* write_json_string(char* out, std::string_view text);
void append_json_string(ByteBuffer& out, std::string_view text);

// {"id":"<uuid>","subject":<subject>}\n, and for a queue group's member
// {"group":<group>,"id":"<uuid>","subject":<subject>}\n.
std::size_t subscribe_body_size(std::string_view subject, std::string_view group = {});
void append_subscribe_body(ByteBuffer& out, const SubscriberId& id, std::string_view subject,
                           std::string_view group = {});

// What a fetch answer adds when the fetch used a field of
// api-extensions.md §3: the messages left, and each message's sequence.
struct FetchAnswerExtras {
  std::uint64_t pending;         // left queued after this answer
  std::uint64_t first_sequence;  // of the oldest message in the answer
};

// {"data":[<message>,...],"id":"<uuid>","subject":<subject>}\n with the
// `count` oldest of `messages`, and with extras
// {"data":[...],"id":"<uuid>","pending":N,"seqs":[...],"subject":<subject>}\n;
// appending takes the size measured (it is written in the head first, and
// measuring means scanning every payload).
std::size_t fetch_body_size(const PendingMessages& messages, std::size_t count,
                            std::string_view subject, const FetchAnswerExtras* extras = nullptr);
void append_fetch_body(ByteBuffer& out, std::size_t size, const PendingMessages& messages,
                       std::size_t count, const SubscriberId& id, std::string_view subject,
                       const FetchAnswerExtras* extras = nullptr);

// A fetch of a subscriber in ack mode (api-extensions.md §5): the messages
// handed out, with their sequences and delivery counts, and `pending` (left
// available, in flight not counted):
// {"data":[...],"deliveries":[...],"id":"<uuid>","pending":N,"seqs":[...],
// "subject":<subject>}\n. Appending takes the size measured.
std::size_t ack_fetch_body_size(std::span<const AckQueue::Delivery> deliveries,
                                std::uint64_t pending, std::string_view subject);
void append_ack_fetch_body(ByteBuffer& out, std::size_t size,
                           std::span<const AckQueue::Delivery> deliveries, const SubscriberId& id,
                           std::uint64_t pending, std::string_view subject);

// What /api/info tells of a subscriber (api-extensions.md §7).
struct SubscriberInfo {
  std::uint64_t idle_ms;  // since its last activity; 0 while a fetch of it waits
  std::uint64_t inflight;
  std::uint64_t pending;
  std::uint64_t pending_bytes;
  std::uint64_t waiting;   // its fetches waiting for messages
  std::string_view group;  // of a queue group's member; empty for others
};

// {"id":"<uuid>","idle_ms":N,"inflight":N,"pending":N,"pending_bytes":N,
// "subject":<subject>,"waiting":N}\n, with "group":<group> first for a
// queue group's member.
void append_info_body(ByteBuffer& out, const SubscriberId& id, std::string_view subject,
                      const SubscriberInfo& info);

// One Server-Sent Event for a message (api-extensions.md §8): `id: <seq>`,
// then the payload as `data:` lines (split at CR, LF and CRLF, as the SSE
// format requires, so a client reads each line end back as LF), or with
// `json` one line {"data":D,"seq":N,"subject":S} (an exact round trip of
// any payload); a blank line ends it.
void append_stream_event(ByteBuffer& out, std::uint64_t sequence, std::string_view payload,
                         std::string_view subject, bool json);

// An entry of a many-subject batch publish that was not stored
// (api-extensions.md §9): 400 invalid subject, 404 no subscriber, 429 full.
struct BatchFailure {
  std::uint32_t index;  // of the entry in the request
  std::uint16_t status;
};

// A many-subject batch publish's answer:
// {"failed":[{"code":C,"index":I,"message":M},...],"published":N}\n, the
// failures in index order (`failed` is sorted in place).
void append_batch_answer_body(ByteBuffer& out, std::span<BatchFailure> failed,
                              std::uint64_t published);

// The answer of /api/ack or /api/nack: {"<key>":N,"status":"ok"}\n, the
// key "acked" or "nacked".
std::size_t settled_body_size(std::string_view key, std::uint64_t count);
void append_settled_body(ByteBuffer& out, std::string_view key, std::uint64_t count);

}  // namespace gophermq
