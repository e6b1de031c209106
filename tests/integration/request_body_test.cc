// Request bodies: what is refused as "request's body is invalid", what is
// accepted, and that message data survives the round trip byte for byte.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "test_support.h"

namespace gophermq::testing {
namespace {

using RequestBodyTest = BrokerTest;

struct BadBody {
  const char* name;
  const char* body;
};

// Bodies no endpoint may accept: not a JSON object, or a field of the wrong type.
const BadBody kBadForEveryEndpoint[] = {
    {"NotJson", "hello"},
    {"TruncatedObject", "{\"subject\":\"bad.body\""},
    {"TruncatedString", "{\"subject\":\"bad.bo"},
    {"OnlyOpenBrace", "{"},
    {"JsonString", "\"bad.body\""},
    {"JsonArray", "[\"bad.body\"]"},
    {"ArrayOfObject", "[{\"subject\":\"bad.body\"}]"},
    {"JsonNumber", "42"},
    {"JsonTrue", "true"},
    {"GarbageBeforeTheObject", "x{\"subject\":\"bad.body\"}"},
    {"SubjectNumber", "{\"subject\":7,\"data\":\"x\",\"id\":\"x\"}"},
    {"SubjectObject", "{\"subject\":{\"a\":1},\"data\":\"x\",\"id\":\"x\"}"},
    {"SubjectArray", "{\"subject\":[\"bad.body\"],\"data\":\"x\",\"id\":\"x\"}"},
    {"SingleQuotes", "{'subject':'bad.body'}"},
    {"UnquotedKey", "{subject:\"bad.body\"}"},
    {"TrailingComma", "{\"subject\":\"bad.body\",}"},
    {"BadEscapeInSubject", "{\"subject\":\"bad.b\\qody\",\"data\":\"x\",\"id\":\"x\"}"},
    // Invalid JSON even where the endpoint would skip the field.
    {"BadEscapeInUnknownField",
     "{\"subject\":\"bad.body\",\"data\":\"x\",\"id\":\"x\",\"zz\":\"\\q\"}"},
    {"BareWordInUnknownField",
     "{\"subject\":\"bad.body\",\"data\":\"x\",\"id\":\"x\",\"zz\":nope}"},
};

// Bodies only the publish endpoints refuse: `data` must be a string.
const BadBody kBadForPublish[] = {
    {"DataNumber", "{\"subject\":\"bad.body\",\"data\":5}"},
    {"DataObject", "{\"subject\":\"bad.body\",\"data\":{\"x\":\"y\"}}"},
    {"DataArray", "{\"subject\":\"bad.body\",\"data\":[\"x\"]}"},
    {"DataTrue", "{\"subject\":\"bad.body\",\"data\":true}"},
};

const BadBody kBadForFetch[] = {
    {"IdNumber", "{\"subject\":\"bad.body\",\"id\":5}"},
    {"IdArray", "{\"subject\":\"bad.body\",\"id\":[\"x\"]}"},
};

struct BadBodyCase {
  std::string path;
  BadBody body;
};

void PrintTo(const BadBodyCase& test_case, std::ostream* out) {
  *out << test_case.path << " " << test_case.body.body;
}

std::vector<BadBodyCase> AllBadBodyCases() {
  std::vector<BadBodyCase> cases;
  for (const char* path : {"/api/subscribe", "/api/publish", "/api/publish/async", "/api/fetch"}) {
    for (const BadBody& body : kBadForEveryEndpoint) cases.push_back({path, body});
  }
  for (const char* path : {"/api/publish", "/api/publish/async"}) {
    for (const BadBody& body : kBadForPublish) cases.push_back({path, body});
  }
  for (const BadBody& body : kBadForFetch) cases.push_back({"/api/fetch", body});
  return cases;
}

class BadBodyTest : public BrokerTest, public ::testing::WithParamInterface<BadBodyCase> {};

TEST_P(BadBodyTest, IsRefusedAsInvalidBody) {
  // A subscriber exists, so a publish that wrongly went through would answer 200.
  ASSERT_FALSE(Subscribe("bad.body").empty());
  const BadBodyCase& test_case = GetParam();
  EXPECT_TRUE(IsJsonResponse(Post(test_case.path, test_case.body.body), 400, kInvalidBodyBody))
      << "POST " << test_case.path << " " << test_case.body.body;
  // The HTTP framing was fine: the connection stays usable.
  EXPECT_EQ(Call("GET", "/ready").status, 204);
}

std::string BadBodyCaseName(const ::testing::TestParamInfo<BadBodyCase>& info) {
  std::string path = info.param.path.substr(5);  // drop "/api/"
  for (char& c : path) {
    if (c == '/') c = '_';
  }
  return path + "_" + info.param.body.name;
}

INSTANTIATE_TEST_SUITE_P(AllEndpoints, BadBodyTest, ::testing::ValuesIn(AllBadBodyCases()),
                         BadBodyCaseName);

TEST_F(RequestBodyTest, UnknownFieldsAreIgnored) {
  const HttpResponse subscribed =
      Post("/api/subscribe",
           "{\"extra\":{\"nested\":[1,2,{\"x\":null}]},\"subject\":\"extra\",\"n\":1}");
  const std::optional<SubscribeReply> reply = DecodeSubscribeReply(subscribed.body);
  ASSERT_TRUE(reply.has_value()) << Describe(subscribed);
  EXPECT_EQ(subscribed.status, 200);
  EXPECT_EQ(reply->subject, "extra");
  EXPECT_TRUE(IsJsonResponse(
      Post("/api/publish",
           "{\"id\":\"ignored\",\"subject\":\"extra\",\"data\":\"d\",\"more\":[true,false]}"),
      200, kOkBody));
  EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", "{\"data\":\"ignored\",\"id\":\"" + reply->id +
                                                    "\",\"subject\":\"extra\",\"z\":{}}"),
                             200, ExpectedFetchBody({"d"}, reply->id, "extra")));
}

