#include "ack_test_support.h"

#include <thread>

namespace gophermq::testing {

namespace {

std::string UintList(const std::vector<std::uint64_t>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(values[i]);
  }
  out += ']';
  return out;
}

std::string StringList(const std::vector<std::string>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += JsonQuote(values[i]);
  }
  out += ']';
  return out;
}

}  // namespace

std::optional<BatchReply> DecodeBatchReply(const std::string& body, bool ack_mode) {
  static const std::vector<std::string> kKeys = {"data", "id", "pending", "seqs", "subject"};
  static const std::vector<std::string> kAckKeys = {"data",    "deliveries", "id",
                                                    "pending", "seqs",       "subject"};
  const std::optional<JsonObject> object = DecodeJsonObject(body);
  BatchReply reply;
  if (!object || object->keys != (ack_mode ? kAckKeys : kKeys) ||
      !GetField(object->string_arrays, "data", &reply.data) ||
      (ack_mode && !GetField(object->number_arrays, "deliveries", &reply.deliveries)) ||
      !GetField(object->strings, "id", &reply.id) ||
      !GetField(object->numbers, "pending", &reply.pending) ||
      !GetField(object->number_arrays, "seqs", &reply.seqs) ||
      !GetField(object->strings, "subject", &reply.subject) ||
      reply.seqs.size() != reply.data.size() ||
      (ack_mode && reply.deliveries.size() != reply.data.size())) {
    return std::nullopt;
  }
  return reply;
}

std::string ExpectedBatchBody(const std::vector<std::string>& data, std::string_view id,
                              std::uint64_t pending, const std::vector<std::uint64_t>& seqs,
                              std::string_view subject) {
  return Joined({"{\"data\":", StringList(data), ",\"id\":", JsonQuote(id),
                 ",\"pending\":", std::to_string(pending), ",\"seqs\":", UintList(seqs),
                 ",\"subject\":", JsonQuote(subject), "}\n"});
}

std::string ExpectedAckFetchBody(const std::vector<std::string>& data,
                                 const std::vector<std::uint64_t>& deliveries, std::string_view id,
                                 std::uint64_t pending, const std::vector<std::uint64_t>& seqs,
                                 std::string_view subject) {
  return Joined({"{\"data\":", StringList(data), ",\"deliveries\":", UintList(deliveries),
                 ",\"id\":", JsonQuote(id), ",\"pending\":", std::to_string(pending),
                 ",\"seqs\":", UintList(seqs), ",\"subject\":", JsonQuote(subject), "}\n"});
}

std::string AckedBody(int count) {
  return Joined({"{\"acked\":", std::to_string(count), ",\"status\":\"ok\"}\n"});
}

std::string NackedBody(int count) {
  return Joined({"{\"nacked\":", std::to_string(count), ",\"status\":\"ok\"}\n"});
}

std::string JoinBody(std::string_view subject, std::string_view group, std::string_view fields) {
  return WithFields(
      Joined({"{\"subject\":", JsonQuote(subject), ",\"group\":", JsonQuote(group), "}"}), fields);
}

std::optional<std::string> JoinedId(const HttpResponse& response, std::string_view subject,
                                    std::string_view group) {
  static const std::vector<std::string> kKeys = {"group", "id", "subject"};
  const std::optional<JsonObject> object = DecodeJsonObject(response.body);
  std::string id;
  if (response.status != 200 || response.MediaType() != "application/json" || !object ||
      object->keys != kKeys || !GetField(object->strings, "id", &id) || !IsUuidV4(id) ||
      response.body != Joined({"{\"group\":", JsonQuote(group), ",\"id\":", JsonQuote(id),
                               ",\"subject\":", JsonQuote(subject), "}\n"})) {
    return std::nullopt;
  }
  return id;
}

// --- AckBrokerTest ---

BatchReply AckBrokerTest::FetchBatch(const std::string& subject, const std::string& id,
                                     std::string_view fields, bool ack_mode) {
  const HttpResponse response = Post("/api/fetch", SubscriberBody(subject, id, fields));
  std::optional<BatchReply> reply = DecodeBatchReply(response.body, ack_mode);
  if (response.status != 200 || response.MediaType() != "application/json" || !reply ||
      reply->id != id || reply->subject != subject) {
    ADD_FAILURE() << "fetch " << subject << " " << id << " " << fields
                  << (ack_mode ? ": not an ack-mode answer\n" : ": not a batch answer\n")
                  << Describe(response);
    return {};
  }
  return std::move(*reply);
}

BatchReply AckBrokerTest::FetchUntilSomething(const std::string& subject, const std::string& id,
                                              std::string_view fields) {
  const auto deadline = std::chrono::steady_clock::now() + kPollFor;
  const int parts_before = TestParts();
  for (;;) {
    BatchReply reply = AckFetch(subject, id, fields);
    if (!reply.data.empty() || TestParts() != parts_before) return reply;  // or it failed
    if (std::chrono::steady_clock::now() >= deadline) {
      ADD_FAILURE() << "nothing came back to " << subject << " " << id << " within "
                    << kPollFor.count() << " s";
      return reply;
    }
    std::this_thread::sleep_for(kPollPause);
  }
}

int AckBrokerTest::AckSurely(const std::string& subject, const std::string& id, std::uint64_t seq,
                             const std::string& data, std::uint64_t deliveries) {
  const std::string fields = Joined({"\"seqs\":[", std::to_string(seq), "]"});
  for (int redeliveries = 0; redeliveries < 20; ++redeliveries) {
    const HttpResponse response = Ack(subject, id, fields);
    if (IsJsonResponse(response, 200, AckedBody(1))) return redeliveries;
    if (!IsJsonResponse(response, 200, AckedBody(0))) {
      ADD_FAILURE() << "ack " << fields << ": " << Describe(response);
      return redeliveries;
    }
    const BatchReply back = FetchUntilSomething(subject, id);
    ++deliveries;
    if (back.data != std::vector<std::string>{data} ||
        back.seqs != std::vector<std::uint64_t>{seq} ||
        back.deliveries != std::vector<std::uint64_t>{deliveries}) {
      ADD_FAILURE() << "expected " << data << " (seq " << seq << ") back for delivery "
                    << deliveries;
      return redeliveries + 1;
    }
  }
  ADD_FAILURE() << "seq " << seq << " could not be acked in 20 deliveries";
  return 20;
}

long long AckBrokerTest::HealthzPending() {
  const HttpResponse health = Call("GET", "/healthz");
  EXPECT_EQ(health.status, 200) << Describe(health);
  const std::size_t at = health.body.find("\"pending\":");
  return at == std::string::npos ? -1 : std::stoll(health.body.substr(at + 10));
}

}  // namespace gophermq::testing
