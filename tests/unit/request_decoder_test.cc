// RequestDecoder: the request body {"subject","data","id"} decoded as Go's
// encoding/json decodes it into the original's request structs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gophermq/api/request_decoder.h"

namespace gophermq {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

constexpr std::size_t kPadding = simdjson::SIMDJSON_PADDING;

// Every field but a batch's: what most cases here decode.
const RequestFields kEveryField =
    RequestFields::of(Endpoint::publish) | RequestFields::of(Endpoint::subscribe) |
    RequestFields::of(Endpoint::fetch) | RequestFields::of(Endpoint::ack) |
    RequestFields::of(Endpoint::nack);

// What a decode produced, copied out of the decoder's buffer.
struct Fields {
  std::string subject;
  std::string data;
  std::string id;
};

// Decodes `body` from a heap buffer of exactly size + kPadding bytes (ASan
// then catches any read past the padding). The padding holds `after`
// repeated, standing in for whatever follows the body in a receive buffer.
std::optional<Fields> decode_with(RequestDecoder& decoder, std::string_view body,
                                  std::string_view after = "\0"sv,
                                  RequestFields fields = kEveryField) {
  const std::size_t capacity = body.size() + kPadding;
  auto buffer = std::make_unique<char[]>(capacity);
  std::memcpy(buffer.get(), body.data(), body.size());
  for (std::size_t i = body.size(); i < capacity; ++i) {
    buffer[i] = after[(i - body.size()) % after.size()];
  }
  const DecodedRequest* decoded = decoder.decode(buffer.get(), body.size(), capacity, fields);
  if (decoded == nullptr) return std::nullopt;
  const DecodedRequest& request = *decoded;
  return Fields{std::string(request.subject), std::string(request.data), std::string(request.id)};
}

std::optional<Fields> decode(std::string_view body) {
  RequestDecoder decoder;
  return decode_with(decoder, body);
}

// gtest prints a std::optional<Fields> through this.
void PrintTo(const Fields& fields, std::ostream* out) {
  *out << "{subject=\"" << fields.subject << "\" data=\"" << fields.data << "\" id=\"" << fields.id
       << "\"}";
}

MATCHER_P3(HasFields, subject, data, id, "") {
  return arg.has_value() && arg->subject == subject && arg->data == data && arg->id == id;
}

// --- The three fields -------------------------------------------------------

TEST(RequestDecoder, DecodesTheThreeFields) {
  EXPECT_THAT(decode(R"({"subject":"a.b","data":"hello","id":"0f1e"})"),
              HasFields("a.b", "hello", "0f1e"));
}

TEST(RequestDecoder, FieldsMayComeInAnyOrderWithWhitespace) {
  EXPECT_THAT(decode(" \n{ \"id\" : \"x\" ,\n\t\"data\":\"d\" , \"subject\" :\"s\"}\r\n"),
              HasFields("s", "d", "x"));
}

TEST(RequestDecoder, MissingFieldsAreEmpty) {
  EXPECT_THAT(decode("{}"), HasFields("", "", ""));
  EXPECT_THAT(decode(R"({"subject":"a"})"), HasFields("a", "", ""));
  EXPECT_THAT(decode(R"({"data":"d"})"), HasFields("", "d", ""));
}

TEST(RequestDecoder, EmptyStringsAreKept) {
  EXPECT_THAT(decode(R"({"subject":"","data":"","id":""})"), HasFields("", "", ""));
}

// --- Strings ----------------------------------------------------------------

TEST(RequestDecoder, UnescapesShortEscapes) {
  EXPECT_THAT(decode(R"({"data":"\"\\\/\b\f\n\r\t"})"), HasFields("", "\"\\/\b\f\n\r\t", ""));
}

TEST(RequestDecoder, UnescapesUnicodeEscapes) {
  EXPECT_THAT(decode(R"({"data":"caf\u00e9"})"), HasFields("", "caf\xc3\xa9", ""));
  // Upper-case hex digits are valid in an escape.
  EXPECT_THAT(decode(R"({"data":"\u20AC"})"), HasFields("", "\xe2\x82\xac", ""));
  // \u0000 is a real NUL byte inside the data, not its end.
  EXPECT_THAT(decode(R"({"data":"a\u0000b"})"), HasFields("", "a\0b"s, ""));
  // A surrogate pair is one code point, written as 4 bytes of UTF-8.
  EXPECT_THAT(decode(R"({"data":"\ud83d\ude00"})"), HasFields("", "\xf0\x9f\x98\x80", ""));
}

TEST(RequestDecoder, UnescapesEscapesInKeysAndSubject) {
  // "sub\u006aect" is "subject".
  EXPECT_THAT(decode(R"({"sub\u006aect":"a\u002eb"})"), HasFields("a.b", "", ""));
}

TEST(RequestDecoder, KeepsRawUtf8) {
  const std::string text = "\xe6\x97\xa5\xe6\x9c\xac \xc3\xa9 \xf0\x9f\x98\x80 \x7f";
  EXPECT_THAT(decode("{\"subject\":\""s + text + "\",\"data\":\"" + text + "\"}"),
              HasFields(text, text, ""));
}

