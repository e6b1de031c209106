// Response bodies, byte for byte as the original's Go encoder (echo's
// c.JSON: encoding/json with HTML escaping, sorted keys, trailing newline)
// writes them.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "gophermq/api/response_encoder.h"
#include "gophermq/byte_buffer.h"
#include "gophermq/store/pending_budget.h"
#include "gophermq/store/subject_store.h"
#include "gophermq/store/subscriber_id.h"

namespace gophermq {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

// write_json_string's output, checked against json_string_size: the size is
// what the writer reserves, so a size too small would overrun the buffer.
std::string quote(std::string_view text) {
  const std::size_t size = json_string_size(text);
  constexpr std::size_t kGuard = 16;
  std::string buffer(size + kGuard, '#');
  char* end = write_json_string(buffer.data(), text);
  EXPECT_EQ(static_cast<std::size_t>(end - buffer.data()), size) << "size mismatch for " << text;
  EXPECT_EQ(buffer.substr(size), std::string(kGuard, '#')) << "wrote past the size";
  buffer.resize(static_cast<std::size_t>(end - buffer.data()));
  return buffer;
}

// A reference written straight from Go's encoding/json (encode.go,
// appendString with escapeHTML = true), for valid UTF-8 input.
std::string go_quote(std::string_view text) {
  constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size();) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) {
      if (b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&') {
        out += static_cast<char>(b);
      } else if (b == '"' || b == '\\') {
        out += '\\';
        out += static_cast<char>(b);
      } else if (b == '\n') {
        out += "\\n";
      } else if (b == '\r') {
        out += "\\r";
      } else if (b == '\t') {
        out += "\\t";
      } else {
        out += "\\u00";
        out += kHex[b >> 4];
        out += kHex[b & 0xf];
      }
      ++i;
      continue;
    }
    const std::size_t length = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
    const std::string_view rune = text.substr(i, length);
    if (rune == "\xe2\x80\xa8") {
      out += "\\u2028";
    } else if (rune == "\xe2\x80\xa9") {
      out += "\\u2029";
    } else {
      out += rune;
    }
    i += length;
  }
  out += '"';
  return out;
}

