#include "gophermq/config/config.h"

#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <sstream>
#include <type_traits>
#include <utility>
#include <variant>

#include "gophermq/ascii.h"

namespace gophermq {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kEnvironmentPrefix = "GOPHERMQ_";
constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMiB = 1024 * kKiB;
constexpr std::uint64_t kGiB = 1024 * kMiB;
constexpr std::uint64_t kTiB = 1024 * kGiB;
constexpr std::uint64_t kPiB = 1024 * kTiB;
constexpr std::uint64_t kMaxPort = 65535;
// Reading stops here, so `--config /dev/zero` fails instead of eating memory.
constexpr std::size_t kMaxConfigFileBytes = 1 << 20;
// Merge keys may chain and fan out (a mapping merging two that each merge two
// ...), or merge themselves; this many expansions per file is far beyond any
// real config and stops both.
constexpr int kMaxMerges = 1000;
// broker.cors-origins: a request's Origin is compared with each allowed one,
// and every connection keeps room for the longest (see CorsOrigins).
constexpr std::size_t kMaxCorsOrigins = 64;
constexpr std::size_t kMaxCorsOriginBytes = 512;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string to_lower(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = ascii_lower(c);
  return lower;
}

bool all_digits(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!is_digit(c)) return false;
  }
  return true;
}

