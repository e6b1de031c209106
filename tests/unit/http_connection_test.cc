// HttpConnection: answers leave in request order, whether written in place,
// finished later, or handed over whole from another shard.
#include <gtest/gtest.h>

#include <string>

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
  HttpConnection http_{0, RequestLimits{1024, 1024}, handler_, out_};
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

}  // namespace
}  // namespace gophermq
