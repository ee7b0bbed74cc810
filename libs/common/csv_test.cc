#include "libs/common/csv.h"

#include "gtest/gtest.h"

namespace crm::csv {
namespace {

std::vector<std::vector<std::string>> ReadAll(absl::string_view text, std::vector<int64_t>* lines = nullptr) {
  Reader r(text);
  std::vector<std::vector<std::string>> out;
  std::vector<std::string> f;
  for (;;) {
    auto more = r.Next(&f);
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) break;
    out.push_back(f);
    if (lines) lines->push_back(r.line());
  }
  return out;
}

TEST(CsvReaderTest, Rfc4180QuotingLineBreaksAndBothLineEndings) {
  std::vector<int64_t> lines;
  auto rows = ReadAll("名称,备注\r\n\"星辰, 科技\",\"他说\"\"你好\"\"\r\n第二行\"\n,\n末行,无换行", &lines);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"名称", "备注"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"星辰, 科技", "他说\"你好\"\r\n第二行"}));
  EXPECT_EQ(rows[2], (std::vector<std::string>{"", ""}));
  EXPECT_EQ(rows[3], (std::vector<std::string>{"末行", "无换行"}));
  EXPECT_EQ(lines, (std::vector<int64_t>{1, 2, 4, 5}));
}

TEST(CsvReaderTest, MalformedQuotingNamesTheLine) {
  Reader open("a,b\n\"never closed,c\n");
  std::vector<std::string> f;
  ASSERT_TRUE(*open.Next(&f));
  auto s = open.Next(&f);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("line 2"), std::string::npos) << s.status();
  Reader after("\"x\"y,z\n");
  s = after.Next(&f);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("after the closing quote"), std::string::npos);
}

TEST(CsvWriterTest, QuotesOnlyWhatNeedsItAndRoundTrips) {
  const std::vector<std::string> fields = {"plain", "a,b", "say \"hi\"", "two\r\nlines", " padded", "", "中文"};
  const std::string line = FormatRecord(fields);
  EXPECT_EQ(line, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\r\nlines\",\" padded\",,中文\r\n");
  EXPECT_EQ(ReadAll(line), std::vector<std::vector<std::string>>{fields});
}

TEST(CsvFormulaTest, CellsThatSpreadsheetsWouldEvaluateAreNeutralisedAndRestored) {
  for (const std::string cell : {"=1+1", "+86 138", "-2", "@SUM(A1)", "\tx", "\rx"}) {
    const std::string safe = NeutralizeFormula(cell);
    EXPECT_EQ(safe, "'" + cell);
    EXPECT_EQ(RestoreFormula(safe), cell);
  }
  EXPECT_EQ(NeutralizeFormula("星辰=科技"), "星辰=科技");
  EXPECT_EQ(RestoreFormula("'quoted"), "'quoted");  // not one of ours
}

TEST(CsvEncodingTest, Utf8WithAndWithoutBomAndGb18030) {
  auto bom = DecodeToUtf8("\xEF\xBB\xBF客户名称,手机\r\n", Encoding::kAuto);
  ASSERT_TRUE(bom.ok());
  EXPECT_TRUE(bom->had_bom);
  EXPECT_EQ(bom->encoding, Encoding::kUtf8);
  EXPECT_EQ(bom->text, "客户名称,手机\r\n");
  auto plain = DecodeToUtf8("客户名称", Encoding::kAuto);
  EXPECT_EQ(plain->encoding, Encoding::kUtf8);
  EXPECT_FALSE(plain->had_bom);
  // 客户名称 in GB18030 (as Excel saves CSV on Chinese Windows)
  const std::string gb = "\xBF\xCD\xBB\xA7\xC3\xFB\xB3\xC6,\xCA\xD6\xBB\xFA";
  auto g = DecodeToUtf8(gb, Encoding::kAuto);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->encoding, Encoding::kGb18030);
  EXPECT_EQ(g->text, "客户名称,手机");
  EXPECT_EQ(DecodeToUtf8(gb, Encoding::kGb18030)->text, "客户名称,手机");
  EXPECT_EQ(*EncodeGb18030("客户名称,手机"), gb);
  // Asked for UTF-8, GB18030 bytes are an error naming the byte
  auto wrong = DecodeToUtf8(gb, Encoding::kUtf8);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("byte 0"), std::string::npos) << wrong.status();
  // A truncated GB18030 character
  EXPECT_FALSE(DecodeToUtf8("\xBF\xCD\xBB", Encoding::kGb18030).ok());
  EXPECT_FALSE(DecodeToUtf8("\xFF\xFEx\0", Encoding::kAuto).ok());  // UTF-16
}

}  // namespace
}  // namespace crm::csv
