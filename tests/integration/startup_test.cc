// Start-up and logging as an operator sees them: a port already in use is one
// clear line on stderr and a non-zero exit (never a hang, never a trace); the
// `msg=listening` line carries what a deployment needs to know; the open-files
// limit is raised; and logger.level filters what reaches stderr.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.h"

namespace gophermq::testing {
namespace {

using std::chrono::milliseconds;

// A listening TCP socket on 127.0.0.1 that holds a port for the test (without
// SO_REUSEPORT, so the broker's own SO_REUSEPORT bind cannot share it).
class HeldPort {
 public:
  HeldPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
        ::listen(fd_, 16) == 0 &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
      port_ = ntohs(address.sin_port);
    }
  }
  ~HeldPort() {
    if (fd_ >= 0) ::close(fd_);
  }
  HeldPort(const HeldPort&) = delete;
  HeldPort& operator=(const HeldPort&) = delete;
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

std::vector<std::string> NonEmptyLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::string DescribeRun(const CommandResult& result) {
  std::string text = result.exited ? "exited" : "did NOT exit (killed)";
  text += Numbered(", code ", result.exit_code) + Numbered(", signal ", result.term_signal) +
          Numbered(", after ", result.elapsed.count()) + " ms\n--- stderr ---\n" +
          result.stderr_text + "--- stdout ---\n" + result.stdout_text;
  return text;
}

// The broker must give up at once: exit non-zero well within 5 s, with one
// line on stderr naming the port and saying it is in use.
void ExpectOneLineFailureAboutPort(const CommandResult& result, std::uint16_t port) {
  EXPECT_TRUE(result.exited) << DescribeRun(result);
  EXPECT_EQ(result.term_signal, 0) << "a start-up failure is an exit, not a crash\n"
                                   << DescribeRun(result);
  EXPECT_NE(result.exit_code, 0) << DescribeRun(result);
  EXPECT_NE(result.exit_code, -1) << DescribeRun(result);
  EXPECT_LT(result.elapsed, milliseconds(5'000)) << DescribeRun(result);
  // One error line says what is wrong; nothing else is printed around it.
  const std::vector<std::string> lines = NonEmptyLines(result.stderr_text);
  std::vector<std::string> error_lines;
  for (const std::string& line : lines) {
    if (line.starts_with("level=error msg=")) error_lines.push_back(line);
  }
  ASSERT_EQ(error_lines.size(), 1u) << "one level=error line\n" << DescribeRun(result);
  EXPECT_NE(error_lines[0].find(Numbered("", port)), std::string::npos)
      << "the line names the port " << port << "\n"
      << DescribeRun(result);
  EXPECT_NE(error_lines[0].find("in use"), std::string::npos) << DescribeRun(result);
  EXPECT_EQ(lines.size(), 1u) << "a failed start prints its error line alone on stderr\n"
                              << DescribeRun(result);
}

TEST(StartupTest, ApiPortInUseIsOneLineAndNonZeroExit) {
  HeldPort held;
  ASSERT_NE(held.port(), 0);
  const CommandResult result =
      RunCommand({"broker", Numbered("--broker.port=", held.port()), "--broker.host=127.0.0.1",
                  "--broker.cores=2", "--monitoring.enable=false"},
                 {}, milliseconds(10'000));
  ExpectOneLineFailureAboutPort(result, held.port());
}

TEST(StartupTest, MonitoringPortInUseIsOneLineAndNonZeroExit) {
  HeldPort held;
  ASSERT_NE(held.port(), 0);
  const CommandResult result = RunCommand(
      {"broker", "--broker.port=0", "--broker.host=127.0.0.1", "--broker.cores=2",
       "--monitoring.enable=true", Numbered("--monitoring.port=127.0.0.1:", held.port())},
      {}, milliseconds(10'000));
  ExpectOneLineFailureAboutPort(result, held.port());
}

TEST(StartupTest, ErrorLevelShowsOnlyTheErrorLine) {
  // At logger.level=error nothing informational comes before the failure.
  HeldPort held;
  ASSERT_NE(held.port(), 0);
  const CommandResult result =
      RunCommand({"broker", Numbered("--broker.port=", held.port()), "--broker.host=127.0.0.1",
                  "--monitoring.enable=false", "--logger.level=error"},
                 {}, milliseconds(10'000));
  ExpectOneLineFailureAboutPort(result, held.port());
}

// --- The running broker's log ---

class StartupLogTest : public BrokerTest {
 protected:
  std::optional<BrokerOptions> Options() const override { return std::nullopt; }
};

TEST_F(StartupLogTest, ListeningLineCarriesPortsShardsLimitsAndVersion) {
  ASSERT_NO_FATAL_FAILURE(
      StartBroker(MonitoredOptions({"--broker.max-pending=777", "--broker.cores=2"})));
  const std::string line = broker_->listening_line();
  ASSERT_FALSE(line.empty()) << broker_->log();
  EXPECT_TRUE(line.starts_with("level=info msg=listening")) << line;
  std::map<std::string, std::string> fields;
  for (auto& [key, value] : LogfmtFields(line)) fields[key] = value;
  EXPECT_EQ(fields["api_port"], Numbered("", port())) << line;
  EXPECT_NE(broker_->metrics_port(), 0) << "metrics_port= in " << line;
  EXPECT_NE(broker_->metrics_port(), port()) << line;
  EXPECT_EQ(fields["shards"], "2") << line;
  EXPECT_EQ(fields["max_pending"], "777") << line;
  EXPECT_FALSE(fields["io_uring"].empty()) << line;
  ASSERT_FALSE(fields["version"].empty()) << line;
  const CommandResult version = RunCommand({"--version"}, {}, milliseconds(5'000));
  EXPECT_EQ(version.stdout_text, "gophermq " + fields["version"] + "\n");

  // The monitoring port really serves there.
  HttpClient metrics;
  HttpResponse response;
  ASSERT_TRUE(metrics.Connect(broker_->metrics_port())) << metrics.error();
  ASSERT_TRUE(metrics.Request("GET", "/metrics", "", &response)) << metrics.error();
  EXPECT_EQ(response.status, 200);
}

// Each shard's thread is named shard-N, and the metrics thread monitoring, so
// `top -H`, perf and tools/loadtest's cross mode can tell them apart.
TEST_F(StartupLogTest, ThreadsAreNamedAfterTheirShard) {
  ASSERT_NO_FATAL_FAILURE(StartBroker(MonitoredOptions({"--broker.cores=3"})));
  const std::string tasks = Numbered("/proc/", broker_->pid()) + "/task";
  std::vector<std::string> names;
  for (const auto& task : std::filesystem::directory_iterator(tasks)) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) names.push_back(name);
  }
  // Exactly these, whatever else a sanitizer runtime may start.
  std::vector<std::string> named;
  for (const std::string& name : names) {
    if (name.starts_with("shard-") || name == "monitoring") named.push_back(name);
  }
  std::sort(named.begin(), named.end());
  const std::vector<std::string> expected = {"monitoring", "shard-0", "shard-1", "shard-2"};
  EXPECT_EQ(named, expected);
}

// The soft and hard "Max open files" of a process, from /proc/<pid>/limits.
bool ReadOpenFilesLimits(pid_t pid, std::string* soft, std::string* hard) {
  std::ifstream limits(Numbered("/proc/", pid) + "/limits");
  for (std::string line; std::getline(limits, line);) {
    if (!line.starts_with("Max open files")) continue;
    std::istringstream words(line.substr(std::string_view("Max open files").size()));
    return static_cast<bool>(words >> *soft >> *hard);
  }
  return false;
}

TEST_F(StartupLogTest, RaisesOpenFilesLimitToTheHardLimitAndLogsIt) {
  rlimit ours{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &ours), 0);
  // Start the broker with a lower soft limit than the hard one, so raising it
  // is visible. The child inherits our limits at fork; ours are restored
  // right after (nothing else in this process opens files meanwhile).
  const rlim_t lowered = std::min<rlim_t>(ours.rlim_max, 512);
  rlimit low = ours;
  low.rlim_cur = lowered;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  std::string error;
  broker_ = BrokerProcess::Start(BrokerOptions{}, &error);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &ours), 0);
  ASSERT_NE(broker_, nullptr) << error;

  std::string soft, hard;
  ASSERT_TRUE(ReadOpenFilesLimits(broker_->pid(), &soft, &hard));
  EXPECT_EQ(soft, hard) << "soft limit raised to the hard limit";
  EXPECT_EQ(hard, Numbered("", static_cast<long long>(ours.rlim_max)));

  // Some line reports the limit in effect.
  static const std::regex kLimit(R"(open_files_limit=([0-9]+))");
  std::smatch match;
  const std::string log = broker_->log();
  ASSERT_TRUE(std::regex_search(log, match, kLimit)) << log;
  EXPECT_EQ(match[1].str(), hard) << log;
}

TEST_F(StartupLogTest, EveryLineIsLogfmtWithLevelAndMessage) {
  ASSERT_NO_FATAL_FAILURE(StartBroker(BrokerOptions{}));
  EXPECT_EQ(Call("GET", "/ready").status, 204);
  const std::string stop_error = broker_->Stop();
  EXPECT_EQ(stop_error, "");
  static const std::regex kLine(R"(level=(debug|info|warn|error) msg=\S.*)");
  const std::vector<std::string> lines = NonEmptyLines(broker_->log());
  EXPECT_GE(lines.size(), 1u);
  for (const std::string& line : lines) {
    EXPECT_TRUE(std::regex_match(line, kLine)) << "not a logfmt log line: [" << line << "]";
  }
}

TEST_F(StartupLogTest, WarnLevelPrintsNoInfoLineFromStartToStop) {
  // No msg=listening line to wait for: the harness waits for the port itself.
  BrokerOptions options;
  options.api_port = FreeLoopbackPort();
  ASSERT_NE(*options.api_port, 0);
  options.monitoring_address = "127.0.0.1:0";
  options.flags = {"--logger.level=warn"};
  ASSERT_NO_FATAL_FAILURE(StartBroker(options));
  EXPECT_EQ(Call("GET", "/ready").status, 204);
  // Stop cleanly (SIGTERM): the stop itself must not log at info either.
  client_.reset();
  broker_->Signal(SIGTERM);
  ASSERT_TRUE(broker_->WaitForExit(milliseconds(5'000))) << broker_->log();
  EXPECT_TRUE(WIFEXITED(broker_->wait_status()) && WEXITSTATUS(broker_->wait_status()) == 0)
      << "wait status " << broker_->wait_status() << "\n"
      << broker_->log();
  for (const std::string& line : NonEmptyLines(broker_->log())) {
    EXPECT_FALSE(line.starts_with("level=info") || line.starts_with("level=debug"))
        << "below logger.level=warn: [" << line << "]";
  }
}

}  // namespace
}  // namespace gophermq::testing