// A string without escapes is handed out as a view of the body itself, so a
// publish copies its payload only once, into the message; one with escapes
// is unescaped elsewhere. Either way the text is the same.
TEST(RequestDecoder, AStringWithoutEscapesIsAViewOfTheBodyItself) {
  RequestDecoder decoder;
  auto in_body = [](std::string_view field, const std::string& body) {
    return field.data() >= body.data() && field.data() + field.size() <= body.data() + body.size();
  };
  std::string body = R"({"subject" : "orders.eu" , "data":"plain text \u00e9 \t"})";
  body.reserve(body.size() + kPadding);
  const DecodedRequest* decoded =
      decoder.decode(body.data(), body.size(), body.capacity(), kEveryField);
  ASSERT_NE(decoded, nullptr);
  const DecodedRequest& request = *decoded;
  EXPECT_EQ(request.subject, "orders.eu");
  EXPECT_TRUE(in_body(request.subject, body));
  EXPECT_EQ(request.data, "plain text \xc3\xa9 \t");
  EXPECT_FALSE(in_body(request.data, body));

  std::string spaced = "{\"data\": \"x\"  ,\"subject\":\"s\"\n}";
  spaced.reserve(spaced.size() + kPadding);
  ASSERT_EQ(decoder.decode(spaced.data(), spaced.size(), spaced.capacity(), kEveryField), decoded)
      << "the decoder's own request, decoded afresh";
  EXPECT_EQ(request.data, "x");
  EXPECT_TRUE(in_body(request.data, spaced));
  EXPECT_EQ(request.subject, "s");
}

