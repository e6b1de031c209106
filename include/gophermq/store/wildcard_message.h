// What a wildcard subscriber's queue stores for each message
// (api-extensions.md §10): the subject it was published to, then its data,
// as one payload: [subject size, 4 bytes][subject][data]. The subject must
// reach the fetch answer ("subjects"), but the 16-byte header that every
// message pays for (message.h) stays as it is: only a wildcard delivery
// carries its subject, in its pattern's own arena. A wildcard subscriber's
// byte counts (pending bytes, max_pending_bytes, the broker's budget) count
// these bytes, since they are what it holds. The size is in the host's byte
// order: a framed message never leaves the process.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace gophermq {

struct WildcardMessage {
  std::string_view subject;  // published to
  std::string_view data;
};

inline constexpr std::size_t kWildcardSubjectSizeBytes = sizeof(std::uint32_t);

// `out` is replaced (and keeps its memory for the next message).
inline void frame_wildcard_message(std::string_view subject, std::string_view data,
                                   std::string& out) {
  const auto size = static_cast<std::uint32_t>(subject.size());
  out.clear();
  out.append(reinterpret_cast<const char*>(&size), kWildcardSubjectSizeBytes);
  out.append(subject);
  out.append(data);
}

// `stored` is what frame_wildcard_message() wrote.
inline WildcardMessage unframe_wildcard_message(std::string_view stored) {
  std::uint32_t size;
  std::memcpy(&size, stored.data(), kWildcardSubjectSizeBytes);
  return {stored.substr(kWildcardSubjectSizeBytes, size),
          stored.substr(kWildcardSubjectSizeBytes + size)};
}

}  // namespace gophermq
