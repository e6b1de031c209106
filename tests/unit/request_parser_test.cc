// RequestParser: HTTP/1.1 requests off a byte stream, however the stream is
// cut into receive buffers, with a limit and an answer for every input.
#include <gtest/gtest.h>
#include <llhttp.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "gophermq/http/request_parser.h"

namespace gophermq {

// Readable statuses in failure messages (internal linkage: no clash with
// other test files).
[[maybe_unused]] static void PrintTo(ParseStatus status, std::ostream* out) {
  switch (status) {
    case ParseStatus::ok:
      *out << "ok";
      return;
    case ParseStatus::stopped:
      *out << "stopped";
      return;
    case ParseStatus::held:
      *out << "held";
      return;
    case ParseStatus::malformed:
      *out << "malformed";
      return;
    case ParseStatus::headers_too_large:
      *out << "headers_too_large";
      return;
    case ParseStatus::body_too_large:
      *out << "body_too_large";
      return;
  }
  *out << "ParseStatus(" << static_cast<int>(status) << ")";
}

namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

constexpr std::size_t kPadding = 64;  // what the receive buffers keep past their data

// A request as the sink saw it, copied out (the views die with the feed).
struct Recorded {
  llhttp_method_t method;
  std::string path;
  std::string body;
  bool keep_alive;
  bool http_1_0;
  std::string origin = {};

  bool operator==(const Recorded&) const = default;
};

void PrintTo(const Recorded& r, std::ostream* out) {
  *out << llhttp_method_name(r.method) << " \"" << r.path << "\" body(" << r.body.size() << ")=\""
       << r.body.substr(0, 80) << "\" keep_alive=" << r.keep_alive << " http_1_0=" << r.http_1_0
       << " origin=\"" << r.origin << "\"";
}

// Records what the parser hands over, and checks each body's padding promise.
class RecordingSink final : public RequestSink {
 public:
  void on_request(const HttpRequest& request) override {
    EXPECT_NE(request.body, nullptr);
    EXPECT_GE(request.body_padded_capacity, request.body_size + kPadding)
        << "simdjson may read 64 bytes past the body";
    // Touch every byte the parser says is readable: ASan fails the test if
    // the capacity overstates the buffer.
    std::vector<char> scratch(request.body_padded_capacity);
    if (!scratch.empty()) std::memcpy(scratch.data(), request.body, scratch.size());
    requests.push_back({request.method, std::string(request.path),
                        std::string(request.body, request.body_size), request.keep_alive,
                        request.http_1_0, std::string(request.origin)});
    continues_before_request.push_back(continues);
  }
  void on_continue_expected() override { ++continues; }

  std::vector<Recorded> requests;
  int continues = 0;
  std::vector<int> continues_before_request;
};

constexpr RequestLimits kRoomyLimits{16 << 10, 1 << 20};

// Feeds `bytes` from a fresh heap buffer that is freed as soon as feed()
// returns: anything the parser kept a pointer to is then a use-after-free
// that ASan reports.
ParseStatus feed(RequestParser& parser, std::string_view bytes) {
  auto buffer = std::make_unique<char[]>(bytes.size() + kPadding);
  std::memcpy(buffer.get(), bytes.data(), bytes.size());
  return parser.feed(buffer.get(), bytes.size(), bytes.size() + kPadding);
}

// Feeds `bytes` in pieces of `piece` bytes; stops at the first status that
// is not ok.
ParseStatus feed_in_pieces(RequestParser& parser, std::string_view bytes, std::size_t piece) {
  ParseStatus status = ParseStatus::ok;
  for (std::size_t at = 0; at < bytes.size() && status == ParseStatus::ok; at += piece) {
    status = feed(parser, bytes.substr(at, piece));
  }
  return status;
}

struct Outcome {
  ParseStatus status;
  std::vector<Recorded> requests;
  int continues;