TEST(RequestDecoder, RefusesBadEscapes) {
  for (std::string_view body :
       {R"({"data":"\x"})"sv, R"({"data":"\u12"})"sv, R"({"data":"\u12g4"})"sv,
        R"({"data":"\U0041"})"sv, R"({"data":"\'"})"sv}) {
    EXPECT_EQ(decode(body), std::nullopt) << body;
  }
}

TEST(RequestDecoder, RefusesRawControlCharactersInStrings) {
  // Go: "invalid character '\t' in string literal".
  EXPECT_EQ(decode("{\"data\":\"a\tb\"}"), std::nullopt);
  EXPECT_EQ(decode("{\"data\":\"a\nb\"}"), std::nullopt);
  EXPECT_EQ(decode("{\"data\":\"a\x01"
                   "b\"}"),
            std::nullopt);
  EXPECT_EQ(decode("{\"x\":\"a\x1f"
                   "b\",\"data\":\"d\"}"),
            std::nullopt);
}

TEST(RequestDecoder, DecodesA64KiBDataString) {
  std::string data(64 << 10, 'x');
  for (std::size_t i = 0; i < data.size(); i += 997) data[i] = static_cast<char>('a' + i % 26);
  EXPECT_THAT(decode(R"({"subject":"big","data":")"s + data + R"("})"), HasFields("big", data, ""));
}

TEST(RequestDecoder, DecodesA64KiBDataStringFullOfEscapes) {
  std::string escaped;
  std::string expected;
  while (expected.size() < (64 << 10)) {
    escaped += R"(\n\u00e9\"x)";
    expected += "\n\xc3\xa9\"x";
  }
  EXPECT_THAT(decode(R"({"data":")"s + escaped + R"("})"), HasFields("", expected, ""));
}

// --- Unknown fields ---------------------------------------------------------

TEST(RequestDecoder, IgnoresUnknownFieldsOfEveryType) {
  EXPECT_THAT(decode(R"({"s":"text","subject":"a","n":-1.5e3,"i":0,"f":12.25E-2,)"
                     R"("big":123456789012345678901234567890123456789,"t":true,"no":false,)"
                     R"("z":null,"o":{"k":[1,{"deep":null}],"e":{}},"arr":[],)"
                     R"("mixed":[1,"two",[3],{"four":4},true,null],"data":"d"})"),
              HasFields("a", "d", ""));
}

TEST(RequestDecoder, IgnoresFieldsWhoseNamesOnlyResembleKnownOnes) {
  EXPECT_THAT(decode(R"({"subjects":1,"subjec":2,"ids":{},"dat":[],"data_":true})"),
              HasFields("", "", ""));
}

TEST(RequestDecoder, RefusesInvalidJsonInsideAnIgnoredField) {
  // Go's decoder checks the whole text before it fills any field.
  for (std::string_view body : {
           R"({"subject":"a","x":[tru]})"sv,    R"({"subject":"a","x":nul})"sv,
           R"({"subject":"a","x":fals})"sv,     R"({"subject":"a","x":truex})"sv,
           R"({"subject":"a","x":01})"sv,       R"({"subject":"a","x":1.})"sv,
           R"({"subject":"a","x":.5})"sv,       R"({"subject":"a","x":-})"sv,
           R"({"subject":"a","x":+1})"sv,       R"({"subject":"a","x":1e})"sv,
           R"({"subject":"a","x":1e+})"sv,      R"({"subject":"a","x":0x10})"sv,
           R"({"subject":"a","x":NaN})"sv,      R"({"subject":"a","x":Infinity})"sv,
           R"({"subject":"a","x":"\q"})"sv,     R"({"subject":"a","x":{"k" 1}})"sv,
           R"({"subject":"a","x":{k:1}})"sv,    R"({"subject":"a","x":[1,]})"sv,
           R"({"subject":"a","x":[1 2]})"sv,    R"({"subject":"a","x":['s']})"sv,
           R"({"subject":"a","x":{"k":1,}})"sv, R"({"subject":"a","x":}})"sv,
       }) {
    EXPECT_EQ(decode(body), std::nullopt) << body;
  }
}

TEST(RequestDecoder, AcceptsEveryNumberFormGoAccepts) {
  for (std::string_view number :
       {"0"sv, "-0"sv, "7"sv, "-12"sv, "1.5"sv, "0.001"sv, "1e5"sv, "1E5"sv, "1e+5"sv, "1e-5"sv,
        "-2.5E-10"sv, "99999999999999999999999999999999"sv}) {
    EXPECT_THAT(decode(R"({"n":)"s + std::string(number) + R"(,"subject":"a"})"),
                HasFields("a", "", ""))
        << number;
  }
}

TEST(RequestDecoder, AcceptsModeratelyNestedIgnoredValues) {
  // Go accepts nesting up to 10000 levels.
  const int depth = 500;
  EXPECT_THAT(decode(R"({"x":)"s + std::string(depth, '[') + std::string(depth, ']') +
                     R"(,"subject":"a"})"),
              HasFields("a", "", ""));
}

// A body nested deeper than Go allows must be refused, not crash the broker.
// Run in a child process so a crash fails this test rather than the suite.
void expect_nested_body_refused(int depth) {
  const std::string body =
      R"({"x":)"s + std::string(depth, '[') + std::string(depth, ']') + R"(,"subject":"a"})";
  EXPECT_EXIT(
      {
        RequestDecoder decoder;
        std::exit(decode_with(decoder, body).has_value() ? 1 : 0);
      },
      ::testing::ExitedWithCode(0), "")
      << "depth " << depth << " (" << body.size() << " bytes) was accepted, or crashed";
}

TEST(RequestDecoderDeathTest, RefusesNestingDeeperThanGoAllows) {
  // Go's encoding/json refuses more than 10000 levels ("exceeded max depth").
  expect_nested_body_refused(20000);
}

TEST(RequestDecoderDeathTest, RefusesDeepNestingWithinTheBodyLimitWithoutCrashing) {
  // 500000 levels is a 1 MB body: within the default 1 MiB body limit.
  expect_nested_body_refused(500000);
}

// --- Keys -------------------------------------------------------------------

TEST(RequestDecoder, MatchesKeysCaseInsensitively) {
  EXPECT_THAT(decode(R"({"Subject":"s","DATA":"d","iD":"i"})"), HasFields("s", "d", "i"));
  EXPECT_THAT(decode(R"({"SUBJECT":"s","Data":"d","ID":"i"})"), HasFields("s", "d", "i"));
}

TEST(RequestDecoder, LastDuplicateWins) {
  EXPECT_THAT(decode(R"({"subject":"a","subject":"b"})"), HasFields("b", "", ""));
  // Keys equal but for case are the same field.
  EXPECT_THAT(decode(R"({"Subject":"a","data":"1","subject":"b","DATA":"2"})"),
              HasFields("b", "2", ""));
}

TEST(RequestDecoder, NullLeavesAFieldUnset) {
  EXPECT_THAT(decode(R"({"subject":null,"data":null,"id":null})"), HasFields("", "", ""));
  // null after a value does not clear it (Go: null into a string is a no-op).
  EXPECT_THAT(decode(R"({"subject":"a","subject":null,"data":"d","data":null})"),
              HasFields("a", "d", ""));
}

// --- Wrong shapes -----------------------------------------------------------

TEST(RequestDecoder, RefusesKnownFieldsOfTheWrongType) {
  for (std::string_view body : {
           R"({"subject":1})"sv,
           R"({"subject":true})"sv,
           R"({"subject":["a"]})"sv,
           R"({"subject":{"a":1}})"sv,
           R"({"data":{}})"sv,
           R"({"data":{"x":"y"}})"sv,
           R"({"data":[]})"sv,
           R"({"data":["x"]})"sv,
           R"({"data":true})"sv,
           R"({"data":false})"sv,
           R"({"data":0})"sv,
           R"({"id":1})"sv,
           R"({"id":{}})"sv,
           R"({"id":["0f1e"]})"sv,
           R"({"subject":"a","data":"d","id":5})"sv,
       }) {
    EXPECT_EQ(decode(body), std::nullopt) << body;
  }
}

// --- Integer fields of the extensions ---------------------------------------

// inactive_threshold_ms of `body`, kUnset when absent or null; nullopt when
// the body is refused.
std::optional<std::uint64_t> inactive_threshold_of(std::string_view body) {
  std::string padded(body);
  padded.append(kPadding, '\0');
  RequestDecoder decoder;
  const DecodedRequest* decoded =
      decoder.decode(padded.data(), body.size(), padded.size(), kEveryField);
  if (decoded == nullptr) return std::nullopt;
  const DecodedRequest& request = *decoded;
  return request.inactive_threshold_ms;
}

TEST(RequestDecoder, ReadsANonNegativeIntegerField) {
  EXPECT_EQ(inactive_threshold_of(R"({"subject":"a","inactive_threshold_ms":30000})"), 30000u);
  EXPECT_EQ(inactive_threshold_of(R"({"inactive_threshold_ms":0})"), 0u);
  EXPECT_EQ(inactive_threshold_of(R"({"Inactive_Threshold_MS":7})"), 7u)
      << "keys as Go matches them";
  EXPECT_EQ(inactive_threshold_of(R"({"subject":"a"})"), DecodedRequest::kUnset);
  EXPECT_EQ(inactive_threshold_of(R"({"inactive_threshold_ms":null})"), DecodedRequest::kUnset);
  EXPECT_EQ(inactive_threshold_of(R"({"inactive_threshold_ms":18446744073709551614})"),
            18446744073709551614u);
  // The largest unsigned 64-bit value is one, read as one less (the largest
  // marks an absent field).
  EXPECT_EQ(inactive_threshold_of(R"({"inactive_threshold_ms":18446744073709551615})"),
            18446744073709551614u);
}

TEST(RequestDecoder, RefusesAnIntegerFieldThatIsNotANonNegativeInteger) {
  for (std::string_view body : {
           R"({"inactive_threshold_ms":-1})"sv,
           R"({"inactive_threshold_ms":1.5})"sv,
           R"({"inactive_threshold_ms":1e3})"sv,
           R"({"inactive_threshold_ms":"300"})"sv,
           R"({"inactive_threshold_ms":true})"sv,
           R"({"inactive_threshold_ms":[1]})"sv,
           R"({"inactive_threshold_ms":18446744073709551616})"sv,
       }) {
    EXPECT_EQ(inactive_threshold_of(body), std::nullopt) << body;
  }
}

// The acknowledgement fields: seqs as a list, through and the others as
// counts; nullopt when the body is refused.
struct AckFields {
  std::vector<std::uint64_t> seqs;
  bool has_seqs;
  std::uint64_t through;
  std::uint64_t delay_ms;
  std::uint64_t ack_wait_ms;
  std::string dead_letter_subject;
};
std::optional<AckFields> ack_fields_of(RequestDecoder& decoder, std::string_view body) {
  std::string padded(body);
  padded.append(kPadding, '\0');
  const DecodedRequest* decoded =
      decoder.decode(padded.data(), body.size(), padded.size(), kEveryField);
  if (decoded == nullptr) return std::nullopt;
  const DecodedRequest& request = *decoded;
  return AckFields{{request.seqs.begin(), request.seqs.end()},
                   request.has_seqs,
                   request.through,
                   request.delay_ms,
                   request.ack_wait_ms,
                   std::string(request.dead_letter_subject)};
}

TEST(RequestDecoder, ReadsTheAcknowledgementFields) {
  RequestDecoder decoder;
  auto fields = ack_fields_of(
      decoder, R"({"seqs":[3,1,18446744073709551614],"through":9,"delay_ms":0,"ack_wait_ms":500,)"
               R"("dead_letter_subject":"dlq.orders"})");
  ASSERT_TRUE(fields);
  EXPECT_EQ(fields->seqs, (std::vector<std::uint64_t>{3, 1, 18446744073709551614u}));
  EXPECT_TRUE(fields->has_seqs);
  EXPECT_EQ(fields->through, 9u);
  EXPECT_EQ(fields->delay_ms, 0u);
  EXPECT_EQ(fields->ack_wait_ms, 500u);
  EXPECT_EQ(fields->dead_letter_subject, "dlq.orders");
  // The next body's list is its own: absent, null, empty, or the last duplicate.
  fields = ack_fields_of(decoder, R"({"through":1})");
  ASSERT_TRUE(fields);
  EXPECT_TRUE(fields->seqs.empty());
  EXPECT_FALSE(fields->has_seqs);
  EXPECT_EQ(fields->delay_ms, DecodedRequest::kUnset);
  fields = ack_fields_of(decoder, R"({"seqs":null})");
  ASSERT_TRUE(fields);
  EXPECT_FALSE(fields->has_seqs);
  fields = ack_fields_of(decoder, R"({"seqs":[]})");
  ASSERT_TRUE(fields);
  EXPECT_TRUE(fields->has_seqs);
  EXPECT_TRUE(fields->seqs.empty());
  fields = ack_fields_of(decoder, R"({"seqs":[1,2],"SEQS":[7]})");
  ASSERT_TRUE(fields);
  EXPECT_EQ(fields->seqs, std::vector<std::uint64_t>{7});
}

TEST(RequestDecoder, TellsAnEmptyGroupFromAnAbsentOne) {
  RequestDecoder decoder;
  auto group_of = [&decoder](std::string_view body) {
    std::string padded(body);
    padded.append(kPadding, '\0');
    const DecodedRequest* request =
        decoder.decode(padded.data(), body.size(), padded.size(), kEveryField);
    EXPECT_NE(request, nullptr) << body;
    if (request == nullptr) return std::pair(false, std::string("refused"));
    return std::pair(request->group.data() != nullptr, std::string(request->group));
  };
  EXPECT_EQ(group_of(R"({"subject":"s"})"), std::pair(false, std::string()));
  EXPECT_EQ(group_of(R"({"group":null})"), std::pair(false, std::string()));
  EXPECT_EQ(group_of(R"({"group":""})"), std::pair(true, std::string()));
  EXPECT_EQ(group_of(R"({"Group":"w\u00e9"})"), std::pair(true, std::string("w\xc3\xa9")));
}

TEST(RequestDecoder, ReadsTheWildcardFlag) {
  RequestDecoder decoder;
  // The flag, or nullopt when the body is invalid.
  auto wildcard_of = [&decoder](std::string_view body) -> std::optional<bool> {
    std::string padded(body);
    padded.append(kPadding, '\0');
    const DecodedRequest* decoded =
        decoder.decode(padded.data(), body.size(), padded.size(), kEveryField);
    if (decoded == nullptr) return std::nullopt;
    const DecodedRequest& request = *decoded;
    return request.wildcard;
  };
  EXPECT_EQ(wildcard_of(R"({"subject":"a.*"})"), false);
  EXPECT_EQ(wildcard_of(R"({"wildcard":true})"), true);
  EXPECT_EQ(wildcard_of(R"({"Wildcard":false})"), false);
  EXPECT_EQ(wildcard_of(R"({"wildcard":true,"wildcard":null})"), true) << "null leaves it";
  EXPECT_EQ(wildcard_of(R"({"wildcard":true,"WILDCARD":false})"), false) << "the last wins";
  for (std::string_view body : {R"({"wildcard":"true"})"sv, R"({"wildcard":1})"sv,
                                R"({"wildcard":[true]})"sv, R"({"wildcard":{}})"sv}) {
    EXPECT_EQ(wildcard_of(body), std::nullopt) << body;
  }
}

TEST(RequestDecoder, RefusesSeqsThatAreNotAListOfNonNegativeIntegers) {
  RequestDecoder decoder;
  for (std::string_view body : {
           R"({"seqs":1})"sv,
           R"({"seqs":"1"})"sv,
           R"({"seqs":[1,-2]})"sv,
           R"({"seqs":[1.5]})"sv,
           R"({"seqs":[null]})"sv,
           R"({"seqs":[[1]]})"sv,
           R"({"seqs":[1,]})"sv,
           R"({"seqs":[18446744073709551616]})"sv,
       }) {
    EXPECT_EQ(ack_fields_of(decoder, body).has_value(), false) << body;
  }
  // The largest unsigned 64-bit value is one (read as one less).
  const auto largest = ack_fields_of(decoder, R"({"seqs":[18446744073709551615]})");
  ASSERT_TRUE(largest.has_value());
  EXPECT_EQ(largest->seqs, std::vector<std::uint64_t>{18446744073709551614u});
}

TEST(RequestDecoder, RefusesADocumentThatIsNotAnObject) {
  for (std::string_view body : {R"("a")"sv, "[]"sv, R"([{"subject":"a"}])"sv, "1"sv, "-0.5"sv,
                                "true"sv, "false"sv, "hello"sv, "}"sv, "]"sv, ","sv, ":"sv}) {
    EXPECT_EQ(decode(body), std::nullopt) << body;
  }
}

TEST(RequestDecoder, AcceptsANullDocumentAsEmpty) {
  EXPECT_THAT(decode("null"), HasFields("", "", ""));
  EXPECT_THAT(decode(" null \r\n"), HasFields("", "", ""));
}

TEST(RequestDecoder, AcceptsAnEmptyBodyAsEmpty) {
  // The original's binder skips a body of length 0.
  RequestDecoder decoder;
  ASSERT_THAT(decode_with(decoder, R"({"subject":"s","data":"d","id":"i"})"),
              HasFields("s", "d", "i"));
  alignas(64) static const char kPadding64[kPadding] = {};
  const DecodedRequest* request = decoder.decode(kPadding64, 0, sizeof kPadding64, kEveryField);
  ASSERT_NE(request, nullptr);
  EXPECT_TRUE(request->subject.empty()) << "nothing of the request before";
  EXPECT_TRUE(request->data.empty());
  EXPECT_TRUE(request->id.empty());
}

TEST(RequestDecoder, RefusesAWhitespaceOnlyBody) {
  for (std::string_view body : {" "sv, "\n"sv, "\r\n"sv, " \t\r\n "sv}) {
    EXPECT_EQ(decode(body), std::nullopt) << '"' << body << '"';
  }
}

TEST(RequestDecoder, RefusesTruncatedJson) {
  for (std::string_view body : {
           "{"sv,
           R"({")"sv,
           R"({"subject)"sv,
           R"({"subject")"sv,
           R"({"subject":)"sv,
           R"({"subject":"a)"sv,
           R"({"subject":"a\)"sv,
           R"({"subject":"a")"sv,
           R"({"subject":"a",)"sv,
           R"({"subject":"a","x":[1,2)"sv,
           R"({"subject":"a","x":{"y":1})"sv,
           R"({"subject":"a","x":tr)"sv,
           R"({"subject":"a","x":12)"sv,
           "nul"sv,
       }) {
    EXPECT_EQ(decode(body), std::nullopt) << body;
  }
}

