// HttpConnection: answers leave in request order, whether written in place,
// finished later, or handed over whole from another shard; and a connection
// that owes too much reads no more requests until its answers are taken.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "gophermq/http/http_connection.h"

namespace gophermq {
namespace {

class NoRequests final : public RequestHandler {
 public:
  void handle(HttpConnection&, const HttpRequest&) override {}
};

ByteBuffer buffer_of(const std::string& text) {
  ByteBuffer buffer;
  buffer.append(text);
  return buffer;
}

class HttpConnectionTest : public ::testing::Test {
 protected:
  NoRequests handler_;
  OutgoingBytes out_;
  UnsentTotal shard_unsent_;
  HttpConnection http_{
      0, RequestLimits{1024, 1024}, PipelineLimits{1 << 20, 64}, shard_unsent_, handler_, out_};
};

TEST_F(HttpConnectionTest, AWholeAnswerHandedOverToAnEmptyOutputIsMovedNotCopied) {
  const std::uint64_t sequence = http_.reserve_answer();
  ByteBuffer answer = buffer_of(std::string(100'000, 'f'));
  const char* bytes = answer.data();
  http_.hand_over(sequence, std::move(answer));
  ASSERT_EQ(out_.output.buffer_count(), 1u);
  EXPECT_EQ(out_.output.buffer(0).data(), bytes) << "the answer's own buffer is the output";
  EXPECT_EQ(out_.output.size(), 100'000u);
  EXPECT_EQ(out_.answers_in_output, 1u);
  EXPECT_EQ(http_.answers_outstanding(), 0u);
}

TEST_F(HttpConnectionTest, AnswersHandedOverOutOfOrderStillLeaveInRequestOrder) {
  const std::uint64_t first = http_.reserve_answer();
  const std::uint64_t second = http_.reserve_answer();
  http_.answer_now().append("third;");  // a local answer behind both
  http_.hand_over(second, buffer_of("second;"));
  EXPECT_TRUE(out_.output.empty()) << "nothing may overtake the first answer";
  http_.reserved_buffer(first).append("first;");
  http_.finish_answer(first);
  EXPECT_EQ(out_.output.flatten(), "first;second;third;");
  EXPECT_EQ(out_.answers_in_output, 3u);
  EXPECT_EQ(http_.answers_outstanding(), 0u);
}

TEST_F(HttpConnectionTest, ASmallAnswerHandedOverBehindUnsentOutputIsCopiedIn) {
  http_.answer_now().append("before;");
  const std::uint64_t sequence = http_.reserve_answer();
  http_.hand_over(sequence, buffer_of("handed;"));
  EXPECT_EQ(out_.output.buffer_count(), 1u);
  EXPECT_EQ(out_.output.flatten(), "before;handed;");
  EXPECT_EQ(out_.answers_in_output, 2u);
}

TEST_F(HttpConnectionTest, ALargeAnswerHandedOverBehindUnsentOutputJoinsTheChainUncopied) {
  http_.answer_now().append("before;");
  const std::uint64_t sequence = http_.reserve_answer();
  ByteBuffer answer = buffer_of(std::string(100'000, 'f'));
  const char* bytes = answer.data();
  http_.hand_over(sequence, std::move(answer));
  http_.answer_now().append("after;");
  ASSERT_EQ(out_.output.buffer_count(), 3u);
  EXPECT_EQ(out_.output.buffer(1).data(), bytes) << "moved into the chain, not copied";
  EXPECT_EQ(out_.output.flatten(), "before;" + std::string(100'000, 'f') + "after;");
  EXPECT_EQ(out_.answers_in_output, 3u);
}

TEST_F(HttpConnectionTest, AnEventStreamGoesOutAsWrittenOnceTheAnswersBeforeItAre) {
  const std::uint64_t fetch = http_.reserve_answer();
  const std::uint64_t stream = http_.reserve_answer();
  http_.begin_event_stream(stream);
  http_.reserved_buffer(stream).append("head;");
  EXPECT_TRUE(out_.output.empty()) << "behind the fetch";
  http_.reserved_buffer(fetch).append("fetch;");
  http_.finish_answer(fetch);
  EXPECT_EQ(out_.output.flatten(), "fetch;head;") << "what was written meanwhile follows it";
  http_.reserved_buffer(stream).append("event;");
  EXPECT_EQ(out_.output.flatten(), "fetch;head;event;") << "first now: written straight out";
  EXPECT_EQ(http_.answers_outstanding(), 1u) << "the stream is owed until it ends";
  http_.reserved_buffer(stream).append("end;");
  http_.finish_answer(stream);
  EXPECT_EQ(out_.output.flatten(), "fetch;head;event;end;");
  EXPECT_EQ(http_.answers_outstanding(), 0u);
  EXPECT_EQ(out_.answers_in_output, 2u);
}

TEST_F(HttpConnectionTest, AnAnswerCarriesWhatTheShardHasRoomForAndAtLeast64KiB) {
  shard_unsent_.limit = 1 << 20;
  EXPECT_EQ(http_.answer_room(), 1u << 20) << "nothing owed anywhere";
  // This connection's own answers count before the table has counted them.
  http_.answer_now().append(std::string(300 << 10, 'a'));
  EXPECT_EQ(http_.answer_room(), (1u << 20) - (300u << 10));
  // Counted now, beside 500 KiB the shard's other connections owe.
  out_.counted = out_.owed();
  shard_unsent_.owed = out_.counted + (500 << 10);
  EXPECT_EQ(http_.answer_room(), (1u << 20) - (800u << 10));
  // An answer on its way from another shard counts as owed already.
  const std::uint64_t sequence = http_.reserve_answer(200 << 10);
  EXPECT_EQ(http_.answer_room(), kLeastAnswerRoom) << "24 KiB left: the floor";
  // It came, smaller: only what it is counts.
  http_.hand_over(sequence, buffer_of("small"));
  EXPECT_EQ(http_.answer_room(), (1u << 20) - (800u << 10) - 5);
}

// Answers every request at once with its path and a ';'.
class AnswersWithThePath final : public RequestHandler {
 public:
  void handle(HttpConnection& connection, const HttpRequest& request) override {
    connection.answer_now().append(std::string(request.path) + ";");
  }
};

std::string get(std::string_view path) {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: x\r\n\r\n";
}

class BackPressureTest : public ::testing::Test {
 protected:
  ParseStatus feed(HttpConnection& http, const std::string& bytes) {
    // A fresh buffer each time, freed after: held bytes must be copied.
    std::string buffer = bytes + std::string(ByteBuffer::kPadding, '\0');
    return http.feed(buffer.data(), bytes.size(), buffer.size());
  }
  // What the kernel took: the output, as if sent whole.
  std::string take_output() {
    std::string sent = out_.output.flatten();
    out_.output.clear();
    out_.answers_in_output = 0;
    return sent;
  }

  AnswersWithThePath handler_;
  OutgoingBytes out_;
  UnsentTotal shard_unsent_;
};

TEST_F(BackPressureTest, PastThePipelineDepthRequestsWaitUnreadUntilAnswersAreTaken) {
  HttpConnection http(0, RequestLimits{1024, 1024}, PipelineLimits{1 << 20, 2}, shard_unsent_,
                      handler_, out_);
  ASSERT_EQ(feed(http, get("/a") + get("/b") + get("/c") + get("/d") + get("/e")), ParseStatus::ok);
  EXPECT_TRUE(http.input_held());
  EXPECT_EQ(out_.output.flatten(), "/a;/b;") << "two answers owed: no more requests read";
  ASSERT_EQ(http.resume(), ParseStatus::ok);
  EXPECT_EQ(out_.output.flatten(), "/a;/b;") << "nothing was taken: still held";
  // What arrives meanwhile waits behind what was held, unread.
  ASSERT_EQ(feed(http, get("/f")), ParseStatus::ok);
  EXPECT_EQ(take_output(), "/a;/b;");
  ASSERT_EQ(http.resume(), ParseStatus::ok);
  EXPECT_EQ(take_output(), "/c;/d;");
  EXPECT_TRUE(http.input_held());
  ASSERT_EQ(http.resume(), ParseStatus::ok);
  EXPECT_EQ(take_output(), "/e;/f;");
  ASSERT_EQ(http.resume(), ParseStatus::ok);
  EXPECT_FALSE(http.input_held()) << "everything held was read and answered";
  ASSERT_EQ(feed(http, get("/g")), ParseStatus::ok);
  EXPECT_EQ(take_output(), "/g;");
  EXPECT_EQ(http.requests_read(), 7u);
}

TEST_F(BackPressureTest, PastTheUnsentBoundRequestsWaitUntilHalfOfItIsLeft) {
  // Answers of 4 bytes; held past 10 unsent bytes, read again at 5 or less.
  HttpConnection http(0, RequestLimits{1024, 1024}, PipelineLimits{10, 100}, shard_unsent_,
                      handler_, out_);
  ASSERT_EQ(feed(http, get("/aa") + get("/bb") + get("/cc") + get("/dd") + get("/ee")),
            ParseStatus::ok);
  EXPECT_TRUE(http.input_held());
  EXPECT_EQ(out_.output.flatten(), "/aa;/bb;/cc;") << "12 bytes unsent: held";
  // The kernel took part of it: 8 bytes are left, more than half the bound.
  out_.output.clear();
  out_.output.tail().append("/bb;/cc;");
  ASSERT_EQ(http.resume(), ParseStatus::ok);
  EXPECT_TRUE(http.input_held());
  EXPECT_EQ(out_.output.flatten(), "/bb;/cc;");
  out_.output.clear();
  out_.output.tail().append("/cc;");
  ASSERT_EQ(http.resume(), ParseStatus::ok);
  EXPECT_EQ(out_.output.flatten(), "/cc;/dd;/ee;");
}

TEST_F(BackPressureTest, ARequestCutAcrossTheHoldIsReadWhole) {
  HttpConnection http(0, RequestLimits{1024, 1024}, PipelineLimits{1 << 20, 1}, shard_unsent_,
                      handler_, out_);
  const std::string stream = get("/a") + get("/b") + get("/c");
  const std::size_t cut = get("/a").size() + get("/b").size() + 7;  // inside the third
  ASSERT_EQ(feed(http, stream.substr(0, cut)), ParseStatus::ok);
  ASSERT_EQ(feed(http, stream.substr(cut)), ParseStatus::ok);
  std::string answers = take_output();
  for (int i = 0; i < 3 && http.input_held(); ++i) {
    ASSERT_EQ(http.resume(), ParseStatus::ok);
    answers += take_output();
  }
  EXPECT_EQ(answers, "/a;/b;/c;");
}

TEST_F(BackPressureTest, A100ContinueIsNotAnAnswerOwed) {
  HttpConnection http(0, RequestLimits{1024, 1024}, PipelineLimits{1 << 20, 1}, shard_unsent_,
                      handler_, out_);
  ASSERT_EQ(
      feed(http,
           "POST /p HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"),
      ParseStatus::ok);
  EXPECT_EQ(out_.output.flatten(), "HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_EQ(out_.answers_in_output, 0u);
  EXPECT_FALSE(http.input_held());
  ASSERT_EQ(feed(http, "{}"), ParseStatus::ok);
  EXPECT_EQ(out_.answers_in_output, 1u);
  EXPECT_TRUE(http.input_held()) << "the one answer allowed is owed";
}

}  // namespace
}  // namespace gophermq