// `text` double-quoted and escaped. Values come from files and the
// environment and may hold quotes or newlines; an error must stay one line.
std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte == 0x7F) {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      out += escaped;
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

// ---------------------------------------------------------------------------
// Value syntax, shared by every layer

// Decimal digits only: no sign, no spaces, no trailing junk, at most `max`.
std::optional<std::uint64_t> parse_unsigned(std::string_view text, std::uint64_t max) {
  if (!all_digits(text)) return std::nullopt;
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [stopped_at, status] = std::from_chars(text.data(), end, value);
  if (status != std::errc() || stopped_at != end || value > max) return std::nullopt;
  return value;
}

// A byte count, plain or with a unit: 65536, 64KiB, 4 MiB, 1g. Every unit is a
// power of 1024, whatever its spelling.
std::optional<std::uint64_t> parse_byte_size(std::string_view text) {
  struct Unit {
    std::string_view suffix;
    std::uint64_t bytes;
  };
  static constexpr std::array<Unit, 17> kUnits{{
      {"", 1},
      {"b", 1},
      {"k", kKiB},
      {"kb", kKiB},
      {"kib", kKiB},
      {"m", kMiB},
      {"mb", kMiB},
      {"mib", kMiB},
      {"g", kGiB},
      {"gb", kGiB},
      {"gib", kGiB},
      {"t", kTiB},
      {"tb", kTiB},
      {"tib", kTiB},
      {"p", kPiB},
      {"pb", kPiB},
      {"pib", kPiB},
  }};
  std::size_t digits = 0;
  while (digits < text.size() && is_digit(text[digits])) ++digits;
  std::optional<std::uint64_t> count =
      parse_unsigned(text.substr(0, digits), std::numeric_limits<std::uint64_t>::max());
  if (!count) return std::nullopt;
  std::string_view suffix = text.substr(digits);
  if (suffix.size() > 1 && suffix.front() == ' ') suffix.remove_prefix(1);
  for (const Unit& unit : kUnits) {
    if (!equals_ignoring_case(suffix, unit.suffix)) continue;
    if (*count > std::numeric_limits<std::uint64_t>::max() / unit.bytes) return std::nullopt;
    return *count * unit.bytes;
  }
  return std::nullopt;
}

// In the largest unit that divides it exactly, so bounds read as written:
// 1MiB, 1PiB; and in a unit parse_byte_size reads back.
std::string format_byte_size(std::uint64_t bytes) {
  for (auto [unit, name] : {std::pair{kPiB, "PiB"}, std::pair{kTiB, "TiB"}, std::pair{kGiB, "GiB"},
                            std::pair{kMiB, "MiB"}, std::pair{kKiB, "KiB"}}) {
    if (bytes >= unit && bytes % unit == 0) return std::to_string(bytes / unit) + name;
  }
  return std::to_string(bytes);
}

// A duration as Go's time.ParseDuration reads one: numbers, each with a
// unit and maybe a fraction, summed (10s, 500ms, 1m30s, 1.5h, 2h45m); units
// ns, us (or µs), ms, s, m, h, in any case. A plain number counts seconds.
// Milliseconds, rounded up (a duration that is not zero stays so: 0 often
// means never); nullopt for anything else, or past 2^63 ns.
std::optional<std::uint64_t> parse_duration_ms(std::string_view text) {
  if (!text.empty() && std::all_of(text.begin(), text.end(), is_digit)) {
    std::optional<std::uint64_t> seconds =
        parse_unsigned(text, std::numeric_limits<std::uint32_t>::max());
    if (!seconds) return std::nullopt;
    return *seconds * 1000;
  }
  struct Unit {
    std::string_view name;
    std::uint64_t nanoseconds;
  };
  // Two-letter units first: "ms" is not "m" then "s".
  static constexpr std::array<Unit, 8> kUnits{{
      {"ns", 1},
      {"us", 1'000},
      {"\u00b5s", 1'000},  // micro sign
      {"\u03bcs", 1'000},  // Greek mu
      {"ms", 1'000'000},
      {"s", 1'000'000'000},
      {"m", 60'000'000'000},
      {"h", 3'600'000'000'000},
  }};
  constexpr std::uint64_t kMaxNanoseconds = std::uint64_t{1} << 63;
  std::uint64_t total = 0;
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return std::nullopt;
  while (!text.empty()) {
    std::uint64_t whole = 0;
    std::size_t i = 0;
    for (; i < text.size() && is_digit(text[i]); ++i) {
      if (whole > kMaxNanoseconds / 10) return std::nullopt;
      whole = whole * 10 + static_cast<std::uint64_t>(text[i] - '0');
    }
    const bool has_whole = i > 0;
    // The fraction's first 18 digits (more cannot change a nanosecond).
    std::uint64_t fraction = 0;
    std::uint64_t scale = 1;
    if (i < text.size() && text[i] == '.') {
      const std::size_t first = ++i;
      for (; i < text.size() && is_digit(text[i]); ++i) {
        if (scale < 1'000'000'000'000'000'000ULL) {
          fraction = fraction * 10 + static_cast<std::uint64_t>(text[i] - '0');
          scale *= 10;
        }
      }
      if (i == first && !has_whole) return std::nullopt;
    } else if (!has_whole) {
      return std::nullopt;
    }
    text.remove_prefix(i);
    const Unit* unit = nullptr;
    for (const Unit& candidate : kUnits) {
      if (text.size() >= candidate.name.size() &&
          equals_ignoring_case(text.substr(0, candidate.name.size()), candidate.name)) {
        unit = &candidate;
        break;
      }
    }
    if (unit == nullptr) return std::nullopt;  // a number needs its unit
    text.remove_prefix(unit->name.size());
    if (whole > kMaxNanoseconds / unit->nanoseconds) return std::nullopt;
    // fraction / scale < 1, and unit <= 3.6e12 ns: the product fits.
    const auto part = whole * unit->nanoseconds +
                      static_cast<std::uint64_t>(static_cast<unsigned __int128>(fraction) *
                                                 unit->nanoseconds / scale);
    if (part > kMaxNanoseconds - total) return std::nullopt;
    total += part;
  }
  return total / 1'000'000 + (total % 1'000'000 != 0 ? 1 : 0);
}

// Whole hours as hours (a bound of 24h), else seconds (a default of 60s, not
// 1m), else milliseconds.
std::string format_duration(std::chrono::milliseconds duration) {
  auto milliseconds = static_cast<std::uint64_t>(duration.count());
  if (milliseconds >= 3'600'000 && milliseconds % 3'600'000 == 0) {
    return std::to_string(milliseconds / 3'600'000) + "h";
  }
  if (milliseconds % 1000 != 0) return std::to_string(milliseconds) + "ms";
  return std::to_string(milliseconds / 1000) + "s";
}

std::string_view strip_brackets(std::string_view host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    return host.substr(1, host.size() - 2);
  }
  return host;
}

// Characters of host names and IPv4/IPv6 literals (with a %zone). Resolution
// errors surface when binding; this only rejects what cannot be a host at all.
bool valid_host(std::string_view host) {
  if (host.empty()) return false;
  for (char c : host) {
    if (!is_alpha(c) && !is_digit(c) && c != '.' && c != '-' && c != '_' && c != ':' && c != '%') {
      return false;
    }
  }
  return true;
}

// A listen address as Go writes them. A bare port changes only the port; any
// form with a colon is a whole address, so ":9001" also resets the host to
// every interface, as it means in Go.
struct AddressSetting {
  std::optional<std::string> host;
  std::uint16_t port = 0;
};

std::optional<AddressSetting> parse_address(std::string_view text) {
  AddressSetting address;
  std::string_view port = text;
  if (std::size_t colon = text.rfind(':'); colon != std::string_view::npos) {
    std::string_view host = text.substr(0, colon);
    port = text.substr(colon + 1);
    std::string_view unbracketed = strip_brackets(host);
    // An IPv6 literal needs its brackets, or its colons run into the port's.
    if (unbracketed == host && host.find_first_of(":[]") != std::string_view::npos) {
      return std::nullopt;
    }
    if (!host.empty() && !valid_host(unbracketed)) return std::nullopt;
    address.host = std::string(unbracketed);
  }
  std::optional<std::uint64_t> number = parse_unsigned(port, kMaxPort);
  if (!number) return std::nullopt;
  address.port = static_cast<std::uint16_t>(*number);
  return address;
}

std::string format_address(const ListenAddress& address) {
  bool ipv6 = address.host.find(':') != std::string::npos;
  return (ipv6 ? "[" + address.host + "]" : address.host) + ":" + std::to_string(address.port);
}

// An origin as a browser serializes it (RFC 6454): scheme://host[:port],
// nothing after. Returned as the browser writes it, to be compared byte for
// byte: lower-cased, without a port that is its scheme's default.
std::optional<std::string> parse_origin(std::string_view text) {
  const std::string origin = to_lower(text);
  const std::size_t scheme_end = origin.find("://");
  if (scheme_end == std::string::npos || scheme_end == 0 || !is_alpha(origin[0])) {
    return std::nullopt;
  }
  const std::string_view scheme = std::string_view(origin).substr(0, scheme_end);
  for (char c : scheme) {
    if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return std::nullopt;
  }
  const std::string_view authority = std::string_view(origin).substr(scheme_end + 3);
  // An IPv6 literal keeps its brackets; its colons are not the port's.
  const std::size_t host_end =
      authority.starts_with('[') ? authority.find(']') + 1 : authority.find(':');
  if (host_end == 0) return std::nullopt;  // no `]`
  const std::string_view host = authority.substr(0, host_end);
  const std::string_view port = host_end < authority.size() ? authority.substr(host_end) : "";
  const std::string_view host_chars =
      host.starts_with('[') ? host.substr(1, host.size() - 2) : host;
  if (host_chars.empty()) return std::nullopt;
  for (char c : host_chars) {
    const bool allowed = host.starts_with('[')
                             ? hex_value(c) >= 0 || c == ':' || c == '.'
                             : is_alpha(c) || is_digit(c) || c == '.' || c == '-' || c == '_';
    if (!allowed) return std::nullopt;
  }
  std::string normalized = std::string(scheme) + "://" + std::string(host);
  if (port.empty()) return normalized;
  std::optional<std::uint64_t> number;
  if (port.starts_with(':')) number = parse_unsigned(port.substr(1), kMaxPort);
  if (!number || *number == 0) return std::nullopt;
  const bool default_port =
      (scheme == "http" && *number == 80) || (scheme == "https" && *number == 443);
  if (!default_port) normalized += ":" + std::to_string(*number);
  return normalized;
}

std::optional<bool> parse_bool(std::string_view text) {
  for (std::string_view yes : {"true", "1", "yes", "on"}) {
    if (equals_ignoring_case(text, yes)) return true;
  }
  for (std::string_view no : {"false", "0", "no", "off"}) {
    if (equals_ignoring_case(text, no)) return false;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// Kinds of setting. Each reads a value's text into its field of Config and
// shows the field (for --help). `read` stores a valid value and returns "", or
// leaves the field alone and returns why the text is invalid, phrased to
// follow the key ("must be ...").

struct Flag {
  bool Config::*field;

  std::string read(Config& config, std::string_view text) const {
    std::optional<bool> value = parse_bool(text);
    if (!value) return "must be true or false (or 1/0, yes/no, on/off)";
    config.*field = *value;
    return "";
  }
  std::string show(const Config& config) const { return config.*field ? "true" : "false"; }
};

// A field of Config of some unsigned integer type, read and written as a
// uint64_t, so one kind serves unsigned, size_t and uint64_t fields alike.
// The setting's bounds keep every stored value within the field's type.
struct NumberField {
  std::uint64_t (*get)(const Config&);
  void (*set)(Config&, std::uint64_t);
};

template <auto member>
constexpr NumberField number_field() {
  using Field = std::remove_reference_t<decltype(std::declval<Config&>().*member)>;
  static_assert(std::is_unsigned_v<Field>);
  return {[](const Config& config) -> std::uint64_t { return config.*member; },
          [](Config& config, std::uint64_t value) { config.*member = static_cast<Field>(value); }};
}

struct Count {
  NumberField field;
  std::uint64_t min;
  std::uint64_t max;
  std::string_view note = {};  // said after the range: what a special value means
  // Set when `max` only guards against overflow, naming it ("2^62"): the
  // requirement then reads ">= min", and `max` is mentioned only to a value
  // past it.
  std::string_view cap_name = {};

  std::string read(Config& config, std::string_view text) const {
    std::optional<std::uint64_t> count =
        parse_unsigned(text, std::numeric_limits<std::uint64_t>::max());
    if (count && *count >= min && *count <= max) {
      field.set(config, *count);
      return "";
    }
    if (cap_name.empty()) {
      return "must be an integer from " + std::to_string(min) + " to " + std::to_string(max) +
             (note.empty() ? "" : " (" + std::string(note) + ")");
    }
    // Digits past 64 bits are past the cap too.
    bool too_large = count ? *count > max : all_digits(text);
    if (too_large) {
      return "must be at most " + std::to_string(max) + " (" + std::string(cap_name) + ")";
    }
    return "must be an integer >= " + std::to_string(min);
  }
  std::string show(const Config& config) const { return std::to_string(field.get(config)); }
};

struct ByteSize {
  NumberField field;
  std::uint64_t min;
  std::uint64_t max;
  std::string_view examples = "65536, 64KiB, 1MiB";  // values that suit the range

  std::string read(Config& config, std::string_view text) const {
    std::optional<std::uint64_t> bytes = parse_byte_size(text);
    if (!bytes || *bytes < min || *bytes > max) {
      return "must be a byte size from " + format_byte_size(min) + " to " + format_byte_size(max) +
             " (e.g. " + std::string(examples) + ")";
    }
    field.set(config, *bytes);
    return "";
  }
  std::string show(const Config& config) const { return format_byte_size(field.get(config)); }
};

struct Duration {
  std::chrono::milliseconds Config::*field;
  std::chrono::milliseconds min;
  std::chrono::milliseconds max;

  std::string read(Config& config, std::string_view text) const {
    std::optional<std::uint64_t> milliseconds = parse_duration_ms(text);
    if (!milliseconds || *milliseconds < static_cast<std::uint64_t>(min.count()) ||
        *milliseconds > static_cast<std::uint64_t>(max.count())) {
      std::string range = min == 0ms
                              ? "up to " + format_duration(max)
                              : "from " + format_duration(min) + " to " + format_duration(max);
      return "must be a duration " + range + " (e.g. 10s, 500ms, 1m30s)";
    }
    config.*field = std::chrono::milliseconds(*milliseconds);
    return "";
  }
  std::string show(const Config& config) const { return format_duration(config.*field); }
};

// The host half of a listen address, on its own.
struct Host {
  ListenAddress Config::*address;

  std::string read(Config& config, std::string_view text) const {
    if (!text.empty() && !valid_host(strip_brackets(text))) {
      return "must be a host name or IP address, or empty for every interface";
    }
    (config.*address).host = strip_brackets(text);
    return "";
  }
  std::string show(const Config& config) const {
    const std::string& host = (config.*address).host;
    return host.empty() ? quoted("") : host;
  }
};

// A port, or a whole listen address (see parse_address).
struct Address {
  ListenAddress Config::*address;
  // The host has a Host setting of its own, which shows it; this one shows
  // only the port.
  bool host_shown_apart = false;

  std::string read(Config& config, std::string_view text) const {
    std::optional<AddressSetting> parsed = parse_address(text);
    if (!parsed) {
      return "must be a port 0-65535 (0 = any free port) or an address: :PORT, HOST:PORT, "
             "[IPV6]:PORT";
    }
    ListenAddress& field = config.*address;
    if (parsed->host) field.host = std::move(*parsed->host);
    field.port = parsed->port;
    return "";
  }
  std::string show(const Config& config) const {
    const ListenAddress& field = config.*address;
    return host_shown_apart ? std::to_string(field.port) : format_address(field);
  }
};

// broker.cors-origins: "*" alone, or origins separated by commas (a YAML
// list is read as its items so joined); empty for none.
struct OriginList {
  std::vector<std::string> Config::*field;

  std::string read(Config& config, std::string_view text) const {
    std::vector<std::string> origins;
    const bool blank = text.find_first_not_of(" \t") == std::string_view::npos;
    for (std::size_t start = 0; !blank && start <= text.size();) {
      const std::size_t comma = std::min(text.find(',', start), text.size());
      std::string_view piece = text.substr(start, comma - start);
      start = comma + 1;
      piece.remove_prefix(std::min(piece.find_first_not_of(" \t"), piece.size()));
      piece.remove_suffix(piece.size() - (piece.find_last_not_of(" \t") + 1));
      if (piece == "*") {
        if (text.find(',') != std::string_view::npos) {
          return "must be * alone, or a list of origins without it";
        }
        origins.emplace_back("*");
        continue;
      }
      std::optional<std::string> origin = parse_origin(piece);
      if (!origin || origin->size() > kMaxCorsOriginBytes) {
        return "must be * or origins, comma-separated, each scheme://host[:port] with no path "
               "(e.g. https://app.example.com): " +
               quoted(piece) + " is not one";
      }
      if (std::ranges::find(origins, *origin) == origins.end()) origins.push_back(*origin);
    }
    if (origins.size() > kMaxCorsOrigins) {
      return "must be at most " + std::to_string(kMaxCorsOrigins) + " origins";
    }
    config.*field = std::move(origins);
    return "";
  }
  std::string show(const Config& config) const {
    std::string list;
    for (const std::string& origin : config.*field) list += (list.empty() ? "" : ",") + origin;
    return list.empty() ? quoted("") : list;
  }
};

template <typename Value>
struct Name {
  std::string_view name;
  Value value;
};

// The first name listed for a value is how it is shown; later ones are
// accepted synonyms.
template <typename Value>
std::string_view name_of(std::span<const Name<Value>> names, Value value) {
  for (const Name<Value>& name : names) {
    if (name.value == value) return name.name;
  }
  return "";
}

// One of a few names, any case.
template <typename Value>
struct Choice {
  Value Config::*field;
  std::span<const Name<Value>> names;

  std::string read(Config& config, std::string_view text) const {
    for (const Name<Value>& name : names) {
      if (!equals_ignoring_case(text, name.name)) continue;
      config.*field = name.value;
      return "";
    }
    std::vector<std::string_view> shown;
    for (const Name<Value>& name : names) {
      if (name_of(names, name.value) == name.name) shown.push_back(name.name);
    }
    if (shown.size() == 2) {
      return "must be " + std::string(shown[0]) + " or " + std::string(shown[1]);
    }
    std::string list;
    for (std::string_view name : shown) list += (list.empty() ? "" : ", ") + std::string(name);
    return "must be one of " + list;
  }
  std::string show(const Config& config) const {
    return std::string(name_of(names, config.*field));
  }
};

// The original logged with logrus, whose configs may also say trace, fatal or
// panic; those map to the nearest level we have.
constexpr std::array<Name<LogLevel>, 8> kLogLevelNames{{
    {"debug", LogLevel::debug},
    {"info", LogLevel::info},
    {"warn", LogLevel::warn},
    {"error", LogLevel::error},
    {"trace", LogLevel::debug},
    {"warning", LogLevel::warn},
    {"fatal", LogLevel::error},
    {"panic", LogLevel::error},
}};

constexpr std::array<Name<IoUringMode>, 2> kIoUringModeNames{{
    {"auto", IoUringMode::automatic},
    {"basic", IoUringMode::basic},
}};

// ---------------------------------------------------------------------------
// Every setting. Each layer (config file, environment, flags) applies values
// through this table, and --help is written from it.

using Kind = std::variant<Flag, Count, ByteSize, Duration, Host, Address, OriginList,
                          Choice<LogLevel>, Choice<IoUringMode>>;

struct Setting {
  std::string_view key;         // as in config.yaml, dotted; the flag is --key
  std::string_view value_name;  // the flag's argument in --help
  std::string_view help;
  Kind kind;

  std::string read(Config& config, std::string_view text) const {
    return std::visit([&](const auto& kind) { return kind.read(config, text); }, this->kind);
  }
  std::string show(const Config& config) const {
    return std::visit([&](const auto& kind) { return kind.show(config); }, this->kind);
  }
};

const std::array<Setting, 33> kSettings{{
    {"logger.level", "LEVEL", "log level: debug, info, warn or error",
     Choice<LogLevel>{&Config::log_level, kLogLevelNames}},
    {"broker.host", "HOST", "address the HTTP API listens on; empty = every interface",
     Host{&Config::api}},
    {"broker.port", "PORT", "HTTP API port, or HOST:PORT; 0 = any free port",
     Address{.address = &Config::api, .host_shown_apart = true}},
    {"broker.max-pending", "N",
     "most messages a subject holds, one per subscriber queue, 1 to 2^62",
     Count{.field = number_field<&Config::max_pending>(),
           .min = 1,
           .max = std::uint64_t{1} << 62,
           .cap_name = "2^62"}},
    {"broker.cores", "N", "shards (one thread each), 0 to 1024; 0 = one per CPU we may run on",
     Count{.field = number_field<&Config::shards>(),
           .min = 0,
           .max = 1024,
           .note = "0 = one shard per CPU"}},
    {"broker.max-body", "SIZE", "largest request body, 1KiB to 1GiB (e.g. 65536, 64KiB, 4MiB)",
     ByteSize{number_field<&Config::max_body_bytes>(), kKiB, kGiB}},
    {"broker.max-header-bytes", "SIZE", "largest request header block, 1KiB to 1MiB",
     ByteSize{number_field<&Config::max_header_bytes>(), kKiB, kMiB}},
    {"broker.max-pending-bytes", "SIZE",
     "most payload bytes held broker-wide, each message once, 1KiB to 1PiB",
     ByteSize{.field = number_field<&Config::max_pending_bytes>(),
              .min = kKiB,
              .max = kPiB,
              .examples = "512MiB, 4GiB"}},
    {"broker.max-pending-total", "N",
     "most messages held broker-wide, as max-pending counts; 0 = 16x that",
     Count{.field = number_field<&Config::max_pending_total>(),
           .min = 0,
           .max = std::uint64_t{1} << 62,
           .note = "0 = sixteen times broker.max-pending",
           .cap_name = "2^62"}},
    {"broker.max-pending-bytes-per-subject", "SIZE",
     "most payload bytes one subject holds; 0 = a 16th of max-pending-bytes",
     ByteSize{.field = number_field<&Config::max_pending_bytes_per_subject>(),
              .min = 0,
              .max = kPiB,
              .examples = "0, 64MiB"}},
    {"broker.max-connections", "N", "most client connections open at once, broker-wide",
     Count{number_field<&Config::max_connections>(), 1, 100'000'000}},
    {"broker.read-timeout", "DURATION",
     "time a started request may take to arrive whole; then 408 and close",
     Duration{&Config::read_timeout, 100ms, 24h}},
    {"broker.idle-timeout", "DURATION", "an idle keep-alive connection is closed after this",
     Duration{&Config::idle_timeout, 100ms, 24h}},
    {"broker.max-unsent-bytes", "SIZE",
     "unread answer bytes past which a connection's requests wait, 64KiB to 1GiB",
     ByteSize{number_field<&Config::max_unsent_bytes>(), 64 * kKiB, kGiB}},
    {"broker.max-unsent-bytes-total", "SIZE",
     "answer bytes all connections may owe before fetches shrink, 1MiB to 1PiB",
     ByteSize{number_field<&Config::max_unsent_bytes_total>(), kMiB, kPiB}},
    {"broker.max-pipeline-depth", "N",
     "answers a connection may be owed before its requests wait, 1 to 65536",
     Count{number_field<&Config::max_pipeline_depth>(), 1, 65536}},
    {"broker.write-timeout", "DURATION",
     "a client that takes none of its answers for this long is cut off",
     Duration{&Config::write_timeout, 100ms, 24h}},
    {"broker.max-fetch-bytes", "SIZE",
     "most message bytes in a fetch answer, 1KiB to 1GiB; the rest stays queued",
     ByteSize{number_field<&Config::max_fetch_bytes>(), kKiB, kGiB}},
    {"broker.max-fetch-wait", "DURATION",
     "longest wait_ms of a fetch, up to 1h; a longer one is clamped to it",
     Duration{&Config::max_fetch_wait, 0ms, 1h}},
    {"broker.max-waiting-fetches", "N",
     "waiting fetches per subscriber, 1 to 65536; one more is 409",
     Count{number_field<&Config::max_waiting_fetches>(), 1, 65536}},
    {"broker.max-batch", "N", "messages in one batch publish, 1 to 1000000; more is 400",
     Count{number_field<&Config::max_batch>(), 1, 1'000'000}},
    {"broker.stream-heartbeat", "DURATION",
     "a comment line to an event stream idle this long (10ms to 1h)",
     Duration{&Config::stream_heartbeat, 10ms, 1h}},
    {"broker.stream-flush-interval", "DURATION",
     "events go to a stream at most this often, 0 to 1s (0: at once)",
     Duration{&Config::stream_flush_interval, 0ms, 1s}},
    {"broker.shutdown-timeout", "DURATION",
     "on SIGTERM, most time to answer what was read (e.g. 10s, 500ms)",
     Duration{&Config::shutdown_timeout, 0ms, 1h}},
    {"broker.io-uring", "MODE", "io_uring features: auto (the best the kernel has) or basic",
     Choice<IoUringMode>{&Config::io_uring, kIoUringModeNames}},
    {"broker.max-subject-bytes", "N",
     "longest subject in bytes, 1 to 65536; longer is 400 invalid subject",
     Count{number_field<&Config::max_subject_bytes>(), 1, 65536}},
    {"broker.max-subscribers", "N", "most subscribers broker-wide; past it subscribe is 429",
     Count{number_field<&Config::max_subscribers>(), 1, std::uint64_t{1} << 40}},
    {"broker.max-subscribers-per-subject", "N",
     "most subscribers of one subject; past it subscribe is 429",
     // Below 2^32: a subject's log counts the cursors at each message in 32 bits.
     Count{number_field<&Config::max_subscribers_per_subject>(), 1, (std::uint64_t{1} << 32) - 1}},
    {"broker.max-subjects", "N", "most subjects broker-wide; past it subscribe to a new one is 429",
     Count{number_field<&Config::max_subjects>(), 1, std::uint64_t{1} << 40}},
    {"broker.inactive-threshold", "DURATION",
     "an idle subscriber is unsubscribed after this, up to 8760h; 0 = never",
     Duration{&Config::inactive_threshold, 0ms, 8760h}},
    {"broker.cors-origins", "ORIGINS",
     "origins whose web pages may call the API (comma-separated), or *",
     OriginList{&Config::cors_origins}},
    {"monitoring.enable", "BOOL", "serve the monitoring endpoint: true or false",
     Flag{&Config::monitoring_enabled}},
    {"monitoring.port", "ADDR", "monitoring listen address: PORT, :PORT or HOST:PORT",
     Address{&Config::monitoring}},
}};

// Keys match case-insensitively: the original's config library lower-cases
// every key it reads.
const Setting* find_setting(std::string_view key) {
  for (const Setting& setting : kSettings) {
    if (equals_ignoring_case(key, setting.key)) return &setting;
  }
  return nullptr;
}

// A key equal to a known one but for case and separators is a typo of it:
// broker.max_pending, broker.max.pending (from GOPHERMQ_BROKER_MAX_PENDING).
const Setting* similar_setting(std::string_view key) {
  auto letters_and_digits = [](std::string_view text) {
    std::string kept;
    for (char c : text) {
      if (is_alpha(c) || is_digit(c)) kept += ascii_lower(c);
    }
    return kept;
  };
  std::string wanted = letters_and_digits(key);
  for (const Setting& setting : kSettings) {
    if (letters_and_digits(setting.key) == wanted) return &setting;
  }
  return nullptr;
}

std::string environment_variable(std::string_view key) {
  std::string name(kEnvironmentPrefix);
  for (char c : key) {
    if (c == '-') {
      name += "__";
    } else if (c == '.') {
      name += '_';
    } else {
      name += ascii_upper(c);
    }
  }
  return name;
}

// How each layer writes a key, so a "did you mean" hint reads in its terms.
enum class Spelling { key, environment, flag };

std::string spell(std::string_view key, Spelling spelling) {
  switch (spelling) {
    case Spelling::key:
      return std::string(key);
    case Spelling::environment:
      return environment_variable(key);
    case Spelling::flag:
      return "--" + std::string(key);
  }
  return std::string(key);
}

std::string did_you_mean(std::string_view key, Spelling spelling) {
  const Setting* similar = similar_setting(key);
  return similar ? " (did you mean " + spell(similar->key, spelling) + "?)" : "";
}

std::string unknown_key_error(std::string_view key, Spelling spelling) {
  return "unknown key " + quoted(key) + did_you_mean(key, spelling);
}

bool is_own_section(std::string_view key) {
  return key == "broker" || key == "monitoring" || key == "logger";
}

// The config file and the environment may be shared with other programs:
// their keys are theirs and ignored, but an unknown key in one of our own
// sections (or one of them holding a value) is a typo.
bool is_ours(std::string_view key) {
  std::size_t dot = key.find('.');
  return is_own_section(key.substr(0, dot));
}

// ---------------------------------------------------------------------------
// The config file

struct FileContents {
  std::string text;
  int error = 0;  // an errno value
};

FileContents read_file(const std::string& path) {
  FileContents file;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    file.error = errno;
    return file;
  }
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) file.error = errno;
    if (n <= 0) break;
    file.text.append(buffer, static_cast<std::size_t>(n));
    if (file.text.size() > kMaxConfigFileBytes) {
      file.error = EFBIG;
      break;
    }
  }
  ::close(fd);
  return file;
}

std::string file_error(const std::string& path, const YAML::Mark& mark, std::string_view error) {
  // yaml-cpp counts lines from 0, editors from 1.
  std::string line = mark.is_null() ? "" : ":" + std::to_string(mark.line + 1);
  return "config error: " + path + line + ": " + std::string(error);
}

// YAML's merge key, `<<: *defaults`, unless quoted into a plain string key.
bool is_merge_key(const YAML::Node& key) {
  return key.IsScalar() && key.Scalar() == "<<" && key.Tag() != "!";
}

std::string_view type_name(const YAML::Node& node) {
  return node.IsMap() ? "mapping" : node.IsSequence() ? "list" : "single value";
}

// Applies the YAML document of a config file. Only our own sections (logger,
// broker, monitoring) are read below their top-level key: the rest of the file
// may belong to other programs.
class ConfigFile {
 public:
  ConfigFile(Config& config, const std::string& path) : config_(config), path_(path) {}

  // `root` is the file's one document.
  std::string apply(const YAML::Node& root) {
    if (root.IsNull()) return "";
    if (!root.IsMap()) {
      return error_at(root.Mark(), "the config must be a mapping of keys, not a " +
                                       std::string(type_name(root)));
    }
    return apply_mapping(root, "");
  }

 private:
  struct Entry {
    YAML::Node key;
    YAML::Node value;
  };

  std::string error_at(const YAML::Mark& mark, std::string_view error) const {
    return file_error(path_, mark, error);
  }

  // `section` is empty for the document's top level.
  std::string apply_mapping(const YAML::Node& mapping, const std::string& section) {
    std::vector<Entry> entries;
    std::string error = expand_merges(mapping, entries);
    for (auto entry = entries.begin(); error.empty() && entry != entries.end(); ++entry) {
      error = apply_entry(section, entry->key, entry->value);
    }
    return error;
  }

  // A mapping's entries with merge keys expanded as the original's YAML
  // library does: its own entries, then those of each mapping merged in, in
  // order, except keys already there.
  std::string expand_merges(const YAML::Node& mapping, std::vector<Entry>& entries) {
    std::vector<YAML::Node> merged;
    for (const auto& pair : mapping) {
      if (!is_merge_key(pair.first)) {
        entries.push_back({pair.first, pair.second});
        continue;
      }
      std::vector<YAML::Node> sources;
      if (pair.second.IsSequence()) {
        for (const YAML::Node& source : pair.second) sources.push_back(source);
      } else {
        sources.push_back(pair.second);
      }
      if (!std::ranges::all_of(sources, [](const YAML::Node& source) { return source.IsMap(); })) {
        return error_at(pair.first.Mark(),
                        "a merge key (<<) needs a mapping or a list of mappings");
      }
      merged.insert(merged.end(), sources.begin(), sources.end());
    }
    std::set<std::string> keys;
    for (const Entry& entry : entries) {
      if (entry.key.IsScalar()) keys.insert(to_lower(entry.key.Scalar()));
    }
    for (const YAML::Node& source : merged) {
      if (--merges_left_ < 0) {
        return error_at(source.Mark(), "more than " + std::to_string(kMaxMerges) +
                                           " merges (<<); does a mapping merge itself?");
      }
      std::vector<Entry> inherited;
      std::string error = expand_merges(source, inherited);
      if (!error.empty()) return error;
      for (Entry& entry : inherited) {
        if (!entry.key.IsScalar() || keys.insert(to_lower(entry.key.Scalar())).second) {
          entries.push_back(std::move(entry));
        }
      }
    }
    return "";
  }

  std::string apply_entry(const std::string& section, const YAML::Node& key,
                          const YAML::Node& value) {
    if (!key.IsScalar()) {
      if (section.empty()) return "";  // cannot be one of our keys
      return error_at(key.Mark(), "a key under " + section + " must be a name, not a " +
                                      std::string(type_name(key)));
    }
    std::string name = to_lower(key.Scalar());
    std::string path = section.empty() ? name : section + "." + name;
    // `broker: {port: 1}` and `broker.port: 2` are duplicates too: which one
    // won would depend on their order.
    auto [first, inserted] = key_lines_.try_emplace(path, key.Mark().line + 1);
    if (!inserted) {
      return error_at(key.Mark(), "duplicate key " + quoted(path) + " (first on line " +
                                      std::to_string(first->second) + ")");
    }
    if (const Setting* setting = find_setting(path)) {
      // YAML's "no value" (`port:`, `port: ~`) leaves the lower layer's value,
      // as in the original.
      if (value.IsNull()) return "";
      std::string text;
      if (value.IsSequence() && std::holds_alternative<OriginList>(setting->kind)) {
        // Its items, joined as the flag and the environment write them.
        for (const YAML::Node& item : value) {
          if (!item.IsScalar()) {
            return error_at(item.Mark(), std::string(setting->key) +
                                             " must be a list of single values, not of a " +
                                             std::string(type_name(item)));
          }
          text += (text.empty() ? "" : ",") + item.Scalar();
        }
      } else if (!value.IsScalar()) {
        return error_at(key.Mark(), std::string(setting->key) + " must be a single value, not a " +
                                        std::string(type_name(value)));
      } else {
        text = value.Scalar();
      }
      std::string error = apply_setting(config_, setting->key, text);
      return error.empty() ? "" : error_at(key.Mark(), error);
    }
    if (section.empty() && is_own_section(path) && (value.IsMap() || value.IsNull())) {
      return value.IsMap() ? apply_mapping(value, path) : "";
    }
    return is_ours(path) ? error_at(key.Mark(), unknown_key_error(path, Spelling::key)) : "";
  }

  Config& config_;
  const std::string& path_;
  std::map<std::string, int> key_lines_;  // each dotted key read, and its first line
  int merges_left_ = kMaxMerges;
};

// Follows a YAML stream's documents without building them, noting where each
// starts and whether it holds anything.
class DocumentScan final : public YAML::EventHandler {
 public:
  YAML::Mark start;
  bool has_content = false;

  void OnDocumentStart(const YAML::Mark& mark) override {
    start = mark;
    has_content = false;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override { has_content = true; }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {
    has_content = true;
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    has_content = true;
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    has_content = true;
  }
  void OnMapEnd() override {}
};

// The original reads a file's first document and silently ignores any other;
// a second one with content is refused here instead (an empty one after `---`
// is harmless). This pass over the whole stream, before YAML::Load builds the
// first document, also stands in for YAML::LoadAll, which in yaml-cpp 0.7
// loops for ever, allocating, on a stray ',' between documents
// (jbeder/yaml-cpp#1040): its parser then starts empty document after empty
// document at the same token.
std::string check_one_document(const std::string& path, const std::string& text) {
  std::istringstream input(text);
  YAML::Parser parser(input);
  DocumentScan scan;
  std::optional<int> previous_start;
  bool seen_content = false;
  while (parser.HandleNextDocument(scan)) {
    if (previous_start == scan.start.pos) {
      return file_error(path, scan.start, "a YAML value cannot start here");
    }
    previous_start = scan.start.pos;
    if (scan.has_content && std::exchange(seen_content, true)) {
      return file_error(path, scan.start, "a second YAML document; the config is one");
    }
  }
  return "";
}

std::string apply_file(Config& config, const std::string& path, bool named_on_command_line) {
  FileContents file = read_file(path);
  if (file.error == ENOENT && !named_on_command_line) return "";
  if (file.error != 0) {
    return "config error: cannot read config file " + quoted(path) + ": " +
           std::strerror(file.error);
  }
  try {
    std::string error = check_one_document(path, file.text);
    if (!error.empty()) return error;
    return ConfigFile(config, path).apply(YAML::Load(file.text));
  } catch (const YAML::DeepRecursion& too_deep) {
    // yaml-cpp's own message for this one is "bad file".
    return file_error(path, too_deep.mark, "nested too deeply");
  } catch (const YAML::Exception& malformed) {
    return file_error(path, malformed.mark, malformed.msg);
  }
}

// ---------------------------------------------------------------------------
// The environment and the command line

std::string apply_environment(Config& config, const char* const* environment) {
  struct Applied {
    std::string_view name;
    std::string key;
  };
  std::vector<Applied> applied;
  for (const char* const* entry = environment; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view variable = *entry;
    std::size_t equals = variable.find('=');
    if (equals == std::string_view::npos) continue;
    std::string_view name = variable.substr(0, equals);
    std::string_view value = variable.substr(equals + 1);
    std::string key = environment_key(name);
    // An empty variable counts as unset, as in the original (viper's default).
    if (key.empty() || value.empty()) continue;
    for (const Applied& earlier : applied) {
      // Names differing only in case, GOPHERMQ_BROKER_PORT and GOPHERMQ_broker_port:
      // which one wins would depend on the order of the environment.
      if (earlier.key == key) {
        return "config error: " + std::string(earlier.name) + " and " + std::string(name) +
               " both set " + key;
      }
    }
    std::string error;
    if (find_setting(key) != nullptr) {
      error = apply_setting(config, key, value);
    } else if (is_ours(key)) {
      error = unknown_key_error(key, Spelling::environment);
    }
    if (!error.empty()) {
      return "config error: " + std::string(name) + "=" + quoted(value) + ": " + error;
    }
    applied.push_back({name, std::move(key)});
  }
  return "";
}

struct CommandLine {
  bool has_command = false;
  std::optional<std::string> config_path;
  std::vector<std::pair<const Setting*, std::string_view>> settings;  // in command-line order
  std::string error;
};

CommandLine parse_command_line(const std::vector<std::string_view>& args) {
  CommandLine line;
  auto failed = [&line](std::string error) {
    line.error = "usage error: " + std::move(error);
    return line;
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (!arg.starts_with('-')) {
      if (line.has_command) return failed("unexpected argument " + quoted(arg));
      if (arg != "broker") {
        return failed("unknown command " + quoted(arg) + "; run `gophermq broker` (see --help)");
      }
      line.has_command = true;
      continue;
    }
    if (!arg.starts_with("--") || arg.size() == 2) return failed("unknown flag " + quoted(arg));
    std::string_view name = arg.substr(2);
    std::optional<std::string_view> value;
    if (std::size_t equals = name.find('='); equals != std::string_view::npos) {
      value = name.substr(equals + 1);
      name = name.substr(0, equals);
    }
    const bool is_config = name == "config";
    const Setting* setting = is_config ? nullptr : find_setting(name);
    if (!is_config && setting == nullptr) {
      return failed("unknown flag --" + std::string(name) + did_you_mean(name, Spelling::flag));
    }
    if (!value) {
      if (i + 1 == args.size() || args[i + 1].starts_with("--")) {
        return failed("flag --" + std::string(name) + " needs a value");
      }
      value = args[++i];
    }
    if (!is_config) {
      line.settings.emplace_back(setting, *value);
    } else if (value->empty()) {
      return failed("--config needs a file path");
    } else {
      line.config_path = std::string(*value);
    }
  }
  return line;
}

// The two listeners cannot share a port; saying so here beats a bind error
// once half the broker has started.
std::string check_listeners(const Config& config) {
  const ListenAddress& api = config.api;
  const ListenAddress& monitoring = config.monitoring;
  if (!config.monitoring_enabled || api.port == 0 || api.port != monitoring.port) return "";
  if (!api.host.empty() && !monitoring.host.empty() && api.host != monitoring.host) return "";
  return "config error: broker.port and monitoring.port are both " + std::to_string(api.port);
}

}  // namespace

std::string_view log_level_name(LogLevel level) { return name_of<LogLevel>(kLogLevelNames, level); }

ConfigLoad load_config(const std::vector<std::string_view>& args, const char* const* environ,
                       std::string_view working_directory_yaml) {
  ConfigLoad load;
  // Help and version win over everything else, so a broken config file or a
  // bad flag never stands between the operator and --help.
  auto given = [&args](std::string_view long_flag, std::string_view short_flag) {
    return std::ranges::any_of(
        args, [&](std::string_view arg) { return arg == long_flag || arg == short_flag; });
  };
  if (given("--help", "-h")) {
    load.command = Command::help;
    return load;
  }
  if (given("--version", "-v")) {
    load.command = Command::version;
    return load;
  }

  CommandLine line = parse_command_line(args);
  if (line.error.empty() && !line.has_command) {
    line.error =
        "usage error: no command given; run `gophermq broker` to start the broker "
        "(see --help)";
  }
  load.error = std::move(line.error);
  if (!load.ok()) return load;

  std::string path = line.config_path.value_or(std::string(working_directory_yaml));
  load.error = apply_file(load.config, path, line.config_path.has_value());
  if (!load.ok()) return load;
  load.error = apply_environment(load.config, environ);
  if (!load.ok()) return load;
  for (const auto& [setting, value] : line.settings) {
    std::string error = apply_setting(load.config, setting->key, value);
    if (!error.empty()) {
      load.error =
          "config error: --" + std::string(setting->key) + "=" + quoted(value) + ": " + error;
      return load;
    }
  }
  load.error = check_listeners(load.config);
  return load;
}

std::uint64_t pending_total_bound(const Config& config) {
  if (config.max_pending_total != 0) return config.max_pending_total;
  constexpr std::uint64_t kCap = std::uint64_t{1} << 62;
  return config.max_pending > kCap / 16 ? kCap : 16 * config.max_pending;
}

std::uint64_t pending_bytes_per_subject_bound(const Config& config) {
  if (config.max_pending_bytes_per_subject != 0) return config.max_pending_bytes_per_subject;
  return config.max_pending_bytes / 16;
}

std::string apply_setting(Config& config, std::string_view key, std::string_view value) {
  const Setting* setting = find_setting(key);
  if (setting == nullptr) return unknown_key_error(key, Spelling::key);
  std::string error = setting->read(config, value);
  return error.empty() ? error : std::string(setting->key) + " " + error;
}

std::string environment_key(std::string_view variable_name) {
  if (!variable_name.starts_with(kEnvironmentPrefix)) return "";
  std::string rest = to_lower(variable_name.substr(kEnvironmentPrefix.size()));
  // The original's order: every `__` becomes `-` first, then each remaining `_` a `.`.
  std::string key;
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] != '_') {
      key += rest[i];
    } else if (i + 1 < rest.size() && rest[i + 1] == '_') {
      key += '-';
      ++i;
    } else {
      key += '.';
    }
  }
  return key;
}

std::string usage_text() {
  const Config defaults;
  std::string text =
      "Usage:\n"
      "  gophermq broker [flags]   run the broker\n"
      "  gophermq --help           show this help (-h)\n"
      "  gophermq --version        print the version (-v)\n"
      "\n"
      "Settings are read from, later ones winning: built-in defaults; config.yaml in\n"
      "the working directory (or the file given by --config); GOPHERMQ_* environment\n"
      "variables; flags. Write a flag as --key=value or --key value. Every flag below\n"
      "is also a config.yaml key, nested at its dots: --broker.port=0 is `port: 0`\n"
      "under `broker:`.\n"
      "\n"
      "Flags:\n"
      "  --config PATH\n"
      "      YAML file to read instead of ./config.yaml (which may be absent)\n";
  for (const Setting& setting : kSettings) {
    text += "  --";
    text += setting.key;
    text += " ";
    text += setting.value_name;
    text += "\n      ";
    text += setting.help;
    text += "\n      env " + environment_variable(setting.key) + ", default " +
            setting.show(defaults) + "\n";
  }
  return text;
}

}  // namespace gophermq
