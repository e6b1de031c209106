// Subscriber lifecycle over sockets: what unsubscribing gives back. A broker
// that only ever grew (no unsubscribe, subjects kept forever) held every
// subscriber and subject it was ever asked for; now memory returns to its
// resting level after any number of subscribe/unsubscribe cycles.
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "test_support.h"

namespace gophermq::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Subscribers held at once in each round: pipelined in one write, their ids
// read, then unsubscribed the same way.
constexpr int kOutstanding = 1000;
// A million cycles in a plain build; a sanitizer build is several times
// slower per request, so it runs a tenth (its memory is not measured: the
// sanitizer's own bookkeeping would swamp a few MiB).
constexpr int kCycles = kAddressSanitizer || kThreadSanitizer ? 100'000 : 1'000'000;
// Resident memory allowed to stay above where it was after the warm-up.
constexpr double kSettleBytes = 4.0 * 1024 * 1024;

// The broker's resident memory, from /proc/<pid>/status; 0 when unreadable.
double ResidentBytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) * 1024;  // in kB
  }
  return 0;
}

class LifecycleTest : public BrokerTest {
 protected:
  std::optional<BrokerOptions> Options() const override { return MonitoredOptions(); }

  // One round: kOutstanding subscribers, each of a subject of its own (so
  // subjects come and go too), one message published to every tenth, then
  // all unsubscribed. Every answer is checked.
  void Round(HttpClient& client, int round) {
    std::vector<std::string> subjects;
    std::string batch;
    for (int i = 0; i < kOutstanding; ++i) {
      subjects.push_back("cycle." + std::to_string(round) + "." + std::to_string(i));
      batch += FormatRequest("POST", "/api/subscribe", "{\"subject\":\"" + subjects.back() + "\"}");
    }
    ASSERT_TRUE(client.SendRaw(batch)) << client.error();
    std::vector<std::string> ids;
    for (int i = 0; i < kOutstanding; ++i) {
      HttpResponse response;
      ASSERT_TRUE(client.ReadResponse(&response)) << client.error();
      ASSERT_EQ(response.status, 200) << response.body;
      const std::size_t at = response.body.find("\"id\":\"");
      ASSERT_NE(at, std::string::npos) << response.body;
      ids.push_back(response.body.substr(at + 6, 36));
    }
    batch.clear();
    int publishes = 0;
    for (int i = 0; i < kOutstanding; i += 10, ++publishes) {
      batch += FormatRequest("POST", "/api/publish", PublishBody(subjects[i], "held, then freed"));
    }
    for (int i = 0; i < kOutstanding; ++i) {
      batch += FormatRequest("POST", "/api/unsubscribe", FetchBody(subjects[i], ids[i]));
    }
    ASSERT_TRUE(client.SendRaw(batch)) << client.error();
    for (int i = 0; i < publishes + kOutstanding; ++i) {
      HttpResponse response;
      ASSERT_TRUE(client.ReadResponse(&response)) << client.error();
      ASSERT_EQ(response.status, 200) << response.body;
    }
  }

  // The store's gauges are all back to zero.
  void ExpectEmptyStore() {
    std::string error;
    const std::optional<std::string> scrape = ScrapeMetrics(broker_->metrics_port(), &error);
    ASSERT_TRUE(scrape) << error;
    for (const char* gauge : {"gophermq_subjects", "gophermq_subscribers",
                              "gophermq_pending_messages", "gophermq_pending_bytes"}) {
      EXPECT_EQ(MetricValue(*scrape, gauge), 0) << gauge;
    }
  }
};

