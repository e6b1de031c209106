#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "gophermq/config/config.h"

namespace gophermq {
namespace {

using namespace std::string_literals;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// ---------------------------------------------------------------------------
// Helpers

// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "gophermq_config_test.XXXXXX").string();
    const char* made = ::mkdtemp(pattern.data());
    if (made == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = made;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string path(std::string_view name) const { return (path_ / name).string(); }

  std::string write(std::string_view name, std::string_view contents) const {
    std::string file = path(name);
    std::ofstream(file, std::ios::binary) << contents;
    return file;
  }

 private:
  std::filesystem::path path_;
};

// A null-terminated `environ`-style array that owns its strings.
class Environment {
 public:
  Environment(std::initializer_list<std::string> variables) : variables_(variables) {
    for (const std::string& variable : variables_) pointers_.push_back(variable.c_str());
    pointers_.push_back(nullptr);
  }
  const char* const* get() const { return pointers_.data(); }

 private:
  std::vector<std::string> variables_;
  std::vector<const char*> pointers_;
};

class ConfigTest : public ::testing::Test {
 protected:
  // Loads with `config.yaml` living in the temp dir, so the test never reads
  // a config.yaml from wherever it happens to run.
  ConfigLoad load(std::vector<std::string_view> args, const Environment& environment = {}) {
    return load_config(args, environment.get(), default_yaml());
  }
  std::string default_yaml() const { return dir_.path("config.yaml"); }
  std::string write_default_yaml(std::string_view contents) const {
    return dir_.write("config.yaml", contents);
  }

  TempDir dir_;
};

// Differs from the defaults in every field.
Config non_default_config() {
  Config config;
  config.log_level = LogLevel::error;
  config.api = {"api-host", 1};
  config.max_pending = 7;
  config.shards = 3;
  config.max_body_bytes = 2048;
  config.max_header_bytes = 2048;
  config.monitoring_enabled = false;
  config.monitoring = {"monitoring-host", 2};
  config.io_uring = IoUringMode::basic;
  config.shutdown_timeout = std::chrono::milliseconds(1234);
  config.max_pending_bytes = 4096;
  config.max_connections = 9;
  config.read_timeout = std::chrono::milliseconds(4321);
  config.idle_timeout = std::chrono::milliseconds(5432);
  config.max_unsent_bytes = 1 << 17;
  config.max_pipeline_depth = 5;
  config.max_unsent_bytes_total = 3 << 20;
  config.write_timeout = std::chrono::milliseconds(6543);
  config.max_fetch_bytes = 1 << 15;
  config.max_pending_total = 11;
  config.max_pending_bytes_per_subject = 2048;
  config.max_subject_bytes = 77;
  config.max_subscribers = 12;
  config.max_subscribers_per_subject = 13;
  config.max_subjects = 14;
  config.inactive_threshold = std::chrono::milliseconds(7654);
  config.max_fetch_wait = std::chrono::milliseconds(8765);
  config.max_waiting_fetches = 15;
  config.max_batch = 16;
  config.stream_heartbeat = std::chrono::milliseconds(17);
  config.stream_flush_interval = std::chrono::milliseconds(18);
  config.cors_origins = {"https://app.example.com"};
  return config;
}

void expect_same(const Config& actual, const Config& expected) {
  EXPECT_EQ(actual.log_level, expected.log_level);
  EXPECT_EQ(actual.api.host, expected.api.host);
  EXPECT_EQ(actual.api.port, expected.api.port);
  EXPECT_EQ(actual.max_pending, expected.max_pending);
  EXPECT_EQ(actual.shards, expected.shards);
  EXPECT_EQ(actual.max_body_bytes, expected.max_body_bytes);
  EXPECT_EQ(actual.max_header_bytes, expected.max_header_bytes);
  EXPECT_EQ(actual.monitoring_enabled, expected.monitoring_enabled);
  EXPECT_EQ(actual.monitoring.host, expected.monitoring.host);
  EXPECT_EQ(actual.monitoring.port, expected.monitoring.port);
  EXPECT_EQ(actual.io_uring, expected.io_uring);
  EXPECT_EQ(actual.shutdown_timeout, expected.shutdown_timeout);
  EXPECT_EQ(actual.max_pending_bytes, expected.max_pending_bytes);
  EXPECT_EQ(actual.max_connections, expected.max_connections);
  EXPECT_EQ(actual.read_timeout, expected.read_timeout);
  EXPECT_EQ(actual.idle_timeout, expected.idle_timeout);
  EXPECT_EQ(actual.max_unsent_bytes, expected.max_unsent_bytes);
  EXPECT_EQ(actual.max_pipeline_depth, expected.max_pipeline_depth);
  EXPECT_EQ(actual.max_unsent_bytes_total, expected.max_unsent_bytes_total);
  EXPECT_EQ(actual.write_timeout, expected.write_timeout);
  EXPECT_EQ(actual.max_fetch_bytes, expected.max_fetch_bytes);
  EXPECT_EQ(actual.max_pending_total, expected.max_pending_total);
  EXPECT_EQ(actual.max_pending_bytes_per_subject, expected.max_pending_bytes_per_subject);
  EXPECT_EQ(actual.max_subject_bytes, expected.max_subject_bytes);
  EXPECT_EQ(actual.max_subscribers, expected.max_subscribers);
  EXPECT_EQ(actual.max_subscribers_per_subject, expected.max_subscribers_per_subject);
  EXPECT_EQ(actual.max_subjects, expected.max_subjects);
  EXPECT_EQ(actual.inactive_threshold, expected.inactive_threshold);
  EXPECT_EQ(actual.max_fetch_wait, expected.max_fetch_wait);
  EXPECT_EQ(actual.max_waiting_fetches, expected.max_waiting_fetches);
  EXPECT_EQ(actual.max_batch, expected.max_batch);
  EXPECT_EQ(actual.stream_heartbeat, expected.stream_heartbeat);
  EXPECT_EQ(actual.stream_flush_interval, expected.stream_flush_interval);
  EXPECT_EQ(actual.cors_origins, expected.cors_origins);
}

// ---------------------------------------------------------------------------
// Environment variable names

TEST(EnvironmentKeyTest, MapsLikeTheOriginal) {
  EXPECT_EQ(environment_key("GOPHERMQ_BROKER_MAX__PENDING"), "broker.max-pending");
  EXPECT_EQ(environment_key("GOPHERMQ_BROKER_PORT"), "broker.port");
  EXPECT_EQ(environment_key("GOPHERMQ_MONITORING_PORT"), "monitoring.port");
  EXPECT_EQ(environment_key("GOPHERMQ_LOGGER_LEVEL"), "logger.level");
  EXPECT_EQ(environment_key("GOPHERMQ_BROKER_MAX__HEADER__BYTES"), "broker.max-header-bytes");
  EXPECT_EQ(environment_key("GOPHERMQ_Broker_Port"), "broker.port");
}

TEST(EnvironmentKeyTest, ReplacesDoubleUnderscoresBeforeSingleOnes) {
  EXPECT_EQ(environment_key("GOPHERMQ_A___B"), "a-.b");
  EXPECT_EQ(environment_key("GOPHERMQ_A____B"), "a--b");
  EXPECT_EQ(environment_key("GOPHERMQ_A_B__C_D"), "a.b-c.d");
  EXPECT_EQ(environment_key("GOPHERMQ_A_"), "a.");
}

TEST(EnvironmentKeyTest, NeedsTheExactPrefix) {
  EXPECT_EQ(environment_key("GOPHERMQ_"), "");
  EXPECT_EQ(environment_key("gophermq_broker_port"), "");
  EXPECT_EQ(environment_key("GOPHERMQBROKER_PORT"), "");
  EXPECT_EQ(environment_key("XGOPHERMQ_BROKER_PORT"), "");
  EXPECT_EQ(environment_key("PATH"), "");
  EXPECT_EQ(environment_key(""), "");
}

// ---------------------------------------------------------------------------
// Defaults and layering

TEST_F(ConfigTest, DefaultsWhenNothingIsSet) {
  ConfigLoad result = load({"broker"});
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.command, Command::broker);
  const Config& c = result.config;
  EXPECT_EQ(c.log_level, LogLevel::info);
  EXPECT_EQ(c.api.host, "");
  EXPECT_EQ(c.api.port, 8082);
  EXPECT_EQ(c.max_pending, 1'000'000u);
  EXPECT_EQ(c.shards, 0u);
  EXPECT_EQ(c.max_body_bytes, 1u << 20);
  EXPECT_EQ(c.max_header_bytes, 16u << 10);
  EXPECT_TRUE(c.monitoring_enabled);
  EXPECT_EQ(c.monitoring.host, "");
  EXPECT_EQ(c.monitoring.port, 9001);
}

TEST_F(ConfigTest, DerivedBoundsFollowTheirBaseUnlessSet) {
  Config config;
  EXPECT_EQ(pending_total_bound(config), 16'000'000u);
  EXPECT_EQ(pending_bytes_per_subject_bound(config), std::uint64_t{64} << 20);
  config.max_pending = 10;
  config.max_pending_bytes = 1 << 20;
  EXPECT_EQ(pending_total_bound(config), 160u);
  EXPECT_EQ(pending_bytes_per_subject_bound(config), std::uint64_t{64} << 10);
  config.max_pending = std::uint64_t{1} << 62;  // sixteen times it is capped, not wrapped
  EXPECT_EQ(pending_total_bound(config), std::uint64_t{1} << 62);
  config.max_pending_total = 25;
  config.max_pending_bytes_per_subject = 4096;
  EXPECT_EQ(pending_total_bound(config), 25u);
  EXPECT_EQ(pending_bytes_per_subject_bound(config), 4096u);
}

TEST_F(ConfigTest, ReadsEveryKeyFromConfigYaml) {
  write_default_yaml(
      "logger:\n"
      "  level: debug\n"
      "broker:\n"
      "  host: 127.0.0.1\n"
      "  port: 8100\n"
      "  max-pending: 42\n"
      "  cores: 3\n"
      "  max-body: 64KiB\n"
      "  max-header-bytes: 8KiB\n"
      "monitoring:\n"
      "  enable: false\n"
      "  port: '127.0.0.2:9100'\n");
  ConfigLoad result = load({"broker"});
  ASSERT_TRUE(result.ok()) << result.error;
  const Config& c = result.config;
  EXPECT_EQ(c.log_level, LogLevel::debug);
  EXPECT_EQ(c.api.host, "127.0.0.1");
  EXPECT_EQ(c.api.port, 8100);
  EXPECT_EQ(c.max_pending, 42u);
  EXPECT_EQ(c.shards, 3u);
  EXPECT_EQ(c.max_body_bytes, 64u << 10);
  EXPECT_EQ(c.max_header_bytes, 8u << 10);
  EXPECT_FALSE(c.monitoring_enabled);
  EXPECT_EQ(c.monitoring.host, "127.0.0.2");
  EXPECT_EQ(c.monitoring.port, 9100);
}

TEST_F(ConfigTest, EnvironmentOverridesYamlAndFlagsOverrideBoth) {
  write_default_yaml(
      "broker:\n"
      "  port: 1111\n"
      "  max-pending: 10\n"
      "  cores: 2\n"
      "logger:\n"
      "  level: error\n");
  Environment environment{"GOPHERMQ_BROKER_PORT=2222", "GOPHERMQ_BROKER_MAX__PENDING=20"};
  ConfigLoad result = load({"broker", "--broker.port=3333"}, environment);
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.config.api.port, 3333);    // yaml < env < flag
  EXPECT_EQ(result.config.max_pending, 20u);  // yaml < env
  EXPECT_EQ(result.config.shards, 2u);        // yaml only
  EXPECT_EQ(result.config.log_level, LogLevel::error);
  EXPECT_EQ(result.config.max_body_bytes, 1u << 20);  // default

