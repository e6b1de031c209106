// Routing: which endpoint a method and path name.
#pragma once

#include <llhttp.h>

#include <cstdint>
#include <string_view>

namespace gophermq {

// Which operation a request asks for: the one name for it from routing to
// the store, the cross-shard calls and the metrics' `method` label.
enum class Endpoint : std::uint8_t {
  publish,        // POST /api/publish
  publish_async,  // POST /api/publish/async
  publish_batch,  // POST /api/publish/batch
  subscribe,      // POST /api/subscribe
  fetch,          // POST /api/fetch
  unsubscribe,    // POST /api/unsubscribe
  info,           // POST /api/info
  ack,            // POST /api/ack
  nack,           // POST /api/nack
  stream,         // GET /api/stream: Server-Sent Events
  ready,          // GET /ready
  health,         // GET /healthz
  not_found,      // 404 {"message":"Not Found"}
  wrong_method,   // 405 {"message":"Method Not Allowed"}
  unrouted,       // never routed: the HTTP layer refused the stream (400, 408, 413, 431, 503)
};

struct Route {
  Endpoint endpoint;
  std::string_view allow;  // for 405: the Allow header line
};

Route route(llhttp_method_t method, std::string_view path);

}  // namespace gophermq
