// The monitoring endpoint: GET /metrics on monitoring.port, served by a
// thread of its own so that a scrape (which reads every shard's counters
// and /proc) never runs on a shard's request path.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "gophermq/config/config.h"
#include "gophermq/io/listener.h"
#include "gophermq/metrics/metrics_exposition.h"

namespace gophermq {

class MonitoringServer {
 public:
  MonitoringServer() = default;
  MonitoringServer(const MonitoringServer&) = delete;
  MonitoringServer& operator=(const MonitoringServer&) = delete;
  ~MonitoringServer();

  // Binds the port now, so a port in use is a start-up error. Returns an
  // error line, empty on success.
  std::string listen(const ListenAddress& address);
  std::uint16_t port() const { return listeners_.port; }

  // Serves until stop(), on its own thread.
  void start(MetricsSources sources);
  void stop();

 private:
  void serve();

  Listeners listeners_;
  MetricsSources sources_;
  int stop_event_fd_ = -1;
  std::thread thread_;
};

}  // namespace gophermq
