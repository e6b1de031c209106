// Graceful shutdown: on SIGTERM or SIGINT the broker stops accepting, answers
// every request it has already read (also those served by another shard),
// closes keep-alive connections only between responses, and exits 0 within
// broker.shutdown-timeout.
//
// The load test reads each connection's whole byte stream to its end with a
// RawSocket (not HttpClient, which stops at the first error) and then splits
// it into responses, so a response cut short or a close in the middle of a
// response is seen as exactly that.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "raw_socket.h"
#include "test_support.h"

namespace gophermq::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class ShutdownTest : public BrokerTest {
 protected:
  std::optional<BrokerOptions> Options() const override { return std::nullopt; }

  static BrokerOptions WithShutdownTimeout(const std::string& timeout) {
    BrokerOptions options;
    options.flags = {"--broker.shutdown-timeout=" + timeout};
    return options;
  }

  // Leaves a fetch answer far larger than the socket buffers can hold on its
  // way to `stalled`, a client that reads none of it: the broker's send stays
  // in flight, and a shutdown waits on it. The broker's send buffer may
  // autotune up to tcp_wmem's maximum; the client's receive buffer is pinned
  // small.
  void StallAFetchAnswer(RawSocket& stalled) {
    std::size_t send_buffer_max = 4 << 20;
    if (FILE* wmem = std::fopen("/proc/sys/net/ipv4/tcp_wmem", "r")) {
      unsigned long low = 0, initial = 0, high = 0;
      if (std::fscanf(wmem, "%lu %lu %lu", &low, &initial, &high) == 3) send_buffer_max = high;
      std::fclose(wmem);
    }
    const std::string subject = UniqueSubject("shutdown.stalled");
    const std::string id = Subscribe(subject);
    ASSERT_FALSE(id.empty());
    const std::string payload(512 << 10, 'x');
    const std::size_t publishes = (send_buffer_max + (4 << 20)) / payload.size() + 1;
    for (std::size_t i = 0; i < publishes; ++i) PublishOk(subject, payload);
    ASSERT_TRUE(stalled.Connect(port(), 4096));
    ASSERT_TRUE(stalled.SendAll(FormatRequest("POST", "/api/fetch", FetchBody(subject, id))));
    // The answer has started to leave (the client could read its first
    // byte), and the rest cannot: the client never reads.
    ASSERT_TRUE(stalled.WaitReadable(milliseconds(5'000)));
  }

  // Signals the broker and expects exit status 0 within `within` of the
  // signal. Returns how long it took.
  milliseconds SignalAndExpectCleanExit(int signal_number, milliseconds within) {
    const auto signalled = Clock::now();
    broker_->Signal(signal_number);
    const bool exited = broker_->WaitForExit(within + milliseconds(5'000));
    const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - signalled);
    if (!exited) {
      ADD_FAILURE() << "the broker is still running " << took.count() << " ms after signal "
                    << signal_number;
      broker_->Signal(SIGKILL);
      broker_->WaitForExit(milliseconds(5'000));
      return took;
    }
    const int status = broker_->wait_status();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "expected exit status 0 after signal " << signal_number << "; wait status " << status
        << (WIFSIGNALED(status) ? Numbered(" (killed by signal ", WTERMSIG(status)) + ")" : "");
    EXPECT_LE(took, within) << "time from signal " << signal_number << " to exit";
    return took;
  }
};

// --- An idle broker ---

TEST_F(ShutdownTest, IdleBrokerExitsZeroQuicklyOnSigterm) {
  ASSERT_NO_FATAL_FAILURE(StartBroker(BrokerOptions{}));
  // An idle keep-alive connection must not hold the broker up.
  EXPECT_EQ(Call("GET", "/ready").status, 204);
  SignalAndExpectCleanExit(SIGTERM, milliseconds(2'000));
  EXPECT_TRUE(client_->WaitForClose()) << client_->error();
}

TEST_F(ShutdownTest, IdleBrokerExitsZeroQuicklyOnSigint) {
  ASSERT_NO_FATAL_FAILURE(StartBroker(BrokerOptions{}));
  EXPECT_EQ(Call("GET", "/ready").status, 204);
  SignalAndExpectCleanExit(SIGINT, milliseconds(2'000));
  EXPECT_TRUE(client_->WaitForClose()) << client_->error();
}

// SIGHUP (a closed terminal) stops the broker as SIGTERM does: a waiting
// fetch is answered, and the exit is clean.
TEST_F(ShutdownTest, SighupStopsTheBrokerCleanly) {
  // Whatever this test runs under (nohup, a runner that ignores SIGHUP),
  // the broker starts with SIGHUP at its default, as from a terminal: an
  // ignored one is inherited across exec, and stays ignored (see below).
  struct sigaction default_action {
  }, ours{};
  default_action.sa_handler = SIG_DFL;
  ASSERT_EQ(::sigaction(SIGHUP, &default_action, &ours), 0);
  StartBroker(MonitoredOptions());
  ASSERT_EQ(::sigaction(SIGHUP, &ours, nullptr), 0);
  ASSERT_FALSE(HasFatalFailure());
  const std::string subject = UniqueSubject("shutdown.hup");
  const std::string id = Subscribe(subject);
  RawSocket waiting;
  ASSERT_TRUE(waiting.Connect(port()));
  ASSERT_TRUE(waiting.SendAll(
      FormatRequest("POST", "/api/fetch",
                    R"({"subject":")" + subject + R"(","id":")" + id + R"(","wait_ms":60000})")));
  ASSERT_TRUE(MetricReaches("gophermq_waiting_fetches", 1));
  SignalAndExpectCleanExit(SIGHUP, milliseconds(2'000));
  std::string received;
  EXPECT_TRUE(waiting.ReadUntil("\r\n\r\n", milliseconds(5'000), &received));
  EXPECT_TRUE(received.starts_with("HTTP/1.1 200")) << "[" << received << "]";
  EXPECT_EQ(LogField(broker_->log(), "stopping", "signal"), "SIGHUP") << broker_->log();
}

// Ctrl-C during the drain ends the wait for broker.shutdown-timeout: the
// operator has chosen not to wait. The exit is then 1. A repeated SIGTERM
// (a supervisor's, a script's) does not.
TEST_F(ShutdownTest, ASecondSignalStopsAtOnce) {
  BrokerOptions options = WithShutdownTimeout("60s");
  options.flags.push_back("--broker.write-timeout=60s");
  ASSERT_NO_FATAL_FAILURE(StartBroker(options));
  // A send that cannot finish holds the drain until the timeout.
  RawSocket stalled;
  ASSERT_NO_FATAL_FAILURE(StallAFetchAnswer(stalled));
  broker_->Signal(SIGTERM);
  EXPECT_FALSE(broker_->WaitForExit(milliseconds(500))) << "nothing held the shutdown up";
  ASSERT_NE(broker_->log().find("msg=stopping"), std::string::npos) << broker_->log();
  broker_->Signal(SIGTERM);
  EXPECT_FALSE(broker_->WaitForExit(milliseconds(500))) << "a second SIGTERM cut the drain";
  const auto signalled = Clock::now();
  broker_->Signal(SIGINT);
  ASSERT_TRUE(broker_->WaitForExit(milliseconds(5'000))) << "still running after a second signal";
  EXPECT_LT(Clock::now() - signalled, milliseconds(5'000));
  const int status = broker_->wait_status();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << "wait status " << status;
  EXPECT_NE(broker_->log().find("msg=\"stopping at once: SIGINT again\""), std::string::npos)
      << broker_->log();
}

// Under nohup SIGHUP is ignored, and stays so: the broker keeps serving.
TEST_F(ShutdownTest, AnIgnoredSighupStaysIgnored) {
  // The child inherits an ignored signal across exec; ours is restored.
  struct sigaction ignore {
  }, ours{};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGHUP, &ignore, &ours), 0);
  std::string error;
  broker_ = BrokerProcess::Start(BrokerOptions{}, &error);
  ASSERT_EQ(::sigaction(SIGHUP, &ours, nullptr), 0);
  ASSERT_NE(broker_, nullptr) << error;
  broker_->Signal(SIGHUP);
  EXPECT_FALSE(broker_->WaitForExit(milliseconds(500))) << broker_->log();
  HttpClient client;
  ASSERT_TRUE(client.Connect(port())) << client.error();
  HttpResponse response;
  ASSERT_TRUE(client.Request("GET", "/ready", "", &response)) << client.error();
  EXPECT_EQ(response.status, 204);
  SignalAndExpectCleanExit(SIGTERM, milliseconds(2'000));
}

TEST_F(ShutdownTest, ExitsPromptlyWhenSignalledRightAfterStart) {
  // A signal that comes the moment the broker is up (its listening line just
  // printed, a connection just opened and perhaps not yet accepted) must
  // not hold up the exit either: a service manager restarting it, or a test
  // suite, does exactly that. The race is narrow, so it is run many times;
  // each broker must exit 0 within 2 s (the test stops at the first that does
  // not; its log is printed then).
  for (int attempt = 0; attempt < 40 && !HasFailure(); ++attempt) {
    SCOPED_TRACE(Numbered("attempt ", attempt));
    ASSERT_NO_FATAL_FAILURE(StartBroker(BrokerOptions{}));
    auto extra = Connect();
    SignalAndExpectCleanExit(attempt % 2 == 0 ? SIGTERM : SIGINT, milliseconds(2'000));
  }
}

// --- Under load ---

// Each connection has its own 16 subjects, one subscriber each, so its
// fetches see exactly its own publishes. Sixteen subjects lie on both shards,
// so much of each batch is served across shards.
struct LoadBatch {
  std::vector<std::string> subjects, ids;
  std::string bytes;
  // Per request: the subject index, and what its answer must be.
  struct Expected {
    bool fetch = false;
    int subject = 0;
    std::string data;  // the publish's data, or the one message a fetch returns
  };
  std::vector<Expected> expected;
  // request_end[i]: the size of requests 0..i-1 together (request_end[0] = 0).
  std::vector<std::size_t> request_end{0};
};

enum class Reading {
  kWhileWriting,  // responses are read as they come
  kAfterSignal,   // nothing is read until SIGTERM was sent: answers back up
};

// The broker's own account of its work at one moment: requests answered
// (gophermq_requests_total over all its series) and bytes read from clients
// (gophermq_received_bytes_total). -1 each when the scrape fails.
struct BrokerCounts {
  double answered = -1;
  double received_bytes = -1;
};

BrokerCounts ScrapeCounts(std::uint16_t metrics_port) {
  BrokerCounts counts;
  HttpClient client;
  HttpResponse response;
  if (metrics_port == 0 || !client.Connect(metrics_port) ||
      !client.Request("GET", "/metrics", "", &response) || response.status != 200) {
    return counts;
  }
  auto sum = [&](std::string_view prefix) {
    double total = 0;
    bool found = false;
    std::size_t at = 0;
    const std::string needle = "\n" + std::string(prefix);
    while ((at = response.body.find(needle, at)) != std::string::npos) {
      const std::size_t line_end = response.body.find('\n', at + 1);
      const std::size_t space = response.body.rfind(' ', line_end);
      total += std::strtod(response.body.c_str() + space + 1, nullptr);
      found = true;
      at = line_end;
    }
    return found ? total : -1;
  };
  counts.answered = sum("gophermq_requests_total{");
  counts.received_bytes = sum("gophermq_received_bytes_total ");
  return counts;
}

class ShutdownLoadTest : public ShutdownTest {
 protected:
  static constexpr int kConnections = 4;
  static constexpr int kSubjects = 16;

  // Subscribes (on client_) and builds one batch per connection of `rounds`
  // rounds: one publish to each subject, then one fetch of each subject,
  // which must return exactly that round's message.
  void BuildBatches(std::vector<LoadBatch>* batches, int rounds) {
    batches->resize(kConnections);
    for (int c = 0; c < kConnections; ++c) {
      LoadBatch& batch = (*batches)[c];
      for (int s = 0; s < kSubjects; ++s) {
        batch.subjects.push_back(UniqueSubject(Numbered("shutdown.c", c)));
        batch.ids.push_back(Subscribe(batch.subjects.back()));
        ASSERT_FALSE(batch.ids.back().empty());
      }
      for (int r = 0; r < rounds; ++r) {
        std::vector<std::string> round_data;
        for (int s = 0; s < kSubjects; ++s) {
          round_data.push_back(Numbered(Numbered("c", c) + Numbered(".r", r) + ".s", s));
          batch.bytes += FormatRequest("POST", "/api/publish",
                                       PublishBody(batch.subjects[s], round_data.back()));
          batch.expected.push_back({false, s, round_data.back()});
          batch.request_end.push_back(batch.bytes.size());
        }
        for (int s = 0; s < kSubjects; ++s) {
          batch.bytes +=
              FormatRequest("POST", "/api/fetch", FetchBody(batch.subjects[s], batch.ids[s]));
          batch.expected.push_back({true, s, round_data[s]});
          batch.request_end.push_back(batch.bytes.size());
        }
      }
    }
  }

  // Sends every batch on its own connection, SIGTERMs the broker the moment
  // the writes have returned, reads every connection to its end, and checks
  // the streams and the broker's exit.
  void SigtermUnderLoad(int rounds, Reading reading) {
    // Monitoring on: the requests answered just before SIGTERM are all owed
    // to the clients, so each must reach them.
    BrokerOptions options = WithShutdownTimeout("10s");
    options.monitoring_address = "127.0.0.1:0";
    ASSERT_NO_FATAL_FAILURE(StartBroker(options));
    std::vector<LoadBatch> batches;
    ASSERT_NO_FATAL_FAILURE(BuildBatches(&batches, rounds));
    const BrokerCounts before_batches = ScrapeCounts(broker_->metrics_port());
    ASSERT_GE(before_batches.answered, kConnections * kSubjects) << "the subscribes";
    ASSERT_GT(before_batches.received_bytes, 0);
    std::vector<std::unique_ptr<RawSocket>> connections;
    for (int c = 0; c < kConnections; ++c) {
      connections.push_back(std::make_unique<RawSocket>());
      ASSERT_TRUE(connections.back()->Connect(port())) << connections.back()->error();
    }
    std::vector<std::string> streams(kConnections);
    std::vector<RawSocket::End> ends(kConnections, RawSocket::End::error);
    std::vector<std::atomic<std::size_t>> received(kConnections);
    std::vector<int> sent(kConnections, 0);
    std::atomic<int> writers_done{0};
    std::vector<std::thread> readers, writers;
    auto start_readers = [&] {
      for (int c = 0; c < kConnections; ++c) {
        readers.emplace_back([&, c] {
          ends[c] = connections[c]->ReadToEnd(milliseconds(30'000), &streams[c], &received[c]);
        });
      }
    };
    // Read while writing, or the broker may stop reading when its answers
    // back up and block our writes for good.
    if (reading == Reading::kWhileWriting) start_readers();
    for (int c = 0; c < kConnections; ++c) {
      writers.emplace_back([&, c] {
        // A broker that stops reading for 10 s cuts the write short.
        const std::string& bytes = batches[c].bytes;
        sent[c] = connections[c]->Send(bytes, milliseconds(10'000)) == bytes.size() ? 1 : 0;
        writers_done.fetch_add(1);
      });
    }
    // Not reading, the batches must fit in the socket buffers for the writes
    // to return; if they do not within 5 s, reading starts anyway (the test
    // then checks the same things, with answers backed up less).
    bool backed_up = reading == Reading::kAfterSignal;
    const auto write_deadline = Clock::now() + milliseconds(5'000);
    while (writers_done.load() < kConnections) {
      if (readers.empty() && Clock::now() > write_deadline) {
        backed_up = false;
        start_readers();
      }
      std::this_thread::sleep_for(milliseconds(1));  // waiting on threads' sends
    }
    for (std::thread& writer : writers) writer.join();
    const BrokerCounts at_signal = ScrapeCounts(broker_->metrics_port());
    const double answered_at_signal = at_signal.answered - before_batches.answered;
    const double read_at_signal = at_signal.received_bytes - before_batches.received_bytes;
    const auto signalled = Clock::now();
    broker_->Signal(SIGTERM);
    std::vector<std::size_t> received_at_signal;
    for (auto& count : received) received_at_signal.push_back(count.load());
    if (readers.empty()) start_readers();
    for (std::thread& reader : readers) reader.join();

    // The broker exits 0 within its 10 s shutdown timeout.
    const bool exited = broker_->WaitForExit(
        milliseconds(12'000) - std::chrono::duration_cast<milliseconds>(Clock::now() - signalled));
    const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - signalled);
    ASSERT_TRUE(exited) << "still running " << took.count() << " ms after SIGTERM";
    EXPECT_TRUE(WIFEXITED(broker_->wait_status()) && WEXITSTATUS(broker_->wait_status()) == 0)
        << "wait status " << broker_->wait_status();

    std::string summary;
    std::size_t total_responses = 0;
    // The bytes of each connection's answered requests, plus its next request
    // whole (it may have been partly read, and then it is not owed).
    std::size_t answered_or_partly_read_bytes = 0;
    for (int c = 0; c < kConnections; ++c) {
      SCOPED_TRACE(Numbered("connection ", c));
      const LoadBatch& batch = batches[c];
      EXPECT_NE(ends[c], RawSocket::End::timeout) << EndName(ends[c]);
      EXPECT_NE(ends[c], RawSocket::End::error) << EndName(ends[c]);
      const SplitStream split = SplitResponses(streams[c]);
      const std::vector<RawResponse>& responses = split.responses;
      const std::size_t leftover = split.rest;
      EXPECT_EQ(split.problem, "");
      EXPECT_EQ(leftover, 0u) << "the connection ended (" << EndName(ends[c])
                              << ") inside a response: " << leftover << " bytes of it arrived: ["
                              << streams[c].substr(streams[c].size() -
                                                   std::min<std::size_t>(leftover, 300))
                              << "]";
      ASSERT_LE(responses.size(), batch.expected.size()) << "more responses than requests";
      total_responses += responses.size();
      answered_or_partly_read_bytes +=
          batch.request_end[std::min(responses.size() + 1, batch.request_end.size() - 1)];
      // In request order, each answer is the right one; an answered fetch
      // returns its round's message, so every answered publish before it was
      // applied.
      int mismatches = 0;
      for (std::size_t i = 0; i < responses.size() && mismatches < 5; ++i) {
        const auto& expected = batch.expected[i];
        const std::string& subject = batch.subjects[expected.subject];
        const std::string want =
            expected.fetch
                ? ExpectedFetchBody({expected.data}, batch.ids[expected.subject], subject)
                : std::string(kOkBody);
        if (responses[i].status != 200 || responses[i].body != want) {
          ++mismatches;
          ADD_FAILURE() << "response " << i << " to " << (expected.fetch ? "fetch " : "publish ")
                        << subject << ": status " << responses[i].status << " body ["
                        << responses[i].body << "], expected 200 [" << want << "]";
        }
      }
      summary += Numbered(" c", c) + ": " + Numbered("", static_cast<long long>(responses.size())) +
                 "/" + Numbered("", static_cast<long long>(batch.expected.size())) + " answered, " +
                 Numbered("", static_cast<long long>(streams[c].size() - received_at_signal[c])) +
                 " bytes after SIGTERM, " + std::string(EndName(ends[c])) +
                 (sent[c] ? "" : ", write cut short") + ";";
    }
    // Every request the broker had answered when the signal came (it counts
    // a request when it answers it) must have reached its client.
    EXPECT_GE(static_cast<double>(total_responses), answered_at_signal)
        << "the broker had answered " << answered_at_signal
        << " requests of the batches just before SIGTERM, but only " << total_responses
        << " answers reached the clients:" << summary;
    // Every request read before the signal is answered: what the broker had
    // read then fits in the answered requests and one partial request per
    // connection (1 kB allowed for the scrape requests, in case the counter
    // includes the monitoring listener).
    EXPECT_LE(read_at_signal, static_cast<double>(answered_or_partly_read_bytes) + 1024)
        << "the broker had read " << read_at_signal
        << " bytes of the batches just before SIGTERM, more than the requests it answered (and "
           "one partial request per connection) take: "
        << answered_or_partly_read_bytes << " bytes;" << summary;
    std::cout << "[ shutdown ] "
              << Numbered("at SIGTERM: answered ", static_cast<long long>(answered_at_signal))
              << Numbered(", read ", static_cast<long long>(read_at_signal)) << " bytes; "
              << (backed_up ? "answers backed up at SIGTERM; " : "") << "exit after "
              << took.count() << " ms;" << summary << "\n";
  }
};

TEST_F(ShutdownLoadTest, SigtermUnderLoadAnswersWhatWasReadCompletelyAndInOrder) {
  // About 4.5 MB of requests per connection: more than the socket buffers
  // hold, so the broker is still working through them at SIGTERM.
  SigtermUnderLoad(1000, Reading::kWhileWriting);
}

TEST_F(ShutdownLoadTest, SigtermWithAnswersBackedUpDeliversThemBeforeClosing) {
  // About 180 kB of requests per connection, unread answers piling up in the
  // socket buffers at SIGTERM: the broker must still deliver every answer it
  // owes whole before it closes (a close with unread input resets the
  // connection and would throw away answers not yet delivered).
  SigtermUnderLoad(200, Reading::kAfterSignal);
}

// --- Connections during and after shutdown ---

TEST_F(ShutdownTest, NewConnectionAfterSigtermIsRefusedOrClosedWithoutAnswer) {
  ASSERT_NO_FATAL_FAILURE(StartBroker(WithShutdownTimeout("3s")));
  EXPECT_EQ(Call("GET", "/ready").status, 204);
  // A half-sent request may keep the broker (not its listener) alive until the
  // shutdown timeout, so the new connection below meets a stopping broker
  // rather than a dead one.
  RawSocket half;
  ASSERT_TRUE(half.Connect(port()));
  ASSERT_TRUE(half.SendAll(FormatRequest("GET", "/ready", "")));
  ASSERT_TRUE(
      half.SendAll("POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50\r\n"
                   "\r\n{\"subject\":"));

  broker_->Signal(SIGTERM);
  // The idle keep-alive connection is closed once the broker acts on the
  // signal: from then on it must not take new connections.
  EXPECT_TRUE(client_->WaitForClose()) << client_->error();

  RawSocket late;
  if (!late.Connect(port())) {
    // Refused, or reset: a handshake the kernel completed in the listener's
    // backlog is reset when the listener closes, as connect() returns.
    EXPECT_TRUE(late.error_number() == ECONNREFUSED || late.error_number() == ECONNRESET)
        << late.error();
  } else {
    // Connected (the kernel may complete a handshake on a listener not yet
    // closed): the request must get no answer, and the connection must end.
    late.SendAll(FormatRequest("GET", "/ready", ""));
    std::string received;
    const RawSocket::End end = late.ReadToEnd(milliseconds(5'000), &received);
    EXPECT_TRUE(end == RawSocket::End::eof || end == RawSocket::End::reset) << EndName(end);
    EXPECT_EQ(received, "") << "a connection made after SIGTERM was answered";
  }
  const bool exited = broker_->WaitForExit(milliseconds(8'000));
  ASSERT_TRUE(exited) << "still running 8 s after SIGTERM with a 3 s shutdown timeout";
  EXPECT_TRUE(WIFEXITED(broker_->wait_status()) && WEXITSTATUS(broker_->wait_status()) == 0)
      << "wait status " << broker_->wait_status();
}

TEST_F(ShutdownTest, HalfSentRequestsDoNotOutliveTheShutdownTimeout) {
  ASSERT_NO_FATAL_FAILURE(StartBroker(WithShutdownTimeout("500ms")));
  // One connection sent a request's head but not its body, another only part
  // of a head. Each first has a whole request answered, so the broker has
  // accepted it and is serving it when the signal comes.
  RawSocket no_body, half_head;
  ASSERT_TRUE(no_body.Connect(port()));
  ASSERT_TRUE(half_head.Connect(port()));
  const std::string ready = FormatRequest("GET", "/ready", "");
  for (RawSocket* connection : {&no_body, &half_head}) {
    ASSERT_TRUE(connection->SendAll(ready));
    std::string received;
    EXPECT_TRUE(connection->ReadUntil("\r\n\r\n", milliseconds(5'000), &received));
    EXPECT_TRUE(received.starts_with("HTTP/1.1 204")) << "[" << received << "]";
  }
  ASSERT_TRUE(no_body.SendAll(
      "POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n"));
  ASSERT_TRUE(half_head.SendAll("POST /api/publish HTTP/1.1\r\nHost: 127.0"));
  SignalAndExpectCleanExit(SIGTERM, milliseconds(2'000));
}

// A fetch answer far larger than the socket buffers can hold, to a client
// that reads none of it: at the shutdown deadline the broker's send is still
// in flight. The shard must cancel it and reap every operation before it
// frees the connection's buffers (under AddressSanitizer, anything else shows
// as a use-after-free), and still exit 0 at once.
TEST_F(ShutdownTest, ASendStillInFlightAtTheDeadlineIsCancelledAndReapedBeforeExit) {
  BrokerOptions options = WithShutdownTimeout("300ms");
  options.flags.push_back("--logger.level=debug");
  ASSERT_NO_FATAL_FAILURE(StartBroker(options));
  RawSocket stalled;
  ASSERT_NO_FATAL_FAILURE(StallAFetchAnswer(stalled));
  SignalAndExpectCleanExit(SIGTERM, milliseconds(3'000));
  const std::string log = broker_->log();
  EXPECT_EQ(LogField(log, "cancelling connections' operations still in flight", "connections"), "1")
      << log;
  EXPECT_EQ(log.find("shard stopping with io_uring operations still in flight"), std::string::npos)
      << log;
}

}  // namespace
}  // namespace gophermq::testing
