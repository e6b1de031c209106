// What delivering messages over Server-Sent Events streams costs the
// broker (GET /api/stream, api-extensions.md §8) against nchan's
// EventSource subscribers, and what an open stream costs in memory. k6
// cannot read SSE and wrk cannot hold a stream per connection, so this
// generator drives the sockets itself (one thread, epoll).
//
//   stream_load paced --port 8082 --pid 1234 [--server gophermq|nchan]
//               [--subscribers 10] [--rate 5000] [--publishers 4] [--seconds 5]
//               [--payload-bytes 16] [--encoding plain|json] [--subject stream.load]
//     Opens `subscribers` SSE streams of one subject (broker: a subscribe
//     and then GET /api/stream?subject=S&id=ID on each connection; nchan: a
//     GET /sub/<subject> with Accept: text/event-stream on an
//     `nchan_subscriber eventsource` location), then publishes `rate`
//     messages a second to the subject, paced (open loop) over `publishers`
//     keep-alive connections (broker: POST /api/publish; nchan: POST
//     /pub/<subject> of the payload on an `nchan_publisher` location).
//     Payloads are numbered per publisher (message_stream.h); every stream
//     must receive every message exactly once and, per publisher, in order,
//     and the broker's event ids must count 1, 2, 3 ... on each stream.
//     The server's CPU time (user + system, all threads, and its child
//     processes': nginx's worker) from the first publish until the last
//     event has arrived is divided by the events delivered (messages times
//     subscribers). Also counted: events per read(2) of a stream, and, on a
//     chunked stream (the broker's; nchan writes an unframed body), events
//     per chunk: above 1, the server coalesced several events into one send.
//     With --subscribers 0 nothing streams: the figure is what the
//     publishes alone cost (the broker keeps one subscriber that nobody
//     reads, as a publish to a subject without one is refused, bounded to
//     its last 10 messages as nchan's channel is), the scale for the
//     delivery figures.
//
//   stream_load idle --port 8082 --pid 1234 [--streams 10000] [--subject stream.idle]
//     What an open stream adds to the broker's resident memory beyond its
//     connection: opens `streams` connections, each subscribing once (its
//     own subscriber of one subject) and then staying idle, keep-alive; the
//     broker's RSS before and after gives the cost of such a connection and
//     its subscriber. Then each connection opens its subscriber's stream,
//     and the RSS again gives what the streams added, per stream. The broker
//     must keep idle connections longer than the run (broker.idle-timeout).
//
// One RESULT line of key=value pairs, for tools/loadtest. Exits 1 on any
// unexpected answer, a message lost, repeated or out of order, or a
// connection lost.
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "load_client.h"
#include "message_stream.h"

