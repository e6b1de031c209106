// What delivering messages costs the broker when its consumers long-poll,
// against when they poll, and against nchan; what fetches that wait with
// nothing to take cost; and what ack-mode worker pools and queue groups cost
// per message. wrk and k6 cannot hold a waiting fetch per connection at
// these rates, so this generator drives the sockets itself (one thread,
// epoll).
//
//   long_poll_load paced --port 8082 --pid 1234 [--consumer long-poll|poll]
//                  [--server gophermq|nchan] [--rate 20000] [--subjects 10]
//                  [--publishers 4] [--seconds 5]
//     Publishers send `rate` publishes a second in all, paced (open loop),
//     round-robin over the subjects; each subject has one subscriber, read
//     by one consumer connection that fetches again as soon as an answer
//     comes: with wait_ms (long-poll) or without (a poll loop). Every
//     message must arrive exactly once and in order. With --server nchan the
//     server is nginx with nchan (a publisher location /pub/<channel>, a
//     long-poll subscriber location /sub/<channel>): each publish is a POST
//     of the message, and each consumer walks its channel with nchan's
//     protocol, a GET with If-Modified-Since and If-None-Match set to the
//     previous answer's Last-Modified and Etag (one message an answer).
//
//   long_poll_load acks --port 8082 --metrics-port 9001 --pid 1234
//                  [--workers 8] [--max-messages 100] [--ack through|seqs]
//                  [--ack-wait-ms 30000] [--crash-every 0] [--rate 20000]
//                  [--publishers 4] [--seconds 5]
//     One subject, one queue group in ack mode, `workers` members, each on
//     its own connection: a long-poll fetch with max_messages, then an ack
//     of the batch (through its last seq, or its seqs), then the next fetch.
//     With --crash-every N a worker drops every Nth batch unacked (a crash)
//     and rejoins as a new member, so those messages come back after
//     ack_wait_ms to some worker. Every
//     message must be taken (acked by the worker that got it) exactly once,
//     the "acked" counts must add up to the messages, and at the end the
//     broker must hold nothing (pending and in flight 0). The broker's
//     redeliveries (gophermq_messages_redelivered_total) are reported.
//
//   long_poll_load group ...   the same with a plain queue group (no acks):
//     every message must reach exactly one member.
//
//   long_poll_load parked --port 8082 --metrics-port 9001 --pid 1234
//                  [--fetches 10000] [--seconds 10]
//     Opens `fetches` connections, each with a subscriber of its own subject
//     and one plain fetch done, then has each send a fetch that waits. The
//     resident memory they add, per waiting fetch, and the broker's CPU time
//     while they wait `seconds` (and, before, over as long with nothing
//     waiting) are printed. The broker must allow waits longer than that
//     (broker.max-fetch-wait).
//
// In paced, acks and group the server's CPU time (user + system, all
// threads, and its child processes': nginx's worker) is read from /proc at
// the first publish and again when the last message has been taken, and
// divided by the messages taken.
//
// One RESULT line of key=value pairs, for tools/loadtest. Exits 1 on any
// unexpected answer, a message lost, repeated or out of order, or a
// connection lost.
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "load_client.h"