// Go decodes a body into the endpoint's own struct: another endpoint's
// field, of whatever type, is as unknown to it as any other.
TEST_F(RequestBodyTest, AnotherEndpointsFieldIsIgnoredWhateverItsType) {
  const HttpResponse subscribed =
      Post("/api/subscribe", "{\"subject\":\"other\",\"data\":5,\"id\":7,\"wait_ms\":\"x\"}");
  const std::optional<SubscribeReply> reply = DecodeSubscribeReply(subscribed.body);
  ASSERT_TRUE(reply.has_value()) << Describe(subscribed);
  EXPECT_TRUE(IsJsonResponse(Post("/api/publish",
                                  "{\"subject\":\"other\",\"data\":\"d\",\"id\":7,"
                                  "\"group\":5,\"max_pending\":-1,\"seqs\":\"all\"}"),
                             200, kOkBody));
  EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", "{\"subject\":\"other\",\"id\":\"" + reply->id +
                                                    "\",\"data\":[],\"group\":{}}"),
                             200, ExpectedFetchBody({"d"}, reply->id, "other")));
  // Its own fields keep their types.
  EXPECT_TRUE(IsJsonResponse(Post("/api/subscribe", "{\"subject\":\"other\",\"group\":5}"), 400,
                             kInvalidBodyBody));
}

// Echo's binder reads the body with Go's json.Decoder, which decodes the
// first value and never reads what follows it.
TEST_F(RequestBodyTest, WhatFollowsTheObjectIsLeftUnread) {
  const std::string id = Subscribe("after");
  const std::string after[] = {" garbage",   std::string(1, '\0'), "{\"subject\":\"x\"}",
                               "\"unclosed", "\xff\xfe",           "}"};
  std::vector<std::string> sent;
  for (const std::string& tail : after) {
    sent.push_back("before " + std::to_string(sent.size()));
    EXPECT_TRUE(IsJsonResponse(Post("/api/publish", PublishBody("after", sent.back()) + tail), 200,
                               kOkBody))
        << JsonQuote(tail);
  }
  EXPECT_EQ(Fetch("after", id), sent);
}

TEST_F(RequestBodyTest, WhitespaceAroundJsonIsAccepted) {
  const std::string id = Subscribe("spaces");
  EXPECT_TRUE(IsJsonResponse(
      Post("/api/publish", " \r\n\t{ \"subject\" : \"spaces\" ,\n \"data\" : \"ws\" } \n\r\t "),
      200, kOkBody));
  EXPECT_EQ(Fetch("spaces", id), std::vector<std::string>{"ws"});
}

TEST_F(RequestBodyTest, MissingDataIsTheEmptyString) {
  const std::string id = Subscribe("no.data");
  EXPECT_TRUE(IsJsonResponse(Post("/api/publish", "{\"subject\":\"no.data\"}"), 200, kOkBody));
  EXPECT_TRUE(IsJsonResponse(Post("/api/fetch", FetchBody("no.data", id)), 200,
                             ExpectedFetchBody({""}, id, "no.data")));
}

