// A parser for the small subset of YAML that config.yaml uses: block mappings
// nested by space indentation, `key: value` scalars (plain, 'single' and
// "double" quoted), `#` comments, blank lines and an optional leading `---`.
// Everything else (sequences, flow collections, anchors, tags, block and
// multi-line scalars, tab indentation, keys containing '.') is reported as an
// error with its line number rather than half-understood.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gophermq::yaml {

// One scalar of the document, keyed by its path of mapping keys joined by '.':
// `broker:\n  max-pending: 1000` gives {"broker.max-pending", "1000", 2}.
struct Scalar {
  std::string key;
  std::string value;
  int line = 0;
  // YAML's "no value": `key:` with nothing nested under it, `~` or `null`.
  // Distinct from an empty string, which has to be written `''` or `""`.
  bool is_null = false;
};

struct Document {
  std::vector<Scalar> scalars;  // in document order
  std::string error;            // empty on success
  int error_line = 0;           // 1-based line of `error`
  bool ok() const { return error.empty(); }
};

Document parse(std::string_view text);

}  // namespace gophermq::yaml