  result = load({"broker"}, environment);
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.config.api.port, 2222);

  result = load({"--broker.max-pending", "30", "broker"}, environment);
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.config.max_pending, 30u);
  EXPECT_EQ(result.config.api.port, 2222);
}

TEST_F(ConfigTest, CorsOriginsFromEachLayer) {
  // A YAML list, or one string (a comma-separated list too).
  write_default_yaml(
      "broker:\n  cors-origins:\n    - https://app.example.com\n    - "
      "http://localhost:8080\n");
  ConfigLoad result = load({"broker"});
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.config.cors_origins,
            (std::vector<std::string>{"https://app.example.com", "http://localhost:8080"}));
  write_default_yaml("broker:\n  cors-origins: '*'\n");
  result = load({"broker"});
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.config.cors_origins, std::vector<std::string>{"*"});
  write_default_yaml("broker:\n  cors-origins: []\n");
  result = load({"broker"});
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_TRUE(result.config.cors_origins.empty());

  Environment environment{"GOPHERMQ_BROKER_CORS__ORIGINS=http://a.example,http://b.example"};
  result = load({"broker"}, environment);
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.config.cors_origins,
            (std::vector<std::string>{"http://a.example", "http://b.example"}));
  // A flag replaces the list; it does not add to it.
  result = load({"broker", "--broker.cors-origins=http://c.example"}, environment);
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.config.cors_origins, std::vector<std::string>{"http://c.example"});
  result = load({"broker", "--broker.cors-origins="}, environment);
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_TRUE(result.config.cors_origins.empty());
}

TEST_F(ConfigTest, LaterFlagsWin) {
  ConfigLoad result = load({"broker", "--broker.cores=1", "--broker.cores", "4"});
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.config.shards, 4u);
}

TEST_F(ConfigTest, EnvironmentAlone) {
  Environment environment{"PATH=/bin",
                          "GOPHERMQ_LOGGER_LEVEL=debug",
                          "GOPHERMQ_MONITORING_PORT=:9002",
                          "GOPHERMQ_MONITORING_ENABLE=off",
                          "GOPHERMQ_BROKER_MAX__BODY=2MiB",
                          "GOPHERMQ_BROKER_MAX__HEADER__BYTES=32768",
                          "GOPHERMQ_BROKER_HOST=::1",
                          "GOPHERMQ_BROKER_CORES=8"};
  ConfigLoad result = load({"broker"}, environment);
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.config.log_level, LogLevel::debug);
  EXPECT_EQ(result.config.monitoring.port, 9002);
  EXPECT_FALSE(result.config.monitoring_enabled);
  EXPECT_EQ(result.config.max_body_bytes, 2u << 20);
  EXPECT_EQ(result.config.max_header_bytes, 32768u);
  EXPECT_EQ(result.config.api.host, "::1");
  EXPECT_EQ(result.config.shards, 8u);
}

TEST_F(ConfigTest, NullYamlAndEmptyEnvironmentValuesLeaveLowerLayers) {
  write_default_yaml(
      "broker:\n"
      "  port:\n"
      "  cores: ~\n"
      "  max-pending: 5\n"
      "monitoring:\n");
  Environment environment{"GOPHERMQ_BROKER_MAX__PENDING="};
  ConfigLoad result = load({"broker"}, environment);
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.config.api.port, 8082);
  EXPECT_EQ(result.config.shards, 0u);
  EXPECT_EQ(result.config.max_pending, 5u);
}

TEST_F(ConfigTest, YamlKeysAreCaseInsensitive) {
  write_default_yaml("Broker:\n  Max-Pending: 7\n");
  ConfigLoad result = load({"broker"});
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.config.max_pending, 7u);
}

TEST_F(ConfigTest, EmptyYamlStringIsAValueUnlikeNull) {
  std::string path = write_default_yaml("broker:\n  port: ''\n");
  EXPECT_THAT(load({"broker"}).error, StartsWith("config error: " + path + ":2: broker.port must"));
}

// ---------------------------------------------------------------------------
// Unknown keys

