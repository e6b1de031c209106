// The broker process: shards, their threads, start-up and shutdown.
#pragma once

#include "gophermq/config/config.h"

namespace gophermq {

// Runs until SIGINT or SIGTERM. Returns the process exit code; start-up
// failures are logged as one line and return non-zero.
int run_broker(const Config& config);

}  // namespace gophermq
