// Decoding a request body: the JSON object {"subject":..., "data":..., "id":...}
// read in place from the receive buffer with simdjson On-Demand.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>
#include <vector>

#include "gophermq/api/router.h"
#include "gophermq/byte_buffer.h"

namespace gophermq {

// The fields of a request body the decoder knows.
enum class RequestField : std::uint8_t {
  subject,
  data,       // a string
  data_list,  // `data` as a batch publish's list of strings
  messages,
  id,
  inactive_threshold_ms,
  max_pending,
  max_pending_bytes,
  discard,
  wait_ms,
  max_messages,
  max_bytes,
  ack_wait_ms,
  max_ack_pending,
  max_deliver,
  dead_letter_subject,
  group,
  wildcard,
  seqs,
  through,
  delay_ms,
  unknown,  // in no set: walked only to check it is JSON
};

// The fields one request reads. Go decodes a body into its endpoint's own
// struct and ignores every other key, so `"id":7` on a publish or `"data":5`
// on a subscribe is no error: a field outside the set is walked like an
// unknown one.
class RequestFields {
 public:
  constexpr RequestFields(std::initializer_list<RequestField> fields) {
    for (RequestField field : fields) bits_ |= bit(field);
  }
  // The fields `endpoint`'s body holds; none for one without a JSON body.
  static RequestFields of(Endpoint endpoint);

  constexpr bool has(RequestField field) const { return (bits_ & bit(field)) != 0; }
  constexpr RequestFields operator|(RequestFields other) const {
    RequestFields both{};
    both.bits_ = bits_ | other.bits_;
    return both;
  }

 private:
  static constexpr std::uint32_t bit(RequestField field) {
    return field == RequestField::unknown ? 0 : std::uint32_t{1} << static_cast<unsigned>(field);
  }
  std::uint32_t bits_ = 0;
};

// One message of a many-subject batch publish (api-extensions.md §9).
struct BatchEntry {
  std::string_view subject;
  std::string_view data;
};

// Views into the decoder's own string buffer: valid until its next decode.
struct DecodedRequest {
  // A field of the extensions (api-extensions.md) absent or null.
  static constexpr std::uint64_t kUnset = UINT64_MAX;

  std::string_view subject;
  std::string_view data;
  std::string_view id;
  // Extensions: non-negative integers; any other JSON is an invalid body.
  std::uint64_t inactive_threshold_ms = kUnset;
  std::uint64_t max_pending = kUnset;
  std::uint64_t max_pending_bytes = kUnset;
  std::string_view discard;  // "new" or "old"; empty when absent
  std::uint64_t wait_ms = kUnset;
  std::uint64_t max_messages = kUnset;
  std::uint64_t max_bytes = kUnset;
  // Acknowledgements (api-extensions.md §5): subscribe fields, and the
  // fields of /api/ack and /api/nack. `seqs` views the decoder's own array;
  // `has_seqs` tells an absent (or null) list from an empty one.
  std::uint64_t ack_wait_ms = kUnset;
  std::uint64_t max_ack_pending = kUnset;
  std::uint64_t max_deliver = kUnset;
  // Strings present in the body, even empty, have a non-null data().
  std::string_view dead_letter_subject;
  std::string_view group;  // queue groups (§6)
  bool wildcard = false;   // the subject is a pattern (§10); null is false
  std::span<const std::uint64_t> seqs;
  bool has_seqs = false;
  std::uint64_t through = kUnset;
  std::uint64_t delay_ms = kUnset;
  // Batch publish (§9): `data` as a list of strings (one subject), or
  // `messages`, a list of {subject, data} objects. The flags tell an absent
  // (or null) list from an empty one.
  std::span<const std::string_view> batch_data;
  bool has_batch_data = false;
  std::span<const BatchEntry> batch_messages;
  bool has_batch_messages = false;
};

// Mirrors Go's json.Decoder into the endpoint's struct, which is what the
// original's Echo binder used: keys match case-insensitively, the last
// duplicate wins, null leaves a field unset, fields the endpoint does not
// read are ignored (but must be valid JSON), a body that is empty decodes to
// an empty request, and whatever follows the first JSON value is left
// unread. A first value that is not an object (or null) is invalid, as is a
// read field of the wrong type (a non-string subject, data or id).
class RequestDecoder {
 public:
  // The request `body` holds, or nullptr when it holds none. It is the
  // decoder's own, valid until its next decode, and rebuilt in place by each:
  // a caller's own copy would cost a 260-byte fill per request.
  // `padded_capacity` counts the readable bytes from `body` on, which must be
  // at least size + simdjson::SIMDJSON_PADDING. Only `fields` are read.
  const DecodedRequest* decode(const char* body, std::size_t size, std::size_t padded_capacity,
                               RequestFields fields);

 private:
  // Fills request_, which it starts afresh.
  simdjson::error_code decode_document(const char* body, std::size_t size,
                                       std::size_t padded_capacity, RequestFields fields);

  DecodedRequest request_;  // what decode() returns
  simdjson::ondemand::parser parser_;
  std::vector<std::uint64_t> seqs_;  // what DecodedRequest::seqs views
  // What DecodedRequest::batch_data and batch_messages view.
  std::vector<std::string_view> batch_data_;
  std::vector<BatchEntry> batch_messages_;
  ByteBuffer repaired_;  // a body rewritten the way Go reads invalid UTF-8
};

}  // namespace gophermq