namespace {

using namespace gophermq::load;

// --server, --rate (5000 unless given), --publishers and --seconds from
// PacedFlags.
struct Options : PacedFlags {
  std::string subject;  // both modes'; the default depends on the mode
  // paced
  bool json_encoding = false;
  unsigned subscribers = 10;
  unsigned payload_bytes = 16;
  // idle
  unsigned streams = 10000;
};

Options parse_options(int argc, char** argv) {
  Options options;
  options.mode = read_mode(argc, argv, "stream_load", {"paced", "idle"});
  options.subject = options.mode == "paced" ? "stream.load" : "stream.idle";
  options.rate = 5000;
  parse_paced_flags(argc, argv, options, [&](std::string_view flag, std::string_view value) {
    if (flag == "--encoding") {
      options.json_encoding = choice(flag, value, {"plain", "json"}) == 1;
    } else if (flag == "--subscribers") {
      options.subscribers = parse_number(flag, value, 0, 100'000);
    } else if (flag == "--payload-bytes") {
      options.payload_bytes = parse_number(flag, value, 1, 1 << 20);
    } else if (flag == "--streams") {
      options.streams = parse_number(flag, value, 1, 1'000'000);
    } else if (flag == "--subject") {
      // Sent as is in a JSON body and a query string (or nchan's path).
      if (value.empty() || value.find_first_not_of("abcdefghijklmnopqrstuvwxyz"
                                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
                               std::string_view::npos) {
        fail("--subject must be letters, digits, '.', '_' and '-'");
      }
      options.subject = value;
    } else {
      fail("unknown flag " + std::string(flag));
    }
  });
  if (options.nchan && options.mode != "paced") fail("--server nchan goes with paced");
  if (options.nchan && options.json_encoding) fail("--encoding json is the broker's");
  return options;
}

// Raises the soft limit on open files to the hard one; fail()s when even
// that leaves no room for `needed` descriptors.
void ensure_open_files(std::uint64_t needed) {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed) {
    fail("needs " + std::to_string(needed) + " open files, the limit is " +
         std::to_string(limit.rlim_cur) + " (ulimit -n)");
  }
}

// --- An SSE stream, read incrementally -------------------------------------------

// Reads one SSE response as its bytes arrive, in pieces of any size: the
// head, then the body (chunked framing when the head says so, as the
// broker's; nchan's EventSource body is unframed), then the event stream:
// lines ending in LF (CRLF and CR too, as the SSE format allows), "field:
// value" with one optional space, a blank line ending an event. Comments
// (":" lines, the broker's heartbeat, nchan's ": hi") are counted, not
// events.
class EventStreamReader {
 public:
  // on_event(id, data) is called for each event with data: its "id:" value
  // and its data lines joined by LF.
  template <typename OnEvent>
  void feed(std::string_view bytes, OnEvent&& on_event) {
    while (!bytes.empty()) {
      switch (state_) {
        case State::head:
          bytes = take_head(bytes);
          break;
        case State::chunk_size:
          bytes = take_chunk_size(bytes);
          break;
        case State::chunk_data: {
          const std::size_t taken = std::min<std::uint64_t>(chunk_left_, bytes.size());
          take_events(bytes.substr(0, taken), on_event);
          bytes.remove_prefix(taken);
          chunk_left_ -= taken;
          if (chunk_left_ == 0) state_ = State::chunk_end;
          break;
        }
        case State::chunk_end:
          // The CRLF after a chunk's data, in one piece or two.
          if (bytes.front() != (chunk_end_seen_ == 0 ? '\r' : '\n')) fail("a malformed chunk");
          bytes.remove_prefix(1);
          if (++chunk_end_seen_ == 2) {
            chunk_end_seen_ = 0;
            state_ = State::chunk_size;
          }
          break;
        case State::raw:
          take_events(bytes, on_event);
          bytes = {};
          break;
      }
    }
  }

  bool head_done() const { return state_ != State::head; }
  std::uint64_t chunks() const { return chunks_; }
  std::uint64_t comments() const { return comments_; }

 private:
  enum class State { head, chunk_size, chunk_data, chunk_end, raw };

  std::string_view take_head(std::string_view bytes) {
    // The end of the head may straddle two reads: look from 3 bytes back.
    const std::size_t look_from = line_.size() < 3 ? 0 : line_.size() - 3;
    line_.append(bytes);
    const std::size_t end = line_.find("\r\n\r\n", look_from);
    if (end == std::string::npos) {
      if (line_.size() > 16384) fail("a stream's head is over 16 KiB");
      return {};
    }
    const std::string head = line_.substr(0, end + 2);
    const std::size_t rest = line_.size() - (end + 4);
    bytes = bytes.substr(bytes.size() - rest);
    line_.clear();
    if (head.size() < 12 || status_of(head) != "200") fail("a stream was answered " + head);
    if (!header_value(head, "content-type").starts_with("text/event-stream")) {
      fail("a stream that is not text/event-stream: " + head);
    }
    state_ = header_value(head, "transfer-encoding") == "chunked" ? State::chunk_size : State::raw;
    return bytes;
  }

  std::string_view take_chunk_size(std::string_view bytes) {
    const std::size_t end = bytes.find('\n');
    line_.append(bytes.substr(0, end));
    if (end == std::string_view::npos) {
      if (line_.size() > 64) fail("a malformed chunk size line");
      return {};
    }
    std::uint64_t size = 0;
    const auto [stop, error] = std::from_chars(line_.data(), line_.data() + line_.size(), size, 16);
    if (error != std::errc{} ||
        (stop != line_.data() + line_.size() && *stop != '\r' && *stop != ';')) {
      fail("a malformed chunk size line: '" + line_ + "'");
    }
    if (size == 0) fail("a stream ended (its last chunk came)");
    line_.clear();
    chunk_left_ = size;
    ++chunks_;
    state_ = State::chunk_data;
    return bytes.substr(end + 1);
  }

  template <typename OnEvent>
  void take_events(std::string_view bytes, OnEvent&& on_event) {
    while (!bytes.empty()) {
      // A CR that ended the last piece: a CRLF's LF is not a second line end.
      if (after_cr_ && bytes.front() == '\n') bytes.remove_prefix(1);
      after_cr_ = false;
      const std::size_t end = bytes.find_first_of("\r\n");
      if (end == std::string_view::npos) {
        line_.append(bytes);
        if (line_.size() > (1u << 20)) fail("an SSE line over 1 MiB");
        return;
      }
      after_cr_ = bytes[end] == '\r';
      if (line_.empty()) {
        take_line(bytes.substr(0, end), on_event);
      } else {
        line_.append(bytes.substr(0, end));
        take_line(line_, on_event);
        line_.clear();
      }
      bytes.remove_prefix(end + 1);
    }
  }

  template <typename OnEvent>
  void take_line(std::string_view line, OnEvent&& on_event) {
    if (line.empty()) {
      if (has_data_) on_event(std::string_view(id_), std::string_view(data_));
      has_data_ = false;
      data_.clear();
      return;
    }
    if (line.front() == ':') {
      ++comments_;
      return;
    }
    const std::size_t colon = line.find(':');
    const std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (field == "data") {
      if (has_data_) data_ += '\n';
      data_.append(value);
      has_data_ = true;
    } else if (field == "id") {
      id_.assign(value);
    }
  }

  State state_ = State::head;
  std::string line_;  // the head, a chunk size line or an SSE line, while incomplete
  std::uint64_t chunk_left_ = 0;
  int chunk_end_seen_ = 0;
  bool after_cr_ = false;
  std::string id_;
  std::string data_;
  bool has_data_ = false;
  std::uint64_t chunks_ = 0;
  std::uint64_t comments_ = 0;
};

// Sends `request` on a blocking connection and reads until the stream's
// head has come (and whatever followed it in the same reads), feeding
// `reader`, which fail()s unless it is a 200 event stream.
template <typename OnEvent>
void open_stream(int fd, const std::string& request, EventStreamReader& reader,
                 OnEvent&& on_event) {
  send_whole(fd, request);
  char chunk[16384];
  while (!reader.head_done()) {
    const ssize_t got = recv(fd, chunk, sizeof chunk, 0);
    if (got <= 0) fail("the server closed a stream or did not answer within 10 s");
    reader.feed(std::string_view(chunk, static_cast<std::size_t>(got)), on_event);
  }
}

std::string broker_stream_request(const std::string& subject, const std::string& id, bool json) {
  return "GET /api/stream?subject=" + subject + "&id=" + id + (json ? "&encoding=json" : "") +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n";
}

std::string nchan_stream_request(const std::string& subject) {
  return "GET /sub/" + subject +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n";
}

// --- paced ---------------------------------------------------------------------

// One stream's reader and checks.
struct Subscriber {
  int fd = -1;
  EventStreamReader reader;
  DeliveryCheck check;
  std::uint64_t last_id = 0;  // the broker's: ids count 1, 2, 3 ...
  std::uint64_t reads = 0;
  explicit Subscriber(unsigned publishers) : check(publishers) {}
};

// `"data":"<payload>"` of a JSON-encoded event (our payloads need no
// escapes), and its "seq", which must be the event's id.
std::string_view json_event_payload(std::string_view data, std::string_view id) {
  constexpr std::string_view key = "\"data\":\"";
  const std::size_t at = data.find(key);
  const std::size_t end = at == std::string_view::npos ? at : data.find('"', at + key.size());
  const std::size_t seq = data.find("\"seq\":");
  if (end == std::string_view::npos || seq == std::string_view::npos ||
      data.substr(seq + 6, id.size()) != id) {
    fail("a malformed JSON event (id " + std::string(id) + "): " + std::string(data));
  }
  return data.substr(at + key.size(), end - at - key.size());
}

int run_paced(const Options& options) {
  ensure_open_files(options.subscribers + options.publishers + 64);
  std::vector<Subscriber> subscribers;
  subscribers.reserve(options.subscribers);
  std::uint64_t delivered = 0;
  auto on_event_of = [&](Subscriber& subscriber_of_stream) {
    return [&options, &delivered, &subscriber = subscriber_of_stream](std::string_view id,
                                                                      std::string_view data) {
      if (!options.nchan) {
        std::uint64_t number = 0;
        std::from_chars(id.data(), id.data() + id.size(), number);
        if (number != subscriber.last_id + 1) {
          fail("a stream's event id " + std::string(id) + " after " +
               std::to_string(subscriber.last_id));
        }
        subscriber.last_id = number;
      }
      subscriber.check.take(options.json_encoding ? json_event_payload(data, id) : data);
      ++delivered;
    };
  };

  // Every stream is open (its head received) before the first publish.
  for (unsigned s = 0; s < options.subscribers; ++s) {
    Subscriber& subscriber = subscribers.emplace_back(options.publishers);
    subscriber.fd = connect_to(options.server.port);
    const std::string request =
        options.nchan
            ? nchan_stream_request(options.subject)
            : broker_stream_request(options.subject, subscribe(subscriber.fd, options.subject),
                                    options.json_encoding);
    open_stream(subscriber.fd, request, subscriber.reader, on_event_of(subscriber));
  }
  if (options.subscribers == 0 && !options.nchan) {
    const int fd = connect_to(options.server.port);
    // Its last 10 messages, as nchan's channel keeps (nchan_message_buffer_length's
    // default): a queue that grew all run long would add its memory's cost.
    subscribe(fd, options.subject, "\"max_pending\":10,\"discard\":\"old\"");
    close(fd);
  }
  // A publisher's `received`: not yet a whole answer.
  std::vector<StreamConnection> publishers(options.publishers);
  for (StreamConnection& publisher : publishers) publisher.fd = connect_to(options.server.port);

  const int epoll_fd = new_epoll();
  // Subscribers are 0 ... subscribers - 1, publishers follow.
  for (unsigned s = 0; s < options.subscribers; ++s) watch(epoll_fd, subscribers[s].fd, s);
  for (unsigned p = 0; p < options.publishers; ++p) {
    watch(epoll_fd, publishers[p].fd, options.subscribers + p);
  }

  const std::string quoted_subject = "\"" + options.subject + "\"";
  std::string payload;
  auto publish_request = [&](unsigned publisher, std::uint64_t number) {
    payload.clear();
    append_numbered_payload(payload, publisher, number, options.payload_bytes);
    if (options.nchan) {
      return "POST /pub/" + options.subject +
             " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: " +
             std::to_string(payload.size()) + "\r\n\r\n" + payload;
    }
    return post("/api/publish",
                "{\"subject\":" + quoted_subject + ",\"data\":\"" + payload + "\"}");
  };
  // The broker: 200; nchan: 201 (a subscriber was waiting) or 202 (queued).
  auto publish_ok = [&](std::string_view response) {
    if (!options.nchan) return is_200(response);
    return status_of(response) == "201" || status_of(response) == "202";
  };

  std::vector<std::uint64_t> next_number(options.publishers, 1);
  std::uint64_t published = 0, answered = 0, bytes_read = 0;
  const PacedClock clock(options.rate, options.seconds, std::chrono::seconds(30));
  const double cpu_start = server_cpu_seconds(options.server.pid);
  char chunk[65536];
  epoll_event events[256];
  while (true) {
    const auto now = Clock::now();
    if (clock.publishing(now)) {
      const std::uint64_t due = clock.due(now);
      while (published < due) {
        const auto publisher = static_cast<unsigned>(published % options.publishers);
        publishers[publisher].out += publish_request(publisher, next_number[publisher]++);
        ++published;
      }
      for (StreamConnection& publisher : publishers) flush(publisher);
    } else if (answered == published && delivered == published * options.subscribers) {
      break;
    } else if (clock.drain_over(now)) {
      fail("30 s after publishing, " + std::to_string(published * options.subscribers - delivered) +
           " of " + std::to_string(published * options.subscribers) + " events had not arrived, " +
           std::to_string(published - answered) + " publishes were not answered");
    }
    const int ready = wait_for_events(epoll_fd, events, 256, 1);
    for (int e = 0; e < ready; ++e) {
      const auto index = static_cast<unsigned>(events[e].data.u64);
      if (index >= options.subscribers) {
        StreamConnection& publisher = publishers[index - options.subscribers];
        if (events[e].events & EPOLLOUT) flush(publisher);
        if (!(events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
        read_available(publisher, "a publisher's connection");
        take_responses(publisher, [&](std::string_view response) {
          if (!publish_ok(response)) fail("a publish was answered " + std::string(response));
          ++answered;
        });
        continue;
      }
      if (!(events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      Subscriber& subscriber = subscribers[index];
      auto on_event = on_event_of(subscriber);
      // Edge-triggered: read until the kernel has nothing more.
      while (true) {
        const ssize_t got = recv(subscriber.fd, chunk, sizeof chunk, 0);
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) fail("the server closed a stream");
        ++subscriber.reads;
        bytes_read += static_cast<std::uint64_t>(got);
        subscriber.reader.feed(std::string_view(chunk, static_cast<std::size_t>(got)), on_event);
      }
    }
  }
  const double cpu_seconds = server_cpu_seconds(options.server.pid) - cpu_start;
  const double run_seconds = clock.seconds();
  std::uint64_t reads = 0, chunks = 0, comments = 0;
  for (Subscriber& subscriber : subscribers) {
    reads += subscriber.reads;
    chunks += subscriber.reader.chunks();
    comments += subscriber.reader.comments();
    close(subscriber.fd);
  }
  for (StreamConnection& publisher : publishers) close(publisher.fd);
  close(epoll_fd);
  auto per = [](double value, std::uint64_t count) {
    return count ? value / static_cast<double>(count) : 0.0;
  };
  std::printf(
      "RESULT mode=paced server=%s encoding=%s subscribers=%u rate=%u publishers=%u seconds=%u "
      "payload_bytes=%u published=%llu delivered=%llu run_seconds=%.3f cpu_seconds=%.3f "
      "cpu_us_per_delivery=%.3f cpu_us_per_message=%.3f reads=%llu chunks=%llu comments=%llu "
      "events_per_read=%.2f events_per_chunk=%.2f bytes_per_read=%.0f\n",
      options.nchan ? "nchan" : "gophermq", options.json_encoding ? "json" : "plain",
      options.subscribers, options.rate, options.publishers, options.seconds, options.payload_bytes,
      static_cast<unsigned long long>(published), static_cast<unsigned long long>(delivered),
      run_seconds, cpu_seconds, per(cpu_seconds * 1e6, delivered),
      per(cpu_seconds * 1e6, published), static_cast<unsigned long long>(reads),
      static_cast<unsigned long long>(chunks), static_cast<unsigned long long>(comments),
      per(static_cast<double>(delivered), reads), per(static_cast<double>(delivered), chunks),
      per(static_cast<double>(bytes_read), reads));
  return 0;
}

// --- idle ----------------------------------------------------------------------

int run_idle(const Options& options) {
  ensure_open_files(options.streams + 64);
  // Lets the broker settle (a connection's buffers, a loop turn) before
  // its resident set is read.
  auto settled_resident_bytes = [&] {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    return resident_bytes(options.server.pid);
  };
  const std::uint64_t before = settled_resident_bytes();
  std::vector<int> fds;
  std::vector<std::string> ids;
  fds.reserve(options.streams);
  ids.reserve(options.streams);
  for (unsigned s = 0; s < options.streams; ++s) {
    fds.push_back(connect_to(options.server.port));
    ids.push_back(subscribe(fds.back(), options.subject));
  }
  const std::uint64_t connected = settled_resident_bytes();
  const auto opening = Clock::now();
  std::vector<EventStreamReader> readers(options.streams);
  for (unsigned s = 0; s < options.streams; ++s) {
    open_stream(fds[s], broker_stream_request(options.subject, ids[s], false), readers[s],
                [](std::string_view, std::string_view) { fail("an idle stream got an event"); });
  }
  const double opening_seconds = std::chrono::duration<double>(Clock::now() - opening).count();
  const std::uint64_t streaming = settled_resident_bytes();
  for (int fd : fds) close(fd);
  const auto n = static_cast<double>(options.streams);
  std::printf(
      "RESULT mode=idle streams=%u rss_before=%llu rss_connected=%llu rss_streaming=%llu "
      "bytes_per_connection=%.0f bytes_per_stream=%.0f opening_seconds=%.3f\n",
      options.streams, static_cast<unsigned long long>(before),
      static_cast<unsigned long long>(connected), static_cast<unsigned long long>(streaming),
      (static_cast<double>(connected) - static_cast<double>(before)) / n,
      (static_cast<double>(streaming) - static_cast<double>(connected)) / n, opening_seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse_options(argc, argv);
  return options.mode == "paced" ? run_paced(options) : run_idle(options);
}
