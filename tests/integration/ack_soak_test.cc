// Soak of acknowledgements in queue groups (api-extensions.md §5 and §6).
// For GOPHERMQ_SOAK_SECONDS (default 6, 4 under a sanitizer; 15 at most)
// publishers send numbered payloads, pipelined, to kSubjects subjects (both
// shards own some). Each subject has one ack-mode queue group (ack_wait_ms
// 300) served by member threads, each with a connection of its own, which ack
// what they fetch one seq per request (pipelined), so that every successful
// ack is known by its payload. Members are killed at random: one abruptly
// closes its connection mid-batch, having acked only part of what it
// fetched, or none, or with a fetch still unanswered; a new member joins in
// its place, and what the dead one held comes back to the group once its
// ack_wait_ms passes. Killed members are left to expire
// (inactive_threshold_ms); one member per subject that never fetches keeps
// each group's queue whatever expires.
//
// At the end every accepted publish must have been acked exactly once
// (at-least-once delivery, nothing lost): a message may be delivered more
// than once, but an ack of an already acked seq acks nothing. A seq must name
// the same payload every time it is handed out, and each hand-out must carry
// a delivery number of its own. Afterwards the broker holds
// nothing, and the killed members have expired.
//
// Every wait is bounded: sockets carry timeouts, and the whole run has a
// deadline of its duration + kGrace.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ack_test_support.h"
#include "test_support.h"

