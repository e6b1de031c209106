// What the broker spends per message published in batches
// (POST /api/publish/batch, api-extensions.md §9) and delivered to one
// subscriber that drains its queue by long-poll fetch with max_messages;
// nats_load measures the same stream against nats-server, the reference.
//
//   batch_load --port 8082 --pid 1234 [--batch 100] [--form subject|messages]
//              [--publishers 4] [--rate 500000] [--window 0] [--seconds 5]
//              [--payload-bytes 16] [--max-messages 1000] [--subject batch.load]
//
// One subscriber of `subject`, read by one connection that sends a fetch
// with wait_ms 20000 and `max_messages` again as soon as the last is
// answered, and `publishers` keep-alive connections publishing `rate`
// messages a second in all (0: flat out, at most `window` messages ahead of
// the subscriber; default 20000 then), `batch` messages a request with
// numbered payloads (see message_stream.h), written as they fall due: a
// publisher pipelines, a write carries every request due since the last one.
// --form subject sends {"subject":S,"data":[...]} (answered
// {"status":"ok"}); --form messages the many-subject form
// {"messages":[{"subject":S,"data":"..."},...]} (answered
// {"failed":[],"published":N}), every entry to the same subject. Every
// message must arrive exactly once and in order per publisher; any answer
// but 200 (a 429 when the subscriber's queue is full) fails the run.
//
// The broker's CPU time (user + system, all threads, from /proc/<pid>/stat)
// from the first publish until the last message has arrived, divided by the
// messages, is printed on one RESULT line of key=value pairs.
#include <charconv>
#include <cstdio>
#include <string>
#include <string_view>

#include "load_client.h"
#include "message_stream.h"

namespace {

using namespace gophermq::load;

struct Options {
  StreamOptions stream;
  bool many_subject_form = false;
  unsigned max_messages = 1000;
  std::string subject = "batch.load";
};

Options parse_options(int argc, char** argv) {
  Options options;
  options.stream.batch = 100;
  parse_stream_flags(
      argc, argv, options.stream, [&](std::string_view flag, std::string_view value) {
        if (flag == "--batch") {
          options.stream.batch = parse_number(flag, value, 1, 1'000'000);
        } else if (flag == "--form") {
          options.many_subject_form = choice(flag, value, {"subject", "messages"}) == 1;
        } else if (flag == "--max-messages") {
          options.max_messages = parse_number(flag, value, 1, 1'000'000);
        } else if (flag == "--subject") {
          if (value.empty() || value.find_first_of("\"\\") != std::string_view::npos) {
            fail("--subject must need no JSON escapes");
          }
          options.subject = value;
        } else {
          fail("unknown flag " + std::string(flag));
        }
      });
  if (options.stream.window != 0 && options.stream.window < options.stream.batch) {
    fail("--window must hold at least one batch");
  }
  return options;
}

// Calls `on_payload(text)` for each string of a fetch answer's "data",
// without its quotes (our payloads hold no escapes).
template <typename OnPayload>
void for_each_payload(std::string_view body, OnPayload&& on_payload) {
  constexpr std::string_view pattern = "\"data\":[";
  std::size_t at = body.find(pattern);
  if (at == std::string_view::npos) return;
  at += pattern.size();
  while (at < body.size() && body[at] == '"') {
    const std::size_t end = body.find('"', at + 1);
    if (end == std::string_view::npos) fail("a malformed answer: " + std::string(body));
    on_payload(body.substr(at + 1, end - at - 1));
    at = end + 1;
    if (at < body.size() && body[at] == ',') ++at;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse_options(argc, argv);
  const StreamOptions& stream = options.stream;
  DeliveryCheck check(stream.publishers);
  std::string subscriber_id;
  std::uint64_t batch_requests = 0, batch_answers = 0, fetches = 0, empty_fetches = 0;
  std::string fetch_request;
  const std::string quoted_subject = "\"" + options.subject + "\"";
  // The answer a whole batch gets in each form.
  const std::string batch_ok =
      options.many_subject_form
          ? "{\"failed\":[],\"published\":" + std::to_string(stream.batch) + "}\n"
          : "{\"status\":\"ok\"}\n";
  std::string body;

  StreamProtocol protocol;
  protocol.open = [&](int fd, unsigned connection) {
    if (connection != 0) return;
    subscriber_id = subscribe(fd, options.subject);
    fetch_request = post(
        "/api/fetch",
        "{\"subject\":" + quoted_subject + ",\"id\":\"" + subscriber_id +
            "\",\"wait_ms\":20000,\"max_messages\":" + std::to_string(options.max_messages) + "}");
  };
  protocol.publish = [&](unsigned publisher, std::uint64_t first, unsigned count,
                         std::string& out) {
    body.clear();
    if (options.many_subject_form) {
      body += "{\"messages\":[";
      for (std::uint64_t number = first; number < first + count; ++number) {
        if (number != first) body += ',';
        body += "{\"subject\":" + quoted_subject + ",\"data\":\"";
        append_numbered_payload(body, publisher, number, stream.payload_bytes);
        body += "\"}";
      }
      body += "]}";
    } else {
      body += "{\"subject\":" + quoted_subject + ",\"data\":[";
      for (std::uint64_t number = first; number < first + count; ++number) {
        if (number != first) body += ',';
        body += '"';
        append_numbered_payload(body, publisher, number, stream.payload_bytes);
        body += '"';
      }
      body += "]}";
    }
    out += post("/api/publish/batch", body);
    ++batch_requests;
  };
  protocol.start_subscriber = [&](std::string& out) { out += fetch_request; };
  protocol.on_subscriber_bytes = [&](StreamConnection& connection) {
    take_responses(connection, [&](std::string_view response) {
      if (!is_200(response)) fail("a fetch was answered " + std::string(response));
      ++fetches;
      const std::uint64_t before = check.delivered();
      for_each_payload(body_of(response), [&](std::string_view payload) { check.take(payload); });
      if (check.delivered() == before) ++empty_fetches;
      connection.out += fetch_request;
    });
  };
  protocol.on_publisher_bytes = [&](unsigned, StreamConnection& connection) {
    take_responses(connection, [&](std::string_view response) {
      if (!is_200(response) || body_of(response) != batch_ok) {
        fail("a batch publish was answered " + std::string(response));
      }
      ++batch_answers;
    });
  };
  protocol.delivered = [&] { return check.delivered(); };
  protocol.unanswered = [&] { return batch_requests - batch_answers; };

  const StreamRun run = run_stream(stream, protocol);
  std::printf(
      "RESULT server=gophermq form=%s batch=%u publishers=%u rate=%llu window=%llu seconds=%u "
      "payload_bytes=%u max_messages=%u published=%llu delivered=%llu requests=%llu "
      "fetches=%llu empty_fetches=%llu run_seconds=%.3f cpu_seconds=%.3f "
      "messages_per_second=%.0f cpu_us_per_message=%.3f\n",
      options.many_subject_form ? "messages" : "subject", stream.batch, stream.publishers,
      static_cast<unsigned long long>(stream.rate), static_cast<unsigned long long>(stream.window),
      stream.seconds, stream.payload_bytes, options.max_messages,
      static_cast<unsigned long long>(run.published),
      static_cast<unsigned long long>(check.delivered()),
      static_cast<unsigned long long>(run.batches), static_cast<unsigned long long>(fetches),
      static_cast<unsigned long long>(empty_fetches), run.seconds, run.cpu_seconds,
      run.messages_per_second(), run.cpu_us_per_message());
  return 0;
}
