#include "gophermq/api/router.h"

namespace gophermq {

Route route(llhttp_method_t method, std::string_view path) {
  constexpr std::string_view kAllowPost = "Allow: POST\r\n";
  constexpr std::string_view kAllowGet = "Allow: GET, HEAD\r\n";
  // An event stream has no head without its body: HEAD is not offered.
  constexpr std::string_view kAllowGetOnly = "Allow: GET\r\n";
  Endpoint endpoint;
  if (path == "/api/publish") {
    endpoint = Endpoint::publish;
  } else if (path == "/api/publish/async") {
    endpoint = Endpoint::publish_async;
  } else if (path == "/api/publish/batch") {
    endpoint = Endpoint::publish_batch;
  } else if (path == "/api/subscribe") {
    endpoint = Endpoint::subscribe;
  } else if (path == "/api/fetch") {
    endpoint = Endpoint::fetch;
  } else if (path == "/api/unsubscribe") {
    endpoint = Endpoint::unsubscribe;
  } else if (path == "/api/info") {
    endpoint = Endpoint::info;
  } else if (path == "/api/ack") {
    endpoint = Endpoint::ack;
  } else if (path == "/api/nack") {
    endpoint = Endpoint::nack;
  } else if (path == "/api/stream") {
    if (method != HTTP_GET) return {Endpoint::wrong_method, kAllowGetOnly};
    return {Endpoint::stream, {}};
  } else if (path == "/ready" || path == "/healthz") {
    if (method != HTTP_GET && method != HTTP_HEAD) return {Endpoint::wrong_method, kAllowGet};
    return {path == "/ready" ? Endpoint::ready : Endpoint::health, {}};
  } else {
    return {Endpoint::not_found, {}};
  }
  if (method != HTTP_POST) return {Endpoint::wrong_method, kAllowPost};
  return {endpoint, {}};
}

}  // namespace gophermq