TEST_F(ConfigTest, UnknownKeysOutsideOurSectionsAreIgnored) {
  write_default_yaml(
      "other-tool:\n"
      "  setting: 1\n"
      "top: x\n"
      "brokers:\n"
      "  port: nonsense\n");
  Environment environment{"GOPHERMQ_OTHER=1", "GOPHERMQ_BROKERS_PORT=x", "GOPHERMQ_=1",
                          "GOPHERMQ_BROKER", "gophermq_broker_port=x"};
  ConfigLoad result = load({"broker"}, environment);
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.config.api.port, 8082);
}

TEST_F(ConfigTest, UnknownYamlKeyInOurSectionIsAnErrorWithAHint) {
  std::string path = write_default_yaml("broker:\n  port: 1\n  max_pending: 5\n");
  ConfigLoad result = load({"broker"});
  EXPECT_EQ(result.error, "config error: " + path +
                              ":3: unknown key \"broker.max_pending\" (did you mean "
                              "broker.max-pending?)");
}

TEST_F(ConfigTest, UnknownYamlKeyWithoutValueInOurSectionIsAnError) {
  std::string path = write_default_yaml("logger:\n  levle:\n");
  ConfigLoad result = load({"broker"});
  EXPECT_EQ(result.error, "config error: " + path + ":2: unknown key \"logger.levle\"");
}

TEST_F(ConfigTest, ScalarInPlaceOfOurSectionIsAnError) {
  std::string path = write_default_yaml("monitoring: true\n");
  ConfigLoad result = load({"broker"});
  EXPECT_EQ(result.error, "config error: " + path + ":1: unknown key \"monitoring\"");
}

TEST_F(ConfigTest, UnknownEnvironmentKeyInOurSectionIsAnErrorWithAHint) {
  Environment environment{"GOPHERMQ_BROKER_MAX_PENDING=5"};
  ConfigLoad result = load({"broker"}, environment);
  EXPECT_EQ(result.error,
            "config error: GOPHERMQ_BROKER_MAX_PENDING=\"5\": unknown key \"broker.max.pending\" "
            "(did you mean GOPHERMQ_BROKER_MAX__PENDING?)");
}

TEST_F(ConfigTest, TwoEnvironmentVariablesForOneKeyAreAnError) {
  Environment environment{"GOPHERMQ_BROKER_PORT=1", "GOPHERMQ_broker_port=2"};
  ConfigLoad result = load({"broker"}, environment);
  EXPECT_EQ(result.error,
            "config error: GOPHERMQ_BROKER_PORT and GOPHERMQ_broker_port both set broker.port");
}

TEST_F(ConfigTest, UnknownFlagsAreAlwaysErrors) {
  EXPECT_EQ(load({"broker", "--other=1"}).error, "usage error: unknown flag --other");
  EXPECT_EQ(load({"broker", "--broker.max_pending", "5"}).error,
            "usage error: unknown flag --broker.max_pending (did you mean --broker.max-pending?)");
  EXPECT_EQ(load({"broker", "-x"}).error, "usage error: unknown flag \"-x\"");
  EXPECT_EQ(load({"broker", "--"}).error, "usage error: unknown flag \"--\"");
}

// ---------------------------------------------------------------------------
// Values of every key

struct ValueCase {
  std::string key;
  std::string value;
};

class ValidValueTest : public ::testing::TestWithParam<ValueCase> {};
class InvalidValueTest : public ::testing::TestWithParam<ValueCase> {};

TEST_P(ValidValueTest, IsAccepted) {
  Config config;
  EXPECT_EQ(apply_setting(config, GetParam().key, GetParam().value), "");
}

TEST_P(InvalidValueTest, IsRejectedWithTheKeyNamedAndConfigUnchanged) {
  Config config = non_default_config();
  std::string error = apply_setting(config, GetParam().key, GetParam().value);
  EXPECT_THAT(error, StartsWith(GetParam().key + " must be")) << GetParam().value;
  expect_same(config, non_default_config());
}

INSTANTIATE_TEST_SUITE_P(
    EveryKey, ValidValueTest,
    ::testing::Values(
        ValueCase{"logger.level", "debug"}, ValueCase{"logger.level", "INFO"},
        ValueCase{"logger.level", "Warning"}, ValueCase{"logger.level", "trace"},
        ValueCase{"broker.port", "0"}, ValueCase{"broker.port", "65535"},
        ValueCase{"broker.port", "08082"}, ValueCase{"broker.port", "localhost:1"},
        ValueCase{"broker.host", ""}, ValueCase{"broker.host", "example.com"},
        ValueCase{"broker.host", "fe80::1%eth0"}, ValueCase{"broker.max-pending", "1"},
        ValueCase{"broker.max-pending", "4611686018427387904"}, ValueCase{"broker.cores", "0"},
        ValueCase{"broker.cores", "1024"}, ValueCase{"broker.max-body", "1KiB"},
        ValueCase{"broker.max-body", "1GiB"}, ValueCase{"broker.max-header-bytes", "1024"},
        ValueCase{"broker.max-header-bytes", "1MiB"}, ValueCase{"monitoring.enable", "YES"},
        ValueCase{"monitoring.port", "0"}, ValueCase{"monitoring.port", "[::]:9001"},
        ValueCase{"broker.io-uring", "auto"}, ValueCase{"broker.io-uring", "BASIC"},
        ValueCase{"broker.shutdown-timeout", "0"}, ValueCase{"broker.shutdown-timeout", "500ms"},
        ValueCase{"broker.shutdown-timeout", "1h"}, ValueCase{"broker.shutdown-timeout", "30"},
        ValueCase{"broker.read-timeout", "100ms"}, ValueCase{"broker.read-timeout", "2m"},
        ValueCase{"broker.idle-timeout", "24h"}, ValueCase{"broker.max-pending-bytes", "1KiB"},
        ValueCase{"broker.max-pending-bytes", "64GiB"},
        ValueCase{"broker.max-pending-bytes", "2TiB"},
        ValueCase{"broker.max-pending-bytes", "1PiB"}, ValueCase{"broker.max-connections", "1"},
        ValueCase{"broker.max-unsent-bytes", "64KiB"}, ValueCase{"broker.max-pipeline-depth", "1"},
        ValueCase{"broker.max-unsent-bytes-total", "1MiB"},
        ValueCase{"broker.max-unsent-bytes-total", "1PiB"},
        ValueCase{"broker.max-pipeline-depth", "65536"}, ValueCase{"broker.write-timeout", "100ms"},
        ValueCase{"broker.write-timeout", "24h"}, ValueCase{"broker.max-fetch-bytes", "1KiB"},
        ValueCase{"broker.max-fetch-bytes", "1GiB"}, ValueCase{"broker.max-pending-total", "0"},
        ValueCase{"broker.max-fetch-wait", "0s"}, ValueCase{"broker.max-fetch-wait", "1h"},
        ValueCase{"broker.max-waiting-fetches", "1"},
        ValueCase{"broker.max-waiting-fetches", "65536"}, ValueCase{"broker.max-batch", "1"},
        ValueCase{"broker.max-batch", "1000000"}, ValueCase{"broker.stream-heartbeat", "10ms"},
        ValueCase{"broker.stream-heartbeat", "1h"}, ValueCase{"broker.stream-flush-interval", "0"},
        ValueCase{"broker.stream-flush-interval", "1s"},
        ValueCase{"broker.max-pending-total", "4611686018427387904"},
        ValueCase{"broker.max-pending-bytes-per-subject", "0"},
        ValueCase{"broker.max-pending-bytes-per-subject", "1PiB"},
        ValueCase{"broker.max-subject-bytes", "1"}, ValueCase{"broker.max-subject-bytes", "65536"},
        ValueCase{"broker.max-subscribers", "1"}, ValueCase{"broker.max-subjects", "1099511627776"},
        ValueCase{"broker.max-subscribers-per-subject", "4294967295"},
        ValueCase{"broker.inactive-threshold", "0"},
        ValueCase{"broker.inactive-threshold", "8760h"},
        ValueCase{"broker.inactive-threshold", "90s"},
        ValueCase{"broker.inactive-threshold", "1m30s"},
        ValueCase{"broker.inactive-threshold", "2h45m0.5s"},
        ValueCase{"broker.shutdown-timeout", "1.5s"}, ValueCase{"broker.shutdown-timeout", ".5h"},
        ValueCase{"broker.shutdown-timeout", "1500000us"},
        ValueCase{"broker.shutdown-timeout", "1500000\u00b5s"},
        ValueCase{"broker.shutdown-timeout", "+10s"}, ValueCase{"broker.cors-origins", ""},
        ValueCase{"broker.cors-origins", "*"}, ValueCase{"broker.cors-origins", "http://a"},
        ValueCase{"broker.cors-origins", "https://a.example.com:8443, http://[::1]:8080"},
        ValueCase{"broker.cors-origins", "chrome-extension://abcdef"}));

