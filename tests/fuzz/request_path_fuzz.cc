// libFuzzer target: raw bytes through the whole request path, without
// sockets: a connection's llhttp parser, the API (routing, simdjson
// decoding, the store, response encoding) of two in-process shards, and the
// response ordering of pipelined requests answered by the other shard.
//
// The first byte chooses where the input is cut into reads, so requests
// split across receive buffers are explored too. Afterwards the output must
// be a sequence of complete HTTP responses, one per request answered.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string_view>
#include <utility>
#include <vector>

#include "gophermq/api/broker_api.h"
#include "gophermq/http/http_connection.h"
#include "gophermq/net/connection.h"

namespace gophermq {
namespace {

// Shard 0 reads the requests, shard 1 owns the subjects it does not. Calls
// are delivered between them after each read, as the real queues do a loop
// turn later, so answers can come back out of order. A fetch that may wait
// is a call too, also to shard 0; each delivery is a loop turn a second
// after the last, so waits end at their (clamped) deadlines.
class InProcessShards final : public RequestHandler {
 public:
  // Small, so fetches are cut short by the bound.
  static constexpr StoreLimits kLimits{.max_fetch_bytes = 256, .max_fetch_wait_ms = 2000};

  InProcessShards()
      : budget_(64, 4096),
        census_(64, 64),
        shard0_(0, 2, budget_, census_, kLimits, std::chrono::steady_clock::now(), metrics0_),
        shard1_(1, 2, budget_, census_, kLimits, std::chrono::steady_clock::now(), metrics1_) {}

  void handle(HttpConnection& http, const HttpRequest& request) override {
    const Placement placement = shard0_.handle(request, http, call_);
    if (!placement.forward) return;
    if (placement.owner > 1) std::abort();
    const std::uint64_t sequence = http.reserve_answer(placement.answer_bytes_at_most);
    if (placement.split) {  // a many-subject batch: a call to each owner
      shard0_.take_split_calls([&](unsigned owner, ShardCall&& call) {
        call.answer_sequence = sequence;
        in_flight_.push_back({owner, std::move(call)});
      });
      return;
    }
    if (placement.status == 0) call_.answer_sequence = sequence;
    call_.stream.token = ++last_stream_token_;
    in_flight_.push_back({placement.owner, std::move(call_)});
  }

  void deliver(HttpConnection& http) {
    now_ns_ += 1'000'000'000;
    shard0_.begin_turn(now_ns_);
    shard1_.begin_turn(now_ns_);
    take_shard_calls();
    while (!in_flight_.empty()) {
      auto [owner, call] = std::move(in_flight_.front());
      in_flight_.pop_front();
      const bool answered = (owner == 0 ? shard0_ : shard1_).serve_call(call);
      take_shard_calls();  // wildcard patterns told to every shard, say
      if (!answered) continue;
      if (call.endpoint == Endpoint::stream) {
        end_stream(owner, call, http);
        continue;
      }
      shard0_.complete_call(call, http);
    }
    for (BrokerApi* shard : {&shard0_, &shard1_}) {
      shard->wake_waiting();
      shard->take_answered_waits([&](ShardCall&& call) {
        // Events and ends of streams that end as they open (below).
        if (call.endpoint != Endpoint::stream) shard0_.complete_call(call, http);
      });
    }
    shard0_.end_turn();
    shard1_.end_turn();
  }

 private:
  // Calls the shards make on their own (dead letters, wildcard patterns'
  // announcements and copies), on their way.
  void take_shard_calls() {
    auto send = [&](unsigned owner, ShardCall&& call) {
      in_flight_.push_back({owner, std::move(call)});
    };
    for (BrokerApi* shard : {&shard0_, &shard1_}) {
      shard->take_dead_letter_calls(send);
      shard->take_pattern_calls(send);
    }
  }

  // An event stream's opening answer: its events go out as one whole
  // response (the shard's framing of streams is not under test here), and
  // the stream closes at once, as if its client had gone.
  void end_stream(unsigned owner, ShardCall& call, HttpConnection& http) {
    if (call.status == 200) {
      append_response(http.reserved_buffer(call.answer_sequence), 200, call.answer.view(),
                      call.style);
      http.finish_answer(call.answer_sequence);
      call.stream.step = StreamStep::close;
      call.status = 0;
      in_flight_.push_back({owner, std::move(call)});
      return;
    }
    shard0_.complete_call(call, http);
  }

  PendingBudget budget_;
  StoreCensus census_;
  ShardMetrics metrics0_;
  ShardMetrics metrics1_;
  BrokerApi shard0_;
  BrokerApi shard1_;
  ShardCall call_;
  std::deque<std::pair<unsigned, ShardCall>> in_flight_;  // owner, call
  std::uint64_t now_ns_ = 0;
  std::uint64_t last_stream_token_ = 0;
};

// Checks that `output` is whole responses (status line, headers,
// Content-Length body) and nothing else.
void expect_whole_responses(std::string_view output) {
  while (!output.empty()) {
    std::size_t head_end = output.find("\r\n\r\n");
    if (output.substr(0, 9) != "HTTP/1.1 " || head_end == std::string_view::npos) std::abort();
    std::string_view head = output.substr(0, head_end);
    std::size_t body_size = 0;
    std::size_t length_at = head.find("Content-Length: ");
    if (length_at != std::string_view::npos) {
      body_size = std::strtoul(head.data() + length_at + 16, nullptr, 10);
    } else if (head.substr(9, 3) != "100" && head.substr(9, 3) != "204") {
      std::abort();
    }
    if (head_end + 4 + body_size > output.size()) std::abort();
    output.remove_prefix(head_end + 4 + body_size);
  }
}

}  // namespace
}  // namespace gophermq

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace gophermq;
  if (size == 0) return 0;
  const std::size_t read_size = 1 + data[0] % 64 * 8;  // 1..505 bytes per read
  ++data;
  --size;

  InProcessShards shards;
  OutgoingBytes out;
  const UnsentTotal shard_unsent;
  // Small bounds, so pipelined requests are held back and read again later.
  HttpConnection connection(0, RequestLimits{2048, 4096}, PipelineLimits{1024, 3}, shard_unsent,
                            shards, out);
  std::string sent;
  // What a client reading everything would see: the output goes out, and
  // what was held back is read.
  auto send_all = [&] {
    ParseStatus status = ParseStatus::ok;
    // Each round reads at least one held request: this many rounds is a hang.
    for (std::size_t round = 0; round <= size; ++round) {
      shards.deliver(connection);
      sent += out.output.flatten();
      out.output.clear();
      out.answers_in_output = 0;
      if (status != ParseStatus::ok || !connection.input_held()) return status;
      status = connection.resume();
    }
    std::abort();
  };
  bool open = true;
  for (std::size_t offset = 0; offset < size && open; offset += read_size) {
    const std::size_t chunk = std::min(read_size, size - offset);
    // A fresh buffer per read, freed after: the parser must copy what it keeps.
    std::vector<char> read(chunk + ByteBuffer::kPadding);
    std::memcpy(read.data(), data + offset, chunk);
    ParseStatus status = connection.feed(read.data(), chunk, read.size());
    if (status == ParseStatus::ok) status = send_all();
    open = status == ParseStatus::ok;
  }
  if (open) send_all();
  // Waits still going end at their deadlines, a few turns on.
  for (int turn = 0; turn < 4; ++turn) shards.deliver(connection);
  sent += out.output.flatten();
  if (connection.answers_outstanding() != 0) std::abort();  // every call was answered
  if (connection.input_held()) std::abort();  // nothing is owed, yet input is held back
  expect_whole_responses(sent);
  return 0;
}
