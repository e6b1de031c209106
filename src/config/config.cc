#include "gophermq/config.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

#include "gophermq/yaml.h"

namespace gophermq {
namespace {

constexpr std::string_view kEnvironmentPrefix = "GOPHERMQ_";
constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMiB = 1024 * kKiB;
constexpr std::uint64_t kGiB = 1024 * kMiB;
constexpr std::uint64_t kMaxPendingLimit = std::uint64_t{1} << 62;
constexpr std::uint64_t kMaxShards = 1024;
constexpr std::uint64_t kMaxPort = 65535;
// Reading stops here, so `--config /dev/zero` fails instead of eating memory.
constexpr std::size_t kMaxConfigFileBytes = 1 << 20;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char to_lower_ascii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
char to_upper_ascii(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

std::string to_lower(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = to_lower_ascii(c);
  return lower;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_lower_ascii(a[i]) != to_lower_ascii(b[i])) return false;
  }
  return true;
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
  static constexpr std::array<Unit, 11> kUnits{{
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

// A duration as Go writes one, with a unit: 10s, 500ms, 1m, 1m30s is not
// needed by anyone and not accepted. A plain number counts seconds.
std::optional<std::uint64_t> parse_duration_ms(std::string_view text) {
  struct Unit {
    std::string_view suffix;
    std::uint64_t milliseconds;
  };
  static constexpr std::array<Unit, 5> kUnits{{
      {"", 1000},
      {"ms", 1},
      {"s", 1000},
      {"m", 60'000},
      {"h", 3'600'000},
  }};
  std::size_t digits = 0;
  while (digits < text.size() && is_digit(text[digits])) ++digits;
  std::optional<std::uint64_t> count =
      parse_unsigned(text.substr(0, digits), std::numeric_limits<std::uint32_t>::max());
  if (!count) return std::nullopt;
  std::string_view suffix = text.substr(digits);
  for (const Unit& unit : kUnits) {
    if (equals_ignoring_case(suffix, unit.suffix)) return *count * unit.milliseconds;
  }
  return std::nullopt;
}

std::string format_duration_ms(std::uint64_t milliseconds) {
  if (milliseconds % 1000 != 0) return std::to_string(milliseconds) + "ms";
  return std::to_string(milliseconds / 1000) + "s";
}

std::string format_byte_size(std::uint64_t bytes) {
  for (auto [unit, name] :
       {std::pair{kGiB, "GiB"}, std::pair{kMiB, "MiB"}, std::pair{kKiB, "KiB"}}) {
    if (bytes >= unit && bytes % unit == 0) return std::to_string(bytes / unit) + name;
  }
  return std::to_string(bytes);
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

std::optional<bool> parse_bool(std::string_view text) {
  for (std::string_view yes : {"true", "1", "yes", "on"}) {
    if (equals_ignoring_case(text, yes)) return true;
  }
  for (std::string_view no : {"false", "0", "no", "off"}) {
    if (equals_ignoring_case(text, no)) return false;
  }
  return std::nullopt;
}

// The original logged with logrus, whose configs may also say trace, fatal or
// panic; those map to the nearest level we have.
std::optional<LogLevel> parse_log_level(std::string_view text) {
  struct Name {
    std::string_view name;
    LogLevel level;
  };
  static constexpr std::array<Name, 8> kNames{{
      {"debug", LogLevel::debug},
      {"trace", LogLevel::debug},
      {"info", LogLevel::info},
      {"warn", LogLevel::warn},
      {"warning", LogLevel::warn},
      {"error", LogLevel::error},
      {"fatal", LogLevel::error},
      {"panic", LogLevel::error},
  }};
  for (const Name& name : kNames) {
    if (equals_ignoring_case(text, name.name)) return name.level;
  }
  return std::nullopt;
}

// Each apply_* stores a valid value and returns "", or returns why the value
// is invalid, phrased to follow the key ("must be ...").

std::string apply_log_level(Config& config, std::string_view value) {
  std::optional<LogLevel> level = parse_log_level(value);
  if (!level) return "must be one of debug, info, warn, error";
  config.log_level = *level;
  return "";
}

std::string apply_host(Config& config, std::string_view value) {
  if (!value.empty() && !valid_host(strip_brackets(value))) {
    return "must be a host name or IP address, or empty for every interface";
  }
  config.api.host = strip_brackets(value);
  return "";
}

std::string apply_address(ListenAddress& address, std::string_view value) {
  std::optional<AddressSetting> parsed = parse_address(value);
  if (!parsed) {
    return "must be a port 0-65535 (0 = any free port) or an address: :PORT, HOST:PORT, "
           "[IPV6]:PORT";
  }
  if (parsed->host) address.host = std::move(*parsed->host);
  address.port = parsed->port;
  return "";
}

std::string apply_api_port(Config& config, std::string_view value) {
  return apply_address(config.api, value);
}

std::string apply_max_pending(Config& config, std::string_view value) {
  std::optional<std::uint64_t> count = parse_unsigned(value, kMaxPendingLimit);
  if (!count && all_digits(value) && value.find_first_not_of('0') != std::string_view::npos) {
    return "must be at most " + std::to_string(kMaxPendingLimit) + " (2^62)";
  }
  if (!count || *count == 0) return "must be an integer >= 1";
  config.max_pending = *count;
  return "";
}

std::string apply_cores(Config& config, std::string_view value) {
  std::optional<std::uint64_t> shards = parse_unsigned(value, kMaxShards);
  if (!shards) return "must be an integer from 0 to 1024 (0 = one shard per CPU)";
  config.shards = static_cast<unsigned>(*shards);
  return "";
}

std::string apply_byte_size(std::size_t& field, std::string_view value, std::uint64_t min,
                            std::uint64_t max) {
  std::optional<std::uint64_t> bytes = parse_byte_size(value);
  if (!bytes || *bytes < min || *bytes > max) {
    return "must be a byte size from " + format_byte_size(min) + " to " + format_byte_size(max) +
           " (e.g. 65536, 64KiB, 1MiB)";
  }
  field = static_cast<std::size_t>(*bytes);
  return "";
}

std::string apply_max_body(Config& config, std::string_view value) {
  return apply_byte_size(config.max_body_bytes, value, kKiB, kGiB);
}

std::string apply_max_header_bytes(Config& config, std::string_view value) {
  return apply_byte_size(config.max_header_bytes, value, kKiB, kMiB);
}

std::string apply_shutdown_timeout(Config& config, std::string_view value) {
  std::optional<std::uint64_t> milliseconds = parse_duration_ms(value);
  if (!milliseconds || *milliseconds > 3'600'000) {
    return "must be a duration up to 1h (e.g. 10s, 500ms, 2m)";
  }
  config.shutdown_timeout = std::chrono::milliseconds(*milliseconds);
  return "";
}

std::string apply_timeout(std::chrono::milliseconds& field, std::string_view value) {
  std::optional<std::uint64_t> milliseconds = parse_duration_ms(value);
  if (!milliseconds || *milliseconds < 100 || *milliseconds > 86'400'000) {
    return "must be a duration from 100ms to 24h (e.g. 10s, 500ms, 2m)";
  }
  field = std::chrono::milliseconds(*milliseconds);
  return "";
}

std::string apply_read_timeout(Config& config, std::string_view value) {
  return apply_timeout(config.read_timeout, value);
}

std::string apply_idle_timeout(Config& config, std::string_view value) {
  return apply_timeout(config.idle_timeout, value);
}

std::string apply_max_pending_bytes(Config& config, std::string_view value) {
  std::optional<std::uint64_t> bytes = parse_byte_size(value);
  if (!bytes || *bytes < kKiB || *bytes > (1ull << 50)) {
    return "must be a byte size from 1KiB to 1PiB (e.g. 512MiB, 4GiB)";
  }
  config.max_pending_bytes = *bytes;
  return "";
}

std::string apply_max_connections(Config& config, std::string_view value) {
  std::optional<std::uint64_t> count = parse_unsigned(value, 100'000'000);
  if (!count || *count < 1) return "must be an integer from 1 to 100000000";
  config.max_connections = *count;
  return "";
}

std::string apply_max_unsent_bytes(Config& config, std::string_view value) {
  return apply_byte_size(config.max_unsent_bytes, value, 64 * kKiB, kGiB);
}

std::string apply_io_uring(Config& config, std::string_view value) {
  if (equals_ignoring_case(value, "auto")) {
    config.io_uring = IoUringMode::automatic;
  } else if (equals_ignoring_case(value, "basic")) {
    config.io_uring = IoUringMode::basic;
  } else {
    return "must be auto or basic";
  }
  return "";
}

std::string apply_monitoring_enable(Config& config, std::string_view value) {
  std::optional<bool> enabled = parse_bool(value);
  if (!enabled) return "must be true or false (or 1/0, yes/no, on/off)";
  config.monitoring_enabled = *enabled;
  return "";
}

std::string apply_monitoring_port(Config& config, std::string_view value) {
  return apply_address(config.monitoring, value);
}

struct Setting {
  std::string_view key;
  std::string_view value_name;  // the flag's argument in --help
  std::string_view help;
  std::string (*apply)(Config&, std::string_view);
  std::string (*show)(const Config&);  // the current value, for --help's defaults
};

const std::array<Setting, 16> kSettings{{
    {"logger.level", "LEVEL", "log level: debug, info, warn or error", apply_log_level,
     [](const Config& c) { return std::string(log_level_name(c.log_level)); }},
    {"broker.host", "HOST", "address the HTTP API listens on; empty = every interface", apply_host,
     [](const Config& c) { return c.api.host.empty() ? quoted("") : c.api.host; }},
    {"broker.port", "PORT", "HTTP API port, or HOST:PORT; 0 = any free port", apply_api_port,
     [](const Config& c) { return std::to_string(c.api.port); }},
    {"broker.max-pending", "N", "most messages stored broker-wide awaiting delivery, 1 to 2^62",
     apply_max_pending, [](const Config& c) { return std::to_string(c.max_pending); }},
    {"broker.cores", "N", "shards (one thread each), 0 to 1024; 0 = one per CPU we may run on",
     apply_cores, [](const Config& c) { return std::to_string(c.shards); }},
    {"broker.max-body", "SIZE", "largest request body, 1KiB to 1GiB (e.g. 65536, 64KiB, 4MiB)",
     apply_max_body, [](const Config& c) { return format_byte_size(c.max_body_bytes); }},
    {"broker.max-header-bytes", "SIZE", "largest request header block, 1KiB to 1MiB",
     apply_max_header_bytes, [](const Config& c) { return format_byte_size(c.max_header_bytes); }},
    {"broker.max-pending-bytes", "SIZE",
     "most payload bytes stored broker-wide (1KiB to 1PiB); past it 429", apply_max_pending_bytes,
     [](const Config& c) { return format_byte_size(c.max_pending_bytes); }},
    {"broker.max-connections", "N", "most client connections open at once, broker-wide",
     apply_max_connections, [](const Config& c) { return std::to_string(c.max_connections); }},
    {"broker.read-timeout", "DURATION",
     "time a started request may take to arrive whole; then 408 and close", apply_read_timeout,
     [](const Config& c) {
       return format_duration_ms(static_cast<std::uint64_t>(c.read_timeout.count()));
     }},
    {"broker.idle-timeout", "DURATION", "an idle keep-alive connection is closed after this",
     apply_idle_timeout,
     [](const Config& c) {
       return format_duration_ms(static_cast<std::uint64_t>(c.idle_timeout.count()));
     }},
    {"broker.max-unsent-bytes", "SIZE",
     "answers a client may leave unread before it is cut off (64KiB to 1GiB)",
     apply_max_unsent_bytes, [](const Config& c) { return format_byte_size(c.max_unsent_bytes); }},
    {"broker.shutdown-timeout", "DURATION",
     "on SIGTERM, most time to answer what was read (e.g. 10s, 500ms)", apply_shutdown_timeout,
     [](const Config& c) {
       return format_duration_ms(static_cast<std::uint64_t>(c.shutdown_timeout.count()));
     }},
    {"broker.io-uring", "MODE", "io_uring features: auto (the best the kernel has) or basic",
     apply_io_uring,
     [](const Config& c) {
       return std::string(c.io_uring == IoUringMode::basic ? "basic" : "auto");
     }},
    {"monitoring.enable", "BOOL", "serve the monitoring endpoint: true or false",
     apply_monitoring_enable,
     [](const Config& c) { return std::string(c.monitoring_enabled ? "true" : "false"); }},
    {"monitoring.port", "ADDR", "monitoring listen address: PORT, :PORT or HOST:PORT",
     apply_monitoring_port, [](const Config& c) { return format_address(c.monitoring); }},
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
      if (is_alpha(c) || is_digit(c)) kept += to_lower_ascii(c);
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
      name += to_upper_ascii(c);
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

bool in_own_section(std::string_view key) {
  std::size_t dot = key.find('.');
  return dot != std::string_view::npos && is_own_section(key.substr(0, dot));
}

// Applies a setting from config.yaml or the environment, which other programs
// may share: unknown keys are theirs and ignored, except inside our own
// sections, where they are typos. A null `value` is YAML's "no value", which
// leaves the lower layer's value (as the original does) and lets a section
// stand empty.
std::string apply_shared_setting(Config& config, const std::string& key,
                                 std::optional<std::string_view> value, Spelling spelling) {
  if (find_setting(key) == nullptr) {
    if (in_own_section(key) || (is_own_section(key) && value)) {
      return unknown_key_error(key, spelling);
    }
    return "";
  }
  return value ? apply_setting(config, key, *value) : "";
}

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

std::string apply_file(Config& config, const std::string& path, bool named_on_command_line) {
  FileContents file = read_file(path);
  if (file.error == ENOENT && !named_on_command_line) return "";
  if (file.error != 0) {
    return "config error: cannot read config file " + quoted(path) + ": " +
           std::strerror(file.error);
  }
  yaml::Document document = yaml::parse(file.text);
  auto located = [&path](int line, const std::string& error) {
    return "config error: " + path + ":" + std::to_string(line) + ": " + error;
  };
  if (!document.ok()) return located(document.error_line, document.error);
  for (const yaml::Scalar& scalar : document.scalars) {
    std::optional<std::string_view> value;
    if (!scalar.is_null) value = scalar.value;
    std::string error = apply_shared_setting(config, to_lower(scalar.key), value, Spelling::key);
    if (!error.empty()) return located(scalar.line, error);
  }
  return "";
}

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
    std::string error = apply_shared_setting(config, key, value, Spelling::environment);
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

std::string_view log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
  }
  return "info";
}

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

std::string apply_setting(Config& config, std::string_view key, std::string_view value) {
  const Setting* setting = find_setting(key);
  if (setting == nullptr) return unknown_key_error(key, Spelling::key);
  std::string error = setting->apply(config, value);
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