TEST(RequestDecoder, RefusesMalformedObjects) {
  for (std::string_view body : {
           R"({"subject":"a",})"sv,
           R"({,})"sv,
           R"({"subject" "a"})"sv,
           R"({"subject"::"a"})"sv,
           R"({subject:"a"})"sv,
           R"({'subject':'a'})"sv,
           R"({"subject":"a""data":"b"})"sv,
           R"({"subject":"a",,"data":"b"})"sv,
           R"({1:"a"})"sv,
           R"({]})"sv,
           R"({"subject":"a"])"sv,
       }) {
    EXPECT_EQ(decode(body), std::nullopt) << body;
  }
}

TEST(RequestDecoder, RefusesAByteOrderMark) {
  // Go: "invalid character 'ï' looking for beginning of value".
  EXPECT_EQ(decode("\xef\xbb\xbf{\"subject\":\"a\"}"), std::nullopt);
}

// Echo's binder reads a body with Go's json.Decoder, which decodes the first
// value and leaves the rest unread, however broken: a C client's trailing
// NUL, a second object, an unclosed string or invalid UTF-8 after it.
TEST(RequestDecoder, WhatFollowsTheFirstValueIsLeftUnread) {
  for (std::string_view body : {
           R"({"subject":"a"}x)"sv,
           R"({"subject":"a"} x)"sv,
           R"({"subject":"a"}{})"sv,
           R"({"subject":"a"}})"sv,
           R"({"subject":"a"}])"sv,
           R"({"subject":"a"},)"sv,
           R"({"subject":"a"}"x")"sv,
           R"({"subject":"a"}"unclosed)"sv,
           R"({"subject":"a"} 1)"sv,
           R"({"subject":"a"} null)"sv,
           "{\"subject\":\"a\"}\0"sv,
           "{\"subject\":\"a\"}\x01\"\t\""sv,
           "{\"subject\":\"a\"}\xff\xfe"sv,
           R"( {"subject":"a","x":{"y":"}"}} tail)"sv,
       }) {
    EXPECT_THAT(decode(body), HasFields("a", "", "")) << body;
  }
  EXPECT_THAT(decode(R"({}[])"), HasFields("", "", ""));
  EXPECT_THAT(decode("null x"), HasFields("", "", ""));
  EXPECT_THAT(decode("null null"), HasFields("", "", ""));
  EXPECT_THAT(decode("null\"open"), HasFields("", "", ""));
  // Invalid UTF-8 inside the value is still repaired as Go repairs it.
  EXPECT_THAT(decode("{\"subject\":\"a\",\"data\":\"\xff\"}\"open"),
              HasFields("a", "\xef\xbf\xbd", ""));
}