TEST_F(RequestBodyTest, EmptyBodyIsAnInvalidSubject) {
  for (const char* path : {"/api/subscribe", "/api/publish", "/api/publish/async", "/api/fetch"}) {
    SCOPED_TRACE(path);
    EXPECT_TRUE(IsJsonResponse(Post(path, ""), 400, kInvalidSubjectBody));
  }
}

// Echo skips only a body of Content-Length 0; an empty chunked body goes to
// Go's decoder, which finds no JSON in it.
TEST_F(RequestBodyTest, AnEmptyChunkedBodyIsInvalid) {
  auto client = Connect();
  ASSERT_TRUE(client->SendRaw(
      "POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
      "POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"));
  HttpResponse chunked;
  ASSERT_TRUE(client->ReadResponse(&chunked));
  EXPECT_TRUE(IsJsonResponse(chunked, 400, kInvalidBodyBody));
  HttpResponse empty;
  ASSERT_TRUE(client->ReadResponse(&empty));
  EXPECT_TRUE(IsJsonResponse(empty, 400, kInvalidSubjectBody));
}

TEST_F(RequestBodyTest, BodyIsJsonWhateverTheContentType) {
  const std::string id = Subscribe("ctype");
  std::vector<std::string> sent;
  const char* content_types[] = {"Content-Type: application/json\r\n",
                                 "Content-Type: application/json; charset=utf-8\r\n",
                                 "Content-Type: text/plain\r\n",
                                 "Content-Type: application/x-www-form-urlencoded\r\n",
                                 "Content-Type: multipart/form-data; boundary=x\r\n",
                                 ""};
  for (const char* header : content_types) {
    SCOPED_TRACE(header);
    sent.push_back("via " + std::string(header));
    EXPECT_TRUE(IsJsonResponse(
        Call("POST", "/api/publish", PublishBody("ctype", sent.back()), header), 200, kOkBody));
    const HttpResponse subscribed =
        Call("POST", "/api/subscribe", SubscribeBody("ctype.other"), header);
    EXPECT_EQ(subscribed.status, 200) << Describe(subscribed);
  }
  const HttpResponse fetched =
      Call("POST", "/api/fetch", FetchBody("ctype", id), "Content-Type: text/plain\r\n");
  const std::optional<FetchReply> reply = DecodeFetchReply(fetched.body);
  ASSERT_TRUE(reply.has_value()) << Describe(fetched);
  EXPECT_EQ(reply->data, sent);
}

// --- Data round trip ---

struct DataCase {
  const char* name;
  std::string json_literal;  // the `data` value exactly as sent
  std::string decoded;       // what a JSON decoder makes of it
};

void PrintTo(const DataCase& test_case, std::ostream* out) { *out << test_case.name; }

std::string AllControlCharacters() {
  std::string text;
  for (int c = 1; c < 0x20; ++c) text += static_cast<char>(c);
  return text;
}

std::string AllControlCharactersEscaped() {
  std::string text;
  for (int c = 1; c < 0x20; ++c) {
    char escape[8];
    std::snprintf(escape, sizeof escape, "\\u%04X", c);
    text += escape;
  }
  return text;
}

// `text` between double quotes, as is (no escaping): a JSON literal for text
// that needs none.
std::string Quoted(std::string text) {
  text.insert(text.begin(), '"');
  text.push_back('"');
  return text;
}

std::string Big(std::size_t size) {
  std::string text;
  text.reserve(size);
  for (std::size_t i = 0; text.size() < size; ++i) text += static_cast<char>('a' + i % 26);
  return text;
}

