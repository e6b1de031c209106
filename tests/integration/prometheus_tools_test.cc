// The metrics endpoint against the real Prometheus tools (Debian package
// `prometheus`): `promtool check metrics` finds nothing to flag but the legacy
// counter name kept for the original's dashboards, and a real Prometheus
// server scrapes the broker. Each test is skipped when its tool is not on PATH.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_support.h"

namespace gophermq::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class PrometheusToolsTest : public BrokerTest {
 protected:
  std::optional<BrokerOptions> Options() const override { return MonitoredOptions(); }

  std::string ScrapeBody() {
    HttpClient client;
    HttpResponse response;
    if (broker_->metrics_port() == 0 || !client.Connect(broker_->metrics_port()) ||
        !client.Request("GET", "/metrics", "", &response)) {
      ADD_FAILURE() << "cannot scrape (metrics_port " << broker_->metrics_port()
                    << "): " << client.error();
      return {};
    }
    EXPECT_EQ(response.status, 200) << Describe(response);
    return response.body;
  }
};

TEST_F(PrometheusToolsTest, PromtoolFlagsOnlyTheLegacyCounterName) {
  const std::string promtool = FindOnPath("promtool");
  if (promtool.empty()) GTEST_SKIP() << "promtool is not on PATH";
  MakeRequestsOfEveryKind("tools");
  const std::string body = ScrapeBody();
  ASSERT_FALSE(body.empty());

  TempDir dir;
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(dir.WriteFile("metrics.txt", body));
  // promtool reads the exposition on stdin; the shell only redirects it.
  Subprocess check;
  std::string error;
  ASSERT_TRUE(check.Spawn({"/bin/sh", "-c", "exec \"$0\" check metrics < metrics.txt", promtool},
                          OurEnvironment(), dir.path(), &error))
      << error;
  ASSERT_TRUE(check.WaitForExit(milliseconds(30'000))) << "promtool did not finish in 30 s";
  check.WaitForOutputEnd(milliseconds(5'000));
  const std::string output = check.stdout_text() + check.stderr_text();
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    EXPECT_NE(line.find("gophermq_client_request_rate"), std::string::npos)
        << "promtool complains about something else: [" << line << "]";
  }
  std::cout << "[ promtool ] exit " << WEXITSTATUS(check.wait_status()) << ": " << output;
  if (HasFailure()) std::cerr << "--- /metrics ---\n" << body.substr(0, 20000) << "\n";
}

TEST_F(PrometheusToolsTest, RealPrometheusScrapesTheBroker) {
  const std::string prometheus = FindOnPath("prometheus");
  if (prometheus.empty()) GTEST_SKIP() << "prometheus is not on PATH";
  ASSERT_NE(broker_->metrics_port(), 0) << broker_->listening_line();
  MakeRequestsOfEveryKind("tools");

  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string config =
      "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
      "scrape_configs:\n  - job_name: gophermq\n    scrape_interval: 1s\n"
      "    static_configs:\n      - targets: ['127.0.0.1:" +
      Numbered("", broker_->metrics_port()) + "']\n";
  ASSERT_TRUE(dir.WriteFile("prometheus.yml", config));
  const std::uint16_t web_port = FreeLoopbackPort();
  ASSERT_NE(web_port, 0);
  Subprocess server;
  std::string error;
  ASSERT_TRUE(StartPrometheus(server, prometheus, dir.path(), web_port, &error)) << error;

  // up{job="gophermq"} is 1 once a scrape succeeded.
  const std::string up_query = "up%7Bjob%3D%22gophermq%22%7D";
  std::string raw;
  bool up = false;
  const auto deadline = Clock::now() + milliseconds(20'000);
  while (!up && Clock::now() < deadline && !server.WaitForExit(milliseconds(0))) {
    const auto result = PrometheusQuery(web_port, up_query, &raw);
    up = result && result->size() == 1 && (*result)[0].second == "1";
    if (!up) std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_TRUE(up) << "up{job=\"gophermq\"} never became 1 within 20 s; last answer: " << raw;

  // The scrape stored the broker's samples.
  if (up) {
    bool found = false;
    const auto samples_deadline = Clock::now() + milliseconds(5'000);
    while (!found && Clock::now() < samples_deadline) {
      const auto result = PrometheusQuery(web_port, "gophermq_requests_total", &raw);
      found = result && !result->empty();
      if (!found) std::this_thread::sleep_for(milliseconds(200));
    }
    EXPECT_TRUE(found) << "gophermq_requests_total has no series; last answer: " << raw;
  }

  server.Stop();
  if (HasFailure()) {
    server.WaitForOutputEnd(milliseconds(2'000));
    std::string log = server.stderr_text();
    if (log.size() > 8000) log = "...\n" + log.substr(log.size() - 8000);
    std::cerr << "--- prometheus log ---\n" << log << "---\n";
  }
}

}  // namespace
}  // namespace gophermq::testing
