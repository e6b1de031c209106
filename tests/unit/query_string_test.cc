// query_value: GET /api/stream's arguments, percent-decoded.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "gophermq/api/query_string.h"

namespace gophermq {
namespace {

std::optional<std::string> value(std::string_view query, std::string_view key) {
  bool malformed = false;
  std::optional<std::string> found = query_value(query, key, malformed);
  if (malformed) return "(malformed)";
  return found;
}

TEST(QueryValue, FindsAKeyAmongOthers) {
  EXPECT_EQ(value("subject=a.b&id=42", "subject"), "a.b");
  EXPECT_EQ(value("subject=a.b&id=42", "id"), "42");
  EXPECT_EQ(value("subject=a.b&id=42", "encoding"), std::nullopt);
  EXPECT_EQ(value("", "id"), std::nullopt);
  EXPECT_EQ(value("ids=1&xid=2", "id"), std::nullopt) << "whole keys only";
}

TEST(QueryValue, PercentDecodesAndKeepsPlusLiteral) {
  EXPECT_EQ(value("subject=orders%2Eeu%20x", "subject"), "orders.eu x");
  EXPECT_EQ(value("subject=a+b", "subject"), "a+b");
  EXPECT_EQ(value("subject=%e2%82%ac", "subject"), "\xe2\x82\xac");
  EXPECT_EQ(value("subject=%", "subject"), "(malformed)");
  EXPECT_EQ(value("subject=%4", "subject"), "(malformed)");
  EXPECT_EQ(value("subject=%zz", "subject"), "(malformed)");
}

TEST(QueryValue, TheLastOfSeveralWinsAndAKeyAloneIsEmpty) {
  EXPECT_EQ(value("id=1&id=2", "id"), "2");
  EXPECT_EQ(value("id&x=1", "id"), "");
  EXPECT_EQ(value("id=&x=1", "id"), "");
  EXPECT_EQ(value("id=1=2", "id"), "1=2");
}

}  // namespace
}  // namespace gophermq
