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

TEST(TextTest, NamesRefuseControlAndBidiCharacters) {
  for (const std::string bad :
       {std::string("a\0b", 3), std::string("a\x01"), std::string("line\nbreak"), std::string("tab\there"),
        std::string("cr\r\n"), std::string("del\x7f"), std::string("c1\xC2\x85"), std::string("c1\xC2\x9F"),
        std::string("evil\xE2\x80\xAEtxt.exe"), std::string("\xE2\x80\xAA"), std::string("\xE2\x81\xA6x"),
        std::string("\xE2\x81\xA9")}) {
    absl::Status s = CheckText(bad, "customer.display_name", 200, true);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(GetBadRequest(s)->field_violations(0).field(), "customer.display_name");
  }
  EXPECT_EQ(TextProblem("星辰\xE2\x80\xAE", TextKind::kLine),
            "contains the bidirectional control U+202E at position 3");
  EXPECT_EQ(TextProblem("ab\x07", TextKind::kLine), "contains the control character U+0007 at position 3");
  EXPECT_EQ(TextProblem("a\xC0\xAF", TextKind::kLine), "is not valid UTF-8 (at character 2)");
  // What stays allowed: other marks and spaces people type, and emoji.
  EXPECT_EQ(TextProblem("星辰 科技\xE2\x80\x8F（北京）\xC2\xA0😀", TextKind::kLine), "");
}

TEST(TextTest, FreeTextKeepsLineBreaksAndTabsOnly) {
  EXPECT_TRUE(CheckText("第一行\n第二行\r\n\t缩进", "notes", 100, false, TextKind::kMultiLine).ok());
  EXPECT_FALSE(CheckText("a\rb", "notes", 100, false, TextKind::kMultiLine).ok());
  EXPECT_FALSE(CheckText("a\x1b[2Jb", "notes", 100, false, TextKind::kMultiLine).ok());
  EXPECT_FALSE(CheckText("a\xE2\x80\xAE", "notes", 100, false, TextKind::kMultiLine).ok());
  EXPECT_FALSE(CheckText(std::string("a\0", 2), "notes", 100, false, TextKind::kMultiLine).ok());
}

}  // namespace
}  // namespace crm