INSTANTIATE_TEST_SUITE_P(
    EveryKey, InvalidValueTest,
    ::testing::Values(
        ValueCase{"logger.level", ""}, ValueCase{"logger.level", "verbose"},
        ValueCase{"logger.level", "info "}, ValueCase{"logger.level", "3"},
        ValueCase{"broker.port", ""}, ValueCase{"broker.port", "65536"},
        ValueCase{"broker.port", "-1"}, ValueCase{"broker.port", "+1"},
        ValueCase{"broker.port", " 8082"}, ValueCase{"broker.port", "8082 "},
        ValueCase{"broker.port", "8082x"}, ValueCase{"broker.port", "0x10"},
        ValueCase{"broker.port", "99999999999999999999999"}, ValueCase{"broker.port", ":"},
        ValueCase{"broker.port", "host:"}, ValueCase{"broker.port", "::1:8082"},
        ValueCase{"broker.port", "[::1]"}, ValueCase{"broker.port", "[]:1"},
        ValueCase{"broker.port", "[::1:1"}, ValueCase{"broker.port", "a b:1"},
        ValueCase{"broker.host", "a b"}, ValueCase{"broker.host", "a/b"},
        ValueCase{"broker.host", "[a]b"}, ValueCase{"broker.max-pending", "0"},
        ValueCase{"broker.max-pending", "-1"}, ValueCase{"broker.max-pending", "abc"},
        ValueCase{"broker.max-pending", "1.5"}, ValueCase{"broker.max-pending", "1e6"},
        ValueCase{"broker.max-pending", "10 "}, ValueCase{"broker.max-pending", ""},
        ValueCase{"broker.max-pending", "4611686018427387905"},
        ValueCase{"broker.max-pending", "18446744073709551616"}, ValueCase{"broker.cores", "1025"},
        ValueCase{"broker.cores", "-1"}, ValueCase{"broker.cores", "two"},
        ValueCase{"broker.cores", ""}, ValueCase{"broker.cores", "4294967297"},
        ValueCase{"broker.max-body", "1023"}, ValueCase{"broker.max-body", "0"},
        ValueCase{"broker.max-body", "1073741825"}, ValueCase{"broker.max-body", "2GiB"},
        ValueCase{"broker.io-uring", "fast"}, ValueCase{"broker.io-uring", ""},
        ValueCase{"broker.shutdown-timeout", "2h"}, ValueCase{"broker.shutdown-timeout", "10 s"},
        ValueCase{"broker.shutdown-timeout", "-1s"}, ValueCase{"broker.shutdown-timeout", "1.5"},
        ValueCase{"broker.shutdown-timeout", "10parsecs"},
        ValueCase{"broker.shutdown-timeout", "1m30"}, ValueCase{"broker.shutdown-timeout", "s"},
        ValueCase{"broker.shutdown-timeout", ".s"}, ValueCase{"broker.shutdown-timeout", "1.5.5s"},
        ValueCase{"broker.shutdown-timeout", "+"}, ValueCase{"broker.shutdown-timeout", "1s "},
        ValueCase{"broker.shutdown-timeout", "99999999999999999999h"},
        ValueCase{"broker.inactive-threshold", "8760h1ms"},
        ValueCase{"broker.read-timeout", "99ms"}, ValueCase{"broker.read-timeout", "0"},
        ValueCase{"broker.idle-timeout", "25h"}, ValueCase{"broker.max-pending-bytes", "1023"},
        ValueCase{"broker.max-connections", "0"}, ValueCase{"broker.max-connections", "many"},
        ValueCase{"broker.max-unsent-bytes", "1KiB"}, ValueCase{"broker.max-pipeline-depth", "0"},
        ValueCase{"broker.max-unsent-bytes-total", "1023KiB"},
        ValueCase{"broker.max-unsent-bytes-total", "2PiB"},
        ValueCase{"broker.max-pipeline-depth", "65537"}, ValueCase{"broker.write-timeout", "99ms"},
        ValueCase{"broker.write-timeout", "25h"}, ValueCase{"broker.max-fetch-bytes", "1023"},
        ValueCase{"broker.max-fetch-bytes", "2GiB"}, ValueCase{"broker.max-pending-total", "-1"},
        ValueCase{"broker.max-fetch-wait", "61m"}, ValueCase{"broker.max-waiting-fetches", "0"},
        ValueCase{"broker.max-waiting-fetches", "65537"}, ValueCase{"broker.max-batch", "0"},
        ValueCase{"broker.max-batch", "1000001"}, ValueCase{"broker.stream-heartbeat", "9ms"},
        ValueCase{"broker.stream-heartbeat", "61m"},
        ValueCase{"broker.stream-flush-interval", "1001ms"},
        ValueCase{"broker.stream-flush-interval", "-1ms"},
        ValueCase{"broker.max-pending-total", "4611686018427387905"},
        ValueCase{"broker.max-pending-bytes-per-subject", "2PiB"},
        ValueCase{"broker.max-pending-bytes-per-subject", "many"},
        ValueCase{"broker.max-subject-bytes", "0"}, ValueCase{"broker.max-subject-bytes", "65537"},
        ValueCase{"broker.max-subscribers", "0"}, ValueCase{"broker.max-subjects", "1099511627777"},
        ValueCase{"broker.max-subscribers-per-subject", "4294967296"},
        ValueCase{"broker.inactive-threshold", "8761h"},
        ValueCase{"broker.inactive-threshold", "-1s"}, ValueCase{"broker.max-body", "1TiB"},
        ValueCase{"broker.max-body", "1.5MiB"}, ValueCase{"broker.max-body", "MiB"},
        ValueCase{"broker.max-body", "-1MiB"}, ValueCase{"broker.max-body", "4 "},
        ValueCase{"broker.max-body", "4  MiB"}, ValueCase{"broker.max-body", "4MiBs"},
        ValueCase{"broker.max-body", "18014398509481984KiB"},
        ValueCase{"broker.max-body", "99999999999999999999999"},
        ValueCase{"broker.max-header-bytes", "1023"}, ValueCase{"broker.max-header-bytes", "2MiB"},
        ValueCase{"broker.max-header-bytes", "1048577"}, ValueCase{"monitoring.enable", ""},
        ValueCase{"monitoring.enable", "2"}, ValueCase{"monitoring.enable", "enabled"},
        ValueCase{"monitoring.enable", "true "}, ValueCase{"monitoring.port", "x"},
        ValueCase{"monitoring.port", "70000"}, ValueCase{"monitoring.port", ":-1"},
        ValueCase{"broker.cors-origins", "app.example.com"},
        ValueCase{"broker.cors-origins", "https://app.example.com/"},
        ValueCase{"broker.cors-origins", "https://app.example.com/x"},
        ValueCase{"broker.cors-origins", "https://app.example.com?x"},
        ValueCase{"broker.cors-origins", "https://user@app.example.com"},
        ValueCase{"broker.cors-origins", "https://"}, ValueCase{"broker.cors-origins", "://a"},
        ValueCase{"broker.cors-origins", "1http://a"},
        ValueCase{"broker.cors-origins", "http://a:0"},
        ValueCase{"broker.cors-origins", "http://a:65536"},
        ValueCase{"broker.cors-origins", "http://a:"},
        ValueCase{"broker.cors-origins", "http://[::1"},
        ValueCase{"broker.cors-origins", "http://[]"},
        ValueCase{"broker.cors-origins", "http://a b"},
        ValueCase{"broker.cors-origins", "http://a,"},
        ValueCase{"broker.cors-origins", "http://a,,http://b"},
        ValueCase{"broker.cors-origins", "*,http://a"}, ValueCase{"broker.cors-origins", "*, *"},
        ValueCase{"broker.cors-origins", "null"}));

