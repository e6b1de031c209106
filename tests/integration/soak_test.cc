// Soak test: everything at once for a while (GOPHERMQ_SOAK_SECONDS, default
// 8), against a broker whose pending bounds are low enough that publishes get
// refused. Pipelined publishers on 16 subjects (both shards own some) that
// reconnect now and then, pipelined fetchers on 32 subscribers that slow down
// part of the time, a chaos thread opening connections that misbehave, and a
// churn thread adding short-lived subscribers to the same subjects (plain,
// bounded with discard new or old, and abandoned ones left to expire).
// Every subscriber must receive, from every publisher, exactly that
// publisher's accepted publishes to its subject, in order: nothing lost,
// nothing twice, nothing refused (checked while the messages arrive, so the
// test's memory stays small however fast the broker is). Afterwards the
// broker must still answer, hold no message, and have given back the memory
// the load took. The short-lived subscribers must receive each publisher's
// messages in order, none twice; they are all gone by the end.
//
// Every wait is bounded: sockets carry timeouts, and the whole run has a
// deadline of its duration + 60 s.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "raw_socket.h"
#include "test_support.h"

namespace gophermq::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kSubjects = 16;
constexpr int kSubscribersPerSubject = 2;
constexpr int kSubscribers = kSubjects * kSubscribersPerSubject;
constexpr int kPublishers = 4;
constexpr int kFetchers = 3;
// Publishes per pipelined write.
constexpr int kBatch = 32;
// A publisher reconnects after this many batches (all their responses read
// first, so no publish ever has an unknown outcome).
constexpr int kBatchesPerConnection = 200;
// Low enough that the queues fill up whenever the fetchers slow down, and
// publishes are refused: every publish stores kSubscribersPerSubject messages.
// Broker-wide (broker.max-pending-total), and a quarter of it per subject
// (broker.max-pending), so both bounds refuse some.
constexpr int kMaxPending = 3000;
constexpr int kMaxPendingPerSubject = kMaxPending / 4;
// How long a slow fetcher pauses between rounds: long enough that the
// publishers fill max-pending even in a sanitizer build.
constexpr milliseconds kSlowFetchPause(50);
// The chaos thread opens at most one connection per this interval.
constexpr milliseconds kChaosInterval(4);
// Every socket read or write gives up after this (a broker that stops
// answering fails the test instead of hanging it).
constexpr milliseconds kSocketTimeout(10'000);
// After the load: how much longer fetchers may take to drain, and the bound
// of the whole run beyond its duration.
constexpr seconds kGrace(60);

// The load's duration when GOPHERMQ_SOAK_SECONDS does not set it, and the
// most it may set: the integration suite's meson timeout is 300 s, and this
// stays well under it.
constexpr int kDefaultSoakSeconds = 8;
constexpr int kMostSoakSeconds = 180;

double MiB(double bytes) { return bytes / (1024.0 * 1024.0); }

// --- Messages: "p<publisher>-<seq>", seq counting up per publisher ---

std::string MessageData(int publisher, std::uint32_t seq) {
  std::string data = "p";
  data += std::to_string(publisher);
  data += '-';
  data += std::to_string(seq);
  return data;
}

// (publisher << 32) | seq, or nullopt when `data` is not a message of ours.
std::optional<std::uint64_t> ParseMessage(std::string_view data) {
  if (data.size() < 4 || data[0] != 'p') return std::nullopt;
  const char* const end = data.data() + data.size();
  unsigned publisher = 0;
  auto [after_publisher, error1] = std::from_chars(data.data() + 1, end, publisher);
  if (error1 != std::errc() || after_publisher == end || *after_publisher != '-' ||
      publisher >= kPublishers) {
    return std::nullopt;
  }
  std::uint32_t seq = 0;
  auto [after_seq, error2] = std::from_chars(after_publisher + 1, end, seq);
  if (error2 != std::errc() || after_seq != end) return std::nullopt;
  return (std::uint64_t{publisher} << 32) | seq;
}

// --- Metrics ---

// --- What was published, and checking deliveries against it as they come ---

// One publisher's outcomes, indexed by seq: the subject index, with
// kAccepted set when the broker answered 200. The publisher appends; fetcher
// threads read, while it grows, the prefix published() covers: chunks never
// move once allocated, and the release store of the count orders an entry's
// write before any read of it. One byte per publish keeps a long soak's
// memory small whatever the publish rate.
class PublishLog {
 public:
  static constexpr std::uint8_t kAccepted = 0x80;

  PublishLog() : chunks_(kMaxChunks) {}

  // Publisher thread only. False when the log is full (the publisher stops).
  bool Append(std::uint8_t entry) {
    const std::uint64_t seq = size_;
    const std::uint64_t chunk = seq >> kChunkBits;
    if (chunk >= kMaxChunks) return false;
    if (!chunks_[chunk]) chunks_[chunk] = std::make_unique<std::uint8_t[]>(kChunkSize);
    chunks_[chunk][seq & (kChunkSize - 1)] = entry;
    ++size_;
    return true;
  }
  // Publisher thread only: makes everything appended so far readable.
  void Publish() { published_.store(size_, std::memory_order_release); }

  // Any thread: how many entries may be read.
  std::uint64_t published() const { return published_.load(std::memory_order_acquire); }
  std::uint8_t at(std::uint64_t seq) const {
    return chunks_[seq >> kChunkBits][seq & (kChunkSize - 1)];
  }

 private:
  static constexpr int kChunkBits = 20;
  static constexpr std::uint64_t kChunkSize = std::uint64_t{1} << kChunkBits;
  static constexpr std::uint64_t kMaxChunks = 4096;  // 4 Gi publishes: never reached

  std::vector<std::unique_ptr<std::uint8_t[]>> chunks_;  // sized once, never resized
  std::uint64_t size_ = 0;                               // publisher thread only
  std::atomic<std::uint64_t> published_{0};
};

// What one subscriber received from one publisher, checked in order against
// that publisher's log as soon as the outcomes are known. Touched only by the
// fetcher thread that owns the subscriber.
struct Stream {
  std::uint64_t next = 0;               // every seq below this is checked
  std::deque<std::uint32_t> unchecked;  // received; outcome not yet in the log
  std::uint64_t received = 0;
};

struct Subscriber {
  int subject = 0;  // index into subjects
  std::string id;
  Stream streams[kPublishers];
  int empty_streak = 0;  // consecutive empty fetches sent after the load
};

// Checks `stream` (subscriber of `subject`, messages of the publisher whose
// log is `log`) up to what the log holds: each received seq must be the next
// publish of that publisher to `subject` the broker accepted. With `final`
// (the publisher is done and every queue drained), the accepted publishes
// after the last one received are missing.
void CheckStream(Stream& stream, const PublishLog& log, int subject, bool final,
                 const std::string& who, ErrorLog& delivery_errors) {
  const std::uint64_t known = log.published();
  const std::uint8_t accepted_here = PublishLog::kAccepted | static_cast<std::uint8_t>(subject);
  // Accepted publishes to `subject` in [next, end) were skipped: lost, or
  // (when `end` was received) delivered out of order.
  auto report_missing_up_to = [&](std::uint64_t end, std::string_view why) {
    for (std::uint64_t seq = stream.next; seq < end; ++seq) {
      if (log.at(seq) == accepted_here) {
        delivery_errors.Add(Joined({who, ": accepted seq ", std::to_string(seq), why}));
      }
    }
  };
  while (!stream.unchecked.empty() && stream.unchecked.front() < known) {
    const std::uint32_t seq = stream.unchecked.front();
    stream.unchecked.pop_front();
    if (seq < stream.next) {
      delivery_errors.Add(
          Joined({who, ": seq ", std::to_string(seq), " received again or late (after seq ",
                  std::to_string(stream.next - 1), ")"}));
      continue;
    }
    report_missing_up_to(seq, Joined({" not received before seq ", std::to_string(seq)}));
    const std::uint8_t entry = log.at(seq);
    if ((entry & ~PublishLog::kAccepted) != subject) {
      delivery_errors.Add(Joined({who, ": received seq ", std::to_string(seq),
                                  ", which was published to subject index ",
                                  std::to_string(entry & ~PublishLog::kAccepted)}));
    } else if ((entry & PublishLog::kAccepted) == 0) {
      delivery_errors.Add(Joined(
          {who, ": received seq ", std::to_string(seq), ", whose publish was refused with 429"}));
    }
    stream.next = seq + 1;
  }
  if (final) {
    // Seqs still unchecked had no known outcome: their publisher failed
    // (reported on its own), so there is nothing to compare them with.
    report_missing_up_to(known, " never received");
    stream.next = std::max(stream.next, known);
  }
}

// ThreadSanitizer gives every byte of memory the broker touches about five
// bytes of shadow (4x shadow cells, 0.5x meta), which it never returns: the
// resident memory allowed to stay after the load scales by that much (the
// release build's soak checks the broker's own memory at the plain bound).
constexpr double kResidentGrowthFactor = kThreadSanitizer ? 6 : 1;

class SoakTest : public BrokerTest {
 protected:
  std::optional<BrokerOptions> Options() const override {
    return MonitoredOptions({Numbered("--broker.max-pending=", kMaxPendingPerSubject),
                             Numbered("--broker.max-pending-total=", kMaxPending)});
  }

  void SetUp() override {
    if (!kAddressSanitizer) {
      BrokerTest::SetUp();
      return;
    }
    // In an ASan build the broker is an ASan build too, and ASan keeps freed
    // memory in a quarantine of up to 256 MiB: resident memory would grow by
    // that much however well the broker frees. A small quarantine for this
    // broker keeps the memory check meaningful (use-after-free is still
    // caught, within a shorter reuse window). The broker inherits our
    // environment, and ASan takes the first ASAN_OPTIONS it finds, so ours is
    // amended while the broker starts (nothing else of ours reads it then),
    // then put back.
    const char* inherited = std::getenv("ASAN_OPTIONS");
    const std::optional<std::string> saved =
        inherited ? std::optional<std::string>(inherited) : std::nullopt;
    std::string amended = saved.value_or("");
    if (!amended.empty()) amended += ':';
    amended += "quarantine_size_mb=8:thread_local_quarantine_size_kb=256";
    ::setenv("ASAN_OPTIONS", amended.c_str(), 1);
    BrokerTest::SetUp();
    if (saved) {
      ::setenv("ASAN_OPTIONS", saved->c_str(), 1);
    } else {
      ::unsetenv("ASAN_OPTIONS");
    }
  }
};

TEST_F(SoakTest, EverythingAtOnceLosesNothingAndGivesMemoryBack) {
  const int soak_seconds = SoakSeconds(kDefaultSoakSeconds, kMostSoakSeconds);
  const std::uint16_t api_port = port();
  const std::uint16_t metrics_port = broker_->metrics_port();
  ASSERT_NE(metrics_port, 0) << "no metrics_port= in: " << broker_->listening_line();

  std::vector<std::string> subjects;
  for (int s = 0; s < kSubjects; ++s) subjects.push_back(Numbered("soak.s", s));
  std::vector<Subscriber> subscribers(kSubscribers);
  for (int i = 0; i < kSubscribers; ++i) {
    subscribers[i].subject = i % kSubjects;
    subscribers[i].id = Subscribe(subjects[subscribers[i].subject]);
    ASSERT_FALSE(subscribers[i].id.empty());
  }

  std::string scrape_error;
  const std::optional<std::string> first_scrape = ScrapeMetrics(metrics_port, &scrape_error);
  ASSERT_TRUE(first_scrape) << scrape_error;
  const std::optional<double> rss_start =
      MetricValue(*first_scrape, "process_resident_memory_bytes");
  ASSERT_TRUE(rss_start) << "no process_resident_memory_bytes in /metrics";

  ErrorLog errors;           // transport and protocol failures of the workers
  ErrorLog delivery_errors;  // messages lost, duplicated, reordered or misdelivered
  const Clock::time_point start = Clock::now();
  const Clock::time_point load_end = start + seconds(soak_seconds);
  const Clock::time_point deadline = load_end + kGrace;
  std::atomic<bool> stop_load{false};
  std::atomic<bool> publishers_done{false};  // set once every publisher is joined
  std::atomic<bool> stop_sampler{false};

  // --- Publishers ---
  std::vector<PublishLog> publish_logs(kPublishers);
  std::atomic<long long> reconnects{0};
  auto publisher = [&](int k) {
    PublishLog& log = publish_logs[k];
    std::mt19937 random(static_cast<unsigned>(k) * 7919U + 1U);
    std::uniform_int_distribution<int> pick_subject(0, kSubjects - 1);
    auto client = std::make_unique<HttpClient>(kSocketTimeout);
    if (!client->Connect(api_port)) {
      errors.Add(Numbered("publisher ", k) + " connect: " + client->error());
      return;
    }
    int batches_on_connection = 0;
    std::uint32_t next_seq = 0;
    std::string batch;
    std::uint8_t batch_subjects[kBatch];
    while (!stop_load.load(std::memory_order_relaxed) && Clock::now() < deadline) {
      batch.clear();
      for (int i = 0; i < kBatch; ++i) {
        batch_subjects[i] = static_cast<std::uint8_t>(pick_subject(random));
        batch +=
            FormatRequest("POST", "/api/publish",
                          PublishBody(subjects[batch_subjects[i]],
                                      MessageData(k, next_seq + static_cast<std::uint32_t>(i))));
      }
      // From here a publish's outcome is known only from its response: a
      // transport failure leaves it unknown, and the publisher stops.
      if (!client->SendRaw(batch)) {
        errors.Add(Numbered("publisher ", k) + " send: " + client->error());
        return;
      }
      for (int i = 0; i < kBatch; ++i) {
        HttpResponse response;
        if (!client->ReadResponse(&response)) {
          errors.Add(Numbered("publisher ", k) + " read: " + client->error());
          return;
        }
        std::uint8_t entry = batch_subjects[i];
        if (response.status == 200 && response.body == kOkBody) {
          entry |= PublishLog::kAccepted;
        } else if (!(response.status == 429 && response.body == kOverflowBody)) {
          errors.Add(Numbered("publisher ", k) +
                     " unexpected publish reply: " + Describe(response));
          return;
        }
        if (!log.Append(entry)) {
          errors.Add(Numbered("publisher ", k) + ": publish log full");
          return;
        }
      }
      log.Publish();
      next_seq += kBatch;
      if (++batches_on_connection >= kBatchesPerConnection) {
        // Every response is read: closing now leaves no publish in doubt.
        batches_on_connection = 0;
        client = std::make_unique<HttpClient>(kSocketTimeout);
        if (!client->Connect(api_port)) {
          errors.Add(Numbered("publisher ", k) + " reconnect: " + client->error());
          return;
        }
        reconnects.fetch_add(1, std::memory_order_relaxed);
      }
    }
  };

  // --- Fetchers: fetcher f owns subscribers f, f + kFetchers, ... ---
  std::atomic<long long> foreign_messages{0};
  auto fetcher = [&](int f) {
    std::vector<Subscriber*> mine;
    for (int i = f; i < kSubscribers; i += kFetchers) mine.push_back(&subscribers[i]);
    HttpClient client(kSocketTimeout);
    if (!client.Connect(api_port)) {
      errors.Add(Numbered("fetcher ", f) + " connect: " + client.error());
      return;
    }
    std::string batch;
    for (;;) {
      if (Clock::now() >= deadline) {
        errors.Add(Numbered("fetcher ", f) + ": not drained by the deadline");
        return;
      }
      // Only fetches sent after every publisher is done can prove a queue
      // empty for good.
      const bool draining = publishers_done.load(std::memory_order_acquire);
      batch.clear();
      for (const Subscriber* subscriber : mine) {
        batch += FormatRequest("POST", "/api/fetch",
                               FetchBody(subjects[subscriber->subject], subscriber->id));
      }
      if (!client.SendRaw(batch)) {
        errors.Add(Numbered("fetcher ", f) + " send: " + client.error());
        return;
      }
      bool all_drained = draining;
      for (Subscriber* subscriber : mine) {
        HttpResponse response;
        if (!client.ReadResponse(&response)) {
          errors.Add(Numbered("fetcher ", f) + " read: " + client.error());
          return;
        }
        const std::optional<FetchReply> reply = DecodeFetchReply(response.body);
        if (response.status != 200 || !reply || reply->id != subscriber->id ||
            reply->subject != subjects[subscriber->subject]) {
          errors.Add(Numbered("fetcher ", f) + " bad fetch reply: " + Describe(response));
          return;
        }
        for (const std::string& data : reply->data) {
          const std::optional<std::uint64_t> message = ParseMessage(data);
          if (!message) {
            foreign_messages.fetch_add(1, std::memory_order_relaxed);
            delivery_errors.Add(
                Joined({subjects[subscriber->subject], " subscriber ", subscriber->id,
                        " received data no publisher sent: ", JsonQuote(data)}));
            continue;
          }
          Stream& stream = subscriber->streams[*message >> 32];
          stream.unchecked.push_back(static_cast<std::uint32_t>(*message));
          ++stream.received;
        }
        for (int k = 0; k < kPublishers; ++k) {
          CheckStream(subscriber->streams[k], publish_logs[k], subscriber->subject, false,
                      Joined({subjects[subscriber->subject], " subscriber ", subscriber->id,
                              " from publisher ", std::to_string(k)}),
                      delivery_errors);
        }
        subscriber->empty_streak =
            draining && reply->data.empty() ? subscriber->empty_streak + 1 : 0;
        if (subscriber->empty_streak < 2) all_drained = false;
      }
      if (all_drained) return;
      // Slow consumers a quarter of the time (the last 250 ms of every
      // second): the queues fill up to max-pending and publishes are refused,
      // at any publish rate this machine and build reach. The rest of the
      // time they fetch flat out, so most publishes are accepted.
      const auto since_start =
          std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
      if (!draining && since_start % 1000 >= 750) std::this_thread::sleep_for(kSlowFetchPause);
    }
  };

  // --- Chaos: connections that misbehave, one kind after another ---
  std::atomic<long long> chaos_connections{0};
  auto chaos = [&] {
    const std::string& subject = subjects[0];
    // A harmless complete request of each method (nothing is stored: a
    // publish to a subject nobody subscribed to, a fetch with an unknown id).
    std::string harmless = FormatRequest("GET", "/ready", "");
    harmless += FormatRequest("POST", "/api/publish", PublishBody("soak.nobody", "chaos"));
    harmless += FormatRequest("POST", "/api/fetch", FetchBody(subject, "no-such-id"));
    // A publish to a real subject cut inside its body: it must never be stored.
    const std::string half_publish =
        FormatRequest("POST", "/api/publish", PublishBody(subject, "chaos-half"));
    const std::string_view half =
        std::string_view(half_publish).substr(0, half_publish.size() - 12);
    const std::string_view malformed[] = {
        "GET /ready HTTP/1.1\r\nHost: soak\r\nthis line has no colon\r\n\r\n",
        "POST /api/publish HTTP/1.1\r\nHost: soak\r\nContent-Length: ten\r\n\r\n",
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n",
    };
    for (long long n = 0; !stop_load.load(std::memory_order_relaxed) && Clock::now() < deadline;
         ++n) {
      std::this_thread::sleep_for(kChaosInterval);
      chaos_connections.fetch_add(1, std::memory_order_relaxed);
      const int kind = static_cast<int>(n % 6);
      if (kind == 5) {
        // A well-behaved keep-alive client between the hostile ones.
        HttpClient client(kSocketTimeout);
        if (!client.Connect(api_port)) {
          errors.Add(Joined({"chaos keep-alive connect: ", client.error()}));
          continue;
        }
        for (int i = 0; i < 3; ++i) {
          HttpResponse response;
          if (!client.Request("GET", "/ready", "", &response) || response.status != 204) {
            errors.Add(Joined({"chaos GET /ready: ", client.error(), " ", Describe(response)}));
            break;
          }
        }
        continue;
      }
      RawSocket socket;
      if (!socket.Connect(api_port)) {
        errors.Add(std::string("chaos connect: ") + std::strerror(errno));
        continue;
      }
      switch (kind) {
        case 0:  // half a request, then a clean close
          socket.SendAll(half);
          socket.Close();
          break;
        case 1: {  // malformed: a 400 then the broker's close, or just the close
          const std::string_view request = malformed[(n / 6) % std::size(malformed)];
          socket.SendAll(request);
          std::string received;
          const bool closed =
              socket.ReadToEnd(kSocketTimeout, &received) != RawSocket::End::timeout;
          if (!closed || !(received.empty() || received.starts_with("HTTP/1.1 400 "))) {
            std::string what = "chaos malformed request ";
            what += JsonQuote(request);
            what += closed ? " got: " : " left open after: ";
            what += received.substr(0, 300);
            errors.Add(std::move(what));
          }
          break;
        }
        case 2:  // complete requests, closed without reading the responses
          socket.SendAll(harmless);
          socket.Close();
          break;
        case 3:  // complete requests and half of one, then a reset
          socket.SendAll(harmless);
          socket.SendAll(half);
          socket.AbortiveClose();
          break;
        case 4:  // a reset with nothing sent
          socket.AbortiveClose();
          break;
      }
    }
  };

  // --- Churn: short-lived subscribers on the same subjects, unsubscribed or
  // left to expire. What each fetches must come, per publisher, in publish
  // order and never twice (a bounded one may skip what it dropped). ---
  std::atomic<long long> churned{0};
  auto churn = [&] {
    static constexpr std::string_view kFields[] = {"", R"(,"max_pending":40)",
                                                   R"(,"max_pending_bytes":400,"discard":"old")",
                                                   R"(,"inactive_threshold_ms":300)"};
    HttpClient client(kSocketTimeout);
    for (int n = 0; !stop_load.load(std::memory_order_relaxed) && Clock::now() < deadline; ++n) {
      if (!client.connected() && !client.Connect(api_port)) {
        errors.Add(Joined({"churn connect: ", client.error()}));
        return;
      }
      const int kind = n % 4;
      const std::string& subject = subjects[(n / 4) % kSubjects];
      HttpResponse response;
      if (!client.Request("POST", "/api/subscribe",
                          Joined({"{\"subject\":", JsonQuote(subject), kFields[kind], "}"}),
                          &response)) {
        errors.Add(Joined({"churn subscribe: ", client.error()}));
        return;
      }
      const std::optional<SubscribeReply> subscribed = DecodeSubscribeReply(response.body);
      if (response.status != 200 || !subscribed) {
        errors.Add(Joined({"churn subscribe: ", Describe(response)}));
        return;
      }
      std::array<long long, kPublishers> last_seq;
      last_seq.fill(-1);
      for (int round = 0; round < 3; ++round) {
        std::this_thread::sleep_for(milliseconds(5));
        if (!client.Request("POST", "/api/fetch", FetchBody(subject, subscribed->id), &response)) {
          errors.Add(Joined({"churn fetch: ", client.error()}));
          return;
        }
        const std::optional<FetchReply> reply = DecodeFetchReply(response.body);
        if (response.status != 200 || !reply) {
          errors.Add(Joined({"churn fetch: ", Describe(response)}));
          return;
        }
        for (const std::string& data : reply->data) {
          const std::optional<std::uint64_t> message = ParseMessage(data);
          const long long seq = message ? static_cast<long long>(*message & 0xffffffffu) : -1;
          if (!message || seq <= last_seq[*message >> 32]) {
            delivery_errors.Add(
                Joined({"churn subscriber of ", subject, " (fields ", kFields[kind], ") got ",
                        JsonQuote(data), " out of order, twice or foreign"}));
            continue;
          }
          last_seq[*message >> 32] = seq;
        }
      }
      if (kind != 3) {  // the abandoned kind expires instead
        if (!client.Request("POST", "/api/unsubscribe", FetchBody(subject, subscribed->id),
                            &response) ||
            response.status != 200) {
          errors.Add(Joined({"churn unsubscribe: ", client.error(), " ", Describe(response)}));
          return;
        }
      }
      churned.fetch_add(1, std::memory_order_relaxed);
    }
  };

  // --- Sampler: peak memory, and the pending count never above the bound ---
  double rss_peak = *rss_start;
  double pending_peak = 0;
  auto sampler = [&] {
    while (!stop_sampler.load(std::memory_order_relaxed) && Clock::now() < deadline) {
      std::string error;
      if (const std::optional<std::string> scrape = ScrapeMetrics(metrics_port, &error)) {
        rss_peak =
            std::max(rss_peak, MetricValue(*scrape, "process_resident_memory_bytes").value_or(0));
        const double pending = MetricValue(*scrape, "gophermq_pending_messages").value_or(-1);
        pending_peak = std::max(pending_peak, pending);
        if (pending < 0 || pending > kMaxPending) {
          errors.Add(Joined(
              {"gophermq_pending_messages out of [0, max-pending]: ", std::to_string(pending)}));
        }
      } else {
        errors.Add(Joined({"sampler: ", error}));
      }
      std::this_thread::sleep_for(milliseconds(200));
    }
  };

  std::vector<std::thread> publishers;
  std::vector<std::thread> fetchers;
  for (int f = 0; f < kFetchers; ++f) fetchers.emplace_back(fetcher, f);
  for (int k = 0; k < kPublishers; ++k) publishers.emplace_back(publisher, k);
  std::thread chaos_thread(chaos);
  std::thread churn_thread(churn);
  std::thread sampler_thread(sampler);

  std::this_thread::sleep_until(load_end);
  stop_load = true;
  for (std::thread& thread : publishers) thread.join();
  chaos_thread.join();
  churn_thread.join();
  publishers_done.store(true, std::memory_order_release);
  for (std::thread& thread : fetchers) thread.join();
  const double drain_seconds = std::chrono::duration<double>(Clock::now() - load_end).count();
  stop_sampler = true;
  sampler_thread.join();

  EXPECT_EQ(errors.count(), 0) << errors.Dump();

  // --- Every subscriber got exactly each publisher's accepted publishes to
  // its subject, in publish order (checked as they came; now the tails) ---
  long long accepted = 0;
  long long refused = 0;
  for (const PublishLog& log : publish_logs) {
    for (std::uint64_t seq = 0; seq < log.published(); ++seq) {
      ++((log.at(seq) & PublishLog::kAccepted) != 0 ? accepted : refused);
    }
  }
  long long fetched = 0;
  for (Subscriber& subscriber : subscribers) {
    for (int k = 0; k < kPublishers; ++k) {
      fetched += static_cast<long long>(subscriber.streams[k].received);
      CheckStream(subscriber.streams[k], publish_logs[k], subscriber.subject, true,
                  Joined({subjects[subscriber.subject], " subscriber ", subscriber.id,
                          " from publisher ", std::to_string(k)}),
                  delivery_errors);
    }
  }
  EXPECT_EQ(delivery_errors.count(), 0) << "messages lost, duplicated, reordered or misdelivered "
                                           "(first ones):\n"
                                        << delivery_errors.Dump();
  EXPECT_EQ(fetched + foreign_messages.load(), accepted * kSubscribersPerSubject)
      << "every accepted publish is delivered to both subscribers of its subject";
  EXPECT_GT(accepted, 0);
  EXPECT_GT(refused, 0) << "no publish was refused: the overflow path was not soaked";

  // --- The broker after the storm: alive, empty, memory given back ---
  {
    HttpClient client(kSocketTimeout);
    HttpResponse ready;
    EXPECT_TRUE(client.Connect(api_port) && client.Request("GET", "/ready", "", &ready))
        << client.error();
    EXPECT_EQ(ready.status, 204) << Describe(ready);
  }
  const double rss_allowed =
      *rss_start + kResidentGrowthFactor * std::max(48.0 * 1024 * 1024, 0.25 * *rss_start);
  double rss_end = -1;
  double pending_end = -1;
  double cross_shard_calls = -1;
  double subscribers_end = -1;
  // The allocator may hand freed pages back to the system a little after the
  // frees (mimalloc purges on a delay), and the abandoned churn subscribers
  // expire within their threshold + 1 s: give both a few seconds.
  const Clock::time_point settle_deadline = Clock::now() + seconds(5);
  for (;;) {
    const std::optional<std::string> scrape = ScrapeMetrics(metrics_port, &scrape_error);
    if (!scrape) {
      ADD_FAILURE() << scrape_error;
      break;
    }
    rss_end = MetricValue(*scrape, "process_resident_memory_bytes").value_or(-1);
    pending_end = MetricValue(*scrape, "gophermq_pending_messages").value_or(-1);
    cross_shard_calls = MetricValue(*scrape, "gophermq_cross_shard_calls_total").value_or(-1);
    subscribers_end = MetricValue(*scrape, "gophermq_subscribers").value_or(-1);
    if ((rss_end <= rss_allowed && subscribers_end == kSubscribers) ||
        Clock::now() >= settle_deadline) {
      break;
    }
    std::this_thread::sleep_for(milliseconds(250));
  }
  EXPECT_EQ(pending_end, 0) << "gophermq_pending_messages after every queue was drained";
  EXPECT_EQ(subscribers_end, kSubscribers)
      << "the churn's subscribers were not all unsubscribed or expired";
  EXPECT_GT(churned.load(), 8) << "the churn thread hardly ran";
  EXPECT_GT(cross_shard_calls, 0)
      << "no request crossed shards: the load did not reach subjects of both shards";
  EXPECT_GT(rss_end, 0);
  EXPECT_LE(rss_end, rss_allowed) << "resident memory did not come back near its start: start "
                                  << MiB(*rss_start) << " MiB, peak " << MiB(rss_peak)
                                  << " MiB, end " << MiB(rss_end) << " MiB";

  std::printf(
      "soak: %d s load + %.1f s drain; publishes accepted %lld, refused %lld; fetched %lld "
      "(peak pending %.0f of %d); cross-shard calls %.0f; publisher reconnects %lld; "
      "chaos connections %lld; short-lived subscribers %lld; "
      "RSS start %.1f MiB, peak %.1f MiB, end %.1f MiB (at most %.1f allowed)\n",
      soak_seconds, drain_seconds, accepted, refused, fetched, pending_peak, kMaxPending,
      cross_shard_calls, reconnects.load(), chaos_connections.load(), churned.load(),
      MiB(*rss_start), MiB(rss_peak), MiB(rss_end), MiB(rss_allowed));
  std::fflush(stdout);
}

}  // namespace
}  // namespace gophermq::testing
