// Decoding a request body: the JSON object {"subject":..., "data":..., "id":...}
// read in place from the receive buffer with simdjson On-Demand.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "gophermq/byte_buffer.h"

namespace gophermq {

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
  // Batch publish (§9), read only when the decoder is asked for a batch:
  // `data` as a list of strings (one subject), or `messages`, a list of
  // {subject, data} objects. The flags tell an absent (or null) list from an
  // empty one.
  std::span<const std::string_view> batch_data;
  bool has_batch_data = false;
  std::span<const BatchEntry> batch_messages;
  bool has_batch_messages = false;
};

// Mirrors Go's encoding/json into a struct, which is what the original used:
// keys match case-insensitively, the last duplicate wins, null leaves a field
// unset, unknown fields are ignored (but must be valid JSON), and a body that
// is empty decodes to an empty request. Anything that is not one JSON object
// (with nothing but whitespace after it) is invalid, as is a non-string
// subject, data or id.
class RequestDecoder {
 public:
  // The request `body` holds, or nullptr when it holds none. It is the
  // decoder's own, valid until its next decode, and rebuilt in place by each:
  // a caller's own copy would cost a 260-byte fill per request.
  // `padded_capacity` counts the readable bytes from `body` on, which must be
  // at least size + simdjson::SIMDJSON_PADDING. With `batch`, the body of a
  // batch publish: `data` is a list and `messages` is read; otherwise
  // `messages` is an unknown field and a list as `data` is invalid.
  const DecodedRequest* decode(const char* body, std::size_t size, std::size_t padded_capacity,
                               bool batch = false);

 private:
  // Fills request_, which it starts afresh.
  simdjson::error_code decode_document(const char* body, std::size_t size,
                                       std::size_t padded_capacity, bool batch);

  DecodedRequest request_;  // what decode() returns
  simdjson::ondemand::parser parser_;
  std::vector<std::uint64_t> seqs_;  // what DecodedRequest::seqs views
  // What DecodedRequest::batch_data and batch_messages view.
  std::vector<std::string_view> batch_data_;
  std::vector<BatchEntry> batch_messages_;
  ByteBuffer repaired_;  // a body rewritten the way Go reads invalid UTF-8
};

}  // namespace gophermq
