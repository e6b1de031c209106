// HTTP/1.1 on the wire: keep-alive, pipelining across shards, chunked bodies,
// Expect: 100-continue, HTTP/1.0, Connection: close, and the limits and errors
// that leave the server healthy (400 then close, 413, 431).
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "test_support.h"

namespace gophermq::testing {
namespace {

using HttpProtocolTest = BrokerTest;

std::string Lowercase(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// Reads one response from `client` and checks it is exactly `status` + `body`.
::testing::AssertionResult NextResponseIs(HttpClient& client, int status, std::string_view body) {
  HttpResponse response;
  if (!client.ReadResponse(&response)) {
    return ::testing::AssertionFailure() << "no response: " << client.error();
  }
  return IsJsonResponse(response, status, body);
}

TEST_F(HttpProtocolTest, KeepAliveServesManyRequestsOnOneConnection) {
  const std::string id = Subscribe("keep.alive");
  for (int i = 0; i < 300; ++i) {
    const std::string data = Numbered("k", i);
    HttpResponse published = Publish("keep.alive", data);
    ASSERT_TRUE(IsJsonResponse(published, 200, kOkBody)) << "request " << i;
    EXPECT_FALSE(published.close_delimited);
    if (const std::string* connection = published.Header("Connection")) {
      EXPECT_EQ(Lowercase(*connection).find("close"), std::string::npos);
    }
    ASSERT_TRUE(IsJsonResponse(Post("/api/fetch", FetchBody("keep.alive", id)), 200,
                               ExpectedFetchBody({data}, id, "keep.alive")));
  }
}

TEST_F(HttpProtocolTest, PipelinedSubscribesAcrossShardsAnswerInOrder) {
  constexpr int kSubjects = 32;
  std::string batch;
  for (int i = 0; i < kSubjects; ++i) {
    batch += FormatRequest("POST", "/api/subscribe", SubscribeBody(Numbered("pipe.s", i)));
  }
  ASSERT_TRUE(client_->SendRaw(batch));
  std::vector<std::string> ids;
  for (int i = 0; i < kSubjects; ++i) {
    HttpResponse response;
    ASSERT_TRUE(client_->ReadResponse(&response)) << "response " << i << ": " << client_->error();
    const std::optional<SubscribeReply> reply = DecodeSubscribeReply(response.body);
    ASSERT_TRUE(reply.has_value()) << Describe(response);
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(reply->subject, Numbered("pipe.s", i)) << "response " << i << " out of order";
    ids.push_back(reply->id);
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end()) << "duplicate ids";
}

TEST_F(HttpProtocolTest, PipelinedMixedRequestsAcrossShardsAnswerInRequestOrder) {
  constexpr int kSubjects = 20;  // both shards own some of them
  std::vector<std::string> subjects, ids;
  for (int i = 0; i < kSubjects; ++i) {
    subjects.push_back(Numbered("mixed.s", i));
    ids.push_back(Subscribe(subjects.back()));
  }
  ASSERT_FALSE(HasFailure());

  // One write holding, per subject, a mix of requests whose answers differ, so
  // an answer out of order shows. Pipelined requests act as if sent one by one:
  // the fetch sees the publish before it, the publish sees the subscribe before it.
  struct Expected {
    int status;
    std::string body;  // exact, or "" for a subscribe (checked by shape)
    std::string subscribe_subject;
  };
  std::string batch;
  std::vector<Expected> expected;
  for (int i = 0; i < kSubjects; ++i) {
    const std::string& s = subjects[i];
    const std::string& id = ids[i];
    const std::string first = s + "/first";
    const std::string fresh = Numbered("fresh.s", i);
    batch += FormatRequest("POST", "/api/publish", PublishBody(s, first));
    expected.push_back({200, std::string(kOkBody), ""});
    batch += FormatRequest("POST", "/api/publish", PublishBody(Numbered("nobody.s", i), "x"));
    expected.push_back({404, std::string(kSubscriberNotFoundBody), ""});
    batch += FormatRequest("POST", "/api/fetch", FetchBody(s, id));
    expected.push_back({200, ExpectedFetchBody({first}, id, s), ""});
    batch += FormatRequest("POST", "/api/subscribe", SubscribeBody(fresh));
    expected.push_back({200, "", fresh});
    batch += FormatRequest("POST", "/api/publish", PublishBody(fresh, "to fresh"));
    expected.push_back({200, std::string(kOkBody), ""});
    batch += FormatRequest("POST", "/api/publish", PublishBody(s, s + "/second"));
    expected.push_back({200, std::string(kOkBody), ""});
    batch += FormatRequest("POST", "/api/fetch", FetchBody(s, "not-an-id"));
    expected.push_back({404, std::string(kBadIdBody), ""});
    if (i % 4 == 0) {
      batch += FormatRequest("POST", "/api/publish", PublishBody("bad subject", "x"));
      expected.push_back({400, std::string(kInvalidSubjectBody), ""});
      batch += FormatRequest("GET", "/nowhere", "");
      expected.push_back({404, std::string(kNotFoundBody), ""});
    }
  }
  ASSERT_GE(expected.size(), 32u);
  ASSERT_TRUE(client_->SendRaw(batch));
  for (std::size_t r = 0; r < expected.size(); ++r) {
    SCOPED_TRACE("pipelined response " + std::to_string(r));
    HttpResponse response;
    ASSERT_TRUE(client_->ReadResponse(&response)) << client_->error();
    if (expected[r].subscribe_subject.empty()) {
      EXPECT_TRUE(IsJsonResponse(response, expected[r].status, expected[r].body));
    } else {
      const std::optional<SubscribeReply> reply = DecodeSubscribeReply(response.body);
      EXPECT_EQ(response.status, 200) << Describe(response);
      EXPECT_TRUE(reply && reply->subject == expected[r].subscribe_subject) << Describe(response);
    }
  }
  // Afterwards each subject holds exactly its second message.
  for (int i = 0; i < kSubjects; ++i) {
    EXPECT_EQ(Fetch(subjects[i], ids[i]), std::vector<std::string>{subjects[i] + "/second"});
  }
}

TEST_F(HttpProtocolTest, LargePipelinedBatchKeepsOrder) {
  // Bigger than any single receive and send buffer: thousands of requests in
  // one stream, sent from another thread while this one reads, so neither
  // side's full buffers can deadlock the test.
  constexpr int kSubjects = 16;
  constexpr int kPerSubject = 150;
  std::vector<std::string> ids;
  for (int s = 0; s < kSubjects; ++s) ids.push_back(Subscribe(Numbered("big.s", s)));
  std::string batch;
  for (int i = 0; i < kPerSubject; ++i) {
    for (int s = 0; s < kSubjects; ++s) {
      batch += FormatRequest("POST", "/api/publish",
                             PublishBody(Numbered("big.s", s), std::to_string(i)));
    }
  }
  bool sent = false;
  std::thread sender([&] { sent = client_->SendRaw(batch); });
  int ok = 0;
  for (int r = 0; r < kSubjects * kPerSubject; ++r) {
    HttpResponse response;
    if (!client_->ReadResponse(&response)) {
      ADD_FAILURE() << "response " << r << ": " << client_->error();
      break;
    }
    if (IsJsonResponse(response, 200, kOkBody)) {
      ++ok;
    } else {
      ADD_FAILURE() << "response " << r << ": " << Describe(response);
      break;
    }
  }
  sender.join();
  EXPECT_TRUE(sent) << client_->error();
  ASSERT_EQ(ok, kSubjects * kPerSubject);
  for (int s = 0; s < kSubjects; ++s) {
    std::vector<std::string> expected;
    for (int i = 0; i < kPerSubject; ++i) expected.push_back(std::to_string(i));
    EXPECT_EQ(Fetch(Numbered("big.s", s), ids[s]), expected) << "subject " << s;
  }
}

TEST_F(HttpProtocolTest, RequestsSplitIntoTinyWritesAreParsed) {
  const std::string id = Subscribe("tiny.writes");
  std::string batch;
  for (int i = 0; i < 6; ++i) {
    batch += FormatRequest("POST", "/api/publish", PublishBody("tiny.writes", std::to_string(i)));
  }
  batch += FormatRequest("POST", "/api/fetch", FetchBody("tiny.writes", id));
  // Pieces of 1 to 7 bytes, each its own segment (TCP_NODELAY is on), so
  // request lines, headers and bodies straddle reads at every kind of boundary.
  for (std::size_t offset = 0, piece = 1; offset < batch.size(); piece = piece % 7 + 1) {
    const std::size_t size = std::min(piece, batch.size() - offset);
    ASSERT_TRUE(client_->SendRaw(std::string_view(batch).substr(offset, size)));
    offset += size;
    if (piece == 7) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(NextResponseIs(*client_, 200, kOkBody)) << i;
  EXPECT_TRUE(NextResponseIs(*client_, 200,
                             ExpectedFetchBody({"0", "1", "2", "3", "4", "5"}, id, "tiny.writes")));
}

TEST_F(HttpProtocolTest, ChunkedRequestBodyWithExtensions) {
  const std::string id = Subscribe("chunked");
  const std::string body = PublishBody("chunked", "sent in chunks");
  // Uneven chunks, hex sizes in both cases, and chunk extensions to be ignored.
  std::string request =
      "POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::size_t cuts[] = {0, 1, 11, 12, 30, body.size()};
  for (std::size_t i = 0; i + 1 < std::size(cuts); ++i) {
    const std::string piece = body.substr(cuts[i], cuts[i + 1] - cuts[i]);
    char size[16];
    std::snprintf(size, sizeof size, i % 2 == 0 ? "%zx" : "%zX", piece.size());
    request += size;
    if (i == 1) request += ";name=value";
    if (i == 2) request += ";flag";
    request += "\r\n" + piece + "\r\n";
  }
  request += "0\r\n\r\n";
  ASSERT_TRUE(client_->SendRaw(request));
  EXPECT_TRUE(NextResponseIs(*client_, 200, kOkBody));
  EXPECT_EQ(Fetch("chunked", id), std::vector<std::string>{"sent in chunks"});
}

TEST_F(HttpProtocolTest, ChunkedRequestBodySentInSeparateWritesWithTrailer) {
  const std::string id = Subscribe("chunked.slow");
  ASSERT_TRUE(client_->SendRaw(
      "POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"));
  for (const std::string piece : {"{\"subject\":", "\"chunked.slow\",", "\"data\":\"slow\"}"}) {
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
    ASSERT_TRUE(client_->SendRaw(size + piece + "\r\n"));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // separate segments
  }
  ASSERT_TRUE(client_->SendRaw("0\r\nX-Trailer: ignored\r\n\r\n"));
  EXPECT_TRUE(NextResponseIs(*client_, 200, kOkBody));
  EXPECT_EQ(Fetch("chunked.slow", id), std::vector<std::string>{"slow"});
}

TEST_F(HttpProtocolTest, HeaderNamesAreCaseInsensitive) {
  const std::string id = Subscribe("header.case");
  const std::string body = PublishBody("header.case", "lower");
  ASSERT_TRUE(client_->SendRaw("POST /api/publish HTTP/1.1\r\nhost: x\r\ncontent-length: " +
                               std::to_string(body.size()) + "\r\n\r\n" + body));
  EXPECT_TRUE(NextResponseIs(*client_, 200, kOkBody));
  const std::string body2 = PublishBody("header.case", "upper");
  char size[16];
  std::snprintf(size, sizeof size, "%zx", body2.size());
  ASSERT_TRUE(
      client_->SendRaw("POST /api/publish HTTP/1.1\r\nHOST: x\r\nTRANSFER-ENCODING: "
                       "chunked\r\n\r\n" +
                       std::string(size) + "\r\n" + body2 + "\r\n0\r\n\r\n"));
  EXPECT_TRUE(NextResponseIs(*client_, 200, kOkBody));
  EXPECT_EQ(Fetch("header.case", id), (std::vector<std::string>{"lower", "upper"}));
}

TEST_F(HttpProtocolTest, ExpectContinueGets100BeforeTheBody) {
  const std::string id = Subscribe("expect");
  const std::string body = PublishBody("expect", "after 100");
  ASSERT_TRUE(client_->SendRaw("POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\nExpect: 100-continue\r\n\r\n"));
  HttpResponse interim;
  ASSERT_TRUE(client_->ReadResponse(&interim)) << "no 100 Continue: " << client_->error();
  EXPECT_EQ(interim.status, 100) << Describe(interim);
  EXPECT_EQ(interim.version, "HTTP/1.1");
  ASSERT_TRUE(client_->SendRaw(body));
  EXPECT_TRUE(NextResponseIs(*client_, 200, kOkBody));
  // The connection goes on normally.
  EXPECT_EQ(Fetch("expect", id), std::vector<std::string>{"after 100"});
}

TEST_F(HttpProtocolTest, ExpectContinueWithBodySentAtOnce) {
  // curl stops waiting for the 100 after a second and sends the body anyway.
  const std::string id = Subscribe("expect.eager");
  const std::string body = PublishBody("expect.eager", "eager");
  ASSERT_TRUE(client_->SendRaw("POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\nExpect: 100-continue\r\n\r\n" +
                               body));
  HttpResponse response;
  ASSERT_TRUE(client_->ReadResponse(&response)) << client_->error();
  if (response.status == 100) {
    ASSERT_TRUE(client_->ReadResponse(&response)) << client_->error();
  }
  EXPECT_TRUE(IsJsonResponse(response, 200, kOkBody));
  EXPECT_EQ(Fetch("expect.eager", id), std::vector<std::string>{"eager"});
}

TEST_F(HttpProtocolTest, Http10RequestGetsResponseThenClose) {
  // Without Host, which only HTTP/1.1 requires.
  const std::string body = SubscribeBody("http10");
  ASSERT_TRUE(client_->SendRaw("POST /api/subscribe HTTP/1.0\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\n\r\n" + body));
  HttpResponse response;
  ASSERT_TRUE(client_->ReadResponse(&response)) << client_->error();
  EXPECT_TRUE(response.version == "HTTP/1.0" || response.version == "HTTP/1.1") << response.version;
  EXPECT_EQ(response.status, 200) << Describe(response);
  EXPECT_FALSE(response.chunked) << "HTTP/1.0 clients cannot read chunked bodies";
  const std::optional<SubscribeReply> reply = DecodeSubscribeReply(response.body);
  EXPECT_TRUE(reply && reply->subject == "http10" && IsUuidV4(reply->id)) << Describe(response);
  EXPECT_TRUE(client_->WaitForClose()) << client_->error();
}

TEST_F(HttpProtocolTest, Http10KeepAliveKeepsTheConnection) {
  const std::string id = Subscribe("http10.ka");
  for (int i = 0; i < 3; ++i) {
    const std::string body = PublishBody("http10.ka", std::to_string(i));
    ASSERT_TRUE(
        client_->SendRaw("POST /api/publish HTTP/1.0\r\nConnection: keep-alive\r\n"
                         "Content-Length: " +
                         std::to_string(body.size()) + "\r\n\r\n" + body));
    HttpResponse response;
    ASSERT_TRUE(client_->ReadResponse(&response)) << "request " << i << ": " << client_->error();
    EXPECT_TRUE(IsJsonResponse(response, 200, kOkBody));
    EXPECT_FALSE(response.chunked);
    // A 1.0 client keeps the connection only when the answer says keep-alive.
    const std::string* connection = response.Header("Connection");
    EXPECT_TRUE(connection && Lowercase(*connection) == "keep-alive") << Describe(response);
  }
  EXPECT_EQ(Fetch("http10.ka", id), (std::vector<std::string>{"0", "1", "2"}));
}

TEST_F(HttpProtocolTest, ConnectionCloseGetsResponseThenClose) {
  const std::string id = Subscribe("close.me");
  auto client = Connect();
  // The publish after the closing request must not be served.
  ASSERT_TRUE(client->SendRaw(
      FormatRequest("POST", "/api/publish", PublishBody("close.me", "served"),
                    "Connection: close\r\n") +
      FormatRequest("POST", "/api/publish", PublishBody("close.me", "not served"))));
  EXPECT_TRUE(NextResponseIs(*client, 200, kOkBody));
  EXPECT_TRUE(client->WaitForClose()) << client->error();
  EXPECT_EQ(Fetch("close.me", id), std::vector<std::string>{"served"});
}

// --- Malformed HTTP: 400, then the connection closes ---

struct MalformedCase {
  const char* name;
  std::string bytes;
};

void PrintTo(const MalformedCase& test_case, std::ostream* out) { *out << test_case.name; }

class MalformedRequestTest : public BrokerTest,
                             public ::testing::WithParamInterface<MalformedCase> {};

TEST_P(MalformedRequestTest, Is400ThenCloseAndServerStaysHealthy) {
  auto client = Connect();
  ASSERT_TRUE(client->SendRaw(GetParam().bytes));
  HttpResponse response;
  ASSERT_TRUE(client->ReadResponse(&response)) << client->error();
  EXPECT_EQ(response.status, 400) << Describe(response);
  if (!response.body.empty()) {
    EXPECT_EQ(response.MediaType(), "application/json");
  }
  EXPECT_TRUE(client->WaitForClose()) << client->error();
  // The connection opened before is still served normally.
  EXPECT_TRUE(IsJsonResponse(Post("/api/publish", PublishBody("nobody", "x")), 404,
                             kSubscriberNotFoundBody));
  // So are new ones.
  ExpectNewConnectionsServed();
}

INSTANTIATE_TEST_SUITE_P(
    Http, MalformedRequestTest,
    ::testing::Values(
        MalformedCase{"NotHttp", "this is not http\r\n\r\n"},
        MalformedCase{"BadVersion", "GET /ready XTTP/1.1\r\nHost: x\r\n\r\n"},
        MalformedCase{"BinaryJunk",
                      std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15)},
        MalformedCase{"HeaderWithoutColon",
                      "GET /ready HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"},
        MalformedCase{"SpaceInHeaderName", "GET /ready HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n"},
        // RFC 9112 5.1: a server MUST reject whitespace between name and colon with 400.
        MalformedCase{"SpaceBeforeColon", "GET /ready HTTP/1.1\r\nHost : x\r\n\r\n"},
        MalformedCase{"NonNumericContentLength",
                      "POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"},
        MalformedCase{"ConflictingContentLengths",
                      "POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                      "Content-Length: 3\r\n\r\n{}"},
        MalformedCase{"BadChunkSize",
                      "POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "zz\r\n{}\r\n0\r\n\r\n"},
        MalformedCase{"EmptyMethod", " /ready HTTP/1.1\r\nHost: x\r\n\r\n"},
        // Framings a proxy in front may read differently from us (request
        // smuggling), each let through by llhttp 8.1.
        MalformedCase{"ChunkDataWithoutCrlf",
                      "POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "2\r\n{}XX0\r\n\r\n"},
        MalformedCase{"ChunkSizeCrWithoutLf",
                      "POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "2\rX{}\r\n0\r\n\r\n"},
        MalformedCase{
            "ObsFoldedTransferEncoding",
            "POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"
            "2\r\n{}\r\n0\r\n\r\n"},
        MalformedCase{"EmptyHeaderName", "GET /ready HTTP/1.1\r\nHost: x\r\n: value\r\n\r\n"},
        MalformedCase{"Http11WithoutHost", "GET /ready HTTP/1.1\r\n\r\n"},
        MalformedCase{"TwoHosts", "GET /ready HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
        MalformedCase{
            "GzipThenChunked",
            "POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n"
            "\r\n2\r\n{}\r\n0\r\n\r\n"},
        MalformedCase{"TransferEncodingOnHttp10",
                      "POST /api/publish HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "2\r\n{}\r\n0\r\n\r\n"},
        MalformedCase{"BareLfAfterRequestLine", "GET /ready HTTP/1.1\nHost: x\r\n\r\n"}),
    [](const ::testing::TestParamInfo<MalformedCase>& info) {
      return std::string(info.param.name);
    });

TEST_F(HttpProtocolTest, RequestSmuggledAfterBadChunkFramingIsNotServed) {
  // Behind a proxy that takes "{}XX" as chunk data up to the next CRLF, the
  // bytes after it are the same request's body; llhttp alone would end the
  // request at "0\r\n\r\n" and serve what follows as a second request.
  const std::string id = Subscribe("smuggled");
  const std::string smuggled = FormatRequest("POST", "/api/publish", PublishBody("smuggled", "x"));
  auto client = Connect();
  ASSERT_TRUE(
      client->SendRaw(FormatRequest("GET", "/ready", "") +
                      "POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "2\r\n{}XX0\r\n\r\n" +
                      smuggled));
  HttpResponse response;
  ASSERT_TRUE(client->ReadResponse(&response)) << client->error();
  EXPECT_EQ(response.status, 204) << Describe(response);
  ASSERT_TRUE(client->ReadResponse(&response)) << client->error();
  EXPECT_EQ(response.status, 400) << Describe(response);
  EXPECT_TRUE(client->WaitForClose()) << client->error();
  EXPECT_TRUE(Fetch("smuggled", id).empty());
  ExpectNewConnectionsServed();
}

TEST_F(HttpProtocolTest, ValidRequestBeforeGarbageIsAnsweredFirst) {
  auto client = Connect();
  ASSERT_TRUE(client->SendRaw(FormatRequest("GET", "/ready", "") + "garbage garbage\r\n\r\n"));
  HttpResponse first;
  ASSERT_TRUE(client->ReadResponse(&first)) << client->error();
  EXPECT_EQ(first.status, 204) << Describe(first);
  HttpResponse second;
  ASSERT_TRUE(client->ReadResponse(&second)) << client->error();
  EXPECT_EQ(second.status, 400) << Describe(second);
  EXPECT_TRUE(client->WaitForClose()) << client->error();
  ExpectNewConnectionsServed();
}

TEST_F(HttpProtocolTest, ClientsVanishingMidRequestLeaveTheServerHealthy) {
  const std::string id = Subscribe("vanish");
  for (int i = 0; i < 20; ++i) {
    auto client = Connect();
    switch (i % 4) {
      case 0:  // half a request line
        client->SendRaw("POST /api/pub");
        break;
      case 1:  // headers promise a body that never comes
        client->SendRaw(
            "POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"sub");
        break;
      case 2:  // pipelined requests whose answers nobody reads
        for (int k = 0; k < 50; ++k) {
          // Another subject: these may still be running while the test goes on.
          client->SendRaw(FormatRequest("POST", "/api/publish", PublishBody("vanish.gone", "x")));
        }
        break;
      case 3:  // a chunked body cut short
        client->SendRaw(
            "POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            "10\r\n{\"su");
        break;
    }
    client->Close();
  }
  // The broker still serves, and nothing half-sent was published.
  PublishOk("vanish", "still here");
  EXPECT_EQ(Fetch("vanish", id), std::vector<std::string>{"still here"});
  ExpectNewConnectionsServed();
}

// --- Limits: 413 and 431 ---

class LimitsTest : public BrokerTest {
 protected:
  std::optional<BrokerOptions> Options() const override {
    BrokerOptions options;
    options.flags = {"--broker.max-body=1024", "--broker.max-header-bytes=2048"};
    return options;
  }
};

// A publish body of exactly `size` bytes.
std::string PublishBodyOfSize(std::string_view subject, std::size_t size) {
  const std::size_t overhead = PublishBody(subject, "").size();
  return PublishBody(subject, std::string(size - overhead, 'x'));
}

TEST_F(LimitsTest, BodyAtMaxBodyIsAccepted) {
  const std::string id = Subscribe("limit");
  const std::string body = PublishBodyOfSize("limit", 1024);
  ASSERT_EQ(body.size(), 1024u);
  EXPECT_TRUE(IsJsonResponse(Post("/api/publish", body), 200, kOkBody));
  const std::size_t data_size = body.size() - PublishBody("limit", "").size();
  EXPECT_EQ(Fetch("limit", id), std::vector<std::string>{std::string(data_size, 'x')});
}

TEST_F(LimitsTest, BodyOverMaxBodyIs413AndServerStaysHealthy) {
  const std::string id = Subscribe("limit");
  auto client = Connect();
  ASSERT_TRUE(
      client->SendRaw(FormatRequest("POST", "/api/publish", PublishBodyOfSize("limit", 1025))));
  HttpResponse response;
  ASSERT_TRUE(client->ReadResponse(&response)) << client->error();
  EXPECT_EQ(response.status, 413) << Describe(response);
  if (!response.body.empty()) {
    EXPECT_EQ(response.MediaType(), "application/json");
  }
  // Nothing was published, and the server is fine.
  EXPECT_TRUE(Fetch("limit", id).empty());
  PublishOk("limit", "small");
  EXPECT_EQ(Fetch("limit", id), std::vector<std::string>{"small"});
  ExpectNewConnectionsServed();
}

TEST_F(LimitsTest, AnnouncedOversizedBodyIs413WithoutWaitingForIt) {
  auto client = Connect();
  // Only the headers: the answer must not wait for a megabyte that never comes.
  ASSERT_TRUE(client->SendRaw(
      "POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n{\"subject\""));
  HttpResponse response;
  ASSERT_TRUE(client->ReadResponse(&response)) << client->error();
  EXPECT_EQ(response.status, 413) << Describe(response);
  ExpectNewConnectionsServed();
}

TEST_F(LimitsTest, OversizedBodyWithExpectContinueIs413) {
  auto client = Connect();
  ASSERT_TRUE(
      client->SendRaw("POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
                      "Expect: 100-continue\r\n\r\n"));
  HttpResponse response;
  ASSERT_TRUE(client->ReadResponse(&response)) << client->error();
  if (response.status == 100) {
    // Allowed, if wasteful: then the limit must catch the body.
    ASSERT_TRUE(client->SendRaw(std::string(5000, ' ')));
    ASSERT_TRUE(client->ReadResponse(&response)) << client->error();
  }
  EXPECT_EQ(response.status, 413) << Describe(response);
  ExpectNewConnectionsServed();
}

TEST_F(LimitsTest, ChunkedBodyGrowingOverMaxBodyIs413) {
  const std::string id = Subscribe("limit.chunked");
  auto client = Connect();
  std::string request =
      "POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string body = PublishBodyOfSize("limit.chunked", 1500);
  for (std::size_t offset = 0; offset < body.size(); offset += 100) {
    const std::string piece = body.substr(offset, 100);
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
    request += size + piece + "\r\n";
  }
  request += "0\r\n\r\n";
  ASSERT_TRUE(client->SendRaw(request));
  HttpResponse response;
  ASSERT_TRUE(client->ReadResponse(&response)) << client->error();
  EXPECT_EQ(response.status, 413) << Describe(response);
  EXPECT_TRUE(Fetch("limit.chunked", id).empty());
  PublishOk("limit.chunked", "small");
  ExpectNewConnectionsServed();
}

// A chunked body's framing gets the head's limit plus eight bytes per byte of
// data: a client cannot stream endless chunk extensions or trailers.
TEST_F(LimitsTest, EndlessChunkExtensionsAndTrailersAre413) {
  const std::string id = Subscribe("limit.framing");
  const std::string head =
      "POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string body = PublishBody("limit.framing", "x");
  char size[16];
  std::snprintf(size, sizeof size, "%zx", body.size());
  for (const std::string& request :
       {head + size + ";ext=" + std::string(16 << 10, 'e'),
        head + size + "\r\n" + body + "\r\n0\r\nX-Trailer: " + std::string(16 << 10, 't')}) {
    auto client = Connect();
    ASSERT_TRUE(client->SendRaw(request));
    HttpResponse response;
    ASSERT_TRUE(client->ReadResponse(&response)) << client->error();
    EXPECT_EQ(response.status, 413) << Describe(response);
  }
  EXPECT_TRUE(Fetch("limit.framing", id).empty());
  // Within the room, extensions and trailers are fine.
  auto client = Connect();
  ASSERT_TRUE(client->SendRaw(head + size + ";ext=" + std::string(1000, 'e') + "\r\n" + body +
                              "\r\n0\r\nX-Trailer: " + std::string(500, 't') + "\r\n\r\n"));
  HttpResponse response;
  ASSERT_TRUE(client->ReadResponse(&response)) << client->error();
  EXPECT_TRUE(IsJsonResponse(response, 200, kOkBody));
  EXPECT_EQ(Fetch("limit.framing", id), std::vector<std::string>{"x"});
  ExpectNewConnectionsServed();
}

TEST_F(LimitsTest, HeadersUnderMaxHeaderBytesAreAccepted) {
  const std::string id = Subscribe("headers.ok");
  const HttpResponse response = Call("POST", "/api/publish", PublishBody("headers.ok", "h"),
                                     "X-Padding: " + std::string(1000, 'p') + "\r\n");
  EXPECT_TRUE(IsJsonResponse(response, 200, kOkBody));
  EXPECT_EQ(Fetch("headers.ok", id), std::vector<std::string>{"h"});
}

TEST_F(LimitsTest, OneHugeHeaderIs431AndServerStaysHealthy) {
  auto client = Connect();
  ASSERT_TRUE(client->SendRaw(FormatRequest("POST", "/api/subscribe", SubscribeBody("h"),
                                            "X-Huge: " + std::string(5000, 'h') + "\r\n")));
  HttpResponse response;
  ASSERT_TRUE(client->ReadResponse(&response)) << client->error();
  EXPECT_EQ(response.status, 431) << Describe(response);
  if (!response.body.empty()) {
    EXPECT_EQ(response.MediaType(), "application/json");
  }
  EXPECT_FALSE(Subscribe("after.431").empty());
  ExpectNewConnectionsServed();
}

TEST_F(LimitsTest, ManyHeadersOverMaxHeaderBytesIs431) {
  auto client = Connect();
  std::string headers;
  for (int i = 0; i < 200; ++i) headers += "X-Header-" + std::to_string(i) + ": value\r\n";
  ASSERT_GT(headers.size(), 2048u);
  ASSERT_TRUE(client->SendRaw(FormatRequest("GET", "/ready", "", headers)));
  HttpResponse response;
  ASSERT_TRUE(client->ReadResponse(&response)) << client->error();
  EXPECT_EQ(response.status, 431) << Describe(response);
  EXPECT_FALSE(Subscribe("after.many.headers").empty());
  ExpectNewConnectionsServed();
}

TEST_F(LimitsTest, HugeRequestLineIsRefused) {
  auto client = Connect();
  ASSERT_TRUE(client->SendRaw("GET /" + std::string(5000, 'u') + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  HttpResponse response;
  ASSERT_TRUE(client->ReadResponse(&response)) << client->error();
  // 431 (the head is too large) or 414 (URI too long) both say what is wrong.
  EXPECT_TRUE(response.status == 431 || response.status == 414) << Describe(response);
  EXPECT_FALSE(Subscribe("after.long.uri").empty());
  ExpectNewConnectionsServed();
}

}  // namespace
}  // namespace gophermq::testing