namespace gophermq::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kSubjects = 6;
// Member threads per subject (each a member at a time, a new one after it is
// killed).
constexpr int kSlotsPerSubject = 3;
constexpr int kPublishers = 2;
// Publishes per pipelined write.
constexpr int kBatch = 16;
// Publishes per publisher at most: the work stays bounded whatever the
// machine; a sanitizer build does less.
constexpr int kMaxPublishes = (kAddressSanitizer || kThreadSanitizer) ? 1500 : 6000;
constexpr std::string_view kGroup = "workers";
// The queue's options (every member names them; the first sets them).
constexpr std::string_view kQueueOptions = R"("ack_wait_ms":300,"max_ack_pending":200)";
// A member's own expiry: killed members go; live ones fetch far more often.
constexpr std::string_view kMemberThreshold = R"("inactive_threshold_ms":2000)";
constexpr std::string_view kFetchFields = R"("wait_ms":200,"max_messages":16)";
// A member is killed after one fetch in this many.
constexpr int kKillOneIn = 8;
// (Generous: a machine stalled for seconds must not fail the run; a broker
// that stops answering still does.)
constexpr milliseconds kSocketTimeout(30'000);
// After the load: how much longer the members may take to ack everything.
constexpr seconds kGrace(30);

// The load's duration when GOPHERMQ_SOAK_SECONDS does not set it (shorter
// under a sanitizer), and the most it may set: the integration suite's meson
// timeout is 300 s, shared with the other soak (which tools/test runs for a
// minute), so this one stays short.
constexpr int kDefaultSoakSeconds = (kAddressSanitizer || kThreadSanitizer) ? 4 : 6;
constexpr int kMostSoakSeconds = 15;

class AckSoakTest : public BrokerTest {
 protected:
  std::optional<BrokerOptions> Options() const override { return MonitoredOptions(); }
};

TEST_F(AckSoakTest, KilledMembersLoseNothingAndNothingIsAckedTwice) {
  const int soak_seconds = SoakSeconds(kDefaultSoakSeconds, kMostSoakSeconds);
  const std::uint16_t api_port = port();
  ASSERT_NE(broker_->metrics_port(), 0) << "no metrics_port= in: " << broker_->listening_line();

  std::vector<std::string> subjects;
  std::vector<std::string> anchors;  // never fetch, never expire: each queue stays
  for (int s = 0; s < kSubjects; ++s) {
    subjects.push_back(Numbered("acksoak.s", s));
    const HttpResponse response =
        Post("/api/subscribe", JoinBody(subjects[s], kGroup, kQueueOptions));
    const std::optional<std::string> id = JoinedId(response, subjects[s], kGroup);
    ASSERT_TRUE(id) << Describe(response);
    anchors.push_back(*id);
  }

  ErrorLog errors;
  const Clock::time_point start = Clock::now();
  const Clock::time_point load_end = start + seconds(soak_seconds);
  const Clock::time_point deadline = load_end + kGrace;
  std::atomic<bool> stop_publishing{false};
  std::atomic<bool> stop_members{false};

  // --- What was accepted and what was acked ---
  std::mutex mutex;                               // guards the maps below
  std::unordered_map<std::string, int> accepted;  // payload -> subject
  std::unordered_map<std::string, int> acks;      // payload -> successful acks
  std::map<std::pair<int, std::uint64_t>, std::string> seq_payloads;
  std::set<std::tuple<int, std::uint64_t, std::uint64_t>> handed_out;  // (subject, seq, delivery)
  std::set<std::pair<int, std::uint64_t>> abandoned;  // held by a member when killed
  std::vector<std::uint64_t> highest_seq(kSubjects, 0);
  std::atomic<long long> accepted_count{0};
  std::atomic<long long> acked_count{0};
  std::atomic<long long> acked_zero{0};
  std::atomic<long long> redelivered_seen{0};
  std::atomic<long long> kills{0};
  std::atomic<long long> joins{0};
  std::atomic<long long> expired_members{0};

  // --- Publishers: payload "p<k>-<n>", spread over the load's duration ---
  auto publisher = [&](int k) {
    std::mt19937 random(static_cast<unsigned>(k) * 7919U + 3U);
    std::uniform_int_distribution<int> pick_subject(0, kSubjects - 1);
    HttpClient client(kSocketTimeout);
    if (!client.Connect(api_port)) {
      errors.Add(Joined({"publisher connect: ", client.error()}));
      return;
    }
    const auto pace = std::chrono::duration_cast<Clock::duration>(seconds(soak_seconds)) /
                      (kMaxPublishes / kBatch);
    std::string batch;
    std::vector<std::pair<int, std::string>> sent;
    for (int n = 0, round = 0; n + kBatch <= kMaxPublishes; n += kBatch, ++round) {
      if (stop_publishing.load() || Clock::now() >= deadline) return;
      std::this_thread::sleep_until(start + pace * round);
      batch.clear();
      sent.clear();
      for (int i = 0; i < kBatch; ++i) {
        const int s = pick_subject(random);
        std::string payload = Joined({"p", std::to_string(k), "-", std::to_string(n + i)});
        batch += FormatRequest("POST", "/api/publish", PublishBody(subjects[s], payload));
        sent.emplace_back(s, std::move(payload));
      }
      if (!client.SendRaw(batch)) {
        errors.Add(Joined({"publisher send: ", client.error()}));
        return;
      }
      for (const auto& [s, payload] : sent) {
        HttpResponse response;
        if (!client.ReadResponse(&response)) {
          errors.Add(Joined({"publisher read: ", client.error()}));
          return;
        }
        if (response.status != 200 || response.body != kOkBody) {
          errors.Add(Joined({"publish ", payload, ": ", Describe(response)}));
          return;
        }
        {
          std::lock_guard lock(mutex);
          accepted.emplace(payload, s);
        }
        ++accepted_count;
      }
    }
  };

  // --- Members: slot `slot` of subject `s`, one member after another ---
  auto member_slot = [&](int s, int slot) {
    std::mt19937 random(static_cast<unsigned>(s * kSlotsPerSubject + slot) * 104729U + 11U);
    const std::string& subject = subjects[s];
    std::string id;
    HttpClient client(kSocketTimeout);
    std::string pipeline;
    while (!stop_members.load() && Clock::now() < deadline) {
      // --- A new member joins ---
      if (!client.connected()) {
        if (!client.Connect(api_port)) {
          errors.Add(Joined({"member connect: ", client.error()}));
          return;
        }
        HttpResponse response;
        if (!client.Request(
                "POST", "/api/subscribe",
                JoinBody(subject, kGroup, Joined({kQueueOptions, ",", kMemberThreshold})),
                &response)) {
          errors.Add(Joined({"member join: ", client.error()}));
          return;
        }
        const std::optional<std::string> joined = JoinedId(response, subject, kGroup);
        if (!joined) {
          errors.Add(Joined({"member join: ", Describe(response)}));
          return;
        }
        id = *joined;
        ++joins;
      }
      // --- Fetch a batch ---
      HttpResponse response;
      if (!client.Request("POST", "/api/fetch", SubscriberBody(subject, id, kFetchFields),
                          &response)) {
        errors.Add(Joined({"member fetch: ", client.error()}));
        return;
      }
      if (response.status == 404 && response.body == kBadIdBody) {
        // Starved past its threshold (a very slow machine): it expired.
        ++expired_members;
        client.Close();
        continue;
      }
      const std::optional<BatchReply> reply = DecodeBatchReply(response.body, true);
      if (response.status != 200 || !reply || reply->id != id || reply->subject != subject) {
        errors.Add(Joined({"member fetch: ", Describe(response)}));
        return;
      }
      const std::size_t count = reply->data.size();
      {
        std::lock_guard lock(mutex);
        for (std::size_t i = 0; i < count; ++i) {
          const auto [at, fresh] =
              seq_payloads.emplace(std::pair{s, reply->seqs[i]}, reply->data[i]);
          if (!fresh && at->second != reply->data[i]) {
            errors.Add(Joined({subject, " seq ", std::to_string(reply->seqs[i]), " was ",
                               at->second, " and is now ", reply->data[i]}));
          }
          // Each hand-out counts: no seq twice with the same delivery number.
          // (Not "a seq seen before is now past its first delivery": a member
          // thread starved past ack_wait_ms may get here after the member
          // the seq went to next; and a killed member's last fetch may have
          // been answered to nobody.)
          if (!handed_out.emplace(s, reply->seqs[i], reply->deliveries[i]).second) {
            errors.Add(
                Joined({subject, " seq ", std::to_string(reply->seqs[i]),
                        " handed out twice as delivery ", std::to_string(reply->deliveries[i])}));
          }
          highest_seq[s] = std::max(highest_seq[s], reply->seqs[i]);
        }
      }
      for (std::size_t i = 0; i < count; ++i) {
        if (reply->deliveries[i] > 1) ++redelivered_seen;
      }
      // --- Killed, or acks the whole batch ---
      std::size_t to_ack = count;
      int kill_mode = -1;
      if (!stop_members.load() && random() % kKillOneIn == 0) {
        kill_mode = static_cast<int>(random() % 3);
        // 0: acks a part, 1: acks none, 2: acks none and dies with a fetch sent.
        to_ack = kill_mode == 0 && count > 0 ? random() % count : 0;
      }
      pipeline.clear();
      for (std::size_t i = 0; i < to_ack; ++i) {
        pipeline += FormatRequest(
            "POST", "/api/ack",
            SubscriberBody(subject, id,
                           Joined({"\"seqs\":[", std::to_string(reply->seqs[i]), "]"})));
      }
      if (!pipeline.empty() && !client.SendRaw(pipeline)) {
        errors.Add(Joined({"member ack send: ", client.error()}));
        return;
      }
      bool gone = false;
      for (std::size_t i = 0; i < to_ack; ++i) {
        if (!client.ReadResponse(&response)) {
          errors.Add(Joined({"member ack read: ", client.error()}));
          return;
        }
        if (response.status == 200 && response.body == AckedBody(1)) {
          std::lock_guard lock(mutex);
          ++acks[reply->data[i]];
          ++acked_count;
        } else if (response.status == 200 && response.body == AckedBody(0)) {
          // Its deadline had passed: it went to another member, who acked it.
          ++acked_zero;
        } else if (response.status == 404 && response.body == kBadIdBody) {
          gone = true;  // expired meanwhile: the ack did nothing
        } else {
          errors.Add(Joined({"member ack: ", Describe(response)}));
          return;
        }
      }
      if (gone) {
        ++expired_members;
        client.Close();
        continue;
      }
      if (kill_mode >= 0) {
        {
          std::lock_guard lock(mutex);
          for (std::size_t i = to_ack; i < count; ++i) abandoned.emplace(s, reply->seqs[i]);
        }
        if (kill_mode == 2) {
          (void)client.SendRaw(
              FormatRequest("POST", "/api/fetch", SubscriberBody(subject, id, kFetchFields)));
        }
        client.Close();  // mid-batch, without a word: the member is left to expire
        ++kills;
      }
    }
    // The run is over: the live member leaves properly.
    if (client.connected()) {
      HttpResponse response;
      if (!client.Request("POST", "/api/unsubscribe", FetchBody(subject, id), &response) ||
          !(response.status == 200 || response.status == 404)) {
        errors.Add(Joined({"member unsubscribe: ", client.error(), " ", Describe(response)}));
      }
    }
  };

  std::vector<std::thread> publishers;
  std::vector<std::thread> members;
  for (int s = 0; s < kSubjects; ++s) {
    for (int slot = 0; slot < kSlotsPerSubject; ++slot) members.emplace_back(member_slot, s, slot);
  }
  for (int k = 0; k < kPublishers; ++k) publishers.emplace_back(publisher, k);

  std::this_thread::sleep_until(load_end);
  stop_publishing = true;
  for (std::thread& thread : publishers) thread.join();
  // Then until every accepted publish is acked (or the deadline).
  while (acked_count.load() < accepted_count.load() && Clock::now() < deadline &&
         errors.count() == 0) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  const double drain_seconds = std::chrono::duration<double>(Clock::now() - load_end).count();
  stop_members = true;
  for (std::thread& thread : members) thread.join();

  EXPECT_EQ(errors.count(), 0) << errors.Dump();

  // --- Every accepted publish acked exactly once, nothing else acked ---
  std::string missing;
  std::string twice;
  int missing_count = 0;
  int twice_count = 0;
  for (const auto& [payload, s] : accepted) {
    const auto found = acks.find(payload);
    const int times = found == acks.end() ? 0 : found->second;
    if (times == 0 && ++missing_count <= 10) missing += Joined({" ", payload, "@", subjects[s]});
    if (times > 1 && ++twice_count <= 10) twice += Joined({" ", payload});
  }
  EXPECT_EQ(missing_count, 0) << "accepted, never acked (first ones):" << missing;
  EXPECT_EQ(twice_count, 0) << "acked more than once (first ones):" << twice;
  long long acked_total = 0;
  for (const auto& [payload, times] : acks) {
    acked_total += times;
    EXPECT_TRUE(accepted.contains(payload)) << payload << " acked, never accepted";
  }
  EXPECT_EQ(acked_total, static_cast<long long>(accepted.size()));
  EXPECT_GT(accepted.size(), 0u);

  // --- The chaos happened, and what the killed held came back ---
  EXPECT_GT(kills.load(), 0);
  EXPECT_GT(abandoned.size(), 0u) << "no killed member held an unacked message";
  EXPECT_GT(redelivered_seen.load(), 0);
  // Each abandoned message had to be handed out again to be acked.
  EXPECT_GE(Metric("gophermq_messages_redelivered_total"), static_cast<double>(abandoned.size()));

  // --- An ack of what is acked acks nothing ---
  for (int s = 0; s < kSubjects; ++s) {
    SCOPED_TRACE(subjects[s]);
    EXPECT_TRUE(IsJsonResponse(
        Post("/api/ack",
             SubscriberBody(subjects[s], anchors[s],
                            Numbered("\"through\":", static_cast<long long>(highest_seq[s])))),
        200, AckedBody(0)));
  }

  // --- The broker afterwards: nothing held, killed members expired ---
  const Clock::time_point settle_deadline = Clock::now() + seconds(10);
  double pending = -1;
  double inflight = -1;
  double subscribers = -1;
  double oldest = -1;
  for (;;) {
    pending = Metric("gophermq_pending_messages");
    inflight = Metric("gophermq_inflight_messages");
    subscribers = Metric("gophermq_subscribers");
    oldest = Metric("gophermq_oldest_pending_age_seconds");
    if ((pending == 0 && inflight == 0 && subscribers == kSubjects && oldest == 0) ||
        Clock::now() >= settle_deadline) {
      break;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(pending, 0);
  EXPECT_EQ(inflight, 0);
  EXPECT_EQ(oldest, 0);
  EXPECT_EQ(subscribers, kSubjects) << "the anchors only: every killed member expired";
  for (int s = 0; s < kSubjects; ++s) {
    EXPECT_TRUE(
        IsJsonResponse(Post("/api/unsubscribe", FetchBody(subjects[s], anchors[s])), 200, kOkBody));
    EXPECT_TRUE(IsJsonResponse(Publish(subjects[s], "after"), 404, kSubscriberNotFoundBody));
  }
  EXPECT_EQ(Call("GET", "/ready").status, 204);

  std::printf(
      "ack soak: %d s load + %.1f s drain; accepted %zu, acked %lld (%lld acks found it acked "
      "already); deliveries past the first %lld; members joined %lld, killed %lld (holding %zu "
      "unacked), expired while starved %lld; redelivered %.0f; errors %d\n",
      soak_seconds, drain_seconds, accepted.size(), acked_total, acked_zero.load(),
      redelivered_seen.load(), joins.load(), kills.load(), abandoned.size(), expired_members.load(),
      Metric("gophermq_messages_redelivered_total"), errors.count());
  std::fflush(stdout);
}

}  // namespace
}  // namespace gophermq::testing
