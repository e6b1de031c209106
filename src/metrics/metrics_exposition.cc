#include "gophermq/metrics/metrics_exposition.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "gophermq/clock.h"
#include "gophermq_version.h"

namespace gophermq {
namespace {

void append_number(std::string& out, std::uint64_t value) { out += std::to_string(value); }

void append_double(std::string& out, double value) {
  char text[32];
  int size = std::snprintf(text, sizeof text, "%.15g", value);
  out.append(text, static_cast<std::size_t>(size));
}

void append_family(std::string& out, std::string_view name, std::string_view type,
                   std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void append_sample(std::string& out, std::string_view name, std::string_view labels,
                   std::uint64_t value) {
  out.append(name);
  if (!labels.empty()) out.append("{").append(labels).append("}");
  out.append(" ");
  append_number(out, value);
  out.append("\n");
}

template <typename Read>
std::uint64_t sum_shards(const MetricsSources& sources, Read&& read) {
  std::uint64_t total = 0;
  for (const ShardMetrics* shard : sources.shards) total += read(*shard);
  return total;
}

template <typename Read>
std::uint64_t sum_stores(const MetricsSources& sources, Read&& read) {
  std::uint64_t total = 0;
  for (const SubjectStore::Gauges* store : sources.stores) total += read(*store);
  return total;
}

// How long the oldest message held on any shard has waited, in seconds; 0
// when none is held. Each shard keeps its oldest as it goes (PendingAges).
std::uint64_t oldest_pending_age_seconds(const MetricsSources& sources) {
  std::uint64_t oldest_s = UINT64_MAX;
  for (const SubjectStore::Gauges* store : sources.stores) {
    oldest_s = std::min(oldest_s, store->oldest_stored_s.read());
  }
  const std::uint64_t now_s = monotonic_ns() / 1'000'000'000;
  return oldest_s < now_s ? now_s - oldest_s : 0;  // UINT64_MAX: none held
}

std::string method_code_labels(std::size_t method, std::size_t code) {
  return "method=\"" + std::string(kMetricMethodNames[method]) + "\",code=\"" +
         std::to_string(kStatusCodes[code]) + "\"";
}

// One request family per (method, code) seen so far, summed over shards.
void append_request_counter(std::string& out, const MetricsSources& sources, std::string_view name,
                            std::string_view help) {
  append_family(out, name, "counter", help);
  for (std::size_t method = 0; method < kMetricMethodNames.size(); ++method) {
    for (std::size_t code = 0; code < kStatusCodes.size(); ++code) {
      std::uint64_t count = sum_shards(
          sources, [&](const ShardMetrics& m) { return m.requests[method][code].count.read(); });
      if (count != 0) append_sample(out, name, method_code_labels(method, code), count);
    }
  }
}

void append_latency_histogram(std::string& out, const MetricsSources& sources) {
  constexpr std::string_view kName = "gophermq_request_duration_seconds";
  append_family(out, kName, "histogram",
                "Time from a request's last byte read to its response written, by method and "
                "status code.");
  for (std::size_t method = 0; method < kMetricMethodNames.size(); ++method) {
    for (std::size_t code = 0; code < kStatusCodes.size(); ++code) {
      auto stats = [&](const ShardMetrics& m) -> const RequestStats& {
        return m.requests[method][code];
      };
      std::uint64_t count =
          sum_shards(sources, [&](const ShardMetrics& m) { return stats(m).count.read(); });
      if (count == 0) continue;
      const std::string labels = method_code_labels(method, code);
      // Buckets are kept per bucket and added up here; the total of a scrape
      // made while shards count may lag `count` by a request or two, so the
      // +Inf bucket is reported as the running total, never less than before.
      std::uint64_t cumulative = 0;
      for (std::size_t bucket = 0; bucket <= kLatencyBucketsNs.size(); ++bucket) {
        cumulative += sum_shards(
            sources, [&](const ShardMetrics& m) { return stats(m).buckets[bucket].read(); });
        out.append(kName).append("_bucket{").append(labels).append(",le=\"");
        if (bucket < kLatencyBucketsNs.size()) {
          char bound[24];
          int size = std::snprintf(bound, sizeof bound, "%g",
                                   static_cast<double>(kLatencyBucketsNs[bucket]) / 1e9);
          out.append(bound, static_cast<std::size_t>(size));
        } else {
          out.append("+Inf");
        }
        out.append("\"} ");
        append_number(out, cumulative);
        out.append("\n");
      }
      std::uint64_t duration_ns =
          sum_shards(sources, [&](const ShardMetrics& m) { return stats(m).duration_ns.read(); });
      out.append(kName).append("_sum{").append(labels).append("} ");
      append_double(out, static_cast<double>(duration_ns) / 1e9);
      out.append("\n");
      out.append(kName).append("_count{").append(labels).append("} ");
      append_number(out, cumulative);
      out.append("\n");
    }
  }
}

void append_counter(std::string& out, std::string_view name, std::string_view help,
                    std::uint64_t value) {
  append_family(out, name, "counter", help);
  append_sample(out, name, {}, value);
}

void append_gauge(std::string& out, std::string_view name, std::string_view help,
                  std::uint64_t value) {
  append_family(out, name, "gauge", help);
  append_sample(out, name, {}, value);
}

// The standard process_* metrics, from /proc (as the Go and Python clients do).
void append_process_metrics(std::string& out) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start at ") ".
  std::size_t after_name = stat.rfind(") ");
  if (after_name != std::string::npos) {
    std::istringstream fields(stat.substr(after_name + 2));
    std::string field;
    std::vector<std::string> values;  // values[0] is field 3 (state)
    while (fields >> field) values.push_back(field);
    if (values.size() > 21) {
      const double cpu_seconds = (std::stod(values[11]) + std::stod(values[12])) / ticks;
      const double start_ticks = std::stod(values[19]);
      const double virtual_bytes = std::stod(values[20]);
      const double resident_bytes = std::stod(values[21]) * page;
      double boot_time = 0;
      std::ifstream proc_stat("/proc/stat");
      for (std::string line; std::getline(proc_stat, line);) {
        if (line.rfind("btime ", 0) == 0) boot_time = std::stod(line.substr(6));
      }
      append_family(out, "process_cpu_seconds_total", "counter",
                    "Total user and system CPU time spent in seconds.");
      out.append("process_cpu_seconds_total ");
      append_double(out, cpu_seconds);
      out.append("\n");
      append_family(out, "process_resident_memory_bytes", "gauge",
                    "Resident memory size in bytes.");
      out.append("process_resident_memory_bytes ");
      append_double(out, resident_bytes);
      out.append("\n");
      append_family(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
      out.append("process_virtual_memory_bytes ");
      append_double(out, virtual_bytes);
      out.append("\n");
      append_family(out, "process_start_time_seconds", "gauge",
                    "Start time of the process since unix epoch in seconds.");
      out.append("process_start_time_seconds ");
      append_double(out, boot_time + start_ticks / ticks);
      out.append("\n");
    }
  }
  std::uint64_t open_fds = 0;
  if (DIR* fds = opendir("/proc/self/fd")) {
    while (dirent* entry = readdir(fds)) {
      if (entry->d_name[0] != '.') ++open_fds;
    }
    closedir(fds);
    --open_fds;  // the directory stream's own descriptor
  }
  append_gauge(out, "process_open_fds", "Number of open file descriptors.", open_fds);
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  append_gauge(out, "process_max_fds", "Maximum number of open file descriptors.", limit.rlim_cur);
}

}  // namespace

void render_metrics(const MetricsSources& sources, std::string& out) {
  append_request_counter(out, sources, "gophermq_client_request_rate",
                         "Requests answered, by method and status code. The original's name, "
                         "kept for its dashboards; gophermq_requests_total is the same count.");
  append_request_counter(out, sources, "gophermq_requests_total",
                         "Requests answered, by method and status code.");
  append_latency_histogram(out, sources);

  append_gauge(out, "gophermq_pending_messages",
               "Messages stored awaiting a fetch, one per subscriber queue holding them.",
               sources.budget->pending());
  append_gauge(out, "gophermq_max_pending_messages",
               "The broker-wide bound on gophermq_pending_messages (broker.max-pending-total): "
               "publishes past it get 429.",
               sources.budget->max_pending());
  append_gauge(out, "gophermq_pending_bytes",
               "Payload bytes held for fetches, each message once however many queues hold it.",
               sources.budget->pending_bytes());
  append_gauge(out, "gophermq_max_pending_bytes",
               "The configured broker.max-pending-bytes: publishes past it get 429.",
               sources.budget->max_pending_bytes());
  append_gauge(
      out, "gophermq_subjects", "Subjects with at least one subscriber.",
      sum_stores(sources, [](const SubjectStore::Gauges& g) { return g.subjects.read(); }));
  append_gauge(
      out, "gophermq_subscribers", "Subscribers.",
      sum_stores(sources, [](const SubjectStore::Gauges& g) { return g.subscribers.read(); }));
  append_gauge(out, "gophermq_waiting_fetches",
               "Fetches waiting for a message (wait_ms), on the shards that own their subjects.",
               sum_shards(sources, [](const ShardMetrics& m) { return m.waiting_fetches.read(); }));
  append_gauge(out, "gophermq_streams", "Server-Sent Event streams open (GET /api/stream).",
               sum_shards(sources, [](const ShardMetrics& m) { return m.streams.read(); }));
  append_gauge(
      out, "gophermq_open_connections", "Client connections open on the API port.",
      sum_shards(sources, [](const ShardMetrics& m) { return m.open_connections.read(); }));
  append_counter(
      out, "gophermq_connections_accepted_total", "Client connections accepted on the API port.",
      sum_shards(sources, [](const ShardMetrics& m) { return m.connections_accepted.read(); }));
  append_counter(
      out, "gophermq_connections_refused_total",
      "Connections refused (503) because broker.max-connections were open.",
      sum_shards(sources, [](const ShardMetrics& m) { return m.connections_refused.read(); }));
  append_counter(out, "gophermq_accept_errors_total",
                 "Failed accepts, such as running out of file descriptors.",
                 sum_shards(sources, [](const ShardMetrics& m) { return m.accept_errors.read(); }));
  append_family(out, "gophermq_connections_closed_total", "counter",
                "Connections the broker closed on its own, by reason.");
  for (std::size_t reason = 0; reason < kCloseReasonNames.size(); ++reason) {
    append_sample(out, "gophermq_connections_closed_total",
                  "reason=\"" + std::string(kCloseReasonNames[reason]) + "\"",
                  sum_shards(sources, [&](const ShardMetrics& m) {
                    return m.connections_closed[reason].read();
                  }));
  }
  append_counter(out, "gophermq_connection_holds_total",
                 "Times a connection's requests were left unread because it owed too many answers "
                 "(broker.max-unsent-bytes, broker.max-pipeline-depth) until the client read them.",
                 sum_shards(sources, [](const ShardMetrics& m) { return m.input_holds.read(); }));
  append_gauge(out, "gophermq_unsent_bytes",
               "Answer bytes owed to clients: not yet taken by the kernel, or on their way from "
               "another shard. Past broker.max-unsent-bytes-total, fetches carry less.",
               sum_shards(sources, [](const ShardMetrics& m) { return m.unsent_bytes.read(); }));
  append_counter(
      out, "gophermq_received_bytes_total", "Bytes received on the API port.",
      sum_shards(sources, [](const ShardMetrics& m) { return m.received_bytes.read(); }));
  append_counter(out, "gophermq_sent_bytes_total", "Bytes sent on the API port.",
                 sum_shards(sources, [](const ShardMetrics& m) { return m.sent_bytes.read(); }));
  append_counter(out, "gophermq_unsubscribes_total",
                 "Subscribers removed by POST /api/unsubscribe.",
                 sum_shards(sources, [](const ShardMetrics& m) { return m.unsubscribes.read(); }));
  append_counter(
      out, "gophermq_subscribers_expired_total",
      "Subscribers removed for being idle past their inactive threshold.",
      sum_shards(sources, [](const ShardMetrics& m) { return m.subscribers_expired.read(); }));
  append_family(out, "gophermq_messages_dropped_total", "counter",
                "Messages a subscriber with bounds of its own (max_pending, max_pending_bytes) "
                "dropped for itself alone, by its discard policy.");
  for (std::size_t reason = 0; reason < kDropReasonNames.size(); ++reason) {
    append_sample(out, "gophermq_messages_dropped_total",
                  "reason=\"" + std::string(kDropReasonNames[reason]) + "\"",
                  sum_stores(sources, [&](const SubjectStore::Gauges& g) {
                    return g.messages_dropped[reason].read();
                  }));
  }
  append_gauge(out, "gophermq_oldest_pending_age_seconds",
               "Seconds the oldest message still held by any subscriber or group has waited (to "
               "the second); 0 when none is held.",
               oldest_pending_age_seconds(sources));
  append_gauge(
      out, "gophermq_inflight_messages",
      "Messages of ack-mode queues handed out and not yet acked, nacked or past their "
      "ack deadline.",
      sum_stores(sources, [](const SubjectStore::Gauges& g) { return g.inflight.read(); }));
  append_counter(
      out, "gophermq_messages_redelivered_total",
      "Messages of ack-mode queues handed out again after their ack deadline passed or a nack.",
      sum_stores(sources, [](const SubjectStore::Gauges& g) { return g.redelivered.read(); }));
  append_counter(
      out, "gophermq_messages_dead_lettered_total",
      "Messages that reached max_deliver without an ack: published to their dead-letter subject, "
      "or dropped.",
      sum_stores(sources, [](const SubjectStore::Gauges& g) { return g.dead_lettered.read(); }));
  append_counter(
      out, "gophermq_messages_published_total",
      "Publishes stored (sync and async), counted once however many subscribers.",
      sum_shards(sources, [](const ShardMetrics& m) { return m.messages_published.read(); }));
  append_counter(
      out, "gophermq_messages_delivered_total", "Messages returned by fetches.",
      sum_shards(sources, [](const ShardMetrics& m) { return m.messages_delivered.read(); }));
  append_counter(
      out, "gophermq_empty_fetches_total",
      "Fetches answered with no message (polling with nothing pending; a long-poll that waited "
      "in vain).",
      sum_shards(sources, [](const ShardMetrics& m) { return m.empty_fetches.read(); }));

  append_family(out, "gophermq_messages_refused_total", "counter",
                "Publishes (sync and async) not stored, by reason.");
  for (std::size_t reason = 0; reason < kRefusalReasonNames.size(); ++reason) {
    append_sample(out, "gophermq_messages_refused_total",
                  "reason=\"" + std::string(kRefusalReasonNames[reason]) + "\"",
                  sum_shards(sources, [&](const ShardMetrics& m) {
                    return m.messages_refused[reason].read();
                  }));
  }
  append_family(out, "gophermq_async_publish_failures_total", "counter",
                "Async publishes answered 200 and then not stored, by reason.");
  for (std::size_t reason = 0; reason < kAsyncFailureReasons; ++reason) {
    append_sample(out, "gophermq_async_publish_failures_total",
                  "reason=\"" + std::string(kRefusalReasonNames[reason]) + "\"",
                  sum_shards(sources, [&](const ShardMetrics& m) {
                    return m.async_publish_failures[reason].read();
                  }));
  }
  append_counter(
      out, "gophermq_cross_shard_calls_total", "Requests sent to the shard owning their subject.",
      sum_shards(sources, [](const ShardMetrics& m) { return m.cross_shard_calls.read(); }));
  append_counter(
      out, "gophermq_cross_shard_queue_full_total",
      "Times a cross-shard call waited for room in a full queue (back-pressure).",
      sum_shards(sources, [](const ShardMetrics& m) { return m.cross_shard_queue_full.read(); }));
  append_counter(
      out, "gophermq_receive_pauses_total",
      "Times a shard stopped receiving from its clients because its cross-shard calls backed up.",
      sum_shards(sources, [](const ShardMetrics& m) { return m.receive_pauses.read(); }));
  append_counter(
      out, "gophermq_wake_fallbacks_total",
      "Wake-ups of another shard sent through its eventfd because MSG_RING failed.",
      sum_shards(sources, [](const ShardMetrics& m) { return m.wake_fallbacks.read(); }));
  append_counter(
      out, "gophermq_io_uring_lost_completions_total",
      "Completions the kernel dropped (its overflow list was out of memory).",
      sum_shards(sources, [](const ShardMetrics& m) { return m.ring_lost_completions.read(); }));
  append_counter(
      out, "gophermq_io_uring_refused_submits_total",
      "Submissions the kernel refused for a while (completion queue full or no memory).",
      sum_shards(sources, [](const ShardMetrics& m) { return m.ring_refused_submits.read(); }));

  append_family(out, "gophermq_shard_requests_total", "counter",
                "Requests answered by each shard (read on it), showing the spread.");
  for (std::size_t shard = 0; shard < sources.shards.size(); ++shard) {
    std::uint64_t total = 0;
    for (const auto& by_code : sources.shards[shard]->requests) {
      for (const RequestStats& stats : by_code) total += stats.count.read();
    }
    append_sample(out, "gophermq_shard_requests_total", "shard=\"" + std::to_string(shard) + "\"",
                  total);
  }
  append_family(out, "gophermq_build_info", "gauge", "Always 1, labelled with the version.");
  append_sample(out, "gophermq_build_info", "version=\"" GOPHERMQ_VERSION "\"", 1);

  append_process_metrics(out);
}

}  // namespace gophermq
