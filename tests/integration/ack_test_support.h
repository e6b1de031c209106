// Shared pieces of the tests of acknowledgements and queue groups
// (api-extensions.md §5, §6 and §7): the batch and ack-mode fetch answers,
// the exact bodies of acks, nacks and joins, and a fixture whose requests
// fetch, ack and nack the way those tests need.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "test_support.h"

namespace gophermq::testing {

// A fetch answer with "pending" and "seqs" (a fetch that used a field of §3,
// or any fetch of an ack-mode queue), and "deliveries" for an ack-mode queue.
struct BatchReply {
  std::vector<std::string> data;
  std::vector<std::uint64_t> deliveries;  // ack mode only
  std::string id;
  std::uint64_t pending = 0;
  std::vector<std::uint64_t> seqs;
  std::string subject;
};

// The fields when `body` is exactly {"data",("deliveries",)"id","pending",
// "seqs","subject"} in that order followed by "\n" (deliveries when
// `ack_mode`), the arrays parallel to data; nullopt otherwise.
std::optional<BatchReply> DecodeBatchReply(const std::string& body, bool ack_mode);

// The exact answer of a fetch with a field of §3 (plain ASCII throughout).
std::string ExpectedBatchBody(const std::vector<std::string>& data, std::string_view id,
                              std::uint64_t pending, const std::vector<std::uint64_t>& seqs,
                              std::string_view subject);

// The exact answer of a fetch of an ack-mode queue (plain ASCII throughout).
std::string ExpectedAckFetchBody(const std::vector<std::string>& data,
                                 const std::vector<std::uint64_t>& deliveries, std::string_view id,
                                 std::uint64_t pending, const std::vector<std::uint64_t>& seqs,
                                 std::string_view subject);

// The exact answers of an ack and of a nack that settled `count` messages.
std::string AckedBody(int count);
std::string NackedBody(int count);

// {"subject","group"} and `fields`: the body of a subscribe to a group.
std::string JoinBody(std::string_view subject, std::string_view group,
                     std::string_view fields = {});

// The id in a subscribe answer that is exactly {"group":G,"id":ID,"subject":S}
// (ID a UUID) with status 200; nullopt otherwise.
std::optional<std::string> JoinedId(const HttpResponse& response, std::string_view subject,
                                    std::string_view group);

// A client timeout longer than any wait of these tests (a parked fetch asks
// for 20 s): a fetch sent with it is answered by the broker, never abandoned.
inline constexpr std::chrono::seconds kLongClientTimeout(30);

// A broker with its monitoring port open (the tests read its metrics), and
// the requests of ack mode on the test's connection.
class AckBrokerTest : public BrokerTest {
 protected:
  std::optional<BrokerOptions> Options() const override { return MonitoredOptions(); }

  // A fetch with `fields` (which must use a field of §3 unless the queue is
  // in ack mode): a 200 with the batch answer for this id and subject, else a
  // failure and an empty reply.
  BatchReply FetchBatch(const std::string& subject, const std::string& id, std::string_view fields,
                        bool ack_mode = false);
  // A fetch (with `fields`) of an ack-mode queue.
  BatchReply AckFetch(const std::string& subject, const std::string& id,
                      std::string_view fields = {}) {
    return FetchBatch(subject, id, fields, true);
  }
  // Fetches (ack mode) until an answer carries a message (kPollFor at most):
  // what comes back once a deadline or a nack delay has passed.
  BatchReply FetchUntilSomething(const std::string& subject, const std::string& id,
                                 std::string_view fields = {});

  HttpResponse Ack(const std::string& subject, const std::string& id, std::string_view fields) {
    return Post("/api/ack", SubscriberBody(subject, id, fields));
  }
  HttpResponse Nack(const std::string& subject, const std::string& id, std::string_view fields) {
    return Post("/api/nack", SubscriberBody(subject, id, fields));
  }

  // Acks `seq`, which `id`'s latest fetch handed out for the `deliveries`-th
  // time, from a queue with a short ack_wait_ms and max_ack_pending 1 (or no
  // other member fetching meanwhile). On a machine so slow that the deadline
  // passed before the ack, the ack acks nothing and the message comes back:
  // it is fetched again, with one more delivery and the same seq, and acked
  // again. Returns how many times it was handed out again meanwhile.
  int AckSurely(const std::string& subject, const std::string& id, std::uint64_t seq,
                const std::string& data, std::uint64_t deliveries);

  // GET /healthz's "pending": messages held, one per queue, in flight or not.
  long long HealthzPending();
};

}  // namespace gophermq::testing
