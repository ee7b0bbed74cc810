#include "libs/common/list_page.h"

#include <string>

#include "gtest/gtest.h"

namespace crm {
namespace {

TEST(PositionTokenTest, ReadsBackAnyPositionAndRefusesOtherQueriesAndForgeries) {
  const std::string position("\x01\x00\xff" "abc", 6);
  auto back = ParsePositionToken(PositionToken(position, "q|1"), "q|1");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, position);
  EXPECT_EQ(*ParsePositionToken("", "q|1"), "");
  EXPECT_EQ(ParsePositionToken(PositionToken(position, "q|1"), "q|2").status().code(),
            absl::StatusCode::kInvalidArgument);
  for (const std::string bad : {"!!", "cDk5OTp4", "MTI6eA", "cA", "cHg6"}) {
    EXPECT_EQ(ParsePositionToken(bad, "x").status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(PageTest, FillsThenFindsOneMoreForTheToken) {
  Page page(2, 7, "");
  WalkEnd end;
  EXPECT_TRUE(page.Takes("a"));
  EXPECT_TRUE(page.More());
  EXPECT_TRUE(page.Takes("b"));
  EXPECT_TRUE(page.More());  // looks for a match past the page
  EXPECT_FALSE(page.Takes("c"));
  EXPECT_FALSE(page.More());  // counted: no need to count on
  EXPECT_EQ(*ParsePositionToken(page.Token(end, "f"), "f"), "b");
  EXPECT_EQ(page.Total(end), 7);
}

TEST(PageTest, AFullLastPageHasNoToken) {
  Page page(2, absl::nullopt, "x");
  WalkEnd end;
  page.Takes("a");
  page.Takes("b");
  end.reached_end = true;
  EXPECT_EQ(page.Token(end, "f"), "");
  EXPECT_EQ(page.Total(end), -1);  // not the first page: not counted
}

TEST(PageTest, AFirstPageWithoutCountsCountsOnThenStops) {
  Page page(1, absl::nullopt, "");
  WalkEnd end;
  page.Takes("a");
  int64_t more = 0;
  while (page.More()) {
    page.Takes("z");
    ++more;
  }
  EXPECT_EQ(more, Page::kCountBeyond + 1);
  EXPECT_EQ(page.Total(end), -1);  // stopped before the end
  Page small(5, absl::nullopt, "");
  small.Takes("a");
  small.Takes("b");
  end.reached_end = true;
  EXPECT_EQ(small.Total(end), 2);
  EXPECT_EQ(small.Token(end, "f"), "");
}

TEST(PageTest, ABudgetRunOutGoesOnFromTheLastRowRead) {
  Page page(3, absl::nullopt, "");
  page.Takes("a");
  WalkEnd end;
  end.last_position = "q";
  EXPECT_EQ(*ParsePositionToken(page.Token(end, "f"), "f"), "q");
}

}  // namespace
}  // namespace crm