TEST(RequestDecoder, AValueThatNeverEndsIsStillRefused) {
  for (std::string_view body : {
           R"({"subject":"a")"sv,
           R"({"subject":"a}x)"sv,
           R"({"subject":"a\"}x)"sv,
           R"({"subject":"a","x":[1})"sv,
           R"(x{"subject":"a"})"sv,
           R"("x"{"subject":"a"})"sv,
           "nul"sv,
       }) {
    EXPECT_EQ(decode(body), std::nullopt) << body;
  }
}

// --- Each endpoint's fields -------------------------------------------------

// `body` decoded as `endpoint`'s: its subject, data and id, or nullopt.
std::optional<Fields> decode_as(Endpoint endpoint, std::string_view body) {
  RequestDecoder decoder;
  return decode_with(decoder, body, "\0"sv, RequestFields::of(endpoint));
}

// Go decodes a body into the endpoint's own struct: a key it lacks is
// ignored whatever its type (it must still be JSON).
TEST(RequestDecoder, AFieldTheEndpointDoesNotReadIsIgnoredWhateverItsType) {
  EXPECT_THAT(decode_as(Endpoint::publish, R"({"subject":"s","data":"d","id":7})"),
              HasFields("s", "d", ""));
  EXPECT_THAT(decode_as(Endpoint::publish,
                        R"({"subject":"s","data":"d","wait_ms":"soon","group":[1],"seqs":-1})"),
              HasFields("s", "d", ""));
  EXPECT_THAT(decode_as(Endpoint::subscribe, R"({"subject":"s","data":5,"id":{"a":1}})"),
              HasFields("s", "", ""));
  EXPECT_THAT(decode_as(Endpoint::fetch, R"({"subject":"s","id":"i","data":[],"max_pending":-3})"),
              HasFields("s", "", "i"));
  EXPECT_THAT(decode_as(Endpoint::unsubscribe, R"({"subject":"s","id":"i","data":null})"),
              HasFields("s", "", "i"));
  EXPECT_THAT(decode_as(Endpoint::publish_batch, R"({"subject":"s","data":["a"],"id":1})"),
              HasFields("s", "", ""));
  EXPECT_THAT(decode_as(Endpoint::ack, R"({"subject":"s","id":"i","seqs":[1],"delay_ms":"x"})"),
              HasFields("s", "", "i"));
  EXPECT_THAT(decode_as(Endpoint::nack, R"({"subject":"s","id":"i","seqs":[1],"through":-1})"),
              HasFields("s", "", "i"));
  // Ignored, but walked: it must be JSON.
  EXPECT_EQ(decode_as(Endpoint::publish, R"({"subject":"s","id":[tru]})"), std::nullopt);
  EXPECT_EQ(decode_as(Endpoint::subscribe, R"({"subject":"s","data":01})"), std::nullopt);
}

