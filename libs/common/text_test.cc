#include "libs/common/text.h"

#include "gtest/gtest.h"
#include "libs/common/grpc_status.h"

namespace crm {
namespace {

TEST(TextTest, Utf8ValidationRejectsOverlongsSurrogatesAndTruncation) {
  EXPECT_TRUE(IsValidUtf8("aé中😀"));
  size_t bad = 99;
  EXPECT_FALSE(IsValidUtf8("ok\xC0\xAF", &bad));  // overlong '/'
  EXPECT_EQ(bad, 2u);
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));  // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xE4\xB8"));      // truncated
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // beyond U+10FFFF
}


TEST(TextTest, LengthsAreCharactersAndFoldingTakesFullWidthToAscii) {
  EXPECT_EQ(Utf8Length("星辰科技ab"), 6u);
  EXPECT_EQ(FoldFullWidth("ＡＢＣ１２３　（）"), "ABC123 ()");
  EXPECT_TRUE(CheckText("四十个字以内", "name", 40, true).ok());
  EXPECT_EQ(GetBadRequest(CheckText("  ", "name", 40, true))->field_violations(0).field(), "name");
  EXPECT_FALSE(CheckText("星辰科技", "name", 3, false).ok());
  EXPECT_FALSE(CheckText("\xC0\xAF", "name", 40, false).ok());
}

}  // namespace
}  // namespace crm