// Go's time.ParseDuration syntax: units summed, fractions, micro-units;
// what is finer than a millisecond is rounded up (0 means never).
TEST(ApplySettingTest, DurationsAreReadAsGoReadsThem) {
  const std::pair<std::string_view, long long> kCases[] = {
      {"90", 90'000},
      {"1m30s", 90'000},
      {"1M30S", 90'000},
      {"1.5s", 1'500},
      {".5h", 1'800'000},
      {"2h45m0.5s", 9'900'500},
      {"1500000us", 1'500},
      {"1500999ns", 2},
      {"1500000\u03bcs", 1'500},
      {"1h0m0s", 3'600'000},
      {"0.0001s", 1},
      {"+10s", 10'000},
      {"8760h", 31'536'000'000},
  };
  for (const auto& [text, milliseconds] : kCases) {
    Config config;
    ASSERT_EQ(apply_setting(config, "broker.inactive-threshold", text), "") << text;
    EXPECT_EQ(config.inactive_threshold.count(), milliseconds) << text;
  }
}

TEST(ApplySettingTest, CorsOriginsAreKeptAsABrowserWritesThem) {
  Config config;
  ASSERT_EQ(apply_setting(config, "broker.cors-origins",
                          " HTTPS://App.Example.COM:443 ,http://localhost:8080,http://x:80,"
                          "https://app.example.com, http://[::1]:08080"),
            "");
  // Lower-cased, without the scheme's default port, once each.
  EXPECT_EQ(config.cors_origins,
            (std::vector<std::string>{"https://app.example.com", "http://localhost:8080",
                                      "http://x", "http://[::1]:8080"}));
  ASSERT_EQ(apply_setting(config, "broker.cors-origins", " * "), "");
  EXPECT_EQ(config.cors_origins, std::vector<std::string>{"*"});
  ASSERT_EQ(apply_setting(config, "broker.cors-origins", ""), "");
  EXPECT_TRUE(config.cors_origins.empty());
}

TEST(ApplySettingTest, CorsOriginsAreBounded) {
  Config config;
  std::string origins;
  for (int i = 0; i < 65; ++i) origins += "http://o" + std::to_string(i) + ".example,";
  origins.pop_back();
  EXPECT_EQ(apply_setting(config, "broker.cors-origins", origins),
            "broker.cors-origins must be at most 64 origins");
  EXPECT_THAT(apply_setting(config, "broker.cors-origins", "http://" + std::string(600, 'a')),
              StartsWith("broker.cors-origins must be * or origins"));
  EXPECT_TRUE(config.cors_origins.empty());
}

TEST(ApplySettingTest, LogLevelNames) {
  struct Case {
    std::string_view text;
    LogLevel level;
  };
  for (Case c : {Case{"debug", LogLevel::debug}, Case{"TRACE", LogLevel::debug},
                 Case{"info", LogLevel::info}, Case{"warn", LogLevel::warn},
                 Case{"WARNING", LogLevel::warn}, Case{"error", LogLevel::error},
                 Case{"Fatal", LogLevel::error}, Case{"panic", LogLevel::error}}) {
    Config config;
    config.log_level = c.level == LogLevel::info ? LogLevel::error : LogLevel::info;
    ASSERT_EQ(apply_setting(config, "logger.level", c.text), "");
    EXPECT_EQ(config.log_level, c.level) << c.text;
  }
}

TEST(ApplySettingTest, AddressForms) {
  struct Case {
    std::string_view text;
    std::string host;
    std::uint16_t port;
  };
  for (Case c : {Case{"8082", "keep", 8082}, Case{":8082", "", 8082},
                 Case{"127.0.0.1:1", "127.0.0.1", 1}, Case{"[::1]:8082", "::1", 8082},
                 Case{"localhost:0", "localhost", 0}, Case{"[::]:65535", "::", 65535}}) {
    for (std::string_view key : {"broker.port", "monitoring.port"}) {
      Config config;
      config.api.host = config.monitoring.host = "keep";
      ASSERT_EQ(apply_setting(config, key, c.text), "") << c.text;
      const ListenAddress& address = key == "broker.port" ? config.api : config.monitoring;
      EXPECT_EQ(address.host, c.host) << key << "=" << c.text;
      EXPECT_EQ(address.port, c.port) << key << "=" << c.text;
    }
  }
}

TEST(ApplySettingTest, BrokerHostStripsIpv6Brackets) {
  Config config;
  ASSERT_EQ(apply_setting(config, "broker.host", "[::1]"), "");
  EXPECT_EQ(config.api.host, "::1");
  ASSERT_EQ(apply_setting(config, "broker.host", ""), "");
  EXPECT_EQ(config.api.host, "");
}

TEST(ApplySettingTest, NumbersAtTheirBounds) {
  Config config;
  ASSERT_EQ(apply_setting(config, "broker.max-pending", "4611686018427387904"), "");
  EXPECT_EQ(config.max_pending, std::uint64_t{1} << 62);
  ASSERT_EQ(apply_setting(config, "broker.cores", "1024"), "");
  EXPECT_EQ(config.shards, 1024u);
  EXPECT_EQ(apply_setting(config, "broker.max-pending", "4611686018427387905"),
            "broker.max-pending must be at most 4611686018427387904 (2^62)");
  EXPECT_EQ(apply_setting(config, "broker.max-pending", "0"),
            "broker.max-pending must be an integer >= 1");
}

TEST(ApplySettingTest, ByteSizes) {
  struct Case {
    std::string_view text;
    std::size_t bytes;
  };
  for (Case c :
       {Case{"1024", 1024}, Case{"2048b", 2048}, Case{"1KiB", 1 << 10}, Case{"1k", 1 << 10},
        Case{"1K", 1 << 10}, Case{"1KB", 1 << 10}, Case{"64 KiB", 64 << 10}, Case{"4MiB", 4 << 20},
        Case{"4m", 4 << 20}, Case{"4MB", 4 << 20}, Case{"4mib", 4 << 20}, Case{"1GiB", 1 << 30},
        Case{"1g", 1 << 30}, Case{"1GB", 1 << 30}}) {
    Config config;
    ASSERT_EQ(apply_setting(config, "broker.max-body", c.text), "") << c.text;
    EXPECT_EQ(config.max_body_bytes, c.bytes) << c.text;
  }
  Config config;
  ASSERT_EQ(apply_setting(config, "broker.max-header-bytes", "1MiB"), "");
  EXPECT_EQ(config.max_header_bytes, 1u << 20);
  EXPECT_EQ(apply_setting(config, "broker.max-header-bytes", "2MiB"),
            "broker.max-header-bytes must be a byte size from 1KiB to 1MiB (e.g. 65536, 64KiB, "
            "1MiB)");
}

TEST(ApplySettingTest, Booleans) {
  for (std::string_view yes : {"true", "TRUE", "1", "yes", "On"}) {
    Config config;
    config.monitoring_enabled = false;
    ASSERT_EQ(apply_setting(config, "monitoring.enable", yes), "");
    EXPECT_TRUE(config.monitoring_enabled) << yes;
  }
  for (std::string_view no : {"false", "False", "0", "no", "OFF"}) {
    Config config;
    ASSERT_EQ(apply_setting(config, "monitoring.enable", no), "");
    EXPECT_FALSE(config.monitoring_enabled) << no;
  }
}

TEST(ApplySettingTest, KeysMatchIgnoringCase) {
  Config config;
  ASSERT_EQ(apply_setting(config, "Broker.Cores", "5"), "");
  EXPECT_EQ(config.shards, 5u);
}

TEST(ApplySettingTest, UnknownKeys) {
  Config config;
  EXPECT_EQ(apply_setting(config, "broker.nope", "1"), "unknown key \"broker.nope\"");
  EXPECT_EQ(apply_setting(config, "monitoring_port", "1"),
            "unknown key \"monitoring_port\" (did you mean monitoring.port?)");
}

// ---------------------------------------------------------------------------
// Error messages name their source

TEST_F(ConfigTest, EnvironmentErrorNamesTheVariableAndValue) {
  Environment environment{"GOPHERMQ_BROKER_MAX__PENDING=abc"};
  EXPECT_EQ(load({"broker"}, environment).error,
            "config error: GOPHERMQ_BROKER_MAX__PENDING=\"abc\": broker.max-pending must be an "
            "integer >= 1");
}

TEST_F(ConfigTest, YamlValueErrorNamesFileAndLine) {
  std::string path = write_default_yaml("# comment\nbroker:\n  port: abc\n");
  ConfigLoad result = load({"broker"});
  EXPECT_THAT(result.error, StartsWith("config error: " + path + ":3: broker.port must be"));
}

TEST_F(ConfigTest, YamlSyntaxErrorNamesFileAndLine) {
  std::string path = write_default_yaml("broker:\n\tport: 1\n");
  EXPECT_THAT(load({"broker"}).error, StartsWith("config error: " + path + ":2: "));
}

TEST_F(ConfigTest, FlagErrorNamesTheFlagAndValue) {
  EXPECT_THAT(load({"broker", "--monitoring.port", "nine"}).error,
              StartsWith("config error: --monitoring.port=\"nine\": monitoring.port must be"));
}

TEST_F(ConfigTest, ErrorsStayOnOneLine) {
  Environment environment{"GOPHERMQ_LOGGER_LEVEL=in\nfo\"\x01"};
  std::string error = load({"broker"}, environment).error;
  EXPECT_EQ(error,
            "config error: GOPHERMQ_LOGGER_LEVEL=\"in\\x0afo\\\"\\x01\": logger.level must be one "
            "of debug, info, warn, error");
}

TEST_F(ConfigTest, FirstBadLayerIsReported) {
  write_default_yaml("broker:\n  cores: 5000\n");
  Environment environment{"GOPHERMQ_BROKER_CORES=6000"};
  EXPECT_THAT(load({"broker"}, environment).error, HasSubstr("config.yaml:2: broker.cores"));
}

// ---------------------------------------------------------------------------
// The config file

TEST_F(ConfigTest, MissingDefaultConfigFileIsFine) {
  ConfigLoad result = load_config({"broker"}, nullptr, dir_.path("absent/config.yaml"));
  EXPECT_TRUE(result.ok()) << result.error;
}

TEST_F(ConfigTest, MissingNamedConfigFileIsAnError) {
  std::string missing = dir_.path("missing.yaml");
  std::string equals_form = "--config=" + missing;
  EXPECT_EQ(load({"broker", "--config", missing}).error,
            "config error: cannot read config file \"" + missing + "\": No such file or directory");
  EXPECT_EQ(load({"broker", equals_form}).error,
            "config error: cannot read config file \"" + missing + "\": No such file or directory");
}

TEST_F(ConfigTest, NamedConfigFileReplacesTheDefaultOne) {
  write_default_yaml("broker:\n  cores: 1\n  port: 1\n");
  std::string named = dir_.write("named.yaml", "broker:\n  cores: 2\n");
  std::string equals_form = "--config=" + named;
  for (std::vector<std::string_view> args :
       {std::vector<std::string_view>{"broker", "--config", named},
        std::vector<std::string_view>{equals_form, "broker"}}) {
    ConfigLoad result = load(args);
    ASSERT_TRUE(result.ok()) << result.error;
    EXPECT_EQ(result.config.shards, 2u);
    EXPECT_EQ(result.config.api.port, 8082) << "the default file must not be read as well";
  }
}

TEST_F(ConfigTest, UnreadableConfigFileIsAnErrorEvenAsTheDefault) {
  std::filesystem::create_directory(default_yaml());
  EXPECT_EQ(load({"broker"}).error,
            "config error: cannot read config file \"" + default_yaml() + "\": Is a directory");
}

TEST_F(ConfigTest, HugeConfigFileIsRejected) {
  write_default_yaml(std::string((1 << 20) + 1, '#'));
  EXPECT_THAT(load({"broker"}).error, HasSubstr("File too large"));
}

// ---------------------------------------------------------------------------
// The config file's YAML: what the original's YAML library reads, we read

TEST_F(ConfigTest, FlowMappings) {
  write_default_yaml(
      "{logger: {level: warn}, broker: {port: 8100, max-pending: 3},\n"
      " monitoring: {enable: false}}\n");
  ConfigLoad result = load({"broker"});
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.config.log_level, LogLevel::warn);
  EXPECT_EQ(result.config.api.port, 8100);
  EXPECT_EQ(result.config.max_pending, 3u);
  EXPECT_FALSE(result.config.monitoring_enabled);
}

TEST_F(ConfigTest, FlowMappingOfASectionInABlockMapping) {
  write_default_yaml(
      "logger: {level: debug}\n"
      "broker:\n"
      "  cores: 2\n"
      "monitoring: {port: ':9100'}\n");
  ConfigLoad result = load({"broker"});
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.config.log_level, LogLevel::debug);
  EXPECT_EQ(result.config.shards, 2u);
  EXPECT_EQ(result.config.monitoring.port, 9100);
}

TEST_F(ConfigTest, AnchorsAndAliases) {
  write_default_yaml(
      "x-limits: &limit 7\n"
      "broker:\n"
      "  max-pending: *limit\n"
      "  cores: *limit\n");
  ConfigLoad result = load({"broker"});
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.config.max_pending, 7u);
  EXPECT_EQ(result.config.shards, 7u);
}

// As in Go's YAML: a mapping's own keys win over merged ones wherever they
// stand, and of merged mappings the first listed wins.
TEST_F(ConfigTest, MergeKeys) {
  write_default_yaml(
      "x-defaults: &defaults\n"
      "  cores: 3\n"
      "  port: 1111\n"
      "x-more: &more {max-pending: 9, cores: 4}\n"
      "broker:\n"
      "  port: 2222\n"
      "  <<: [*defaults, *more]\n");
  ConfigLoad result = load({"broker"});
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.config.api.port, 2222);
  EXPECT_EQ(result.config.shards, 3u);
  EXPECT_EQ(result.config.max_pending, 9u);
}

TEST_F(ConfigTest, QuotedValues) {
  write_default_yaml(
      "logger:\n"
      "  level: 'warn'\n"
      "broker:\n"
      "  host: \"::1\"\n"
      "  port: '8100'\n"
      "  max-body: \"64 KiB\"\n"
      "  io-uring: \"\\x62asic\"\n"
      "monitoring:\n"
      "  port: '127.0.0.2:9100' # a comment after a quoted value\n");
  ConfigLoad result = load({"broker"});
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.config.log_level, LogLevel::warn);
  EXPECT_EQ(result.config.api.host, "::1");
  EXPECT_EQ(result.config.api.port, 8100);
  EXPECT_EQ(result.config.max_body_bytes, 64u << 10);
  EXPECT_EQ(result.config.io_uring, IoUringMode::basic);
  EXPECT_EQ(result.config.monitoring.host, "127.0.0.2");
  EXPECT_EQ(result.config.monitoring.port, 9100);
}

TEST_F(ConfigTest, QuotedNullIsAStringNotNull) {
  std::string path = write_default_yaml("broker:\n  port: \"~\"\n");
  EXPECT_THAT(load({"broker"}).error, StartsWith("config error: " + path + ":2: broker.port must"));
}

TEST_F(ConfigTest, BlockScalarsAndTags) {
  write_default_yaml(
      "logger:\n"
      "  level: >-\n"
      "    debug\n"
      "broker:\n"
      "  cores: !!str 2\n");
  ConfigLoad result = load({"broker"});
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.config.log_level, LogLevel::debug);
  EXPECT_EQ(result.config.shards, 2u);
}

TEST_F(ConfigTest, CommentOnlyAndEmptyFilesLeaveTheDefaults) {
  for (std::string_view text :
       {"", "\n\n", "# only a comment\n", "---\n", "--- # a comment\n# another\n...\n"}) {
    write_default_yaml(text);
    ConfigLoad result = load({"broker"});
    ASSERT_TRUE(result.ok()) << text << ": " << result.error;
    const Config defaults;
    expect_same(result.config, defaults);
  }
}

TEST_F(ConfigTest, DirectiveDocumentMarkersByteOrderMarkAndCrlf) {
  write_default_yaml(
      "\xEF\xBB\xBF%YAML 1.2\r\n"
      "---\r\n"
      "broker:\r\n"
      "  cores: 2 # a comment\r\n"
      "...\r\n");
  ConfigLoad result = load({"broker"});
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.config.shards, 2u);
}

TEST_F(ConfigTest, DottedKeysWorkAtTheTopLevel) {
  write_default_yaml("broker.max-pending: 4\nBroker.Cores: 5\n");
  ConfigLoad result = load({"broker"});
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.config.max_pending, 4u);
  EXPECT_EQ(result.config.shards, 5u);
}