namespace {

using namespace gophermq::load;

// --server, --rate (20000 unless given), --publishers and --seconds from
// PacedFlags.
struct Options : PacedFlags {
  bool long_poll = true;
  unsigned subjects = 10;
  unsigned fetches = 10000;
  unsigned workers = 8;
  unsigned max_messages = 100;
  bool ack_through = true;
  unsigned ack_wait_ms = 30000;
  unsigned crash_every = 0;
};

Options parse_options(int argc, char** argv) {
  Options options;
  options.mode = read_mode(argc, argv, "long_poll_load", {"paced", "parked", "acks", "group"});
  options.rate = 20000;
  if (options.mode == "parked") options.seconds = 10;
  parse_paced_flags(argc, argv, options, [&](std::string_view flag, std::string_view value) {
    if (flag == "--consumer") {
      options.long_poll = choice(flag, value, {"long-poll", "poll"}) == 0;
    } else if (flag == "--subjects") {
      options.subjects = parse_number(flag, value, 1, 10000);
    } else if (flag == "--fetches") {
      options.fetches = parse_number(flag, value, 1, 1'000'000);
    } else if (flag == "--workers") {
      options.workers = parse_number(flag, value, 1, 10000);
    } else if (flag == "--max-messages") {
      options.max_messages = parse_number(flag, value, 1, 1'000'000);
    } else if (flag == "--ack") {
      options.ack_through = choice(flag, value, {"through", "seqs"}) == 0;
    } else if (flag == "--ack-wait-ms") {
      options.ack_wait_ms = parse_number(flag, value, 1, 3'600'000);
    } else if (flag == "--crash-every") {
      options.crash_every = parse_number(flag, value, 0, 1'000'000);
    } else {
      fail("unknown flag " + std::string(flag));
    }
  });
  if ((options.mode == "parked" || options.mode == "acks" || options.mode == "group") &&
      options.server.metrics_port == 0) {
    fail(options.mode + " needs --metrics-port");
  }
  if (options.nchan && (options.mode != "paced" || !options.long_poll)) {
    fail("--server nchan goes with paced long-poll consumers");
  }
  return options;
}

// --- Answers ------------------------------------------------------------------

// Calls `on_item(text)` for each item of the JSON array under `key` in a
// broker's answer: numbers as they are written, strings without their
// quotes (the payloads here hold no escapes). Nothing when the key is absent.
template <typename OnItem>
void for_each_item(std::string_view body, std::string_view key, OnItem&& on_item) {
  const std::string pattern = "\"" + std::string(key) + "\":[";
  std::size_t at = body.find(pattern);
  if (at == std::string_view::npos) return;
  at += pattern.size();
  while (at < body.size() && body[at] != ']') {
    if (body[at] == '"') {
      const std::size_t end = body.find('"', at + 1);
      on_item(body.substr(at + 1, end - at - 1));
      at = end + 1;
    } else {
      const std::size_t end = body.find_first_of(",]", at);
      on_item(body.substr(at, end - at));
      at = end;
    }
    if (at < body.size() && body[at] == ',') ++at;
  }
}

std::uint64_t to_number(std::string_view text) {
  std::uint64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

// The number after `"key":` in a JSON answer.
std::uint64_t number_field(std::string_view body, std::string_view key) {
  const std::string pattern = "\"" + std::string(key) + "\":";
  const std::size_t at = body.find(pattern);
  if (at == std::string_view::npos) fail("no " + std::string(key) + " in " + std::string(body));
  return to_number(body.substr(at + pattern.size()));
}

// Calls `on_part(body)` for each part of an nchan multipart/mixed answer
// (nchan_longpoll_multipart_response on: every message the subscriber has
// not had yet, in one answer). `type` is the answer's Content-Type, with
// its boundary B; the body is "--B" then, per message, optional part
// headers, an empty line and the message, each message but the last
// followed by "\r\n--B", the last by "\r\n--B--\r\n".
template <typename OnPart>
void for_each_part(std::string_view type, std::string_view body, OnPart&& on_part) {
  const std::size_t key = type.find("boundary=");
  if (key == std::string_view::npos) fail("a multipart answer without a boundary");
  const std::string delimiter = "\r\n--" + std::string(type.substr(key + 9));
  // The first delimiter has no line end before it.
  std::size_t at = delimiter.size() - 2;
  while (body.substr(at, 2) != "--") {
    const std::size_t start = body.find("\r\n\r\n", at);
    const std::size_t end = body.find(delimiter, start);
    if (start == std::string_view::npos || end == std::string_view::npos) {
      fail("a malformed multipart answer: " + std::string(body));
    }
    on_part(body.substr(start + 4, end - start - 4));
    at = end + delimiter.size();
  }
}

// --- The paced engine ------------------------------------------------------------

// What a paced run loads: how message `index` (0-based, in publishing
// order) is published, how each consumer connection asks for messages and
// takes an answer, and how many messages the consumers have taken so far
// (delivered; in ack mode, delivered and acked).
struct Workload {
  unsigned consumers = 0;
  // The publisher connection (0 to publishers - 1) and the request.
  std::function<std::pair<unsigned, std::string>(std::uint64_t index)> publish;
  std::function<bool(std::string_view response)> publish_ok;
  // Consumer `c`'s next request; its first one too.
  std::function<std::string(unsigned c)> ask;
  // Consumer `c`'s answer; returns its next request.
  std::function<std::string(unsigned c, std::string_view response)> on_answer;
  std::function<std::uint64_t()> taken;
};

struct PacedRun {
  std::uint64_t published = 0;
  double cpu_seconds = 0;
  double seconds = 0;  // from the first publish to the last message taken
};

// Publishes options.rate messages a second for options.seconds over
// options.publishers connections, and keeps every consumer's request out,
// until every message published has been taken (a time limit past the end
// of publishing fails the run).
PacedRun run_paced_load(const Options& options, const Workload& work, unsigned extra_wait_ms) {
  const int epoll_fd = new_epoll();
  std::vector<StreamConnection> connections(work.consumers + options.publishers);
  for (std::size_t i = 0; i < connections.size(); ++i) {
    connections[i].fd = connect_to(options.server.port);
    watch(epoll_fd, connections[i].fd, i);
  }
  // Consumers first: each has a request out at all times.
  for (unsigned c = 0; c < work.consumers; ++c) {
    connections[c].out = work.ask(c);
    flush(connections[c]);
  }

  std::uint64_t publishes_sent = 0, publishes_answered = 0;
  const PacedClock clock(options.rate, options.seconds,
                         std::chrono::seconds(20) + std::chrono::milliseconds(extra_wait_ms));
  const double cpu_start = server_cpu_seconds(options.server.pid);
  epoll_event events[256];
  while (true) {
    const auto now = Clock::now();
    if (clock.publishing(now)) {
      const std::uint64_t due = clock.due(now);
      while (publishes_sent < due) {
        auto [publisher, request] = work.publish(publishes_sent++);
        connections[work.consumers + publisher].out += request;
      }
      for (std::size_t i = work.consumers; i < connections.size(); ++i) flush(connections[i]);
    } else if (publishes_answered == publishes_sent && work.taken() == publishes_sent) {
      break;
    } else if (clock.drain_over(now)) {
      fail("after publishing, " + std::to_string(publishes_sent - work.taken()) + " of " +
           std::to_string(publishes_sent) + " messages were never taken");
    }
    const int ready = wait_for_events(epoll_fd, events, 256, 1);
    for (int e = 0; e < ready; ++e) {
      const auto index = static_cast<unsigned>(events[e].data.u64);
      StreamConnection& connection = connections[index];
      if (events[e].events & EPOLLOUT) flush(connection);
      if (!(events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      read_available(connection);
      if (index < work.consumers) {
        take_responses(connection, [&](std::string_view response) {
          connection.out += work.on_answer(index, response);
        });
        flush(connection);
      } else {
        take_responses(connection, [&](std::string_view response) {
          if (!work.publish_ok(response)) {
            fail("a publish was answered " + std::string(status_of(response)));
          }
          ++publishes_answered;
        });
      }
    }
  }
  PacedRun run;
  run.cpu_seconds = server_cpu_seconds(options.server.pid) - cpu_start;
  run.seconds = clock.seconds();
  run.published = publishes_sent;
  for (StreamConnection& connection : connections) close(connection.fd);
  close(epoll_fd);
  return run;
}

double micros_per(double cpu_seconds, std::uint64_t messages) {
  return messages ? cpu_seconds * 1e6 / static_cast<double>(messages) : 0.0;
}

// --- paced ---------------------------------------------------------------------

std::string subject_name(unsigned subject) { return "longpoll." + std::to_string(subject); }

// Message `index` goes to subject index % subjects as "<subject>-<n>", n
// counting that subject's messages from 1; one publisher per subject, so
// its messages are stored in the order they are numbered.
std::pair<unsigned, std::string> paced_message(const Options& options, std::uint64_t index,
                                               std::string& payload) {
  const auto s = static_cast<unsigned>(index % options.subjects);
  payload = std::to_string(s) + "-" + std::to_string(index / options.subjects + 1);
  return {s % options.publishers, subject_name(s)};
}

int run_paced(const Options& options) {
  std::vector<std::string> ids;
  if (!options.nchan) {
    int fd = connect_to(options.server.port);
    for (unsigned s = 0; s < options.subjects; ++s) ids.push_back(subscribe(fd, subject_name(s)));
    close(fd);
  }
  std::vector<std::uint64_t> delivered(options.subjects, 0);  // the next expected is this + 1
  std::uint64_t delivered_total = 0, fetches = 0, empty_fetches = 0;
  // nchan's place in each channel: the last answer's Last-Modified and Etag.
  std::vector<std::string> last_modified(options.subjects), etag(options.subjects);

  // Checks that `item` ("<subject>-<n>") is the next message of subject s.
  auto take = [&](unsigned s, std::string_view item) {
    const std::uint64_t number = to_number(item.substr(item.find('-') + 1));
    if (number != delivered[s] + 1) {
      fail("subject " + std::to_string(s) + ": expected message " +
           std::to_string(delivered[s] + 1) + ", got " + std::string(item));
    }
    delivered[s] = number;
    ++delivered_total;
  };

  Workload work;
  work.consumers = options.subjects;
  work.taken = [&] { return delivered_total; };
  const std::string fetch_fields =
      options.long_poll ? ",\"wait_ms\":20000,\"max_messages\":1000" : "";
  if (!options.nchan) {
    work.publish = [&](std::uint64_t index) {
      std::string payload;
      auto [publisher, subject] = paced_message(options, index, payload);
      return std::pair{publisher, post("/api/publish", "{\"subject\":\"" + subject +
                                                           "\",\"data\":\"" + payload + "\"}")};
    };
    work.publish_ok = [](std::string_view response) { return is_200(response); };
    work.ask = [&](unsigned s) {
      return post("/api/fetch", "{\"subject\":\"" + subject_name(s) + "\",\"id\":\"" + ids[s] +
                                    "\"" + fetch_fields + "}");
    };
    work.on_answer = [&](unsigned s, std::string_view response) {
      if (!is_200(response)) fail("a fetch was answered " + std::string(response));
      ++fetches;
      const std::uint64_t before = delivered_total;
      for_each_item(body_of(response), "data", [&](std::string_view item) { take(s, item); });
      if (delivered_total == before) ++empty_fetches;
      return work.ask(s);
    };
  } else {
    work.publish = [&](std::uint64_t index) {
      std::string payload;
      auto [publisher, channel] = paced_message(options, index, payload);
      return std::pair{publisher, "POST /pub/" + channel +
                                      " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                                      "text/plain\r\nContent-Length: " +
                                      std::to_string(payload.size()) + "\r\n\r\n" + payload};
    };
    // 201: a subscriber was waiting; 202: the message is queued for later.
    work.publish_ok = [](std::string_view response) {
      return status_of(response) == "201" || status_of(response) == "202";
    };
    work.ask = [&](unsigned s) {
      std::string request = "GET /sub/" + subject_name(s) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
      if (!etag[s].empty()) {
        request +=
            "If-Modified-Since: " + last_modified[s] + "\r\nIf-None-Match: " + etag[s] + "\r\n";
      }
      return request + "\r\n";
    };
    work.on_answer = [&](unsigned s, std::string_view response) {
      ++fetches;
      // 304 and 408: no message this time (nchan's subscriber timeout);
      // ask again from the same place.
      if (status_of(response) == "304" || status_of(response) == "408") {
        ++empty_fetches;
        return work.ask(s);
      }
      if (!is_200(response)) fail("a long-poll was answered " + std::string(status_of(response)));
      const std::string_view head = response.substr(0, response.find("\r\n\r\n") + 2);
      last_modified[s] = header_value(head, "last-modified");
      etag[s] = header_value(head, "etag");
      if (last_modified[s].empty() || etag[s].empty()) {
        fail("a long-poll answer without Last-Modified or Etag: " + std::string(head));
      }
      const std::string_view type = header_value(head, "content-type");
      if (type.starts_with("multipart/mixed")) {
        for_each_part(type, body_of(response), [&](std::string_view part) { take(s, part); });
      } else {
        take(s, body_of(response));
      }
      return work.ask(s);
    };
  }

  const PacedRun run = run_paced_load(options, work, 0);
  std::printf(
      "RESULT mode=paced server=%s consumer=%s rate=%u seconds=%u subjects=%u published=%llu "
      "delivered=%llu fetches=%llu empty_fetches=%llu run_seconds=%.3f cpu_seconds=%.3f "
      "cpu_us_per_message=%.2f\n",
      options.nchan ? "nchan" : "gophermq", options.long_poll ? "long-poll" : "poll", options.rate,
      options.seconds, options.subjects, static_cast<unsigned long long>(run.published),
      static_cast<unsigned long long>(delivered_total), static_cast<unsigned long long>(fetches),
      static_cast<unsigned long long>(empty_fetches), run.seconds, run.cpu_seconds,
      micros_per(run.cpu_seconds, delivered_total));
  return 0;
}

// --- acks and group ---------------------------------------------------------------

int run_group(const Options& options) {
  const bool acks = options.mode == "acks";
  // A subject and group of this run's own, so that runs against one broker
  // do not meet (a group keeps the options its first member gave).
  const std::string tag = std::to_string(getpid());
  const std::string subject = (acks ? "acks." : "group.") + tag;
  std::string member_fields =
      "\"group\":\"" + std::string(acks ? "workers." : "members.") + tag + "\"";
  if (acks) {
    // max_ack_pending out of the way: every worker may hold a full batch.
    member_fields += ",\"ack_wait_ms\":" + std::to_string(options.ack_wait_ms) +
                     ",\"max_ack_pending\":" +
                     std::to_string(std::max(1000u, options.workers * options.max_messages * 2));
  }
  // Members join on a connection of their own, kept for those that rejoin
  // after a crash.
  const int join_fd = connect_to(options.server.port);
  std::vector<std::string> ids;
  for (unsigned w = 0; w < options.workers; ++w) {
    ids.push_back(subscribe(join_fd, subject, member_fields));
  }
  const double redelivered_before =
      metric_value(options.server.metrics_port, "gophermq_messages_redelivered_total");

  // Messages are numbered 1, 2, ... in publishing order; taken[n] counts
  // how often message n was taken (delivered in a group; delivered and then
  // acked by the worker that got it in ack mode): it must end at 1.
  std::vector<std::uint8_t> taken(std::size_t{options.rate} * options.seconds + 2, 0);
  std::uint64_t taken_total = 0, deliveries = 0, redeliveries_seen = 0, acked_total = 0;
  std::uint64_t fetches = 0, empty_fetches = 0, ack_requests = 0, crashes = 0;
  // Per worker: the batch it has fetched and is acking (message numbers and
  // seqs), and how many batches it has had.
  std::vector<std::vector<std::uint64_t>> batch(options.workers), batch_seqs(options.workers);
  std::vector<std::uint64_t> batches(options.workers, 0);
  std::vector<bool> acking(options.workers, false);

  auto take = [&](std::uint64_t number) {
    if (number == 0 || number >= taken.size()) fail("unknown message " + std::to_string(number));
    if (++taken[number] > 1) fail("message " + std::to_string(number) + " taken twice");
    ++taken_total;
  };
  auto member_body = [&](unsigned w) {
    return "{\"subject\":\"" + subject + "\",\"id\":\"" + ids[w] + "\"";
  };

  Workload work;
  work.consumers = options.workers;
  work.taken = [&] { return taken_total; };
  work.publish = [&](std::uint64_t index) {
    return std::pair{static_cast<unsigned>(index % options.publishers),
                     post("/api/publish", "{\"subject\":\"" + subject + "\",\"data\":\"" +
                                              std::to_string(index + 1) + "\"}")};
  };
  work.publish_ok = [](std::string_view response) { return is_200(response); };
  work.ask = [&](unsigned w) {
    return post("/api/fetch", member_body(w) + ",\"wait_ms\":20000,\"max_messages\":" +
                                  std::to_string(options.max_messages) + "}");
  };
  work.on_answer = [&](unsigned w, std::string_view response) {
    if (!is_200(response)) {
      fail(std::string(acking[w] ? "an ack" : "a fetch") + " was answered " +
           std::string(response));
    }
    const std::string_view body = body_of(response);
    if (acking[w]) {
      // The ack's answer: the batch is taken, exactly (an ack through N
      // settles only what this member holds, not other workers' messages).
      const std::uint64_t acked = number_field(body, "acked");
      if (acked != batch[w].size()) {
        fail("an ack of " + std::to_string(batch[w].size()) + " messages acked " +
             std::to_string(acked) + " (did ack_wait_ms pass before it?)");
      }
      acked_total += acked;
      for (std::uint64_t number : batch[w]) take(number);
      acking[w] = false;
      return work.ask(w);
    }
    ++fetches;
    batch[w].clear();
    batch_seqs[w].clear();
    for_each_item(body, "data",
                  [&](std::string_view item) { batch[w].push_back(to_number(item)); });
    for_each_item(body, "deliveries", [&](std::string_view item) {
      ++deliveries;
      if (to_number(item) > 1) ++redeliveries_seen;
    });
    if (batch[w].empty()) {
      ++empty_fetches;
      return work.ask(w);
    }
    if (!acks) {
      deliveries += batch[w].size();
      for (std::uint64_t number : batch[w]) take(number);
      return work.ask(w);
    }
    for_each_item(body, "seqs",
                  [&](std::string_view item) { batch_seqs[w].push_back(to_number(item)); });
    if (batch_seqs[w].size() != batch[w].size())
      fail("seqs do not match data: " + std::string(body));
    if (options.crash_every != 0 && ++batches[w] % options.crash_every == 0) {
      // A crash: the batch is dropped unacked, and the worker restarts as
      // a new member (the old id holds the batch until its deadline; an
      // ack through by the new member never settles it).
      ++crashes;
      ids[w] = subscribe(join_fd, subject, member_fields);
      return work.ask(w);
    }
    acking[w] = true;
    ++ack_requests;
    std::string ack = member_body(w);
    if (options.ack_through) {
      ack += ",\"through\":" + std::to_string(batch_seqs[w].back()) + "}";
    } else {
      ack += ",\"seqs\":[";
      for (std::size_t i = 0; i < batch_seqs[w].size(); ++i) {
        ack += (i ? "," : "") + std::to_string(batch_seqs[w][i]);
      }
      ack += "]}";
    }
    return post("/api/ack", ack);
  };

  const unsigned extra_wait_ms = options.crash_every ? options.ack_wait_ms : 0;
  const PacedRun run = run_paced_load(options, work, extra_wait_ms);
  if (acks && acked_total != run.published) {
    fail("the acks' \"acked\" counts add up to " + std::to_string(acked_total) + ", not " +
         std::to_string(run.published));
  }
  const double redelivered =
      metric_value(options.server.metrics_port, "gophermq_messages_redelivered_total") -
      redelivered_before;
  // What the group's queue still holds, as a member's info tells it.
  int fd = connect_to(options.server.port);
  const std::string info = gophermq::load::exchange(fd, post("/api/info", member_body(0) + "}"));
  close(fd);
  close(join_fd);
  if (!is_200(info)) fail("info was answered " + info);
  const std::uint64_t pending = number_field(body_of(info), "pending");
  const std::uint64_t inflight = number_field(body_of(info), "inflight");
  if (pending != 0 || inflight != 0) {
    fail("every message was taken, yet the group's queue holds " + std::to_string(pending) +
         " pending and " + std::to_string(inflight) + " in flight");
  }
  std::printf(
      "RESULT mode=%s ack=%s workers=%u max_messages=%u rate=%u seconds=%u published=%llu "
      "taken=%llu deliveries=%llu redeliveries_seen=%llu redelivered=%.0f crashes=%llu "
      "acked=%llu fetches=%llu empty_fetches=%llu acks=%llu run_seconds=%.3f cpu_seconds=%.3f "
      "cpu_us_per_message=%.2f\n",
      options.mode.c_str(), acks ? (options.ack_through ? "through" : "seqs") : "none",
      options.workers, options.max_messages, options.rate, options.seconds,
      static_cast<unsigned long long>(run.published), static_cast<unsigned long long>(taken_total),
      static_cast<unsigned long long>(deliveries),
      static_cast<unsigned long long>(redeliveries_seen), redelivered,
      static_cast<unsigned long long>(crashes), static_cast<unsigned long long>(acked_total),
      static_cast<unsigned long long>(fetches), static_cast<unsigned long long>(empty_fetches),
      static_cast<unsigned long long>(ack_requests), run.seconds, run.cpu_seconds,
      micros_per(run.cpu_seconds, taken_total));
  return 0;
}

// --- parked --------------------------------------------------------------------

int run_parked(const Options& options) {
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_cur < options.fetches + 64) {
    files.rlim_cur = std::min<rlim_t>(files.rlim_max, options.fetches + 64);
    setrlimit(RLIMIT_NOFILE, &files);
  }
  auto waiting_fetches = [&] {
    return metric_value(options.server.metrics_port, "gophermq_waiting_fetches");
  };
  auto broker_cpu = [&] { return server_cpu_seconds(options.server.pid); };
  std::vector<int> fds;
  std::vector<std::string> fetch_bodies;
  for (unsigned k = 0; k < options.fetches; ++k) {
    const int fd = connect_to(options.server.port);
    const std::string subject = "parked." + std::to_string(k);
    const std::string body =
        "{\"subject\":\"" + subject + "\",\"id\":\"" + subscribe(fd, subject) + "\"";
    if (!is_200(gophermq::load::exchange(fd, post("/api/fetch", body + "}"))))
      fail("a plain fetch failed");
    fds.push_back(fd);
    fetch_bodies.push_back(body + ",\"wait_ms\":" + std::to_string((options.seconds + 30) * 1000) +
                           "}");
  }
  // The broker's own idle cost first (its loop wakes a few times a second),
  // with the same connections open and nothing waiting.
  const double idle_before = broker_cpu();
  std::this_thread::sleep_for(std::chrono::seconds(options.seconds));
  const double idle_cpu = broker_cpu() - idle_before;
  const std::uint64_t resident_before = resident_bytes(options.server.pid);
  for (unsigned k = 0; k < options.fetches; ++k) {
    send_whole(fds[k], post("/api/fetch", fetch_bodies[k]));
  }
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (waiting_fetches() != options.fetches) {
    if (Clock::now() > deadline) fail("the fetches did not all wait within 60 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::uint64_t resident_after = resident_bytes(options.server.pid);
  const double cpu_before = broker_cpu();
  std::this_thread::sleep_for(std::chrono::seconds(options.seconds));
  const double cpu_after = broker_cpu();
  if (waiting_fetches() != options.fetches) fail("fetches stopped waiting before their time");
  for (int fd : fds) close(fd);
  const double per_fetch =
      (static_cast<double>(resident_after) - static_cast<double>(resident_before)) /
      options.fetches;
  std::printf(
      "RESULT mode=parked fetches=%u seconds=%u resident_before=%llu resident_after=%llu "
      "bytes_per_waiting_fetch=%.0f cpu_seconds_idle=%.3f cpu_seconds_while_waiting=%.3f\n",
      options.fetches, options.seconds, static_cast<unsigned long long>(resident_before),
      static_cast<unsigned long long>(resident_after), per_fetch, idle_cpu, cpu_after - cpu_before);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse_options(argc, argv);
  if (options.mode == "paced") return run_paced(options);
  if (options.mode == "parked") return run_parked(options);
  return run_group(options);
}
