// Listening sockets: one per shard on the same port (SO_REUSEPORT), so the
// kernel spreads incoming connections across shards.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gophermq/config/config.h"

namespace gophermq {

struct Listeners {
  std::vector<int> fds;
  std::uint16_t port = 0;  // the port bound (the kernel's pick when 0 was asked)
  std::string error;       // one line for the operator when opening failed
};

// Opens `count` sockets on `address`. An empty host listens on every
// interface, IPv6 and IPv4 both where the machine has IPv6.
Listeners open_listeners(const ListenAddress& address, unsigned count);

void close_listeners(Listeners& listeners);

}  // namespace gophermq