TEST_F(LifecycleTest, SubscribeUnsubscribeCyclesGiveEveryThingBack) {
  HttpClient client(seconds(30));
  ASSERT_TRUE(client.Connect(port())) << client.error();
  // A warm-up: receive buffers, the allocator's pages and the tables reach
  // their working size.
  for (int round = 0; round < 20; ++round) ASSERT_NO_FATAL_FAILURE(Round(client, round));
  ASSERT_NO_FATAL_FAILURE(ExpectEmptyStore());
  const double resting = ResidentBytes(broker_->pid());
  ASSERT_GT(resting, 0) << "cannot read the broker's VmRSS";

  for (int round = 20; round < 20 + kCycles / kOutstanding; ++round) {
    ASSERT_NO_FATAL_FAILURE(Round(client, round));
  }
  ASSERT_NO_FATAL_FAILURE(ExpectEmptyStore());
  if (kAddressSanitizer || kThreadSanitizer) {
    std::cerr << "note: a sanitizer build: resident memory is not measured\n";
    return;
  }
  const double after = ResidentBytes(broker_->pid());
  std::cerr << "[ lifecycle ] " << kCycles << " cycles: resident " << resting / 1048576
            << " MiB after the warm-up, " << after / 1048576 << " MiB after\n";
  EXPECT_LE(after, resting + kSettleBytes)
      << kCycles << " subscribe/unsubscribe cycles left memory behind";
}

// A backlog's memory goes back to the system once it is fetched and the
// broker goes quiet. The allocator keeps the pages it frees for reuse, and
// gives them up only when its thread next allocates near them: a broker that
// took a spike held its peak for good (233 MB resident with a million
// 200-byte messages pending, 217 MB after they were all fetched).
TEST_F(LifecycleTest, AFetchedBacklogGivesItsMemoryBack) {
  constexpr int kMessages = 100'000;
  constexpr int kBatch = 1000;
  const std::string subject = "backlog.spike";
  const std::string id = Subscribe(subject);
  ASSERT_FALSE(id.empty());
  PublishOk(subject, "warm-up");
  ASSERT_EQ(Fetch(subject, id).size(), 1u);
  const double resting = ResidentBytes(broker_->pid());
  ASSERT_GT(resting, 0) << "cannot read the broker's VmRSS";

  HttpClient publisher(seconds(30));
  ASSERT_TRUE(publisher.Connect(port())) << publisher.error();
  const std::string publish =
      FormatRequest("POST", "/api/publish", PublishBody(subject, std::string(500, 'b')));
  std::string batch;
  for (int i = 0; i < kBatch; ++i) batch += publish;
  for (int sent = 0; sent < kMessages; sent += kBatch) {
    ASSERT_TRUE(publisher.SendRaw(batch)) << publisher.error();
    for (int i = 0; i < kBatch; ++i) {
      HttpResponse response;
      ASSERT_TRUE(publisher.ReadResponse(&response)) << publisher.error();
      ASSERT_EQ(response.status, 200) << response.body;
    }
  }
  const double peak = ResidentBytes(broker_->pid());

  std::size_t fetched = 0;
  for (std::vector<std::string> data = Fetch(subject, id); !data.empty();
       data = Fetch(subject, id)) {
    fetched += data.size();
  }
  ASSERT_EQ(fetched, static_cast<std::size_t>(kMessages));
  EXPECT_EQ(Metric("gophermq_pending_bytes"), 0);
  if (kAddressSanitizer || kThreadSanitizer) {
    std::cerr << "note: a sanitizer build: resident memory is not measured\n";
    return;
  }
  std::cerr << "[ lifecycle ] resident " << resting / 1048576 << " MiB before the backlog, "
            << peak / 1048576 << " MiB with it\n";
  // The backlog took some 60 MB: else this measures nothing.
  ASSERT_GE(peak - resting, 40.0 * 1024 * 1024);
  EXPECT_TRUE(Eventually([&] { return ResidentBytes(broker_->pid()); },
                         [&](double now) { return now <= resting + (peak - resting) / 4; },
                         "resident bytes after the backlog was fetched",
                         "back to within a quarter of the backlog's growth"));
  std::cerr << "[ lifecycle ] resident " << ResidentBytes(broker_->pid()) / 1048576
            << " MiB once it was fetched\n";
}

// --- Idle expiry -----------------------------------------------------------

class ExpiryTest : public BrokerTest {
 protected:
  std::optional<BrokerOptions> Options() const override { return std::nullopt; }

  void StartWith(std::vector<std::string> flags) {
    StartBroker(MonitoredOptions(std::move(flags)));
  }

  std::string SubscribeFor(const std::string& subject, long long inactive_threshold_ms) {
    return SubscribeWith(subject,
                         "\"inactive_threshold_ms\":" + std::to_string(inactive_threshold_ms));
  }

