// The reference of `tools/loadtest batch`: what NATS (nats-server, Debian's
// package) spends per message published and delivered to one subscriber
// over its own text protocol, pipelined, against which the broker's batch
// publish is measured (batch_load).
//
//   nats_load --port 4222 --pid 1234 [--publishers 4] [--rate 500000]
//             [--window 0] [--seconds 5] [--payload-bytes 16] [--subject batch.load]
//
// One subscriber connection (SUB <subject> 1) and `publishers` publisher
// connections, each opened with CONNECT {"verbose":false,"pedantic":false}
// and a PING whose PONG says the server has taken the CONNECT (and the SUB)
// before any message goes out. Then `rate` messages a second in all (0:
// flat out, at most `window` messages ahead of the subscriber; default
// 20000 then), each a `PUB <subject> <n>` with a numbered payload (see
// message_stream.h), written as they fall due: the publishers pipeline, a
// write carries every PUB due since the last one. The subscriber reads the
// MSG lines and answers the server's PINGs; every message must arrive
// exactly once and in order per publisher. nats-server drops a subscriber
// that falls too far behind (a slow consumer): then the connection closes
// and the run fails, as it does on any -ERR.
//
// The server's CPU time (user + system, all threads, from /proc/<pid>/stat)
// from the first publish until the last message has arrived, divided by the
// messages, is printed on one RESULT line of key=value pairs.
#include <sys/socket.h>

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
  std::string subject = "batch.load";
};

Options parse_options(int argc, char** argv) {
  Options options;
  parse_stream_flags(
      argc, argv, options.stream, [&](std::string_view flag, std::string_view value) {
        if (flag == "--subject") {
          if (value.empty() || value.find_first_of(" \t\r\n*>") != std::string_view::npos) {
            fail("--subject must be a plain NATS subject");
          }
          options.subject = value;
        } else {
          fail("unknown flag " + std::string(flag));
        }
      });
  return options;
}

// Reads from a blocking connection until `bytes` holds a whole line
// starting at `from`; the line without its "\r\n".
std::string_view read_line(int fd, std::string& bytes, std::size_t from) {
  char chunk[4096];
  std::size_t end;
  while ((end = bytes.find("\r\n", from)) == std::string::npos) {
    const ssize_t got = recv(fd, chunk, sizeof chunk, 0);
    if (got <= 0) fail("nats-server closed the connection or did not answer within 10 s");
    bytes.append(chunk, static_cast<std::size_t>(got));
  }
  return std::string_view(bytes).substr(from, end - from);
}

// The INFO the server greets with, then CONNECT (and, for the subscriber,
// SUB), then PING: its PONG comes once the server has processed what came
// before it on the connection.
void open_connection(int fd, bool subscriber, const std::string& subject) {
  std::string bytes;
  if (!read_line(fd, bytes, 0).starts_with("INFO ")) fail("nats-server did not send INFO");
  std::string request = "CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"nats_load\"}\r\n";
  if (subscriber) request += "SUB " + subject + " 1\r\n";
  request += "PING\r\n";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    fail("cannot write to nats-server");
  }
  std::size_t from = bytes.size();
  while (true) {
    const std::string_view line = read_line(fd, bytes, from);
    if (line == "PONG") return;
    if (line.starts_with("-ERR")) fail("nats-server: " + std::string(line));
    from += line.size() + 2;  // an INFO update or a PING of its own: not expected, harmless
  }
}

// Consumes the whole protocol messages at the front of `connection.received`:
// MSG (to `on_message(payload)`; a publisher gets none), PING (answered),
// PONG, +OK and INFO (nothing to do), -ERR (the run fails).
template <typename OnMessage>
void consume(StreamConnection& connection, OnMessage&& on_message) {
  const std::string_view bytes = connection.received;
  std::size_t at = 0;
  while (true) {
    const std::size_t line_end = bytes.find("\r\n", at);
    if (line_end == std::string_view::npos) break;
    const std::string_view line = bytes.substr(at, line_end - at);
    if (line.starts_with("MSG ")) {
      // MSG <subject> <sid> [reply-to] <#bytes>: the count is the last field.
      const std::string_view count = line.substr(line.rfind(' ') + 1);
      std::size_t payload_bytes = 0;
      std::from_chars(count.data(), count.data() + count.size(), payload_bytes);
      const std::size_t payload_at = line_end + 2;
      if (bytes.size() < payload_at + payload_bytes + 2) break;  // the rest is on its way
      on_message(bytes.substr(payload_at, payload_bytes));
      at = payload_at + payload_bytes + 2;
      continue;
    }
    if (line == "PING") {
      connection.out += "PONG\r\n";
    } else if (line.starts_with("-ERR")) {
      fail("nats-server: " + std::string(line));
    } else if (line != "PONG" && line != "+OK" && !line.starts_with("INFO ")) {
      fail("nats-server sent an unknown line: " + std::string(line));
    }
    at = line_end + 2;
  }
  connection.received.erase(0, at);
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse_options(argc, argv);
  DeliveryCheck check(options.stream.publishers);
  const std::string pub_line =
      "PUB " + options.subject + " " + std::to_string(options.stream.payload_bytes) + "\r\n";

  StreamProtocol protocol;
  protocol.open = [&](int fd, unsigned connection) {
    open_connection(fd, connection == 0, options.subject);
  };
  protocol.publish = [&](unsigned publisher, std::uint64_t first, unsigned count,
                         std::string& out) {
    for (std::uint64_t number = first; number < first + count; ++number) {
      out += pub_line;
      append_numbered_payload(out, publisher, number, options.stream.payload_bytes);
      out += "\r\n";
    }
  };
  protocol.on_subscriber_bytes = [&](StreamConnection& connection) {
    consume(connection, [&](std::string_view payload) { check.take(payload); });
  };
  protocol.on_publisher_bytes = [&](unsigned, StreamConnection& connection) {
    consume(connection, [](std::string_view) { fail("a publisher got a MSG"); });
  };
  protocol.delivered = [&] { return check.delivered(); };
  protocol.unanswered = [] { return std::uint64_t{0}; };

  const StreamRun run = run_stream(options.stream, protocol);
  std::printf(
      "RESULT server=nats batch=1 publishers=%u rate=%llu window=%llu seconds=%u "
      "payload_bytes=%u published=%llu delivered=%llu requests=%llu run_seconds=%.3f "
      "cpu_seconds=%.3f messages_per_second=%.0f cpu_us_per_message=%.3f\n",
      options.stream.publishers, static_cast<unsigned long long>(options.stream.rate),
      static_cast<unsigned long long>(options.stream.window), options.stream.seconds,
      options.stream.payload_bytes, static_cast<unsigned long long>(run.published),
      static_cast<unsigned long long>(check.delivered()),
      static_cast<unsigned long long>(run.batches), run.seconds, run.cpu_seconds,
      run.messages_per_second(), run.cpu_us_per_message());
  return 0;
}