TEST_F(ConfigTest, EmptyDocumentAfterTheFirstIsFine) {
  write_default_yaml("broker:\n  cores: 1\n---\n");
  ConfigLoad result = load({"broker"});
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.config.shards, 1u);
}

TEST_F(ConfigTest, SecondDocumentIsAnError) {
  std::string path = write_default_yaml("broker:\n  cores: 1\n---\nbroker:\n  cores: 2\n");
  EXPECT_EQ(load({"broker"}).error,
            "config error: " + path + ":3: a second YAML document; the config is one");
}

TEST_F(ConfigTest, UnknownKeyInAFlowMappingNamesItsLine) {
  std::string path = write_default_yaml("broker: {port: 1,\n  max_pendng: 2}\n");
  EXPECT_EQ(load({"broker"}).error,
            "config error: " + path + ":2: unknown key \"broker.max_pendng\"");
}

TEST_F(ConfigTest, WrongTypeNamesTheLine) {
  struct Case {
    std::string text;
    std::string error;  // after "config error: PATH:"
  };
  for (const Case& c : {
           Case{"broker:\n  port: 1\n  max-pending: {a: 1}\n",
                "3: broker.max-pending must be a single value, not a mapping"},
           Case{"logger:\n  level:\n    - debug\n",
                "2: logger.level must be a single value, not a list"},
           Case{"broker:\n  max-pending: abc\n", "2: broker.max-pending must be an integer >= 1"},
           Case{"broker:\n  [port]: 1\n", "2: a key under broker must be a name, not a list"},
           Case{"# a comment\n- broker\n", "2: the config must be a mapping of keys, not a list"},
           Case{"just text\n", "1: the config must be a mapping of keys, not a single value"},
           Case{"broker:\n  <<: 5\n", "2: a merge key (<<) needs a mapping or a list of mappings"},
           Case{"broker:\n  cors-origins:\n    - http://a\n    - [http://b]\n",
                "4: broker.cors-origins must be a list of single values, not of a list"},
           Case{"broker:\n  cors-origins: {http://a: 1}\n",
                "2: broker.cors-origins must be a single value, not a mapping"},
       }) {
    std::string path = write_default_yaml(c.text);
    EXPECT_EQ(load({"broker"}).error, "config error: " + path + ":" + c.error) << c.text;
  }
}