  // Waits, without touching any subscriber, until `count` have expired.
  bool WaitForExpired(double count, milliseconds timeout) {
    const Clock::time_point deadline = Clock::now() + timeout;
    while (Metric("gophermq_subscribers_expired_total") < count) {
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return true;
  }
};

TEST_F(ExpiryTest, AnIdleSubscriberExpiresAndItsIdThenAnswersBadId) {
  ASSERT_NO_FATAL_FAILURE(StartWith({}));
  constexpr int kThresholdMs = 300;
  const Clock::time_point subscribed = Clock::now();
  std::vector<std::string> subjects, ids;
  for (int i = 0; i < 6; ++i) {  // on both shards
    subjects.push_back(Numbered("expiring.s", i));
    ids.push_back(SubscribeFor(subjects.back(), kThresholdMs));
    PublishOk(subjects.back(), "never fetched");
  }
  const std::string keeper = Subscribe("expiring.keeper");  // no threshold
  ASSERT_TRUE(WaitForExpired(6, milliseconds(kThresholdMs) + seconds(10)));
  EXPECT_GE(std::chrono::duration_cast<milliseconds>(Clock::now() - subscribed).count(),
            kThresholdMs)
      << "expired before its threshold";
  for (std::size_t i = 0; i < subjects.size(); ++i) {
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/fetch", FetchBody(subjects[i], ids[i])), 404, kBadIdBody));
    EXPECT_TRUE(IsJsonResponse(Publish(subjects[i], "x"), 404, kSubscriberNotFoundBody))
        << "the subject went with its only subscriber";
  }
  EXPECT_EQ(Metric("gophermq_pending_messages"), 0) << "their queues were released";
  EXPECT_EQ(Metric("gophermq_subscribers"), 1);
  EXPECT_TRUE(Fetch("expiring.keeper", keeper).empty());
}

TEST_F(ExpiryTest, FetchingKeepsASubscriberAlive) {
  ASSERT_NO_FATAL_FAILURE(StartWith({}));
  // Generous, so a busy machine's pauses between fetches stay far below it.
  constexpr int kThresholdMs = 2000;
  const std::string id = SubscribeFor("kept.alive", kThresholdMs);
  const Clock::time_point until = Clock::now() + milliseconds(3 * kThresholdMs / 2);
  while (Clock::now() < until) {
    PublishOk("kept.alive", "m");
    ASSERT_EQ(Fetch("kept.alive", id), std::vector<std::string>{"m"});
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(Metric("gophermq_subscribers_expired_total"), 0);
  // Left alone, it goes.
  ASSERT_TRUE(WaitForExpired(1, milliseconds(kThresholdMs) + seconds(10)));
  EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", FetchBody("kept.alive", id)), 404, kBadIdBody));
}

TEST_F(ExpiryTest, TheConfiguredThresholdIsTheDefaultAndZeroMeansNever) {
  ASSERT_NO_FATAL_FAILURE(StartWith({"--broker.inactive-threshold=300ms"}));
  const std::string defaulted = Subscribe("by.default");
  const std::string never = SubscribeFor("by.choice", 0);
  ASSERT_TRUE(WaitForExpired(1, seconds(10)));
  EXPECT_TRUE(
      IsJsonResponse(Post("/api/fetch", FetchBody("by.default", defaulted)), 404, kBadIdBody));
  EXPECT_TRUE(Fetch("by.choice", never).empty()) << "inactive_threshold_ms 0: never expires";
}

TEST_F(ExpiryTest, AThresholdThatIsNotAnIntegerInRangeIsAnInvalidBody) {
  ASSERT_NO_FATAL_FAILURE(StartWith({}));
  for (const std::string value : {"-1", "1.5", "\"300\"", "true", "31536000001"}) {
    SCOPED_TRACE(value);
    EXPECT_TRUE(IsJsonResponse(
        Post("/api/subscribe", "{\"subject\":\"t\",\"inactive_threshold_ms\":" + value + "}"), 400,
        kInvalidBodyBody));
  }
  EXPECT_EQ(Metric("gophermq_subscribers"), 0);
}

}  // namespace
}  // namespace gophermq::testing