TEST(RequestDecoder, AFieldTheEndpointReadsMustHaveItsType) {
  EXPECT_EQ(decode_as(Endpoint::publish, R"({"subject":"s","data":5})"), std::nullopt);
  EXPECT_EQ(decode_as(Endpoint::publish, R"({"subject":1,"data":"d"})"), std::nullopt);
  EXPECT_EQ(decode_as(Endpoint::fetch, R"({"subject":"s","id":7})"), std::nullopt);
  EXPECT_EQ(decode_as(Endpoint::fetch, R"({"subject":"s","id":"i","wait_ms":"1"})"), std::nullopt);
  EXPECT_EQ(decode_as(Endpoint::subscribe, R"({"subject":"s","max_pending":-1})"), std::nullopt);
  EXPECT_EQ(decode_as(Endpoint::ack, R"({"subject":"s","id":"i","seqs":"1"})"), std::nullopt);
}

TEST(RequestDecoder, AFieldTheEndpointDoesNotReadStaysUnset) {
  RequestDecoder decoder;
  const std::string body =
      R"({"subject":"s","data":"d","max_pending":3,"wait_ms":9,"group":"g","seqs":[1],)"
      R"("wildcard":true,"id":"i"})" +
      std::string(kPadding, '\0');
  const std::size_t size = body.size() - kPadding;
  const DecodedRequest* publish =
      decoder.decode(body.data(), size, body.size(), RequestFields::of(Endpoint::publish));
  ASSERT_NE(publish, nullptr);
  EXPECT_EQ(publish->data, "d");
  EXPECT_EQ(publish->max_pending, DecodedRequest::kUnset);
  EXPECT_EQ(publish->wait_ms, DecodedRequest::kUnset);
  EXPECT_EQ(publish->group.data(), nullptr);
  EXPECT_FALSE(publish->has_seqs);
  EXPECT_FALSE(publish->wildcard);
  EXPECT_TRUE(publish->id.empty());
  const DecodedRequest* subscribe =
      decoder.decode(body.data(), size, body.size(), RequestFields::of(Endpoint::subscribe));
  ASSERT_NE(subscribe, nullptr);
  EXPECT_TRUE(subscribe->data.empty());
  EXPECT_EQ(subscribe->max_pending, 3u);
  EXPECT_EQ(subscribe->group, "g");
  EXPECT_TRUE(subscribe->wildcard);
  EXPECT_EQ(subscribe->wait_ms, DecodedRequest::kUnset);
  const DecodedRequest* fetch =
      decoder.decode(body.data(), size, body.size(), RequestFields::of(Endpoint::fetch));
  ASSERT_NE(fetch, nullptr);
  EXPECT_EQ(fetch->wait_ms, 9u);
  EXPECT_EQ(fetch->id, "i");
  EXPECT_EQ(fetch->max_pending, DecodedRequest::kUnset);
  const DecodedRequest* ack =
      decoder.decode(body.data(), size, body.size(), RequestFields::of(Endpoint::ack));
  ASSERT_NE(ack, nullptr);
  EXPECT_TRUE(ack->has_seqs);
  EXPECT_EQ(ack->wait_ms, DecodedRequest::kUnset);
  const std::string settle =
      R"({"seqs":[2],"through":5,"delay_ms":7})" + std::string(kPadding, '\0');
  const std::size_t settle_size = settle.size() - kPadding;
  ack = decoder.decode(settle.data(), settle_size, settle.size(), RequestFields::of(Endpoint::ack));
  ASSERT_NE(ack, nullptr);
  EXPECT_EQ(ack->through, 5u);
  EXPECT_EQ(ack->delay_ms, DecodedRequest::kUnset);
  const DecodedRequest* nack =
      decoder.decode(settle.data(), settle_size, settle.size(), RequestFields::of(Endpoint::nack));
  ASSERT_NE(nack, nullptr);
  EXPECT_EQ(nack->delay_ms, 7u);
  EXPECT_EQ(nack->through, DecodedRequest::kUnset);
}

