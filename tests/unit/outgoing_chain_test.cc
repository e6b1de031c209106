// OutgoingChain: answers appended, whole answers joined uncopied, and the
// chain gathered into iovecs from any offset, as a send resumes after a
// short write.
#include <gtest/gtest.h>

#include <string>

#include "gophermq/net/outgoing_chain.h"

namespace gophermq {
namespace {

ByteBuffer buffer_of(const std::string& text) {
  ByteBuffer buffer;
  buffer.append(text);
  return buffer;
}

// What gather() gives from `offset` on, concatenated.
std::string gathered(const OutgoingChain& chain, std::size_t offset, std::size_t max = 64) {
  iovec vectors[64];
  const std::size_t count = chain.gather(offset, vectors, max);
  std::string bytes;
  for (std::size_t i = 0; i < count; ++i) {
    bytes.append(static_cast<const char*>(vectors[i].iov_base), vectors[i].iov_len);
  }
  return bytes;
}

TEST(OutgoingChain, AnswersGoIntoOneBuffer) {
  OutgoingChain chain;
  EXPECT_TRUE(chain.empty());
  chain.tail().append("one;");
  chain.tail().append("two;");
  EXPECT_EQ(chain.buffer_count(), 1u);
  EXPECT_EQ(chain.size(), 8u);
  EXPECT_EQ(chain.flatten(), "one;two;");
}

TEST(OutgoingChain, AWholeAnswerIsNeverAppendedTo) {
  // Were later answers appended to it, its growth would copy the megabyte.
  OutgoingChain chain;
  ByteBuffer whole = buffer_of(std::string(OutgoingChain::kOwnBufferFrom, 'w'));
  const char* bytes = whole.data();
  chain.append_whole(std::move(whole));
  chain.tail().append("after;");
  ASSERT_EQ(chain.buffer_count(), 2u);
  EXPECT_EQ(chain.buffer(0).data(), bytes);
  EXPECT_EQ(chain.buffer(0).size(), OutgoingChain::kOwnBufferFrom);
  EXPECT_EQ(chain.buffer(1).view(), "after;");
}

TEST(OutgoingChain, GatherResumesAtAnyOffsetAcrossBuffers) {
  OutgoingChain chain;
  const std::string big(OutgoingChain::kOwnBufferFrom, 'b');
  chain.tail().append("head;");
  chain.append_whole(buffer_of(big));
  chain.tail().append("tail;");
  const std::string all = "head;" + big + "tail;";
  ASSERT_EQ(chain.flatten(), all);
  for (std::size_t offset : {std::size_t{0}, std::size_t{3}, std::size_t{5}, std::size_t{6},
                             all.size() - 5, all.size() - 1}) {
    SCOPED_TRACE(offset);
    EXPECT_EQ(gathered(chain, offset), all.substr(offset));
  }
  EXPECT_EQ(gathered(chain, all.size()), "");
  // At most `max` iovecs: the rest waits for the next send.
  EXPECT_EQ(gathered(chain, 0, 2), "head;" + big);
}

TEST(OutgoingChain, SizeCountsEveryBufferAsTheTailGrows) {
  // size() is kept as the chain changes, not summed: check it against the
  // bytes themselves after each kind of change.
  OutgoingChain chain, other;
  const std::string big(OutgoingChain::kOwnBufferFrom, 'b');
  auto expect_size_matches = [](const OutgoingChain& c) {
    EXPECT_EQ(c.size(), c.flatten().size());
  };
  chain.append_whole(buffer_of(big));  // replaces the empty first buffer
  expect_size_matches(chain);
  chain.tail().append("a;");
  chain.tail().append("bb;");
  expect_size_matches(chain);
  chain.append_whole(buffer_of("small;"));  // copied into the tail
  chain.append_whole(buffer_of(big + big));
  chain.append_whole(buffer_of(big));
  chain.tail().append("ccc;");
  ASSERT_EQ(chain.buffer_count(), 5u);  // big, "a;bb;small;", 2 big, big, "ccc;"
  expect_size_matches(chain);
  EXPECT_EQ(chain.size(), 4 * big.size() + 2 + 3 + 6 + 4);
  other.tail().append("other");
  chain.swap(other);
  expect_size_matches(chain);
  expect_size_matches(other);
  other.clear();
  EXPECT_EQ(other.size(), 0u);
  other.tail().append("again");
  expect_size_matches(other);
}

TEST(OutgoingChain, ClearKeepsTheFirstBufferAndDropsTheRest) {
  OutgoingChain chain;
  chain.tail().append("x");
  chain.append_whole(buffer_of(std::string(OutgoingChain::kOwnBufferFrom, 'w')));
  chain.clear();
  EXPECT_TRUE(chain.empty());
  EXPECT_EQ(chain.buffer_count(), 0u);
  chain.tail().append("again");
  EXPECT_EQ(chain.buffer_count(), 1u);
  EXPECT_EQ(chain.flatten(), "again");
}

TEST(OutgoingChain, SwapExchangesWholeChains) {
  OutgoingChain output, sending;
  output.tail().append("queued");
  output.swap(sending);
  EXPECT_TRUE(output.empty());
  EXPECT_EQ(sending.flatten(), "queued");
  output.tail().append("next");
  EXPECT_EQ(output.flatten(), "next");
}

}  // namespace
}  // namespace gophermq