std::vector<DataCase> DataCases() {
  const std::string e_acute = "\xc3\xa9";
  const std::string nihon = "\xe6\x97\xa5\xe6\x9c\xac";
  const std::string grinning = "\xf0\x9f\x98\x80";
  std::string many_e_acute;
  for (int i = 0; i < 32 * 1024; ++i) many_e_acute += e_acute;  // 64 KiB
  return {
      {"Plain", "\"hello world\"", "hello world"},
      {"Empty", "\"\"", ""},
      {"RawUtf8", Quoted(e_acute + " " + nihon + " " + grinning),
       e_acute + " " + nihon + " " + grinning},
      {"SurrogatePairEscape", "\"\\uD83D\\uDE00\"", grinning},
      {"BmpEscapes", "\"\\u00e9\\u00E9\\u65e5\\u672C\"", e_acute + e_acute + nihon},
      {"SimpleEscapes", "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"", "\" \\ / \b \f \n \r \t"},
      {"EscapedNul", "\"\\u0000\"", std::string(1, '\0')},
      {"NulInTheMiddle", "\"a\\u0000b\\u0000\"", std::string("a\0b\0", 4)},
      {"AllControlCharacters", Quoted(AllControlCharactersEscaped()), AllControlCharacters()},
      {"HtmlCharacters", "\"<script>a & b</script> '\"", "<script>a & b</script> '"},
      {"LineSeparators", "\"\xe2\x80\xa8\xe2\x80\xa9\"", "\xe2\x80\xa8\xe2\x80\xa9"},
      {"DeleteCharacter", "\"\x7f\"", "\x7f"},
      {"LooksLikeJson", "\"{\\\"data\\\":[1,2],\\\"id\\\":null}\"", "{\"data\":[1,2],\"id\":null}"},
      {"Big64KiB", Quoted(Big(64 * 1024)), Big(64 * 1024)},
      {"Big64KiBOfTwoByteCharacters", Quoted(many_e_acute), many_e_acute},
  };
}

class DataRoundTripTest : public BrokerTest, public ::testing::WithParamInterface<DataCase> {};

TEST_P(DataRoundTripTest, FetchReturnsExactlyWhatWasPublished) {
  const DataCase& data = GetParam();
  const std::string id = Subscribe("round.trip");
  ASSERT_FALSE(id.empty());
  // Twice, with a plain message between, so message boundaries are checked too.
  for (const char* path : {"/api/publish", "/api/publish"}) {
    EXPECT_TRUE(IsJsonResponse(
        Post(path, "{\"subject\":\"round.trip\",\"data\":" + data.json_literal + "}"), 200,
        kOkBody));
    PublishOk("round.trip", "between");
  }
  const HttpResponse fetched = Post("/api/fetch", FetchBody("round.trip", id));
  EXPECT_EQ(fetched.status, 200);
  EXPECT_EQ(fetched.MediaType(), "application/json");
  EXPECT_TRUE(fetched.body.ends_with("}\n"));
  const std::optional<FetchReply> reply = DecodeFetchReply(fetched.body);
  ASSERT_TRUE(reply.has_value()) << "not a valid fetch reply:\n" << Describe(fetched);
  const std::vector<std::string> expected = {data.decoded, "between", data.decoded, "between"};
  ASSERT_EQ(reply->data.size(), expected.size()) << Describe(fetched);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_TRUE(reply->data[i] == expected[i])
        << "message " << i << " differs: sent " << JsonQuote(expected[i]).substr(0, 300) << " got "
        << JsonQuote(reply->data[i]).substr(0, 300);
  }
}

TEST_P(DataRoundTripTest, AsyncPublishKeepsTheDataToo) {
  const DataCase& data = GetParam();
  const std::string id = Subscribe("round.trip.async");
  EXPECT_TRUE(
      IsJsonResponse(Post("/api/publish/async",
                          "{\"subject\":\"round.trip.async\",\"data\":" + data.json_literal + "}"),
                     200, kOkBody));
  std::vector<std::string> got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (got.empty() && std::chrono::steady_clock::now() < deadline) {
    got = Fetch("round.trip.async", id);
    if (HasFailure()) return;
  }
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0] == data.decoded) << "sent " << JsonQuote(data.decoded).substr(0, 300)
                                      << " got " << JsonQuote(got[0]).substr(0, 300);
}

INSTANTIATE_TEST_SUITE_P(Data, DataRoundTripTest, ::testing::ValuesIn(DataCases()),
                         [](const ::testing::TestParamInfo<DataCase>& info) {
                           return std::string(info.param.name);
                         });

TEST_F(RequestBodyTest, EscapedSubjectIsTheSameSubject) {
  // "a.b" written with escapes is still "a.b".
  const std::string id = Subscribe("a.b");
  EXPECT_TRUE(IsJsonResponse(
      Post("/api/publish", "{\"subject\":\"\\u0061\\u002e\\u0062\",\"data\":\"escaped\"}"), 200,
      kOkBody));
  EXPECT_EQ(Fetch("a.b", id), std::vector<std::string>{"escaped"});
}

}  // namespace
}  // namespace gophermq::testing
