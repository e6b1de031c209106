// Broker configuration: the original GopherMQ's keys and layering, plus ours.
//
// Layers, later ones win: built-in defaults, then `config.yaml` in the working
// directory (or the file named by --config), then GOPHERMQ_* environment
// variables, then command-line flags. The environment mapping is the original's
// and deployments rely on it: strip the prefix, lower-case the rest, turn `__`
// into `-`, then `_` into `.`; so GOPHERMQ_BROKER_MAX__PENDING sets
// broker.max-pending.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gophermq {

enum class LogLevel : std::uint8_t { debug, info, warn, error };

// Which io_uring features the broker may use. `basic` keeps to what every
// io_uring kernel has (single-shot accept and receive, eventfd wake-ups, no
// SINGLE_ISSUER/DEFER_TASKRUN): a way around a kernel whose newer features
// misbehave, and how the tests exercise the fallback paths.
enum class IoUringMode : std::uint8_t { automatic, basic };

// Where a listener binds: `host` empty means every interface.
struct ListenAddress {
  std::string host;
  std::uint16_t port = 0;  // 0 asks the kernel for an ephemeral port (tests)
};

struct Config {
  LogLevel log_level = LogLevel::info;            // logger.level
  ListenAddress api{"", 8082};                    // broker.port (and broker.host)
  std::uint64_t max_pending = 1'000'000;          // broker.max-pending: per subject
  unsigned shards = 0;                            // broker.cores; 0 = one per CPU we may run on
  std::size_t max_body_bytes = 1 << 20;           // broker.max-body
  std::size_t max_header_bytes = 16 << 10;        // broker.max-header-bytes
  IoUringMode io_uring = IoUringMode::automatic;  // broker.io-uring: auto | basic
  // broker.shutdown-timeout: on SIGTERM/SIGINT, how long requests already
  // read may take to be answered before the broker exits regardless.
  std::chrono::milliseconds shutdown_timeout{10'000};
  // Hostile and slow clients.
  std::uint64_t max_pending_bytes = 1ull << 30;  // broker.max-pending-bytes: held payload
  // broker.max-pending-total: broker-wide count; 0 = 16 x max_pending.
  std::uint64_t max_pending_total = 0;
  // broker.max-pending-bytes-per-subject; 0 = max_pending_bytes / 16.
  std::uint64_t max_pending_bytes_per_subject = 0;
  std::uint64_t max_connections = 100'000;         // broker.max-connections, broker-wide
  std::chrono::milliseconds read_timeout{10'000};  // broker.read-timeout: a started request
  std::chrono::milliseconds idle_timeout{60'000};  // broker.idle-timeout: between requests
  // Back-pressure per connection: past either, its requests wait unread.
  std::size_t max_unsent_bytes = 8 << 20;  // broker.max-unsent-bytes
  std::size_t max_pipeline_depth = 1024;   // broker.max-pipeline-depth: answers owed
  // broker.max-unsent-bytes-total: answer bytes every connection together
  // may owe before fetches carry little (a share per shard).
  std::uint64_t max_unsent_bytes_total = 256 << 20;
  // broker.write-timeout: a client that takes none of its answers this long is cut off.
  std::chrono::milliseconds write_timeout{60'000};
  std::size_t max_fetch_bytes = 16 << 20;  // broker.max-fetch-bytes: payload per fetch answer
  // broker.max-fetch-wait: a fetch's wait_ms is clamped to it.
  std::chrono::milliseconds max_fetch_wait{30'000};
  std::uint64_t max_waiting_fetches = 512;  // broker.max-waiting-fetches, per subscriber
  std::uint64_t max_batch = 1000;           // broker.max-batch: entries of a batch publish
  // broker.stream-heartbeat: a comment to an event stream idle this long.
  std::chrono::milliseconds stream_heartbeat{15'000};
  // broker.stream-flush-interval: an event stream is sent events at most
  // once this often, so that under load one send carries many.
  std::chrono::milliseconds stream_flush_interval{10};
  // Named bounds on what the store holds.
  std::size_t max_subject_bytes = 1024;                   // broker.max-subject-bytes
  std::uint64_t max_subscribers = 10'000'000;             // broker.max-subscribers, broker-wide
  std::uint64_t max_subscribers_per_subject = 1'000'000;  // broker.max-subscribers-per-subject
  std::uint64_t max_subjects = 10'000'000;                // broker.max-subjects, broker-wide
  // broker.inactive-threshold: a subscriber idle this long is unsubscribed
  // unless its subscribe said otherwise; 0 = never.
  std::chrono::milliseconds inactive_threshold{0};
  // broker.cors-origins: the origins whose web pages may call the API, as a
  // browser writes them in its Origin header (lower-case scheme://host[:port],
  // without the scheme's default port), or the one entry "*" for any; empty:
  // no CORS headers (api-extensions.md §8).
  std::vector<std::string> cors_origins;
  bool monitoring_enabled = true;      // monitoring.enable
  ListenAddress monitoring{"", 9001};  // monitoring.port (":9001", "9001", "127.0.0.1:9001")
};

// The bounds whose default follows another setting, as they apply.
std::uint64_t pending_total_bound(const Config& config);
std::uint64_t pending_bytes_per_subject_bound(const Config& config);

// What the command line asked for, beside the configuration itself.
enum class Command : std::uint8_t { broker, help, version };

struct ConfigLoad {
  Config config;
  Command command = Command::broker;
  std::string error;  // non-empty: one line for the operator, exit non-zero
  bool ok() const { return error.empty(); }
};

// Builds the configuration from all layers. `args` excludes argv[0]; `environ`
// is a null-terminated array like ::environ; `working_directory_yaml` is the
// config file tried when no --config flag names one (a missing default file is
// not an error, a missing named one is).
ConfigLoad load_config(const std::vector<std::string_view>& args, const char* const* environ,
                       std::string_view working_directory_yaml = "config.yaml");

// Applies one `key=value` setting (the dotted key of config.yaml). Returns an
// error line, or empty on success. Shared by every layer so they agree on
// parsing and validation.
std::string apply_setting(Config& config, std::string_view key, std::string_view value);

// Maps a GOPHERMQ_* variable name to its dotted key exactly as the original
// does; empty when the name lacks the prefix.
std::string environment_key(std::string_view variable_name);

// The --help text.
std::string usage_text();

// "debug", "info", "warn" or "error": the config value and the log field.
std::string_view log_level_name(LogLevel level);

}  // namespace gophermq
