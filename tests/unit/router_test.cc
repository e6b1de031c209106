// route(): which endpoint a method and path name, and the Allow line a 405
// carries.
#include <gtest/gtest.h>
#include <llhttp.h>

#include <string_view>

#include "gophermq/api/router.h"

namespace gophermq {
namespace {

using namespace std::string_view_literals;

constexpr std::string_view kAllowPost = "Allow: POST\r\n";
constexpr std::string_view kAllowGetHead = "Allow: GET, HEAD\r\n";

TEST(Router, RoutesTheFourPostEndpoints) {
  EXPECT_EQ(route(HTTP_POST, "/api/publish").endpoint, Endpoint::publish);
  EXPECT_EQ(route(HTTP_POST, "/api/publish/async").endpoint, Endpoint::publish_async);
  EXPECT_EQ(route(HTTP_POST, "/api/publish/batch").endpoint, Endpoint::publish_batch);
  EXPECT_EQ(route(HTTP_POST, "/api/subscribe").endpoint, Endpoint::subscribe);
  EXPECT_EQ(route(HTTP_POST, "/api/fetch").endpoint, Endpoint::fetch);
}

TEST(Router, RoutesReadyForGetAndHead) {
  EXPECT_EQ(route(HTTP_GET, "/ready").endpoint, Endpoint::ready);
  EXPECT_EQ(route(HTTP_HEAD, "/ready").endpoint, Endpoint::ready);
}

TEST(Router, ASuccessfulRouteHasNoAllowLine) {
  EXPECT_TRUE(route(HTTP_POST, "/api/publish").allow.empty());
  EXPECT_TRUE(route(HTTP_GET, "/ready").allow.empty());
}

TEST(Router, OtherMethodsOnTheApiPathsAreWrongMethodAllowingPost) {
  for (std::string_view path : {"/api/publish"sv, "/api/publish/async"sv, "/api/publish/batch"sv,
                                "/api/subscribe"sv, "/api/fetch"sv}) {
    for (llhttp_method_t method :
         {HTTP_GET, HTTP_HEAD, HTTP_PUT, HTTP_DELETE, HTTP_PATCH, HTTP_OPTIONS, HTTP_CONNECT}) {
      const Route result = route(method, path);
      EXPECT_EQ(result.endpoint, Endpoint::wrong_method)
          << llhttp_method_name(method) << " " << path;
      EXPECT_EQ(result.allow, kAllowPost) << llhttp_method_name(method) << " " << path;
    }
  }
}

TEST(Router, OtherMethodsOnReadyAreWrongMethodAllowingGetAndHead) {
  for (llhttp_method_t method : {HTTP_POST, HTTP_PUT, HTTP_DELETE, HTTP_PATCH, HTTP_OPTIONS}) {
    const Route result = route(method, "/ready");
    EXPECT_EQ(result.endpoint, Endpoint::wrong_method) << llhttp_method_name(method);
    EXPECT_EQ(result.allow, kAllowGetHead) << llhttp_method_name(method);
  }
}

TEST(Router, UnknownPathsAreNotFoundWhateverTheMethod) {
  for (std::string_view path : {
           ""sv,
           "/"sv,
           "/api"sv,
           "/api/"sv,
           "/api/publishx"sv,
           "/api/publish/sync"sv,
           "/api/publish/async/x"sv,
           "/API/publish"sv,
           "/Ready"sv,
           "/readyz"sv,
           "/metrics"sv,
           "//api/publish"sv,
           "api/publish"sv,
           "/api//publish"sv,
           "/api/publish\0"sv,
           "example.com:443"sv,
       }) {
    for (llhttp_method_t method : {HTTP_GET, HTTP_POST, HTTP_HEAD, HTTP_DELETE}) {
      const Route result = route(method, path);
      EXPECT_EQ(result.endpoint, Endpoint::not_found) << llhttp_method_name(method) << " " << path;
      EXPECT_TRUE(result.allow.empty());
    }
  }
}

TEST(Router, WithCorsOptionsOfAnApiEndpointIsAPreflight) {
  for (std::string_view path :
       {"/api/publish"sv, "/api/publish/async"sv, "/api/subscribe"sv, "/api/fetch"sv,
        "/api/unsubscribe"sv, "/api/info"sv, "/api/ack"sv, "/api/nack"sv}) {
    const Route result = route(HTTP_OPTIONS, path, true);
    EXPECT_EQ(result.endpoint, Endpoint::preflight) << path;
    EXPECT_TRUE(result.allow.empty()) << path;
    // The other methods route as without CORS.
    EXPECT_EQ(route(HTTP_GET, path, true).endpoint, Endpoint::wrong_method) << path;
    EXPECT_NE(route(HTTP_POST, path, true).endpoint, Endpoint::wrong_method) << path;
  }
  // Only the API's own endpoints: /ready is a GET a page may send as it is,
  // and an unknown path stays unknown.
  EXPECT_EQ(route(HTTP_OPTIONS, "/ready", true).endpoint, Endpoint::wrong_method);
  EXPECT_EQ(route(HTTP_OPTIONS, "/api/unknown", true).endpoint, Endpoint::not_found);
  EXPECT_EQ(route(HTTP_OPTIONS, "/api/publish", false).endpoint, Endpoint::wrong_method);
}

TEST(Router, TrailingSlashesAreNotFound) {
  // Echo, which served the original, does not redirect or strip them.
  for (std::string_view path : {"/api/publish/"sv, "/api/publish/async/"sv, "/api/subscribe/"sv,
                                "/api/fetch/"sv, "/ready/"sv}) {
    EXPECT_EQ(route(HTTP_POST, path).endpoint, Endpoint::not_found) << path;
    EXPECT_EQ(route(HTTP_GET, path).endpoint, Endpoint::not_found) << path;
  }
}

}  // namespace
}  // namespace gophermq
