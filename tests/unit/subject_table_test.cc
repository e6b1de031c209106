// SubjectTable: subjects by exact name, entries that stay put while the table
// grows, and a size that counts each subject once.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gophermq/store/subject_table.h"

namespace gophermq {
namespace {

struct Entry {
  int value = 0;
};

std::string subject_number(int i) { return "user." + std::to_string(i); }

TEST(SubjectTable, FindsOnlyWhatWasAddedByItsExactName) {
  SubjectTable<Entry> table;
  EXPECT_EQ(table.find("a"), nullptr);
  bool added = false;
  table.find_or_add("a", added).value = 7;
  EXPECT_TRUE(added);
  ASSERT_NE(table.find("a"), nullptr);
  EXPECT_EQ(table.find("a")->value, 7);
  EXPECT_EQ(table.find("A"), nullptr);
  EXPECT_EQ(table.find("a "), nullptr);
  EXPECT_EQ(table.find(""), nullptr);
  EXPECT_EQ(table.size(), 1u);
}

TEST(SubjectTable, AddingAgainReturnsTheSameEntry) {
  SubjectTable<Entry> table;
  bool added = false;
  Entry& first = table.find_or_add("s", added);
  first.value = 3;
  Entry& again = table.find_or_add("s", added);
  EXPECT_FALSE(added);
  EXPECT_EQ(&again, &first);
  EXPECT_EQ(again.value, 3);
  EXPECT_EQ(table.size(), 1u);
}

TEST(SubjectTable, EntriesStayPutAndFindableWhileTheTableGrows) {
  constexpr int kSubjects = 200000;  // many growths of every inner map
  SubjectTable<Entry> table;
  std::vector<Entry*> addresses;
  bool added = false;
  for (int i = 0; i < kSubjects; ++i) {
    Entry& entry = table.find_or_add(subject_number(i), added);
    ASSERT_TRUE(added) << i;
    entry.value = i;
    addresses.push_back(&entry);
  }
  EXPECT_EQ(table.size(), static_cast<std::size_t>(kSubjects));
  for (int i = 0; i < kSubjects; ++i) {
    Entry* found = table.find(subject_number(i));
    ASSERT_EQ(found, addresses[static_cast<std::size_t>(i)]) << i;
    ASSERT_EQ(found->value, i);
  }
  EXPECT_EQ(table.find(subject_number(kSubjects)), nullptr);
}

}  // namespace
}  // namespace gophermq