  bool operator==(const Outcome&) const = default;
};

void PrintTo(const Outcome& o, std::ostream* out) {
  *out << ::testing::PrintToString(o.status) << ", " << o.requests.size() << " request(s)";
  for (const Recorded& r : o.requests) *out << "\n  " << ::testing::PrintToString(r);
  *out << "\n  continues=" << o.continues;
}

Outcome parse_in_pieces(std::string_view bytes, std::size_t piece,
                        RequestLimits limits = kRoomyLimits) {
  RecordingSink sink;
  RequestParser parser(limits, sink);
  ParseStatus status = feed_in_pieces(parser, bytes, piece);
  return {status, sink.requests, sink.continues};
}

Outcome parse(std::string_view bytes, RequestLimits limits = kRoomyLimits) {
  return parse_in_pieces(bytes, bytes.empty() ? 1 : bytes.size(), limits);
}

// `bytes` fed in two pieces, cut at `cut`.
Outcome parse_cut_at(std::string_view bytes, std::size_t cut, RequestLimits limits = kRoomyLimits) {
  RecordingSink sink;
  RequestParser parser(limits, sink);
  ParseStatus status = feed(parser, bytes.substr(0, cut));
  if (status == ParseStatus::ok) status = feed(parser, bytes.substr(cut));
  return {status, sink.requests, sink.continues};
}

// The outcome of `bytes` fed whole, after checking it is the same fed a byte
// at a time and cut in two at every place: no check may depend on where
// receive buffers end.
Outcome parse_however_cut(std::string_view bytes, RequestLimits limits = kRoomyLimits) {
  const Outcome whole = parse(bytes, limits);
  EXPECT_EQ(parse_in_pieces(bytes, 1, limits), whole) << "fed a byte at a time: " << bytes;
  for (std::size_t cut = 1; cut < bytes.size(); ++cut) {
    const Outcome split = parse_cut_at(bytes, cut, limits);
    if (split != whole) {
      ADD_FAILURE() << "cut at " << cut << ": " << ::testing::PrintToString(split)
                    << "\nwhole: " << ::testing::PrintToString(whole) << "\n"
                    << bytes;
      break;
    }
  }
  return whole;
}

// Each of `requests` is refused however it is cut, and nothing of it is
// handed over.
void expect_refused(std::initializer_list<std::string_view> requests) {
  for (std::string_view request : requests) {
    SCOPED_TRACE(::testing::PrintToString(std::string(request)));
    const Outcome outcome = parse_however_cut(request);
    EXPECT_EQ(outcome.status, ParseStatus::malformed);
    EXPECT_TRUE(outcome.requests.empty());
    EXPECT_EQ(outcome.continues, 0);
  }
}

std::string post(std::string_view path, std::string_view body, std::string_view headers = "") {
  return "POST "s + std::string(path) + " HTTP/1.1\r\nHost: localhost\r\n" + std::string(headers) +
         "Content-Length: "s + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

Recorded posted(std::string_view path, std::string_view body, bool keep_alive = true) {
  return {HTTP_POST, std::string(path), std::string(body), keep_alive, false};
}

// --- Basics -------------------------------------------------------------------

TEST(RequestParser, ParsesAPostWithAContentLengthBody) {
  RecordingSink sink;
  RequestParser parser(kRoomyLimits, sink);
  EXPECT_FALSE(parser.in_request());
  EXPECT_EQ(feed(parser,
                 "POST /api/publish HTTP/1.1\r\nHost: localhost:8082\r\n"
                 "Content-Type: application/json\r\nContent-Length: 26\r\n\r\n"
                 "{\"subject\":\"a\",\"data\":\"x\"}"),
            ParseStatus::ok);
  ASSERT_EQ(sink.requests.size(), 1u);
  EXPECT_EQ(sink.requests[0], posted("/api/publish", "{\"subject\":\"a\",\"data\":\"x\"}"));
  EXPECT_FALSE(parser.in_request());
  EXPECT_EQ(sink.continues, 0);
}

TEST(RequestParser, ParsesAGetWithoutBody) {
  Outcome outcome = parse("GET /ready HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(outcome.status, ParseStatus::ok);
  ASSERT_EQ(outcome.requests.size(), 1u);
  EXPECT_EQ(outcome.requests[0], (Recorded{HTTP_GET, "/ready", "", true, false}));
}

TEST(RequestParser, PathLeavesOutTheQueryStringAndFragment) {
  Outcome outcome = parse(post("/api/fetch?subject=a&x=%20?y", "{}") +
                          "GET /ready#top HTTP/1.1\r\nHost: x\r\n\r\n"s +
                          "GET /a?b#c HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(outcome.requests.size(), 3u);
  EXPECT_EQ(outcome.requests[0].path, "/api/fetch");
  EXPECT_EQ(outcome.requests[1].path, "/ready");
  EXPECT_EQ(outcome.requests[2].path, "/a");
}

TEST(RequestParser, ThePathEndsAtTheFirstQueryOrFragmentWhereverItFalls) {
  // '?' or '#' at every place in paths of every length up to 24 bytes, in
  // a padded buffer and in one of exactly the bytes fed (ASan sees a read
  // past it), whole and in pieces.
  auto feed_unpadded = [](RequestParser& parser, std::string_view bytes) {
    auto buffer = std::make_unique<char[]>(bytes.size());
    std::memcpy(buffer.get(), bytes.data(), bytes.size());
    return parser.feed(buffer.get(), bytes.size(), bytes.size());
  };
  for (std::size_t length = 1; length <= 24; ++length) {
    for (std::size_t mark = 1; mark <= length; ++mark) {
      for (const char separator : {'?', '#', 'x'}) {
        std::string target(length, 'p');
        target[0] = '/';
        if (mark < length) target[mark] = separator;
        const std::string expected = separator == 'x' ? target : target.substr(0, mark);
        std::string request = "GET ";  // (appended: GCC 12 warns about "GET " + ...)
        request += target;
        request += " HTTP/1.1\r\nHost: x\r\n\r\n";
        SCOPED_TRACE(request);
        for (const std::size_t piece : {request.size(), std::size_t{1}, std::size_t{5}}) {
          for (const bool padded : {true, false}) {
            RecordingSink sink;
            RequestParser parser(kRoomyLimits, sink);
            ParseStatus status = ParseStatus::ok;
            for (std::size_t at = 0; at < request.size() && status == ParseStatus::ok;
                 at += piece) {
              const std::string_view bytes = std::string_view(request).substr(at, piece);
              status = padded ? feed(parser, bytes) : feed_unpadded(parser, bytes);
            }
            ASSERT_EQ(status, ParseStatus::ok) << piece << (padded ? " padded" : "");
            ASSERT_EQ(sink.requests.size(), 1u);
            EXPECT_EQ(sink.requests[0].path, expected) << piece << (padded ? " padded" : "");
          }
        }
      }
    }
  }
}

TEST(RequestParser, QueryStringSplitAcrossFeedsIsStillDropped) {
  Outcome outcome =
      parse_in_pieces("GET /ready?long=query&more=stuff HTTP/1.1\r\nHost: x\r\n\r\n", 3);
  ASSERT_EQ(outcome.requests.size(), 1u);
  EXPECT_EQ(outcome.requests[0].path, "/ready");
}

TEST(RequestParser, APathLongerThanAnyRouteIsEmpty) {
  // Paths are kept in a fixed buffer (256 bytes, room for an absolute-form
  // target); one that does not fit is no route of ours, so it is handed over
  // empty (and routed to 404).
  const std::string long_path = "/api/"s + std::string(300, 'x');
  Outcome outcome = parse("GET "s + long_path + " HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(outcome.requests.size(), 1u);
  EXPECT_EQ(outcome.requests[0].path, "");
  // 256 characters still fit.
  std::string fits(256, 'y');
  fits[0] = '/';
  outcome = parse("GET "s + fits + " HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(outcome.requests.size(), 1u);
  EXPECT_EQ(outcome.requests[0].path, fits);
}

TEST(RequestParser, InRequestWhileARequestIsIncomplete) {
  RecordingSink sink;
  RequestParser parser(kRoomyLimits, sink);
  const std::string request = post("/api/publish", "0123456789");
  ASSERT_EQ(feed(parser, std::string_view(request).substr(0, 20)), ParseStatus::ok);
  EXPECT_TRUE(parser.in_request());
  ASSERT_EQ(feed(parser, std::string_view(request).substr(20, request.size() - 25)),
            ParseStatus::ok);
  EXPECT_TRUE(parser.in_request());  // body not complete
  EXPECT_TRUE(sink.requests.empty());
  ASSERT_EQ(feed(parser, std::string_view(request).substr(request.size() - 5)), ParseStatus::ok);
  EXPECT_FALSE(parser.in_request());
  ASSERT_EQ(sink.requests.size(), 1u);
  EXPECT_EQ(sink.requests[0].body, "0123456789");
}

// --- Keep-alive ----------------------------------------------------------------

TEST(RequestParser, Http11KeepsAliveByDefault) {
  Outcome outcome = parse(post("/api/publish", "{}"));
  EXPECT_EQ(outcome.status, ParseStatus::ok);
  ASSERT_EQ(outcome.requests.size(), 1u);
  EXPECT_TRUE(outcome.requests[0].keep_alive);
  EXPECT_FALSE(outcome.requests[0].http_1_0);
}

TEST(RequestParser, ConnectionCloseStopsTheStream) {
  // Nothing after a request without keep-alive is read: the second request
  // in the same buffer is never handed over.
  Outcome outcome = parse(post("/api/publish", "{}", "Connection: close\r\n") +
                          post("/api/publish", "{\"late\":1}"));
  EXPECT_EQ(outcome.status, ParseStatus::stopped);
  ASSERT_EQ(outcome.requests.size(), 1u);
  EXPECT_EQ(outcome.requests[0], posted("/api/publish", "{}", /*keep_alive=*/false));
}

TEST(RequestParser, ConnectionCloseIsCaseInsensitive) {
  Outcome outcome = parse("GET /ready HTTP/1.1\r\nHost: x\r\nconnection: CLOSE\r\n\r\n");
  EXPECT_EQ(outcome.status, ParseStatus::stopped);
  ASSERT_EQ(outcome.requests.size(), 1u);
  EXPECT_FALSE(outcome.requests[0].keep_alive);
}

TEST(RequestParser, Http10ClosesUnlessAskedToKeepAlive) {
  Outcome closed = parse("POST /api/publish HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}");
  EXPECT_EQ(closed.status, ParseStatus::stopped);
  ASSERT_EQ(closed.requests.size(), 1u);
  EXPECT_EQ(closed.requests[0], (Recorded{HTTP_POST, "/api/publish", "{}", false, true}));

  Outcome kept = parse(
      "POST /api/publish HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}"
      "GET /ready HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
  EXPECT_EQ(kept.status, ParseStatus::ok);
  ASSERT_EQ(kept.requests.size(), 2u);
  EXPECT_EQ(kept.requests[0], (Recorded{HTTP_POST, "/api/publish", "{}", true, true}));
  EXPECT_EQ(kept.requests[1], (Recorded{HTTP_GET, "/ready", "", true, true}));
}

// --- Pipelining and splitting --------------------------------------------------

// Three requests of different shapes, back to back.
const std::string kPipeline =
    post("/api/subscribe", "{\"subject\":\"a\"}") + "GET /ready HTTP/1.1\r\nHost: x\r\n\r\n" +
    "POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    "4\r\n{\"su\r\n10\r\nbject\":\"a\",\"data\r\n5\r\n\":\"x\"\r\n1\r\n}\r\n0\r\n\r\n"s +
    post("/api/fetch", "{\"subject\":\"a\",\"id\":\"x\"}");

const std::vector<Recorded> kPipelineRequests = {
    posted("/api/subscribe", "{\"subject\":\"a\"}"),
    {HTTP_GET, "/ready", "", true, false},
    posted("/api/publish", "{\"subject\":\"a\",\"data\":\"x\"}"),
    posted("/api/fetch", "{\"subject\":\"a\",\"id\":\"x\"}"),
};

TEST(RequestParser, ParsesPipelinedRequestsInOneFeed) {
  Outcome outcome = parse(kPipeline);
  EXPECT_EQ(outcome.status, ParseStatus::ok);
  EXPECT_EQ(outcome.requests, kPipelineRequests);
}

TEST(RequestParser, ParsesRequestsFedOneByteAtATime) {
  // Every feed is a separate heap buffer freed right after the call, so the
  // parser must copy whatever it keeps (path, header state, partial body).
  Outcome outcome = parse_in_pieces(kPipeline, 1);
  EXPECT_EQ(outcome.status, ParseStatus::ok);
  EXPECT_EQ(outcome.requests, kPipelineRequests);
}

TEST(RequestParser, ParsesTheSameWhereverTheStreamIsCut) {
  // Two feeds, cut at every possible place.
  for (std::size_t cut = 0; cut <= kPipeline.size(); ++cut) {
    RecordingSink sink;
    RequestParser parser(kRoomyLimits, sink);
    ASSERT_EQ(feed(parser, std::string_view(kPipeline).substr(0, cut)), ParseStatus::ok) << cut;
    ASSERT_EQ(feed(parser, std::string_view(kPipeline).substr(cut)), ParseStatus::ok) << cut;
    ASSERT_EQ(sink.requests, kPipelineRequests) << "cut at " << cut;
  }
}

// Holds after every request, as a connection that owes too much does.
class HoldingSink final : public RequestSink {
 public:
  explicit HoldingSink(RequestParser*& parser) : parser_(parser) {}
  void on_request(const HttpRequest& request) override {
    recorder.on_request(request);
    parser_->hold();
  }
  void on_continue_expected() override { recorder.on_continue_expected(); }

  RecordingSink recorder;

 private:
  RequestParser*& parser_;
};

TEST(RequestParser, AHoldStopsRightAfterTheRequestAndResumeGoesOnFromThere) {
  for (std::size_t cut = 0; cut <= kPipeline.size(); ++cut) {
    RequestParser* parser_of_sink = nullptr;
    HoldingSink sink(parser_of_sink);
    RequestParser parser(kRoomyLimits, sink);
    parser_of_sink = &parser;
    // Received and not yet read: what a held connection keeps, fed again
    // after resume().
    std::string unread;
    std::size_t holds = 0;
    const std::string_view pipeline(kPipeline);
    for (std::string_view piece : {pipeline.substr(0, cut), pipeline.substr(cut)}) {
      unread += piece;
      for (;;) {
        auto buffer = std::make_unique<char[]>(unread.size() + kPadding);
        std::memcpy(buffer.get(), unread.data(), unread.size());
        const ParseStatus status =
            parser.feed(buffer.get(), unread.size(), unread.size() + kPadding);
        if (status == ParseStatus::ok) {
          unread.clear();
          break;
        }
        ASSERT_EQ(status, ParseStatus::held) << "cut at " << cut;
        ++holds;
        ASSERT_EQ(sink.recorder.requests.size(), holds) << "one request per hold; cut at " << cut;
        const std::size_t read = static_cast<std::size_t>(parser.held_at() - buffer.get());
        ASSERT_LE(read, unread.size());
        unread.erase(0, read);
        parser.resume();
      }
    }
    EXPECT_EQ(holds, kPipelineRequests.size());
    ASSERT_EQ(sink.recorder.requests, kPipelineRequests) << "cut at " << cut;
  }
}

TEST(RequestParser, AHeldRequestWithoutKeepAliveStillEndsTheStream) {
  RequestParser* parser_of_sink = nullptr;
  HoldingSink sink(parser_of_sink);
  RequestParser parser(kRoomyLimits, sink);
  parser_of_sink = &parser;
  EXPECT_EQ(feed(parser,
                 "GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                 "GET /ready HTTP/1.1\r\nHost: x\r\n\r\n"),
            ParseStatus::stopped);
  EXPECT_EQ(sink.recorder.requests.size(), 1u);
}

TEST(RequestParser, ParsesTheSameInPiecesOfEverySmallSize) {
  for (std::size_t piece = 2; piece <= 64; ++piece) {
    Outcome outcome = parse_in_pieces(kPipeline, piece);
    EXPECT_EQ(outcome.status, ParseStatus::ok) << piece;
    EXPECT_EQ(outcome.requests, kPipelineRequests) << "pieces of " << piece;
  }
}

TEST(RequestParser, ReassemblesALargeBodyFedInReceiveBufferSizes) {
  std::string body(300000, 'b');
  for (std::size_t i = 0; i < body.size(); i += 101) body[i] = static_cast<char>('a' + i % 26);
  const std::string stream = post("/api/publish", body) + post("/api/publish", "after");
  for (std::size_t piece : {4096u, 16384u, 65536u, 1000u}) {
    Outcome outcome = parse_in_pieces(stream, piece);
    EXPECT_EQ(outcome.status, ParseStatus::ok);
    ASSERT_EQ(outcome.requests.size(), 2u) << piece;
    EXPECT_EQ(outcome.requests[0].body, body) << piece;
    EXPECT_EQ(outcome.requests[1].body, "after") << piece;
  }
}

// --- Chunked bodies ------------------------------------------------------------

TEST(RequestParser, ReassemblesAChunkedBodyWithExtensions) {
  const std::string request =
      "POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=value\r\nhello\r\n"
      "1;a;b=\"quoted\"\r\n \r\n"
      "A\r\nworld, and\r\n"
      "3\r\n!!!\r\n"
      "0\r\n\r\n";
  for (std::size_t piece : {request.size(), std::size_t{1}, std::size_t{7}}) {
    Outcome outcome = parse_in_pieces(request, piece);
    EXPECT_EQ(outcome.status, ParseStatus::ok);
    ASSERT_EQ(outcome.requests.size(), 1u) << piece;
    EXPECT_EQ(outcome.requests[0].body, "hello world, and!!!") << piece;
  }
}

TEST(RequestParser, AcceptsChunkedTrailers) {
  Outcome outcome = parse(
      "POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "2\r\n{}\r\n0\r\nX-Checksum: abc\r\n\r\n"
      "GET /ready HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(outcome.status, ParseStatus::ok);
  ASSERT_EQ(outcome.requests.size(), 2u);
  EXPECT_EQ(outcome.requests[0].body, "{}");
  EXPECT_EQ(outcome.requests[1].path, "/ready");
}

TEST(RequestParser, AnEmptyChunkedBodyIsEmpty) {
  Outcome outcome =
      parse("POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  ASSERT_EQ(outcome.requests.size(), 1u);
  EXPECT_EQ(outcome.requests[0].body, "");
}

// --- Expect: 100-continue ---------------------------------------------------------

TEST(RequestParser, ExpectContinueIsSignalledOnceBeforeTheBody) {
  RecordingSink sink;
  RequestParser parser(kRoomyLimits, sink);
  // The client sends the headers and waits: the signal must come now.
  ASSERT_EQ(feed(parser,
                 "POST /api/publish HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: "
                 "2\r\n\r\n"),
            ParseStatus::ok);
  EXPECT_EQ(sink.continues, 1);
  EXPECT_TRUE(sink.requests.empty());
  ASSERT_EQ(feed(parser, "{}"), ParseStatus::ok);
  EXPECT_EQ(sink.continues, 1);
  ASSERT_EQ(sink.requests.size(), 1u);
  EXPECT_EQ(sink.requests[0].body, "{}");
  // The next request without the header does not signal again.
  ASSERT_EQ(feed(parser, post("/api/publish", "{}")), ParseStatus::ok);
  EXPECT_EQ(sink.continues, 1);
}

TEST(RequestParser, ExpectContinueSplitAcrossFeedsIsRecognised) {
  const std::string request = post("/api/publish", "{}", "EXPECT:  100-Continue \r\n");
  for (std::size_t piece : {std::size_t{1}, std::size_t{2}, std::size_t{5}}) {
    Outcome outcome = parse_in_pieces(request, piece);
    EXPECT_EQ(outcome.continues, 1) << piece;
    ASSERT_EQ(outcome.requests.size(), 1u);
  }
  // Cut inside the header name and inside the value.
  RecordingSink sink;
  RequestParser parser(kRoomyLimits, sink);
  ASSERT_EQ(feed(parser, "POST /api/publish HTTP/1.1\r\nHost: x\r\nExp"), ParseStatus::ok);
  ASSERT_EQ(feed(parser, "ect: 100-con"), ParseStatus::ok);
  ASSERT_EQ(feed(parser, "tinue\r\nContent-Length: 2\r\n\r\n"), ParseStatus::ok);
  EXPECT_EQ(sink.continues, 1);
  ASSERT_EQ(feed(parser, "{}"), ParseStatus::ok);
  EXPECT_EQ(sink.requests.size(), 1u);
}

TEST(RequestParser, ExpectContinueWorksWithAChunkedBody) {
  Outcome outcome = parse(
      "POST /api/publish HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: "
      "chunked\r\n\r\n"
      "2\r\n{}\r\n0\r\n\r\n");
  EXPECT_EQ(outcome.continues, 1);
  ASSERT_EQ(outcome.requests.size(), 1u);
  EXPECT_EQ(outcome.requests[0].body, "{}");
}

TEST(RequestParser, NoContinueSignalWhenNothingWaitsForIt) {
  // No body to wait for, a different header or value, or HTTP/1.0 (which
  // has no 100 Continue).
  for (
      std::string_view request : {
          "POST /api/publish HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n"sv,
          "GET /ready HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n"sv,
          "POST /api/publish HTTP/1.1\r\nHost: x\r\nX-Expect: 100-continue\r\nContent-Length: 2\r\n\r\n{}"sv,
          "POST /api/publish HTTP/1.1\r\nHost: x\r\nExpect: 100-continues\r\nContent-Length: 2\r\n\r\n{}"sv,
          "POST /api/publish HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\n{}"sv,
          "POST /api/publish HTTP/1.1\r\nHost: x\r\nExpectation: 100-continue\r\nContent-Length: 2\r\n\r\n{}"sv,
          "POST /api/publish HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}"sv,
      }) {
    Outcome outcome = parse(request);
    EXPECT_EQ(outcome.continues, 0) << request;
    EXPECT_EQ(outcome.requests.size(), 1u) << request;
  }
}

// --- Limits ---------------------------------------------------------------------

TEST(RequestParser, ContentLengthOverTheLimitIsRefusedFromTheHeaders) {
  const RequestLimits limits{16 << 10, 100};
  RecordingSink sink;
  RequestParser parser(limits, sink);
  // Only the headers have arrived: the answer must not wait for the body.
  EXPECT_EQ(feed(parser, "POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n"),
            ParseStatus::body_too_large);
  EXPECT_TRUE(sink.requests.empty());
  // Even a length that would not fit in any integer type.
  Outcome huge =
      parse("POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\n",
            limits);
  EXPECT_EQ(huge.status, ParseStatus::body_too_large);
}

TEST(RequestParser, ContentLengthAtTheLimitIsAccepted) {
  const RequestLimits limits{16 << 10, 100};
  Outcome outcome = parse(post("/api/publish", std::string(100, 'x')), limits);
  EXPECT_EQ(outcome.status, ParseStatus::ok);
  ASSERT_EQ(outcome.requests.size(), 1u);
  EXPECT_EQ(outcome.requests[0].body.size(), 100u);
}

std::string chunked_post(std::size_t body_size, std::size_t chunk_size) {
  std::string request =
      "POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (std::size_t sent = 0; sent < body_size; sent += chunk_size) {
    const std::size_t n = std::min(chunk_size, body_size - sent);
    char size_line[32];
    std::snprintf(size_line, sizeof size_line, "%zx\r\n", n);
    request += size_line + std::string(n, 'c') + "\r\n";
  }
  return request + "0\r\n\r\n";
}

TEST(RequestParser, ChunkedBodyOverTheLimitIsRefused) {
  const RequestLimits limits{16 << 10, 100};
  EXPECT_EQ(parse(chunked_post(101, 10), limits).status, ParseStatus::body_too_large);
  EXPECT_EQ(parse(chunked_post(101, 101), limits).status, ParseStatus::body_too_large);
  EXPECT_EQ(parse_in_pieces(chunked_post(500, 30), 7, limits).status, ParseStatus::body_too_large);
  Outcome refused = parse(chunked_post(1000, 10), limits);
  EXPECT_EQ(refused.status, ParseStatus::body_too_large);
  EXPECT_TRUE(refused.requests.empty());
}

TEST(RequestParser, ChunkedBodyAtTheLimitIsAccepted) {
  const RequestLimits limits{16 << 10, 100};
  Outcome outcome = parse(chunked_post(100, 10), limits);
  EXPECT_EQ(outcome.status, ParseStatus::ok);
  ASSERT_EQ(outcome.requests.size(), 1u);
  EXPECT_EQ(outcome.requests[0].body, std::string(100, 'c'));
}

// A chunked body's framing (size lines, extensions, trailers) may take the
// head's limit plus eight bytes per byte of data; past that it is refused as
// a body too large would be, wherever the stream is cut.
TEST(RequestParser, EndlessChunkExtensionsAndTrailersAreRefused) {
  const RequestLimits limits{256, 1 << 20};
  const std::string head =
      "POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string long_extension =
      head + "2;ext=" + std::string(400, 'e') + "\r\n{}\r\n0\r\n\r\n";
  EXPECT_EQ(parse_however_cut(long_extension, limits).status, ParseStatus::body_too_large);
  const std::string long_trailer =
      head + "2\r\n{}\r\n0\r\nX-Trailer: " + std::string(400, 't') + "\r\n\r\n";
  EXPECT_EQ(parse_however_cut(long_trailer, limits).status, ParseStatus::body_too_large);
  std::string many_trailers = head + "0\r\n";
  for (int i = 0; i < 40; ++i) many_trailers += "X-T" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(parse(many_trailers + "\r\n", limits).status, ParseStatus::body_too_large);
  // Streamed without end: refused once past the room, not when it ends.
  RecordingSink sink;
  RequestParser parser(limits, sink);
  ParseStatus status = feed(parser, head + "1;");
  for (int i = 0; i < 100 && status == ParseStatus::ok; ++i)
    status = feed(parser, std::string(64, 'e'));
  EXPECT_EQ(status, ParseStatus::body_too_large);
}

TEST(RequestParser, ChunkFramingWithinItsRoomIsAccepted) {
  const RequestLimits limits{256, 1 << 20};
  const std::string head =
      "POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  const Outcome extension = parse_however_cut(
      head + "2;ext=" + std::string(150, 'e') + "\r\n{}\r\n0\r\nX-T: v\r\n\r\n", limits);
  EXPECT_EQ(extension.status, ParseStatus::ok);
  ASSERT_EQ(extension.requests.size(), 1u);
  EXPECT_EQ(extension.requests[0].body, "{}");
  // One-byte chunks, five bytes of framing each, however long the body.
  const Outcome tiny_chunks = parse_in_pieces(chunked_post(20000, 1), 4096, limits);
  EXPECT_EQ(tiny_chunks.status, ParseStatus::ok);
  ASSERT_EQ(tiny_chunks.requests.size(), 1u);
  EXPECT_EQ(tiny_chunks.requests[0].body, std::string(20000, 'c'));
  // Blank lines before a request are not a body's framing.
  std::string blank_lines;
  for (int i = 0; i < 300; ++i) blank_lines += "\r\n";
  EXPECT_EQ(parse_however_cut(blank_lines + post("/api/publish", "{}"), limits).status,
            ParseStatus::ok);
  // The next request's head is its own, not the last body's framing.
  const Outcome pipelined =
      parse(head + "0\r\nX-T: " + std::string(200, 't') + "\r\n\r\n" +
                post("/api/publish", "{}", "X-Fill: "s + std::string(150, 'v') + "\r\n"),
            limits);
  EXPECT_EQ(pipelined.status, ParseStatus::ok);
  EXPECT_EQ(pipelined.requests.size(), 2u);
}

TEST(RequestParser, HeadersOverTheLimitAreRefused) {
  const RequestLimits limits{1024, 1 << 20};
  const std::string big_value =
      post("/api/publish", "{}", "X-Big: "s + std::string(2000, 'v') + "\r\n");
  EXPECT_EQ(parse(big_value, limits).status, ParseStatus::headers_too_large);
  EXPECT_EQ(parse_in_pieces(big_value, 100, limits).status, ParseStatus::headers_too_large);
  EXPECT_TRUE(parse(big_value, limits).requests.empty());

  std::string many;
  for (int i = 0; i < 100; ++i) many += "X-Header-"s + std::to_string(i) + ": value\r\n";
  EXPECT_EQ(parse(post("/api/publish", "{}", many), limits).status, ParseStatus::headers_too_large);

  const std::string long_url =
      "GET /ready?"s + std::string(2000, 'q') + " HTTP/1.1\r\nHost: x\r\n\r\n";
  EXPECT_EQ(parse(long_url, limits).status, ParseStatus::headers_too_large);
}

TEST(RequestParser, HeadersUnderTheLimitAreAccepted) {
  const RequestLimits limits{1024, 1 << 20};
  const std::string request =
      post("/api/publish", "{}", "X-Fill: "s + std::string(700, 'v') + "\r\n");
  Outcome outcome = parse(request, limits);
  EXPECT_EQ(outcome.status, ParseStatus::ok);
  EXPECT_EQ(outcome.requests.size(), 1u);
}

TEST(RequestParser, HeaderLimitDoesNotDependOnHowTheStreamIsCut) {
  // A request is within the header limit or not whatever receive buffers it
  // arrives in. This one's request line and headers are 109 bytes; the limit
  // is 160.
  const RequestLimits limits{160, 1 << 20};
  const std::string request =
      "POST /api/publish HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n"
      "X-Some-Longer-Header-Name: v\r\nAccept: */*\r\n\r\n{}";
  ASSERT_EQ(request.find("\r\n\r\n") + 4, 109u);
  EXPECT_EQ(parse(request, limits).status, ParseStatus::ok);
  for (std::size_t piece : {std::size_t{1}, std::size_t{2}, std::size_t{3}}) {
    EXPECT_EQ(parse_in_pieces(request, piece, limits).status, ParseStatus::ok)
        << "fed in pieces of " << piece;
  }
}

TEST(RequestParser, TheHeadIsCountedExactlyHoweverCut) {
  // From the method to the blank line ending the head; empty lines before
  // it are not counted.
  const std::string head = "POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n";
  const std::string stream = "\r\n\r\n" + head + "{}";
  EXPECT_EQ(parse_however_cut(stream, {head.size(), 1 << 20}).status, ParseStatus::ok);
  EXPECT_EQ(parse_however_cut(stream, {head.size() - 1, 1 << 20}).status,
            ParseStatus::headers_too_large);
}

TEST(RequestParser, AHeadOverTheLimitIs431OrMalformedHoweverCut) {
  // Whichever comes first in the stream, the head passing its limit or a
  // byte that makes it malformed, decides the answer, not where a receive
  // buffer happened to end: also when both fall in one header name, which
  // llhttp reports only once it is whole (and not at all when it refuses a
  // byte of it).
  const RequestLimits limits{64, 1 << 20};
  const std::string start = "GET /ready HTTP/1.1\r\nHost: x\r\n";
  const std::string pad(64, 'p');
  for (std::string_view bad : {"\xff"sv, " "sv, "\0"sv, "\r\n"sv}) {
    SCOPED_TRACE(::testing::PrintToString(std::string(bad)));
    EXPECT_EQ(
        parse_however_cut(start + "X-" + pad + std::string(bad) + ": v\r\n\r\n", limits).status,
        ParseStatus::headers_too_large);
    EXPECT_EQ(
        parse_however_cut(start + "X-" + std::string(bad) + pad + ": v\r\n\r\n", limits).status,
        ParseStatus::malformed);
  }
  // So does a space in a name (llhttp takes it) before a byte llhttp
  // refuses past the limit, the name never reported whole.
  EXPECT_EQ(parse_however_cut(start + "X- " + pad + "\xff: v\r\n\r\n", limits).status,
            ParseStatus::malformed);
  // The bare LF ending this request line comes before the limit is passed,
  // though llhttp refuses only the name after it.
  EXPECT_EQ(parse_however_cut("GET /ready\n"s + "X-" + pad + "\xff: v\r\n\r\n", limits).status,
            ParseStatus::malformed);
  for (std::string_view bad : {"\0"sv, "\n"sv, "\r\n x"sv, "\r\n: x"sv}) {
    SCOPED_TRACE(::testing::PrintToString(std::string(bad)));
    EXPECT_EQ(
        parse_however_cut(start + "X-Pad: " + pad + std::string(bad) + "\r\n\r\n", limits).status,
        ParseStatus::headers_too_large);
  }
}

TEST(RequestParser, WhitespaceInHeadersCountsTowardTheLimit) {
  // Padding a header value with spaces is still header bytes: a client must
  // not be able to stream an unbounded header block.
  const RequestLimits limits{1024, 1 << 20};
  const std::string padded =
      post("/api/publish", "{}", "X-Pad:"s + std::string(100000, ' ') + "v\r\n");
  EXPECT_EQ(parse(padded, limits).status, ParseStatus::headers_too_large);
}

// --- Malformed input ---------------------------------------------------------------

TEST(RequestParser, MalformedRequestsAreRefused) {
  for (
      std::string_view request : {
          "NOT A REQUEST\r\n\r\n"sv, "GET\r\n\r\n"sv, "G@T /ready HTTP/1.1\r\nHost: x\r\n\r\n"sv,
          "GET /ready HTTP/1.1 extra\r\n\r\n"sv, "GET /ready HTTX/1.1\r\n\r\n"sv,
          "GET /ready HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n"sv,
          "GET /ready HTTP/1.1\r\nHost: x\r\nBad Name: x\r\n\r\n"sv,
          "POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"sv,
          "POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"sv,
          "POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"sv,
          "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"sv,  // a TLS ClientHello
      }) {
    Outcome outcome = parse(request);
    EXPECT_EQ(outcome.status, ParseStatus::malformed) << request;
    EXPECT_TRUE(outcome.requests.empty()) << request;
  }
}

TEST(RequestParser, StaysStoppedAfterAFailureFoundAtTheEndOfAFeed) {
  // The bare LF is found once llhttp has returned, with llhttp itself
  // content to go on: the rest of the request must not be parsed.
  RecordingSink sink;
  RequestParser parser({64, 1 << 20}, sink);
  EXPECT_EQ(feed(parser, "GET /ready HTTP/1.1\n"), ParseStatus::malformed);
  EXPECT_EQ(feed(parser, "Host: x\r\n\r\n"), ParseStatus::malformed);
  parser.reset();
  EXPECT_EQ(feed(parser, "GET /ready HTTP/1.1\r\nX-Long: "s + std::string(64, 'v')),
            ParseStatus::headers_too_large);
  EXPECT_EQ(feed(parser, "\r\nHost: x\r\n\r\n"), ParseStatus::headers_too_large);
  EXPECT_TRUE(sink.requests.empty());
  parser.reset();
  EXPECT_EQ(feed(parser, "GET /ready HTTP/1.1\r\nHost: x\r\n\r\n"), ParseStatus::ok);
  EXPECT_EQ(sink.requests.size(), 1u);
}

TEST(RequestParser, RequestsBeforeAMalformedOneAreStillHandedOver) {
  Outcome outcome = parse(post("/api/publish", "{}") + "BROKEN\r\n\r\n");
  EXPECT_EQ(outcome.status, ParseStatus::malformed);
  ASSERT_EQ(outcome.requests.size(), 1u);
  EXPECT_EQ(outcome.requests[0].body, "{}");
}

// --- Request smuggling ------------------------------------------------------------
//
// Framings a proxy in front (HAProxy) may read differently from us, so that
// the two disagree on where a request ends. llhttp 8.1 lets each of them
// through unless noted; every one must be refused (400) whole, however the
// stream is cut, before any of it is handed over.

constexpr std::string_view kChunkedHead =
    "POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

std::string chunked(std::string_view body) { return std::string(kChunkedHead) + std::string(body); }

TEST(RequestParser, ChunkDataNotFollowedByCrlfIsRefused) {
  // llhttp skips the two bytes after a chunk's data without looking at them.
  const std::string bad_tail = chunked("2\r\n{}XX0\r\n\r\n");
  expect_refused({bad_tail, chunked("2\r\n{}\nX0\r\n\r\n"), chunked("2\r\n{}\rX0\r\n\r\n"),
                  chunked("2\r\n{}\n\r\n0\r\n\r\n"), chunked("2\r\n{}X\r\n0\r\n\r\n"),
                  chunked("1\r\nab\r\n0\r\n\r\n")});
  // What follows is not taken as a new request either...
  expect_refused({bad_tail + "GET /ready HTTP/1.1\r\nHost: x\r\n\r\n",
                  chunked("2\r\n{}\r\n3\r\nabc") + post("/api/publish", "{}") + "\r\n0\r\n\r\n"});
  // ...while the request before it is served.
  const Outcome outcome = parse_however_cut(post("/api/subscribe", "{}") + bad_tail);
  EXPECT_EQ(outcome.status, ParseStatus::malformed);
  EXPECT_EQ(outcome.requests, (std::vector<Recorded>{posted("/api/subscribe", "{}")}));
}

TEST(RequestParser, ChunkLinesNotEndingInCrlfAreRefused) {
  // llhttp takes any byte after the CR of a chunk-size line, of the last
  // chunk's line and of the blank line ending the trailers, and a bare LF
  // for that blank line.
  expect_refused({
      chunked("2\rX{}\r\n0\r\n\r\n"),
      chunked("2;name=value\rX{}\r\n0\r\n\r\n"),
      chunked("0\rX\r\n"),
      chunked("0\r\n\rX"),
      chunked("0\r\n\n"),
      chunked("0\r\nX-Trailer: t\r\n\n"),
      chunked("2\n{}\r\n0\r\n\r\n"),  // llhttp refuses these itself
      chunked("2\r\n{}\r\n0\n\r\n"),
  });
}

TEST(RequestParser, AChunkExtensionWithABareCrIsRefused) {
  expect_refused({chunked("2;a\rb\r\n{}\r\n0\r\n\r\n"), chunked("2;a\rX{}\r\n0\r\n\r\n"),
                  chunked("2;a=b\rX\r\n{}\r\n0\r\n\r\n"),
                  chunked("2;a\nb\r\n{}\r\n0\r\n\r\n"),  // refused by llhttp
                  chunked("2;a=\"x\ry\"\r\n{}\r\n0\r\n\r\n")});
}

TEST(RequestParser, AnOverlongChunkSizeIsRefused) {
  // llhttp refuses a size past 64 bits itself.
  expect_refused({chunked("10000000000000002\r\n{}\r\n0\r\n\r\n"),
                  chunked("ffffffffffffffffff\r\n{}\r\n0\r\n\r\n")});
}

TEST(RequestParser, ObsFoldIsRefused) {
  // RFC 9112 5.2 lets a server refuse a field value continued on the next
  // line; llhttp honours it, so "Transfer-Encoding:\r\n chunked" is chunked
  // to us and perhaps not to a proxy.
  expect_refused({
      "POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"
      "2\r\n{}\r\n0\r\n\r\n",
      "GET /ready HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
      "GET /ready HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n",
      "GET /ready HTTP/1.1\r\nHost: x\r\nX-A:\r\n\tb\r\n\r\n",
      "GET /ready HTTP/1.1\r\nHost: x\r\nX-A: a\r\n \r\n\r\n",
      "GET /ready HTTP/1.1\r\nHost:\r\n x\r\n\r\n",
      chunked("0\r\nX-Trailer: a\r\n b\r\n\r\n"),
  });
}

TEST(RequestParser, AnEmptyHeaderNameIsRefused) {
  expect_refused({"GET /ready HTTP/1.1\r\nHost: x\r\n: value\r\n\r\n",
                  "GET /ready HTTP/1.1\r\n: x\r\nHost: x\r\n\r\n",
                  "GET /ready HTTP/1.1\r\nHost: x\r\n:\r\n\r\n",
                  chunked("0\r\n: trailer\r\n\r\n")});
}

TEST(RequestParser, Http11NeedsExactlyOneHost) {
  // RFC 9112 3.2: 400 for an HTTP/1.1 request without Host, and for any
  // request with more than one.
  expect_refused({
      "GET /ready HTTP/1.1\r\n\r\n",
      "POST /api/publish HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
      "GET /ready HTTP/1.1\r\nX-Host: x\r\nHosts: x\r\n\r\n",
      "GET /ready HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n",
      "GET /ready HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n",
      "GET /ready HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
      // A Host among the trailers is no Host.
      "POST /api/publish HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nHost: x\r\n\r\n",
  });
  for (std::string_view request : {
           "GET /ready HTTP/1.1\r\nHOST: localhost:8082\r\n\r\n"sv,
           "GET /ready HTTP/1.1\r\nhost:\r\n\r\n"sv,  // empty: a target without authority
           "GET /ready HTTP/1.0\r\n\r\n"sv,
           "GET /ready HTTP/1.0\r\nHost: x\r\n\r\n"sv,
       }) {
    EXPECT_EQ(parse_however_cut(request).requests.size(), 1u) << request;
  }
}

TEST(RequestParser, OnlyHttp10And11AreServed) {
  // llhttp takes 0.9 and 2.0, and a request line without a version (as 0.9,
  // reading its headers all the same).
  expect_refused({"GET /ready\r\nHost: x\r\n\r\n", "GET /ready HTTP/0.9\r\nHost: x\r\n\r\n",
                  "GET /ready HTTP/2.0\r\nHost: x\r\n\r\n",
                  "GET /ready HTTP/1.2\r\nHost: x\r\n\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"});
}

TEST(RequestParser, TransferEncodingOtherThanChunkedIsRefused) {
  auto with = [](std::string_view headers) {
    return "POST /api/publish HTTP/1.1\r\nHost: x\r\n"s + std::string(headers) +
           "\r\n2\r\n{}\r\n0\r\n\r\n";
  };
  expect_refused({
      with("Transfer-Encoding: gzip, chunked\r\n"),
      with("Transfer-Encoding: , chunked\r\n"),
      with("Transfer-Encoding: chunked, chunked\r\n"),
      with("Transfer-Encoding: chunked, gzip\r\n"),
      with("Transfer-Encoding: gzip\r\n"),
      with("Transfer-Encoding: identity\r\n"),
      with("Transfer-Encoding: xchunked\r\n"),
      with("Transfer-Encoding: chunked;q=1\r\n"),
      with("Transfer-Encoding: \r\n"),
      with("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"),
      with("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
      with("Transfer-Encoding: chunked\r\nContent-Length: 9\r\n"),
      with("Content-Length: 9\r\nTransfer-Encoding: chunked\r\n"),
      with("Content-Length: 0\r\nTransfer-Encoding: \r\n"),
      // HTTP/1.0 has no transfer codings (RFC 9112 6.1).
      "POST /api/publish HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
      "POST /api/publish HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
  });
}

TEST(RequestParser, ChunkedIsRecognisedInAnyCaseWithWhitespace) {
  for (std::string_view coding : {"chunked"sv, "CHUNKED"sv, "Chunked "sv, "  chunked"sv,
                                  "chunked                          "sv}) {
    const Outcome outcome =
        parse_however_cut("POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "s +
                          std::string(coding) + "\r\n\r\n2\r\n{}\r\n0\r\n\r\n");
    EXPECT_EQ(outcome.status, ParseStatus::ok) << coding;
    EXPECT_EQ(outcome.requests, (std::vector<Recorded>{posted("/api/publish", "{}")})) << coding;
  }
}

TEST(RequestParser, BareLineFeedsAreRefused) {
  // llhttp takes a bare LF after the request line and for the blank line
  // ending the head, and any byte after that blank line's CR.
  expect_refused({
      "GET /ready HTTP/1.1\nHost: x\r\n\r\n",
      "GET /ready HTTP/1.1\r\nHost: x\r\n\n",
      "GET /ready HTTP/1.1\r\nHost: x\r\n\rX",
      "GET /ready HTTP/1.0\n\n",
      "GET /ready HTTP/1.0\r\n\n",
      "POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\n{}",
      "\nGET /ready HTTP/1.1\r\nHost: x\r\n\r\n",
      // llhttp refuses these itself.
      "GET /ready HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n",
      "GET /ready HTTP/1.1\rHost: x\r\n\r\n",
      "GET /ready HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n",
  });
  // Empty lines before a request are skipped (RFC 9112 2.2), when they are CRLF.
  const Outcome outcome =
      parse_however_cut("\r\n\r\nGET /ready HTTP/1.1\r\nHost: x\r\n\r\n" + post("/api/x", "{}") +
                        "\r\nGET /ready HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(outcome.status, ParseStatus::ok);
  EXPECT_EQ(outcome.requests.size(), 3u);
}

TEST(RequestParser, BadContentLengthsAreRefused) {
  // llhttp refuses all of these itself.
  auto with = [](std::string_view value) {
    return "POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: "s + std::string(value) +
           "\r\n\r\n{}";
  };
  expect_refused({with("abc"), with("1a"), with("+2"), with("-2"), with("2 2"), with("2,2"),
                  with("0x2"), with(""), with("2\r\nContent-Length: 3"),
                  with("2\r\nContent-Length: 2"), with("99999999999999999999999")});
  // Whitespace around the digits is optional whitespace.
  const Outcome outcome = parse_however_cut(with("  2  "));
  EXPECT_EQ(outcome.requests, (std::vector<Recorded>{posted("/api/publish", "{}")}));
}

TEST(RequestParser, WhitespaceBeforeTheColonIsRefused) {
  // RFC 9112 5.1: a server must refuse it. llhttp takes "Host : x" (a name
  // with a space); tabs it refuses.
  expect_refused({"GET /ready HTTP/1.1\r\nHost : x\r\n\r\n",
                  "GET /ready HTTP/1.1\r\nHost\t: x\r\n\r\n",
                  "GET /ready HTTP/1.1\r\nHost: x\r\nContent-Length : 0\r\n\r\n"});
}

TEST(RequestParser, ControlCharactersInHeaderValuesAreRefused) {
  // llhttp refuses these itself; a tab and obs-text are allowed.
  auto with = [](std::string_view value) {
    return "GET /ready HTTP/1.1\r\nHost: x\r\nX-A: a"s + std::string(value) + "b\r\n\r\n";
  };
  expect_refused({with("\0"sv), with("\x01"), with("\x1f"), with("\x7f"), with("\r"), with("\n")});
  EXPECT_EQ(parse_however_cut(with("\t")).requests.size(), 1u);
  EXPECT_EQ(parse_however_cut(with("\xe9")).requests.size(), 1u);
}

TEST(RequestParser, ValidFramingsParseTheSameHoweverCut) {
  const Outcome outcome = parse_however_cut(
      chunked("0002;a=\"q\";b\r\n{}\r\n1\r\n \r\n0;last\r\nX-Trailer: t\r\nX-Other:\r\n\r\n") +
      "POST /api/publish HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n  " +
      post("/api/fetch", "{}", "Expect: 100-continue\r\n") +
      "GET /ready HTTP/1.1\r\nhost: x\r\nX-Tab:\ta\tb\t\r\nX-Empty:\r\n\r\n");
  EXPECT_EQ(outcome.status, ParseStatus::ok);
  EXPECT_EQ(outcome.requests, (std::vector<Recorded>{
                                  posted("/api/publish", "{} "),
                                  {HTTP_POST, "/api/publish", "  ", true, true},
                                  posted("/api/fetch", "{}"),
                                  {HTTP_GET, "/ready", "", true, false},
                              }));
  EXPECT_EQ(outcome.continues, 1);
}

// --- Upgrade and CONNECT ---------------------------------------------------------------

TEST(RequestParser, UpgradeRequestsAreOrdinaryRequests) {
  // We speak HTTP/1.1 only: the stream must not be handed to another
  // protocol, so what follows is parsed as the next request.
  Outcome outcome = parse(
      "GET /ready HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
      "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
      "POST /api/publish HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
      "Content-Length: 2\r\n\r\n{}"
      "GET /ready HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(outcome.status, ParseStatus::ok);
  ASSERT_EQ(outcome.requests.size(), 3u);
  EXPECT_EQ(outcome.requests[0], (Recorded{HTTP_GET, "/ready", "", true, false}));
  EXPECT_EQ(outcome.requests[1], posted("/api/publish", "{}"));
  EXPECT_EQ(outcome.requests[2], (Recorded{HTTP_GET, "/ready", "", true, false}));
}

TEST(RequestParser, ConnectIsAnOrdinaryRequest) {
  Outcome outcome = parse(
      "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
      "GET /ready HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(outcome.status, ParseStatus::ok);
  ASSERT_EQ(outcome.requests.size(), 2u);
  EXPECT_EQ(outcome.requests[0].method, HTTP_CONNECT);
  EXPECT_EQ(outcome.requests[0].path, "example.com:443");
  EXPECT_EQ(outcome.requests[1].path, "/ready");
}

// --- Body padding ----------------------------------------------------------------------

TEST(RequestParser, BodyPaddingHoldsForViewsCopiesAndEmptyBodies) {
  // The sink checks body_padded_capacity >= body_size + 64 on every request
  // and reads all of it: a body viewed in place at the very end of a feed, a
  // body copied from several feeds, a chunked body and an empty one.
  const std::string body(1000, 'p');
  const std::string at_end = post("/api/publish", body);
  EXPECT_EQ(parse(at_end).requests.size(), 1u);
  EXPECT_EQ(parse_in_pieces(at_end, 333).requests.size(), 1u);
  EXPECT_EQ(parse(chunked_post(1000, 64)).requests.size(), 1u);
  EXPECT_EQ(parse("GET /ready HTTP/1.1\r\nHost: x\r\n\r\n").requests.size(), 1u);
  EXPECT_EQ(parse(post("/api/publish", "")).requests.size(), 1u);
}

TEST(RequestParser, AbsoluteFormTargetIsRoutedByItsPath) {
  // RFC 9112 3.2.2: a server must accept the absolute form proxies send.
  Outcome outcome = parse(
      "POST http://localhost:8082/api/publish?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
      "GET HTTPS://example.com HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(outcome.requests.size(), 2u);
  EXPECT_EQ(outcome.requests[0].path, "/api/publish");
  EXPECT_EQ(outcome.requests[1].path, "/");
}

// --- Origin (CORS) -------------------------------------------------------------

// Room for the origins a broker allowing "http://localhost:8080" (21 bytes)
// and "https://app.example.com" (23) reads.
constexpr RequestLimits kCorsLimits{16 << 10, 1 << 20, 23};

std::string get_ready(std::string_view headers) {
  return "GET /ready HTTP/1.1\r\nHost: x\r\n"s + std::string(headers) + "\r\n";
}

TEST(RequestParser, OriginIsNotLookedForWithoutCors) {
  const Outcome outcome = parse(get_ready("Origin: http://localhost:8080\r\n"));
  ASSERT_EQ(outcome.requests.size(), 1u);
  EXPECT_EQ(outcome.requests[0].origin, "");
}

TEST(RequestParser, OriginIsHandedOverLowerCasedHoweverCut) {
  const Outcome outcome =
      parse_however_cut(get_ready("oRiGiN:  HTTP://LocalHost:8080 \r\n") + get_ready("") +
                            post("/api/publish", "{}", "Origin: https://app.example.com\r\n"),
                        kCorsLimits);
  ASSERT_EQ(outcome.requests.size(), 3u);
  EXPECT_EQ(outcome.requests[0].origin, "http://localhost:8080");
  EXPECT_EQ(outcome.requests[1].origin, "") << "each request has its own";
  EXPECT_EQ(outcome.requests[2].origin, "https://app.example.com");
}

TEST(RequestParser, AnOriginLongerThanTheLimitEqualsNoOriginWithinIt) {
  // Its first 23 bytes are an allowed origin; the whole is not, and is not
  // handed over as if it were.
  const Outcome outcome =
      parse_however_cut(get_ready("Origin: https://app.example.com.evil.example\r\n"), kCorsLimits);
  ASSERT_EQ(outcome.requests.size(), 1u);
  EXPECT_EQ(outcome.requests[0].origin, "https://app.example.com.");
}

TEST(RequestParser, TwoOriginsNameNone) {
  const Outcome outcome =
      parse(get_ready("Origin: http://a.example\r\nOrigin: http://a.example\r\n"), kCorsLimits);
  ASSERT_EQ(outcome.requests.size(), 1u);
  EXPECT_EQ(outcome.requests[0].origin, "");
}

TEST(RequestParser, AnOriginInTrailersIsIgnored) {
  const Outcome outcome = parse(
      "POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "2\r\n{}\r\n0\r\nOrigin: http://a.example\r\n\r\n",
      kCorsLimits);
  ASSERT_EQ(outcome.requests.size(), 1u);
  EXPECT_EQ(outcome.requests[0].origin, "");
}

}  // namespace
}  // namespace gophermq
