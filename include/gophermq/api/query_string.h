// A URL's query string (`subject=orders.eu&id=...`), as GET /api/stream
// takes its arguments (api-extensions.md §8).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace gophermq {

// The value of `key` in `query`, percent-decoded (`%2E` is `.`; `+` stays
// a literal plus, as the contract says). The last of several wins; a key
// given without `=` has an empty value. nullopt when the key is absent;
// `malformed` is set when its value has a `%` without two hex digits after
// it.
std::optional<std::string> query_value(std::string_view query, std::string_view key,
                                       bool& malformed);

}  // namespace gophermq