TEST(RequestDecoder, AcceptsSurroundingWhitespace) {
  EXPECT_THAT(decode("{\"subject\":\"a\"} \t\r\n"), HasFields("a", "", ""));
  EXPECT_THAT(decode(" \t\r\n{\"subject\":\"a\"}"), HasFields("a", "", ""));
}

// --- The buffer around the body ----------------------------------------------

TEST(RequestDecoder, ReadsNothingPastTheBodySize) {
  // In a receive buffer the body is followed by whatever came next (a
  // pipelined request): those bytes are not part of the JSON text.
  RequestDecoder decoder;
  EXPECT_THAT(decode_with(decoder, R"({"subject":"a"})", "POST /api/publish HTTP/1.1\r\n"),
              HasFields("a", "", ""));
  EXPECT_THAT(decode_with(decoder, R"({"subject":"a"})", "} garbage"), HasFields("a", "", ""));
  EXPECT_EQ(decode_with(decoder, R"({"subject":"a")", "}"), std::nullopt);
  EXPECT_EQ(decode_with(decoder, R"({"subject":"a)", "\"}"), std::nullopt);
  EXPECT_EQ(decode_with(decoder, R"({"subject":"a","x":1)", "2}"), std::nullopt);
  EXPECT_EQ(decode_with(decoder, R"({"subject":"a","x":tr)", "ue}"), std::nullopt);
  EXPECT_EQ(decode_with(decoder, "nu", "ll"), std::nullopt);
}

// --- Reuse ------------------------------------------------------------------

