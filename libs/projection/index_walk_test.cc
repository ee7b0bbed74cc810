#include "libs/projection/index_walk.h"

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/common/temp_dir_testing.h"

namespace crm::projection {
namespace {

class IndexWalkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = NewTestDir("index-walk");
    std::filesystem::remove_all(dir_);
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, dir_, &db).ok());
    db_.reset(db);
    // Positions "<time digit><id>" under two prefixes; "3c" is under both. Neighbours that
    // share a leading byte ("a/" and "a0", "b/") must stay outside.
    for (const char* k : {"a/1a", "a/3c", "a/5e", "a/7g", "b/2b", "b/3c", "b/6f", "a0", "a.", "ab/9z"}) {
      ASSERT_TRUE(db_->Put(rocksdb::WriteOptions(), k, "").ok());
    }
  }
  void TearDown() override {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  // Every position a walk visits, resuming after each budget run-out as a next page would.
  std::vector<std::string> Walk(IndexWalk w, int* walks = nullptr) {
    std::vector<std::string> out;
    for (int n = 1; n < 100; ++n) {
      auto end = WalkIndexes(db_.get(), rocksdb::ReadOptions(), w, [&](absl::string_view p, absl::string_view) -> absl::StatusOr<bool> {
        out.emplace_back(p);
        return true;
      });
      EXPECT_TRUE(end.ok()) << end.status();
      if (!end.ok() || end->reached_end) {
        if (walks != nullptr) *walks = n;
        break;
      }
      w.after = end->last_position;
    }
    return out;
  }
  std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
};

using Positions = std::vector<std::string>;

TEST_F(IndexWalkTest, MergesPrefixesInStepAndVisitsASharedPositionOnce) {
  EXPECT_EQ(Walk({.prefixes = {"a/", "b/"}}), (Positions{"1a", "2b", "3c", "5e", "6f", "7g"}));
  EXPECT_EQ(Walk({.prefixes = {"a/", "b/"}, .descending = true}), (Positions{"7g", "6f", "5e", "3c", "2b", "1a"}));
  EXPECT_EQ(Walk({.prefixes = {"a/"}}), (Positions{"1a", "3c", "5e", "7g"}));
}

TEST_F(IndexWalkTest, BoundsCompareWithThePositionsStart) {
  EXPECT_EQ(Walk({.prefixes = {"a/", "b/"}, .lower = "2", .upper = "6"}), (Positions{"2b", "3c", "5e"}));
  EXPECT_EQ(Walk({.prefixes = {"a/", "b/"}, .descending = true, .lower = "2", .upper = "6"}),
            (Positions{"5e", "3c", "2b"}));
  EXPECT_EQ(Walk({.prefixes = {"a/", "b/"}, .descending = true, .upper = "3"}), (Positions{"2b", "1a"}));
}

TEST_F(IndexWalkTest, StartsAfterAPositionAndResumesAfterTheBudget) {
  EXPECT_EQ(Walk({.prefixes = {"a/", "b/"}, .after = "3c"}), (Positions{"5e", "6f", "7g"}));
  EXPECT_EQ(Walk({.prefixes = {"a/", "b/"}, .descending = true, .after = "3c"}), (Positions{"2b", "1a"}));
  EXPECT_EQ(Walk({.prefixes = {"a/", "b/"}, .after = "4"}), (Positions{"5e", "6f", "7g"}));  // not a row
  int walks = 0;
  EXPECT_EQ(Walk({.prefixes = {"a/", "b/"}, .budget = 2}, &walks), (Positions{"1a", "2b", "3c", "5e", "6f", "7g"}));
  EXPECT_EQ(walks, 4);  // 7 rows (3c twice), two per walk
  EXPECT_EQ(Walk({.prefixes = {"a/", "b/"}, .descending = true, .budget = 1}),
            (Positions{"7g", "6f", "5e", "3c", "2b", "1a"}));
}

TEST_F(IndexWalkTest, StopsWhenTheVisitSaysSo) {
  int n = 0;
  auto end = WalkIndexes(db_.get(), rocksdb::ReadOptions(), {.prefixes = {"a/"}},
                         [&](absl::string_view, absl::string_view) -> absl::StatusOr<bool> { return ++n < 2; });
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(end->reached_end);
  EXPECT_EQ(end->last_position, "3c");
}

}  // namespace
}  // namespace crm::projection
