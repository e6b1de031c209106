// Configuration layers as the binary sees them: config.yaml in the working
// directory, GOPHERMQ_* environment variables, then flags; bad values; and the
// one-shot commands (--version, --help).
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <vector>

#include "test_support.h"

namespace gophermq::testing {
namespace {

using std::chrono::milliseconds;

class BrokerConfigTest : public BrokerTest {
 protected:
  std::optional<BrokerOptions> Options() const override { return std::nullopt; }

  // Observes max-pending from outside: with one subscriber, exactly `limit`
  // publishes are accepted and the next is refused with 429.
  void ExpectMaxPending(int limit) {
    const std::string subject = UniqueSubject("limit");
    const std::string id = Subscribe(subject);
    ASSERT_FALSE(id.empty());
    for (int i = 0; i < limit; ++i) {
      ASSERT_TRUE(IsJsonResponse(Publish(subject, "m"), 200, kOkBody))
          << "publish " << i + 1 << " of an expected max-pending of " << limit;
    }
    EXPECT_TRUE(IsJsonResponse(Publish(subject, "m"), 429, kOverflowBody))
        << "publish " << limit + 1 << " should overflow max-pending " << limit;
    EXPECT_EQ(Fetch(subject, id).size(), static_cast<std::size_t>(limit));
  }
};

TEST_F(BrokerConfigTest, EnvironmentVariableSetsMaxPending) {
  BrokerOptions options;
  options.env = {{"GOPHERMQ_BROKER_MAX__PENDING", "2"}};
  ASSERT_NO_FATAL_FAILURE(StartBroker(options));
  ExpectMaxPending(2);
}

TEST_F(BrokerConfigTest, ConfigYamlInWorkingDirectorySetsMaxPending) {
  BrokerOptions options;
  options.config_yaml = "logger:\n  level: info\nbroker:\n  max-pending: 3\n";
  ASSERT_NO_FATAL_FAILURE(StartBroker(options));
  ExpectMaxPending(3);
}

TEST_F(BrokerConfigTest, FlagBeatsEnvironment) {
  BrokerOptions options;
  options.env = {{"GOPHERMQ_BROKER_MAX__PENDING", "2"}};
  options.flags = {"--broker.max-pending=4"};
  ASSERT_NO_FATAL_FAILURE(StartBroker(options));
  ExpectMaxPending(4);
}

TEST_F(BrokerConfigTest, EnvironmentBeatsConfigYaml) {
  BrokerOptions options;
  options.config_yaml = "broker:\n  max-pending: 5\n";
  options.env = {{"GOPHERMQ_BROKER_MAX__PENDING", "2"}};
  ASSERT_NO_FATAL_FAILURE(StartBroker(options));
  ExpectMaxPending(2);
}

TEST_F(BrokerConfigTest, FlagBeatsConfigYaml) {
  BrokerOptions options;
  options.config_yaml = "broker:\n  max-pending: 5\n";
  options.flags = {"--broker.max-pending=1"};
  ASSERT_NO_FATAL_FAILURE(StartBroker(options));
  ExpectMaxPending(1);
}

TEST_F(BrokerConfigTest, EnvironmentSetsMaxBody) {
  BrokerOptions options;
  options.env = {{"GOPHERMQ_BROKER_MAX__BODY", "1024"}};
  ASSERT_NO_FATAL_FAILURE(StartBroker(options));
  EXPECT_EQ(Publish("nobody", std::string(900, 'x')).status, 404);  // fits: 404 from the API
  auto client = Connect();
  HttpResponse response;
  ASSERT_TRUE(client->Request("POST", "/api/publish", PublishBody("nobody", std::string(1100, 'x')),
                              &response))
      << client->error();
  EXPECT_EQ(response.status, 413) << Describe(response);
}

TEST_F(BrokerConfigTest, OtherDocumentedVariablesAreAccepted) {
  // The mapping deployments already use: each must be understood, not refused.
  BrokerOptions options;
  options.env = {{"GOPHERMQ_LOGGER_LEVEL", "debug"},
                 {"GOPHERMQ_MONITORING_PORT", ":0"},
                 {"GOPHERMQ_MONITORING_ENABLE", "false"},
                 {"GOPHERMQ_BROKER_MAX__PENDING", "3"}};
  ASSERT_NO_FATAL_FAILURE(StartBroker(options));
  ExpectMaxPending(3);
}

// --- Refusing to start ---

void ExpectQuickFailureWithOneLine(const CommandResult& result) {
  EXPECT_TRUE(result.exited) << "still running after the timeout; stderr:\n" << result.stderr_text;
  EXPECT_EQ(result.term_signal, 0) << "crashed; stderr:\n" << result.stderr_text;
  EXPECT_NE(result.exit_code, 0) << "stderr:\n" << result.stderr_text;
  EXPECT_EQ(result.stderr_text.find("msg=listening"), std::string::npos) << result.stderr_text;
  // One line for the operator.
  EXPECT_FALSE(result.stderr_text.empty());
  EXPECT_TRUE(result.stderr_text.ends_with("\n")) << result.stderr_text;
  EXPECT_EQ(std::count(result.stderr_text.begin(), result.stderr_text.end(), '\n'), 1)
      << "stderr:\n"
      << result.stderr_text;
}

const std::vector<std::string> kBrokerArgs = {"broker", "--broker.port=0",
                                              "--broker.host=127.0.0.1", "--broker.cores=2",
                                              "--monitoring.enable=false"};

std::vector<std::string> BrokerArgsWith(const std::string& flag) {
  std::vector<std::string> args = kBrokerArgs;
  args.push_back(flag);
  return args;
}

TEST(BrokerStartupTest, BadFlagValueExitsNonZeroWithOneLine) {
  for (const std::string flag :
       {"--broker.max-pending=abc", "--broker.max-pending=-1", "--broker.port=70000",
        "--broker.cores=many", "--logger.level=loud", "--monitoring.enable=maybe"}) {
    SCOPED_TRACE(flag);
    ExpectQuickFailureWithOneLine(RunCommand(BrokerArgsWith(flag), {}, milliseconds(5000)));
  }
}

TEST(BrokerStartupTest, BadEnvironmentValueExitsNonZeroWithOneLine) {
  ExpectQuickFailureWithOneLine(
      RunCommand(kBrokerArgs, {{"GOPHERMQ_BROKER_MAX__PENDING", "abc"}}, milliseconds(5000)));
}

TEST(BrokerStartupTest, BadConfigYamlValueExitsNonZeroWithOneLine) {
  ExpectQuickFailureWithOneLine(
      RunCommand(kBrokerArgs, {}, milliseconds(5000), "broker:\n  max-pending: abc\n"));
}

TEST(BrokerStartupTest, VersionPrintsAVersionAndExitsZero) {
  const CommandResult result = RunCommand({"--version"}, {}, milliseconds(5000));
  ASSERT_TRUE(result.exited);
  EXPECT_EQ(result.exit_code, 0) << result.stderr_text;
  const std::string output = result.stdout_text + result.stderr_text;
  EXPECT_TRUE(std::regex_search(output, std::regex("[0-9]+\\.[0-9]+\\.[0-9]+"))) << output;
}

TEST(BrokerStartupTest, HelpExitsZeroAndNamesTheBrokerCommand) {
  const CommandResult result = RunCommand({"--help"}, {}, milliseconds(5000));
  ASSERT_TRUE(result.exited);
  EXPECT_EQ(result.exit_code, 0) << result.stderr_text;
  const std::string output = result.stdout_text + result.stderr_text;
  EXPECT_NE(output.find("broker"), std::string::npos) << output;
}

// deploy/config.yaml says it lists every key, set to its default: each flag
// --help names is there, under its section, and a broker serves from it.
TEST_F(BrokerConfigTest, ShippedConfigNamesEveryKeyAndServes) {
  const char* path = std::getenv("GOPHERMQ_SHIPPED_CONFIG");
  ASSERT_NE(path, nullptr) << "GOPHERMQ_SHIPPED_CONFIG is not set (tests/integration/meson.build)";
  std::ifstream file(path);
  ASSERT_TRUE(file) << "cannot read " << path;
  const std::string yaml((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());

  const CommandResult help = RunCommand({"--help"}, {}, milliseconds(5000));
  ASSERT_TRUE(help.exited);
  const std::string flags = help.stdout_text + help.stderr_text;
  const std::regex flag("--([a-z]+)\\.([a-z-]+) ");
  const std::regex top_level_key("\n[a-z]+:");
  std::size_t keys = 0;
  for (auto it = std::sregex_iterator(flags.begin(), flags.end(), flag);
       it != std::sregex_iterator(); ++it) {
    const std::string section = (*it)[1].str();
    const std::string key = (*it)[2].str();
    ++keys;
    const std::size_t section_at = yaml.find("\n" + section + ":\n");
    ASSERT_NE(section_at, std::string::npos) << "no section " << section << ": in " << path;
    const std::size_t key_at = yaml.find("\n  " + key + ": ", section_at);
    ASSERT_NE(key_at, std::string::npos) << section << "." << key << " is not in " << path;
    // No other section starts between the two.
    const std::string between = yaml.substr(section_at + 1, key_at - section_at);
    EXPECT_FALSE(std::regex_search(between, top_level_key))
        << section << "." << key << " is under another section in " << path;
  }
  EXPECT_GE(keys, 15u) << "--help listed too few keys:\n" << flags;

  // Ports come from the test's flags, which win over the file.
  BrokerOptions options;
  options.config_yaml = yaml;
  ASSERT_NO_FATAL_FAILURE(StartBroker(options));
  const std::string subject = UniqueSubject("shipped");
  const std::string id = Subscribe(subject);
  ASSERT_FALSE(id.empty());
  EXPECT_TRUE(IsJsonResponse(Publish(subject, "m"), 200, kOkBody));
  EXPECT_EQ(Fetch(subject, id).size(), 1u);
}

}  // namespace
}  // namespace gophermq::testing