TEST(RequestDecoder, DecodesAgainAfterAFailure) {
  RequestDecoder decoder;
  EXPECT_THAT(decode_with(decoder, R"({"subject":"one","data":"1"})"), HasFields("one", "1", ""));
  EXPECT_EQ(decode_with(decoder, R"({"subject":"a","x":[tru]})"), std::nullopt);
  EXPECT_THAT(decode_with(decoder, R"({"subject":"two","id":"2"})"), HasFields("two", "", "2"));
  EXPECT_EQ(decode_with(decoder, R"({"subject":"a)"), std::nullopt);
  EXPECT_EQ(decode_with(decoder, "[]"), std::nullopt);
  EXPECT_THAT(decode_with(decoder, R"({"data":"three"})"), HasFields("", "three", ""));
  // A failed decode, which had read a field, leaves nothing of it behind.
  EXPECT_EQ(decode_with(decoder, R"({"data":"x","subject":1})"), std::nullopt);
  EXPECT_THAT(decode_with(decoder, R"({"id":"i"})"), HasFields("", "", "i"));
}

TEST(RequestDecoder, DecodesManyBodiesOfGrowingSize) {
  // The parser grows its buffers as bodies grow; earlier sizes still work.
  RequestDecoder decoder;
  for (std::size_t size : {1u, 100u, 10000u, 200000u, 5u, 70000u}) {
    std::string data(size, 'd');
    EXPECT_THAT(decode_with(decoder, R"({"subject":"s","data":")"s + data + R"("})"),
                HasFields("s", data, ""))
        << size;
  }
}

// --- Go compatibility: what the original accepts ------------------------------
// Go's encoding/json does not refuse invalid UTF-8 or lone surrogates inside a
// string: it replaces each with U+FFFD (EF BF BD). A client the original served
// must still be served.

TEST(RequestDecoderGoCompatibility, ReplacesInvalidUtf8InsteadOfRefusing) {
  EXPECT_THAT(decode("{\"subject\":\"a\",\"data\":\"x\xffy\"}"),
              HasFields("a", "x\xef\xbf\xbdy", ""));
  // In an ignored field too.
  EXPECT_THAT(decode("{\"subject\":\"a\",\"note\":\"\xc3\"}"), HasFields("a", "", ""));
}

TEST(RequestDecoderGoCompatibility, ReplacesLoneSurrogatesInsteadOfRefusing) {
  EXPECT_THAT(decode(R"({"subject":"a","data":"\ud800"})"), HasFields("a", "\xef\xbf\xbd", ""));
  EXPECT_THAT(decode(R"({"subject":"a","data":"\ude00x"})"), HasFields("a", "\xef\xbf\xbdx", ""));
  // A high surrogate followed by something that is not a low one.
  EXPECT_THAT(decode(R"({"subject":"a","data":"\ud83dx"})"), HasFields("a", "\xef\xbf\xbdx", ""));
}

// --- Batch publish (api-extensions.md §9) -----------------------------------

struct Batch {
  std::string subject;
  std::vector<std::string> data;  // the one-subject form
  bool has_data = false;
  std::vector<std::pair<std::string, std::string>> messages;  // the many-subject form
  bool has_messages = false;
};

// `body` decoded as a batch, its views copied out; nullopt when refused.
std::optional<Batch> decode_batch(std::string_view body) {
  std::string padded(body);
  padded.append(kPadding, '\0');
  RequestDecoder decoder;
  const DecodedRequest* decoded = decoder.decode(padded.data(), body.size(), padded.size(),
                                                 RequestFields::of(Endpoint::publish_batch));
  if (decoded == nullptr) return std::nullopt;
  const DecodedRequest& request = *decoded;
  Batch batch{
      std::string(request.subject), {}, request.has_batch_data, {}, request.has_batch_messages};
  for (std::string_view datum : request.batch_data) batch.data.emplace_back(datum);
  for (const BatchEntry& entry : request.batch_messages) {
    batch.messages.emplace_back(entry.subject, entry.data);
  }
  return batch;
}

TEST(RequestDecoder, ReadsABatchsDataAsAListOfStrings) {
  // Escaped strings are unescaped into the parser's buffer, unescaped ones
  // viewed in the body: each keeps its own bytes.
  const std::optional<Batch> batch =
      decode_batch(R"({"subject":"s","data":["a\nb","plain","\u00e9\"",""," x "]})");
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->subject, "s");
  EXPECT_TRUE(batch->has_data);
  EXPECT_FALSE(batch->has_messages);
  EXPECT_EQ(batch->data, (std::vector<std::string>{"a\nb", "plain", "\xc3\xa9\"", "", " x "}));
  // Present but empty, and absent, are told apart.
  EXPECT_TRUE(decode_batch(R"({"data":[]})")->has_data);
  EXPECT_FALSE(decode_batch(R"({"data":null})")->has_data);
  EXPECT_FALSE(decode_batch(R"({"subject":"s"})")->has_data);
}

TEST(RequestDecoder, ReadsABatchsMessagesAsRequestBodiesAreRead) {
  const std::optional<Batch> batch = decode_batch(
      R"({"messages":[{"subject":"a","data":"1"},{"DATA":"2\t","Subject":"b","x":[{}]},null,)"
      R"({"subject":"c","data":null},{"subject":"a","subject":"d"}]})");
  ASSERT_TRUE(batch.has_value());
  EXPECT_TRUE(batch->has_messages);
  EXPECT_FALSE(batch->has_data);
  EXPECT_EQ(batch->messages, (std::vector<std::pair<std::string, std::string>>{
                                 {"a", "1"}, {"b", "2\t"}, {"", ""}, {"c", ""}, {"d", ""}}));
}

TEST(RequestDecoder, RefusesABatchOfTheWrongShape) {
  for (std::string_view body : {
           R"({"data":"one"})"sv,
           R"({"data":["a",1]})"sv,
           R"({"data":["a",null]})"sv,
           R"({"data":[["a"]]})"sv,
           R"({"data":{"a":"b"}})"sv,
           R"({"messages":[1]})"sv,
           R"({"messages":["a"]})"sv,
           R"({"messages":[{"subject":1}]})"sv,
           R"({"messages":[{"data":["a"]}]})"sv,
           R"({"messages":[{"x":[tru]}]})"sv,
           R"({"messages":"a"})"sv,
       }) {
    EXPECT_EQ(decode_batch(body), std::nullopt) << body;
  }
}

TEST(RequestDecoder, OutsideABatchMessagesIsUnknownAndDataIsAString) {
  // Any other request reads the original's fields only.
  EXPECT_THAT(decode(R"({"subject":"s","data":"d","messages":[1,{"a":2}]})"),
              HasFields("s", "d", ""));
  EXPECT_EQ(decode(R"({"subject":"s","data":["d"]})"), std::nullopt);
}

}  // namespace
}  // namespace gophermq