void append_code_point(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | cp >> 6);
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | cp >> 12);
    out += static_cast<char>(0x80 | (cp >> 6 & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | cp >> 18);
    out += static_cast<char>(0x80 | (cp >> 12 & 0x3f));
    out += static_cast<char>(0x80 | (cp >> 6 & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// Valid UTF-8 weighted toward what needs care: control characters, the
// characters escaped for HTML, and the neighbourhood of U+2028/U+2029.
std::string random_utf8(std::mt19937& rng) {
  std::uniform_int_distribution<int> length(0, 40);
  std::uniform_int_distribution<int> kind(0, 9);
  std::string out;
  for (int n = length(rng); n > 0; --n) {
    std::uint32_t cp;
    switch (kind(rng)) {
      case 0:
      case 1:
        cp = std::uniform_int_distribution<std::uint32_t>(0, 0x1f)(rng);
        break;
      case 2:
        cp = "\"\\<>&/'\x7f"[std::uniform_int_distribution<int>(0, 7)(rng)];
        break;
      case 3:
      case 4:
        cp = std::uniform_int_distribution<std::uint32_t>(0x20, 0x7e)(rng);
        break;
      case 5:
        cp = std::uniform_int_distribution<std::uint32_t>(0x80, 0x7ff)(rng);
        break;
      case 6:
        cp = std::uniform_int_distribution<std::uint32_t>(0x2020, 0x202f)(rng);
        break;
      case 7:
        do {
          cp = std::uniform_int_distribution<std::uint32_t>(0x800, 0xffff)(rng);
        } while (cp >= 0xd800 && cp <= 0xdfff);
        break;
      default:
        cp = std::uniform_int_distribution<std::uint32_t>(0x10000, 0x10ffff)(rng);
        break;
    }
    append_code_point(out, cp);
  }
  return out;
}

// The string a JSON string literal stands for, as a JSON parser reads it.
std::string parse_json_string(const std::string& literal) {
  simdjson::dom::parser parser;
  std::string_view value;
  auto error = parser.parse(simdjson::padded_string(literal)).get_string().get(value);
  EXPECT_EQ(error, simdjson::SUCCESS) << literal;
  return std::string(value);
}

// --- json_string_size and write_json_string ----------------------------------

TEST(JsonString, PlainTextIsQuotedAsIs) {
  EXPECT_EQ(quote(""), R"("")");
  EXPECT_EQ(quote("hello world"), R"("hello world")");
  EXPECT_EQ(quote("a/b 'c' #1 ~"), R"("a/b 'c' #1 ~")");
}

TEST(JsonString, QuoteAndBackslashAreBackslashEscaped) {
  EXPECT_EQ(quote("\""), R"("\"")");
  EXPECT_EQ(quote("\\"), R"("\\")");
  EXPECT_EQ(quote(R"(say "hi" \o/)"), R"("say \"hi\" \\o/")");
}

TEST(JsonString, NewlineReturnAndTabUseShortForms) {
  EXPECT_EQ(quote("\n"), R"("\n")");
  EXPECT_EQ(quote("\r"), R"("\r")");
  EXPECT_EQ(quote("\t"), R"("\t")");
  EXPECT_EQ(quote("a\r\nb\tc"), R"("a\r\nb\tc")");
}

TEST(JsonString, OtherControlCharactersUseLowerCaseUnicodeEscapes) {
  // The original's Go (1.17) wrote \b and \f as \u0008 and \u000c too.
  EXPECT_EQ(quote("\0"sv), R"("\u0000")");
  EXPECT_EQ(quote("\x01"), R"("\u0001")");
  EXPECT_EQ(quote("\b"), R"("\u0008")");
  EXPECT_EQ(quote("\x0b"), R"("\u000b")");
  EXPECT_EQ(quote("\f"), R"("\u000c")");
  EXPECT_EQ(quote("\x1a"), R"("\u001a")");
  EXPECT_EQ(quote("\x1f"), R"("\u001f")");
  EXPECT_EQ(quote("a\0b"sv), R"("a\u0000b")");
}

TEST(JsonString, EveryAsciiByteMatchesGo) {
  for (int c = 0; c < 0x80; ++c) {
    const std::string text(1, static_cast<char>(c));
    EXPECT_EQ(quote(text), go_quote(text)) << "byte " << c;
  }
}

TEST(JsonString, HtmlCharactersAreUnicodeEscaped) {
  EXPECT_EQ(quote("<"), R"("\u003c")");
  EXPECT_EQ(quote(">"), R"("\u003e")");
  EXPECT_EQ(quote("&"), R"("\u0026")");
  EXPECT_EQ(quote("<a href=\"x\">&amp;</a>"),
            R"("\u003ca href=\"x\"\u003e\u0026amp;\u003c/a\u003e")");
}

TEST(JsonString, LineAndParagraphSeparatorsAreEscaped) {
  EXPECT_EQ(quote("\xe2\x80\xa8"), R"("\u2028")");
  EXPECT_EQ(quote("\xe2\x80\xa9"), R"("\u2029")");
  EXPECT_EQ(quote("a\xe2\x80\xa8"
                  "b\xe2\x80\xa9"
                  "c"),
            R"("a\u2028b\u2029c")");
  EXPECT_EQ(quote("\xe2\x80\xa9\xe2\x80\xa8"), R"("\u2029\u2028")");
  // At the very end of the text.
  EXPECT_EQ(quote("x\xe2\x80\xa8"), R"("x\u2028")");
}

TEST(JsonString, NeighboursOfTheSeparatorsStayLiteral) {
  // U+2027, U+202A, U+2018 and U+20A8 share bytes with U+2028.
  for (std::string_view text :
       {"\xe2\x80\xa7"sv, "\xe2\x80\xaa"sv, "\xe2\x80\x98"sv, "\xe2\x82\xa8"sv, "\xe2\x81\xa8"sv}) {
    EXPECT_EQ(quote(text), "\""s + std::string(text) + "\"");
  }
}

TEST(JsonString, OtherUtf8AndDelAreLiteral) {
  EXPECT_EQ(quote("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(quote("\xe6\x97\xa5\xe6\x9c\xac"), "\"\xe6\x97\xa5\xe6\x9c\xac\"");
  EXPECT_EQ(quote("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\"");
  EXPECT_EQ(quote("\x7f"), "\"\x7f\"");
  EXPECT_EQ(quote("\xef\xbf\xbd"), "\"\xef\xbf\xbd\"");
}

TEST(JsonString, SizeMatchesWrittenBytesForManyInputs) {
  // quote() checks the size against what was written.
  std::string everything;
  for (int c = 0; c < 0x80; ++c) everything += static_cast<char>(c);
  everything += "\xe2\x80\xa8\xe2\x80\xa9\xc3\xa9\xf0\x9f\x98\x80";
  for (std::string_view text :
       {""sv, "a"sv, "<<<<"sv, "\0\0\0"sv, std::string_view(everything), "\n\n\n\"\"\\\\"sv}) {
    EXPECT_EQ(quote(text), go_quote(text));
  }
  const std::string long_text(100000, '<');
  EXPECT_EQ(quote(long_text).size(), 2 + 6 * long_text.size());
}

TEST(JsonString, RandomUtf8MatchesGoAndParsesBack) {
  std::mt19937 rng(20240501);  // fixed: a failure reproduces
  for (int i = 0; i < 5000; ++i) {
    const std::string text = random_utf8(rng);
    const std::string literal = quote(text);
    ASSERT_EQ(literal, go_quote(text)) << "case " << i;
    ASSERT_EQ(parse_json_string(literal), text) << "case " << i << ": " << literal;
    // Nothing a browser or a line-oriented reader could trip on is left raw.
    for (char c : literal) {
      ASSERT_FALSE(static_cast<unsigned char>(c) < 0x20 || c == '<' || c == '>' || c == '&')
          << "case " << i << ": " << literal;
    }
    ASSERT_EQ(literal.find("\xe2\x80\xa8"), std::string::npos);
    ASSERT_EQ(literal.find("\xe2\x80\xa9"), std::string::npos);
  }
}

TEST(JsonString, AppendAddsToWhatTheBufferHolds) {
  ByteBuffer out;
  out.append("prefix:");
  append_json_string(out, "a<b");
  append_json_string(out, "");
  EXPECT_EQ(out.view(), R"(prefix:"a\u003cb""")");
  // Large enough to make the buffer grow while appending.
  const std::string big(5000, '&');
  append_json_string(out, big);
  EXPECT_EQ(out.size(), 7 + 10 + 2 + 2 + 6 * big.size());
}

// --- Response bodies -----------------------------------------------------------

SubscriberId known_id() {
  SubscriberId id;
  for (std::size_t i = 0; i < id.bytes.size(); ++i) {
    id.bytes[i] = static_cast<std::uint8_t>(0x01 + i * 0x11);
  }
  return id;  // 01122334-4556-6778-899a-abbccddeef00
}

std::string text_of(const SubscriberId& id) {
  std::string text(SubscriberId::kTextLength, '?');
  id.write_text(text.data());
  return text;
}

TEST(SubscribeBody, IsExactlyWhatGoWrites) {
  ByteBuffer out;
  append_subscribe_body(out, known_id(), "a.b");
  EXPECT_EQ(out.view(), "{\"id\":\"01122334-4556-6778-899a-abbccddeef00\",\"subject\":\"a.b\"}\n");
  EXPECT_EQ(out.size(), subscribe_body_size("a.b"));
}

TEST(SubscribeBody, EscapesTheSubjectAndAppends) {
  ByteBuffer out;
  out.append("HTTP head\r\n\r\n");
  const std::string_view subject = "<a>.\"b\".\xe2\x80\xa8";
  append_subscribe_body(out, known_id(), subject);
  EXPECT_EQ(out.view(),
            "HTTP head\r\n\r\n{\"id\":\"01122334-4556-6778-899a-abbccddeef00\",\"subject\":"
            "\"\\u003ca\\u003e.\\\"b\\\".\\u2028\"}\n");
  EXPECT_EQ(out.size(), 13 + subscribe_body_size(subject));
}

TEST(SubscribeBody, NamesTheGroupFirstForAGroupMember) {
  ByteBuffer out;
  append_subscribe_body(out, known_id(), "a.b", "<w>");
  EXPECT_EQ(out.view(),
            "{\"group\":\"\\u003cw\\u003e\",\"id\":\"01122334-4556-6778-899a-abbccddeef00\","
            "\"subject\":\"a.b\"}\n");
  EXPECT_EQ(out.size(), subscribe_body_size("a.b", "<w>"));
}

TEST(InfoBody, HasEveryCountAndTheGroupOfAMember) {
  SubscriberInfo info{};
  info.idle_ms = 12;
  info.inflight = 3;
  info.pending = 18446744073709551615u;
  info.pending_bytes = 7;
  info.waiting = 1;
  ByteBuffer out;
  append_info_body(out, known_id(), "a.b", info);
  EXPECT_EQ(out.view(),
            "{\"id\":\"01122334-4556-6778-899a-abbccddeef00\",\"idle_ms\":12,\"inflight\":3,"
            "\"pending\":18446744073709551615,\"pending_bytes\":7,\"subject\":\"a.b\","
            "\"waiting\":1}\n");
  info.group = "workers";
  ByteBuffer member;
  append_info_body(member, known_id(), "a.b", info);
  EXPECT_EQ(member.view(),
            "{\"group\":\"workers\",\"id\":\"01122334-4556-6778-899a-abbccddeef00\","
            "\"idle_ms\":12,\"inflight\":3,\"pending\":18446744073709551615,"
            "\"pending_bytes\":7,\"subject\":\"a.b\",\"waiting\":1}\n");
}

TEST(SettledBody, CountsAckedOrNacked) {
  ByteBuffer out;
  append_settled_body(out, "acked", 0);
  append_settled_body(out, "nacked", 1234567);
  EXPECT_EQ(out.size(), settled_body_size("acked", 0) + settled_body_size("nacked", 1234567));
  EXPECT_EQ(out.view(),
            "{\"acked\":0,\"status\":\"ok\"}\n{\"nacked\":1234567,\"status\":\"ok\"}\n");
}

// A subject store with one subscriber on "a.b", for fetch bodies.
class FetchBodyTest : public ::testing::Test {
 protected:
  FetchBodyTest() : store_(budget_, census_, ids_) { id_ = store_.subscribe("a.b").id; }

  Subscriber& subscriber() {
    Subscriber* found = store_.find("a.b", id_);
    EXPECT_NE(found, nullptr);
    return *found;
  }

  std::string fetch_body() {
    Subscriber& s = subscriber();
    ByteBuffer out;
    const PendingMessages pending = s.pending();
    const std::size_t size = fetch_body_size(pending, pending.size(), "a.b");
    append_fetch_body(out, size, pending, pending.size(), s.id, "a.b");
    EXPECT_EQ(out.size(), size);
    return std::string(out.view());
  }

  PendingBudget budget_{100000};
  SubscriberIdSource ids_;
  StoreCensus census_{10, 10};
  SubjectStore store_;
  SubscriberId id_;
};

TEST_F(FetchBodyTest, ListsMessagesOldestFirst) {
  ASSERT_EQ(store_.publish("a.b", "x"), PublishOutcome::stored);
  ASSERT_EQ(store_.publish("a.b", "y"), PublishOutcome::stored);
  EXPECT_EQ(fetch_body(),
            "{\"data\":[\"x\",\"y\"],\"id\":\""s + text_of(id_) + "\",\"subject\":\"a.b\"}\n");
}

TEST_F(FetchBodyTest, NoMessagesIsAnEmptyListNotNull) {
  EXPECT_EQ(fetch_body(), "{\"data\":[],\"id\":\""s + text_of(id_) + "\",\"subject\":\"a.b\"}\n");
}

TEST_F(FetchBodyTest, EmptyAgainAfterADrain) {
  ASSERT_EQ(store_.publish("a.b", "x"), PublishOutcome::stored);
  store_.drain(subscriber());
  EXPECT_EQ(fetch_body(), "{\"data\":[],\"id\":\""s + text_of(id_) + "\",\"subject\":\"a.b\"}\n");
}

TEST_F(FetchBodyTest, OneMessageHasNoComma) {
  ASSERT_EQ(store_.publish("a.b", ""), PublishOutcome::stored);
  EXPECT_EQ(fetch_body(),
            "{\"data\":[\"\"],\"id\":\""s + text_of(id_) + "\",\"subject\":\"a.b\"}\n");
}

TEST_F(FetchBodyTest, EscapesMessageData) {
  ASSERT_EQ(store_.publish("a.b", "<p>\n\"hi\"\0"sv), PublishOutcome::stored);
  EXPECT_EQ(fetch_body(), "{\"data\":[\"\\u003cp\\u003e\\n\\\"hi\\\"\\u0000\"],\"id\":\""s +
                              text_of(id_) + "\",\"subject\":\"a.b\"}\n");
}

TEST_F(FetchBodyTest, ExtrasAddPendingAndSequencesSortedBetweenIdAndSubject) {
  ASSERT_EQ(store_.publish("a.b", "x"), PublishOutcome::stored);
  ASSERT_EQ(store_.publish("a.b", "y"), PublishOutcome::stored);
  const PendingMessages pending = subscriber().pending();
  const FetchAnswerExtras extras{5, 7};
  ByteBuffer out;
  const std::size_t size = fetch_body_size(pending, 2, "a.b", &extras);
  append_fetch_body(out, size, pending, 2, id_, "a.b", &extras);
  EXPECT_EQ(out.view(), "{\"data\":[\"x\",\"y\"],\"id\":\""s + text_of(id_) +
                            "\",\"pending\":5,\"seqs\":[7,8],\"subject\":\"a.b\"}\n");
  EXPECT_EQ(out.size(), size);
}

TEST_F(FetchBodyTest, ExtrasMeasureSequencesAcrossEveryDigitCount) {
  // Sequences crossing 9 -> 10, 99 -> 100, ..., up to the largest 64-bit
  // values: the measured size must be the written one exactly.
  for (int i = 0; i < 12; ++i) ASSERT_EQ(store_.publish("a.b", "m"), PublishOutcome::stored);
  const PendingMessages pending = subscriber().pending();
  std::vector<std::uint64_t> firsts = {1, UINT64_MAX - 11, 10'000'000'000'000'000'000ULL - 5};
  for (std::uint64_t power = 10; power <= 1'000'000'000'000'000'000ULL; power *= 10) {
    firsts.push_back(power - 3);
  }
  for (std::uint64_t first : firsts) {
    for (std::size_t count : {std::size_t{0}, std::size_t{1}, std::size_t{5}, std::size_t{12}}) {
      SCOPED_TRACE(std::to_string(first) + " x" + std::to_string(count));
      const FetchAnswerExtras extras{UINT64_MAX, first};
      ByteBuffer out;
      const std::size_t size = fetch_body_size(pending, count, "a.b", &extras);
      append_fetch_body(out, size, pending, count, id_, "a.b", &extras);
      ASSERT_EQ(out.size(), size);
      std::string seqs;
      for (std::size_t k = 0; k < count; ++k) {
        if (k != 0) seqs += ',';
        seqs += std::to_string(first + k);
      }
      EXPECT_NE(out.view().find("\"pending\":18446744073709551615,\"seqs\":[" + seqs + "]"),
                std::string_view::npos)
          << out.view();
    }
  }
}

TEST(AckFetchBody, ListsDataDeliveriesAndSeqsInParallelKeysSorted) {
  Message* first = Message::create("x<");
  Message* second = Message::create("y");
  const AckQueue::Delivery deliveries[] = {{7, 2, first}, {12, 1, second}};
  ByteBuffer out;
  out.append("HEAD");
  const std::size_t size = ack_fetch_body_size(deliveries, 30, "a.b");
  append_ack_fetch_body(out, size, deliveries, known_id(), 30, "a.b");
  EXPECT_EQ(out.view(),
            "HEAD{\"data\":[\"x\\u003c\",\"y\"],\"deliveries\":[2,1],\"id\":"
            "\"01122334-4556-6778-899a-abbccddeef00\",\"pending\":30,\"seqs\":[7,12],"
            "\"subject\":\"a.b\"}\n");
  EXPECT_EQ(out.size(), 4 + size);
  ByteBuffer empty;
  const std::size_t empty_size = ack_fetch_body_size({}, 0, "a.b");
  append_ack_fetch_body(empty, empty_size, {}, known_id(), 0, "a.b");
  EXPECT_EQ(empty.view(),
            "{\"data\":[],\"deliveries\":[],\"id\":\"01122334-4556-6778-899a-abbccddeef00\","
            "\"pending\":0,\"seqs\":[],\"subject\":\"a.b\"}\n");
  EXPECT_EQ(empty.size(), empty_size);
  Message::destroy(first);
  Message::destroy(second);
}

TEST_F(FetchBodyTest, ManyRandomMessagesParseBackInOrder) {
  std::mt19937 rng(7);
  std::vector<std::string> sent;
  for (int i = 0; i < 2000; ++i) {
    sent.push_back(random_utf8(rng));
    ASSERT_EQ(store_.publish("a.b", sent.back()), PublishOutcome::stored);
  }
  const std::string body = fetch_body();
  ASSERT_EQ(body.back(), '\n');

  simdjson::dom::parser parser;
  simdjson::dom::element document;
  ASSERT_EQ(parser.parse(simdjson::padded_string(body)).get(document), simdjson::SUCCESS);
  simdjson::dom::array data;
  ASSERT_EQ(document["data"].get(data), simdjson::SUCCESS);
  std::vector<std::string> received;
  for (simdjson::dom::element element : data) {
    received.emplace_back(std::string_view(element.get_string()));
  }
  EXPECT_EQ(received, sent);
  EXPECT_EQ(std::string_view(document["id"].get_string()), text_of(id_));
  EXPECT_EQ(std::string_view(document["subject"].get_string()), "a.b");
}

TEST(ErrorBodies, AreTheOriginalsMessagesWithANewline) {
  // A few spot checks that each constant is one JSON object and a newline.
  EXPECT_EQ(body::kOk, "{\"status\":\"ok\"}\n");
  EXPECT_EQ(body::kInvalidSubject, "{\"message\":\"invalid subject\"}\n");
  EXPECT_EQ(body::kInvalidBody, "{\"message\":\"request's body is invalid\"}\n");
  EXPECT_EQ(body::kSubscriberNotFound, "{\"message\":\"subscriber not found\"}\n");
  EXPECT_EQ(body::kBrokerOverflow, "{\"message\":\"broker overflow\"}\n");
  EXPECT_EQ(body::kBadId, "{\"message\":\"bad id\"}\n");
  EXPECT_EQ(body::kNotFound, "{\"message\":\"Not Found\"}\n");
  EXPECT_EQ(body::kMethodNotAllowed, "{\"message\":\"Method Not Allowed\"}\n");
  EXPECT_EQ(body::kServerError, "{\"message\":\"server error\"}\n");
}

TEST(BatchAnswerBody, ListsTheFailuresInIndexOrderWithTheirMessages) {
  ByteBuffer out;
  std::vector<BatchFailure> failed = {{7, 429}, {1, 404}, {4294967295u, 400}};
  append_batch_answer_body(out, failed, 18446744073709551615ull);
  EXPECT_EQ(out.view(),
            "{\"failed\":[{\"code\":404,\"index\":1,\"message\":\"subscriber not found\"},"
            "{\"code\":429,\"index\":7,\"message\":\"broker overflow\"},"
            "{\"code\":400,\"index\":4294967295,\"message\":\"invalid subject\"}],"
            "\"published\":18446744073709551615}\n");
  ByteBuffer none;
  append_batch_answer_body(none, {}, 3);
  EXPECT_EQ(none.view(), "{\"failed\":[],\"published\":3}\n");
}

std::string stream_event(std::uint64_t sequence, std::string_view payload, bool json) {
  ByteBuffer out;
  append_stream_event(out, sequence, payload, "orders.eu", json);
  return std::string(out.view());
}

TEST(StreamEvent, SplitsThePayloadIntoDataLinesAtEveryLineEnd) {
  EXPECT_EQ(stream_event(7, "one line", false), "id: 7\ndata: one line\n\n");
  EXPECT_EQ(stream_event(1, "a\nb\r\nc\rd", false),
            "id: 1\ndata: a\ndata: b\ndata: c\ndata: d\n\n");
  // An empty payload is still an event (one empty data line); a line end
  // at the end leaves an empty last line, so EventSource reads it back.
  EXPECT_EQ(stream_event(2, "", false), "id: 2\ndata: \n\n");
  EXPECT_EQ(stream_event(3, "x\n", false), "id: 3\ndata: x\ndata: \n\n");
  EXPECT_EQ(stream_event(4, "\r\n\r\n", false), "id: 4\ndata: \ndata: \ndata: \n\n");
}

TEST(StreamEvent, JsonIsOneLineWithTheDataEscaped) {
  EXPECT_EQ(stream_event(12, std::string("a\nb\r\0<\xe2\x80\xa8", 9), true),
            "id: 12\ndata: {\"data\":\"a\\nb\\r\\u0000\\u003c\\u2028\",\"seq\":12,"
            "\"subject\":\"orders.eu\"}\n\n");
}

}  // namespace
}  // namespace gophermq