TEST_F(ConfigTest, BoundViolationNamesTheLine) {
  std::string path = write_default_yaml("broker:\n  port: 1\n  cores: 1025\n");
  EXPECT_EQ(load({"broker"}).error,
            "config error: " + path +
                ":3: broker.cores must be an integer from 0 to 1024 (0 = one shard per CPU)");
  write_default_yaml("broker:\n  read-timeout: 50ms\n");
  EXPECT_EQ(load({"broker"}).error,
            "config error: " + path +
                ":2: broker.read-timeout must be a duration from 100ms to 24h (e.g. 10s, 500ms, "
                "1m30s)");
}

TEST_F(ConfigTest, MalformedYamlNamesTheLine) {
  struct Case {
    std::string text;
    int line;
  };
  for (const Case& c :
       {Case{"broker:\n\tport: 1\n", 2}, Case{"broker:\n  port: 1\n\n  host: a: b\n", 4},
        Case{"broker:\n  host: \"\\q\"\n", 2}, Case{"broker: *undefined\n", 1},
        Case{"broker: [broken\n", 2}, Case{",\n", 1}, Case{"broker:\n  cores: 1\n,\n", 3},
        Case{"broker:\n  port: 1\n   cores: 2\n", 3}}) {
    std::string path = write_default_yaml(c.text);
    std::string error = load({"broker"}).error;
    std::string prefix = "config error: " + path + ":" + std::to_string(c.line) + ": ";
    EXPECT_THAT(error, StartsWith(prefix)) << c.text;
    EXPECT_GT(error.size(), prefix.size()) << "says what is wrong: " << c.text;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
}

TEST_F(ConfigTest, DuplicateKeysAreAnError) {
  std::string path = write_default_yaml("broker:\n  port: 1\n  Port: 2\n");
  EXPECT_EQ(load({"broker"}).error,
            "config error: " + path + ":3: duplicate key \"broker.port\" (first on line 2)");
  write_default_yaml("broker:\n  cores: 1\nbroker.cores: 2\n");
  EXPECT_EQ(load({"broker"}).error,
            "config error: " + path + ":3: duplicate key \"broker.cores\" (first on line 2)");
  write_default_yaml("broker: {cores: 1}\nlogger: {}\nbroker: {port: 1}\n");
  EXPECT_EQ(load({"broker"}).error,
            "config error: " + path + ":3: duplicate key \"broker\" (first on line 1)");
}

TEST_F(ConfigTest, DeepNestingIsAnErrorNotACrash) {
  std::string path = write_default_yaml("broker: " + std::string(100'000, '['));
  EXPECT_EQ(load({"broker"}).error, "config error: " + path + ":1: nested too deeply");
}

// A mapping merging itself, or merges fanning out two to a level, 2^40
// expansions in all: refused at once rather than looping or running for ever.
TEST_F(ConfigTest, RunawayMergesAreAnError) {
  std::string path = write_default_yaml("broker: &loop\n  <<: *loop\n");
  EXPECT_THAT(load({"broker"}).error, StartsWith("config error: " + path + ":"));
  EXPECT_THAT(load({"broker"}).error, HasSubstr("merges (<<)"));

  std::string bomb = "x0: &x0 {cores: 1}\n";
  for (int level = 1; level <= 40; ++level) {
    // Appended piece by piece: GCC 12 at -O3 sees a false overlap (-Wrestrict)
    // in a chain of operator+ on std::to_string results.
    const std::string name = std::to_string(level);
    const std::string previous = std::to_string(level - 1);
    bomb.append("x").append(name).append(": &x").append(name);
    bomb.append(" {<<: [*x").append(previous).append(", *x").append(previous).append("]}\n");
  }
  write_default_yaml(bomb + "broker: {<<: *x40}\n");
  EXPECT_THAT(load({"broker"}).error, HasSubstr("merges (<<)"));
}

// Whatever the bytes, reading gives a configuration or one located line;
// under ASan/UBSan this also proves yaml-cpp and the walk over its tree stay
// in bounds.
TEST_F(ConfigTest, ArbitraryFileContentsNeverCrash) {
  const std::string alphabet = "ab:-'\"\\#|>&*![]{}?%@`, \t\n\r.~0<\x01";
  const std::string prefixes[] = {"", "broker:\n  ", "broker: {", "logger: &a\n  level: "};
  std::mt19937 random(12345);
  for (int round = 0; round < 3000; ++round) {
    std::string text = prefixes[random() % std::size(prefixes)];
    for (std::size_t length = random() % 40; length > 0; --length) {
      text += alphabet[random() % alphabet.size()];
    }
    // A new file each round: ext4 flushes a file rewritten in place to disk.
    std::string path = dir_.write("round" + std::to_string(round) + ".yaml", text);
    ConfigLoad result = load({"broker", "--config", path});
    if (result.ok()) continue;
    int lines = 1 + static_cast<int>(std::count(text.begin(), text.end(), '\n'));
    std::string located = "config error: " + path + ":";
    ASSERT_THAT(result.error, StartsWith(located)) << text;
    int line = std::atoi(result.error.c_str() + located.size());
    EXPECT_GE(line, 1) << text << " -> " << result.error;
    EXPECT_LE(line, lines) << text << " -> " << result.error;
    EXPECT_EQ(result.error.find('\n'), std::string::npos) << result.error;
  }
}

// ---------------------------------------------------------------------------
// Command line

TEST_F(ConfigTest, CommandWordIsRequired) {
  const std::string no_command =
      "usage error: no command given; run `gophermq broker` to start the broker (see --help)";
  EXPECT_EQ(load({}).error, no_command);
  EXPECT_EQ(load({"--broker.port=1"}).error, no_command);
  EXPECT_EQ(load({"serve"}).error,
            "usage error: unknown command \"serve\"; run `gophermq broker` (see --help)");
  EXPECT_EQ(load({"broker", "extra"}).error, "usage error: unexpected argument \"extra\"");
}

TEST_F(ConfigTest, FlagsGoBeforeOrAfterTheCommand) {
  ConfigLoad result = load({"--broker.port", "1", "broker", "--broker.cores=2"});
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.command, Command::broker);
  EXPECT_EQ(result.config.api.port, 1);
  EXPECT_EQ(result.config.shards, 2u);
}

TEST_F(ConfigTest, FlagValueMayContainEqualsAndBeEmpty) {
  ConfigLoad result = load({"broker", "--broker.host=", "--logger.level=WARN"});
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.config.api.host, "");
  EXPECT_EQ(result.config.log_level, LogLevel::warn);
  EXPECT_THAT(load({"broker", "--broker.port=1=2"}).error,
              StartsWith("config error: --broker.port=\"1=2\": broker.port must be"));
}

TEST_F(ConfigTest, FlagsNeedValues) {
  EXPECT_EQ(load({"broker", "--broker.port"}).error,
            "usage error: flag --broker.port needs a value");
  EXPECT_EQ(load({"broker", "--broker.port", "--broker.cores=1"}).error,
            "usage error: flag --broker.port needs a value");
  EXPECT_EQ(load({"broker", "--config"}).error, "usage error: flag --config needs a value");
  EXPECT_EQ(load({"broker", "--config="}).error, "usage error: --config needs a file path");
}

TEST_F(ConfigTest, HelpAndVersionNeedNoCommandAndWinOverErrors) {
  write_default_yaml("broker: [broken\n");
  struct Case {
    std::vector<std::string_view> args;
    Command command;
  };
  for (const Case& c :
       {Case{{"--help"}, Command::help}, Case{{"-h"}, Command::help},
        Case{{"broker", "--bogus", "-h"}, Command::help}, Case{{"--version"}, Command::version},
        Case{{"-v"}, Command::version}, Case{{"nonsense", "--version"}, Command::version},
        Case{{"-v", "--help"}, Command::help}}) {
    ConfigLoad result = load(c.args);
    EXPECT_TRUE(result.ok()) << result.error;
    EXPECT_EQ(result.command, c.command);
  }
  EXPECT_FALSE(load({"broker"}).ok()) << "the broken file is read when running";
}

TEST_F(ConfigTest, ListenersMayNotShareAPort) {
  EXPECT_EQ(load({"broker", "--broker.port=9001"}).error,
            "config error: broker.port and monitoring.port are both 9001");
  EXPECT_EQ(load({"broker", "--broker.port=127.0.0.1:9001"}).error,
            "config error: broker.port and monitoring.port are both 9001");
  EXPECT_TRUE(load({"broker", "--broker.port=9001", "--monitoring.enable=false"}).ok());
  EXPECT_TRUE(load({"broker", "--broker.port=0", "--monitoring.port=0"}).ok());
  EXPECT_TRUE(
      load({"broker", "--broker.port=127.0.0.1:9001", "--monitoring.port=127.0.0.2:9001"}).ok());
}

// ---------------------------------------------------------------------------
// --help text

TEST(UsageTextTest, ListsTheCommandAndEveryFlagWithEnvironmentAndDefault) {
  std::string text = usage_text();
  EXPECT_THAT(text, HasSubstr("gophermq broker"));
  EXPECT_THAT(text, HasSubstr("--config PATH"));
  for (std::string_view expected :
       {"--logger.level LEVEL", "env GOPHERMQ_LOGGER_LEVEL, default info",
        "env GOPHERMQ_BROKER_HOST, default \"\"", "env GOPHERMQ_BROKER_PORT, default 8082",
        "env GOPHERMQ_BROKER_MAX__PENDING, default 1000000", "env GOPHERMQ_BROKER_CORES, default 0",
        "env GOPHERMQ_BROKER_MAX__BODY, default 1MiB",
        "env GOPHERMQ_BROKER_MAX__HEADER__BYTES, default 16KiB",
        "env GOPHERMQ_BROKER_IO__URING, default auto",
        "env GOPHERMQ_BROKER_SHUTDOWN__TIMEOUT, default 10s",
        "env GOPHERMQ_BROKER_MAX__PENDING__BYTES, default 1GiB",
        "env GOPHERMQ_BROKER_MAX__CONNECTIONS, default 100000",
        "env GOPHERMQ_BROKER_READ__TIMEOUT, default 10s",
        "env GOPHERMQ_BROKER_IDLE__TIMEOUT, default 60s",
        "env GOPHERMQ_BROKER_MAX__UNSENT__BYTES, default 8MiB",
        "env GOPHERMQ_MONITORING_ENABLE, default true",
        "env GOPHERMQ_MONITORING_PORT, default :9001"}) {
    EXPECT_THAT(text, HasSubstr(expected));
  }
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) EXPECT_LE(line.size(), 80u) << line;
}

// Every flag's env variable maps back to the flag's key, and the defaults
// shown, applied in order, rebuild the built-in defaults: the help text cannot
// drift from the parser.
TEST(UsageTextTest, AgreesWithTheParser) {
  std::istringstream lines(usage_text());
  Config config = non_default_config();
  std::string key;
  int settings = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("  --") && !line.starts_with("  --config")) {
      key = line.substr(4, line.find(' ', 4) - 4);
      continue;
    }
    const std::string_view env_marker = "      env ", default_marker = ", default ";
    if (!line.starts_with(env_marker)) continue;
    std::size_t comma = line.find(default_marker);
    ASSERT_NE(comma, std::string::npos) << line;
    std::string variable = line.substr(env_marker.size(), comma - env_marker.size());
    std::string shown = line.substr(comma + default_marker.size());
    if (shown == "\"\"") shown.clear();
    EXPECT_EQ(environment_key(variable), key);
    EXPECT_EQ(apply_setting(config, key, shown), "") << key;
    ++settings;
  }
  EXPECT_EQ(settings, 33);
  const Config defaults;  // named: GCC 12 at -O3 misreads a temporary as uninitialised
  expect_same(config, defaults);
}

}  // namespace
}  // namespace gophermq
