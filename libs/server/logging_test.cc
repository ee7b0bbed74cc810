#include "libs/server/logging.h"

#include <grpc/grpc.h>
#include <grpc/support/log.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/stubs/logging.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace crm::server {
namespace {

TEST(MaskPiiTest, MasksMobileNumbersInEveryCommonForm) {
  EXPECT_EQ(MaskPii("phone 13812345678 ok"), "phone 138****5678 ok");
  EXPECT_EQ(MaskPii("+86 138 1234 5678"), "138****5678");
  EXPECT_EQ(MaskPii("tel:138-1234-5678"), "tel:138****5678");
  EXPECT_EQ(MaskPii("138.1234.5678"), "138****5678");
  EXPECT_EQ(MaskPii("8613812345678,+86-139-1234-0000"), "138****5678,139****0000");
  EXPECT_EQ(MaskPii("call13812345678now"), "call138****5678now");
}

TEST(MaskPiiTest, MasksFullWidthMobileNumbers) {
  EXPECT_EQ(MaskPii("电话１３８１２３４５６７８。"), "电话138****5678。");
  EXPECT_EQ(MaskPii("１３８－１２３４－５６７８"), "138****5678");
  EXPECT_EQ(MaskPii("１３８．１２３４．５６７８"), "138****5678");
  EXPECT_EQ(MaskPii("＋８６　１３８　１２３４　５６７８"), "138****5678");
  EXPECT_EQ(MaskPii("138　1234　5678"), "138****5678");  // ideographic spaces
  EXPECT_EQ(MaskPii("13８1２34５67８"), "138****5678");  // mixed widths
}

TEST(MaskPiiTest, LeavesOtherNumbersAlone) {
  EXPECT_EQ(MaskPii("order 123456 at version 12"), "order 123456 at version 12");
  EXPECT_EQ(MaskPii("id 0190f1c4-0000-7000"), "id 0190f1c4-0000-7000");
  EXPECT_EQ(MaskPii("138123456789"), "138123456789");      // 12 digits
  EXPECT_EQ(MaskPii("２13812345678"), "２13812345678");    // a full-width digit before
  EXPECT_EQ(MaskPii("13812345678９"), "13812345678９");    // and after
  EXPECT_EQ(MaskPii("23812345678"), "23812345678");        // not a mobile prefix
  EXPECT_EQ(MaskPii("138--1234-5678"), "138--1234-5678");  // one separator at most
  EXPECT_EQ(MaskPii("+8"), "+8");
  EXPECT_EQ(MaskPii("86"), "86");
}

TEST(MaskPiiTest, MasksEmails) {
  EXPECT_EQ(MaskPii("mail zhang.san@example.com now"), "mail z***@example.com now");
  EXPECT_EQ(MaskPii("to a@b.com."), "to a***@b.com.");
  EXPECT_EQ(MaskPii("o'brien+crm@mail.example.co.uk;x"), "o***@mail.example.co.uk;x");
  EXPECT_EQ(MaskPii("13812345678@qq.com"), "1***@qq.com");
  EXPECT_EQ(MaskPii("a@b.com.c"), "a***@b.com.c");
}

TEST(MaskPiiTest, MasksInternationalizedEmails) {
  EXPECT_EQ(MaskPii("用户@例子.中国"), "用***@例子.中国");
  EXPECT_EQ(MaskPii("邮箱：张三@公司.com，谢谢"), "邮箱：张***@公司.com，谢谢");
  EXPECT_EQ(MaskPii("user@xn--fsqu00a.xn--55qx5d"), "u***@xn--fsqu00a.xn--55qx5d");
  EXPECT_EQ(MaskPii("用户@xn--fsqu00a.xn--fiqs8s"), "用***@xn--fsqu00a.xn--fiqs8s");
  EXPECT_EQ(MaskPii("zhang＠example。com"), "z***＠example。com");  // full-width @, ideographic dot
  EXPECT_EQ(MaskPii("Zoë.Müller@bücher.de"), "Z***@bücher.de");
}

TEST(MaskPiiTest, LeavesWhatIsNoEmailAlone) {
  EXPECT_EQ(MaskPii("pkg@1.2.3"), "pkg@1.2.3");
  EXPECT_EQ(MaskPii("@handle and a@localhost"), "@handle and a@localhost");
  EXPECT_EQ(MaskPii("customers/c1@v3"), "customers/c1@v3");
  EXPECT_EQ(MaskPii("a@b.c"), "a@b.c");
  EXPECT_EQ(MaskPii("@@@..."), "@@@...");
}

TEST(MaskPiiTest, SurvivesInvalidUtf8) {
  EXPECT_EQ(MaskPii("\xff\xfe 13812345678 \xe4\xb8"), "\xff\xfe 138****5678 \xe4\xb8");
  EXPECT_EQ(MaskPii("a\xc0@b.com"), "a\xc0@b.com");  // no local part right before the @
}

// std::regex recursed once per character of a match and overflowed the stack at about 50 KB.
TEST(MaskPiiTest, OneMegabyteLinesInLinearTime) {
  const size_t kMb = 1 << 20;
  const std::string local(kMb, 'a');
  EXPECT_EQ(MaskPii(local + "@example.com"), "a***@example.com");
  EXPECT_EQ(MaskPii(local), local);
  std::string ats;
  while (ats.size() < kMb) ats += "a@";
  EXPECT_EQ(MaskPii(ats), ats);
  std::string labels = "a@";
  while (labels.size() < kMb) labels += "b.";
  EXPECT_EQ(MaskPii(labels + "cn"), "a***@" + labels.substr(2) + "cn");
  std::string digits;
  while (digits.size() < kMb) digits += "1 ";
  EXPECT_EQ(MaskPii(digits + "13812345678"), digits + "138****5678");
  std::string phones;
  while (phones.size() < kMb) phones += "+86 13812345678,";
  const std::string masked = MaskPii(phones);
  EXPECT_EQ(masked.find("12345678"), std::string::npos);
  EXPECT_EQ(masked.substr(0, 24), "138****5678,138****5678,");
}

TEST(JsonEscapeTest, EscapesAndReplacesInvalidUtf8) {
  EXPECT_EQ(JsonEscape("a\"b\\c\nd\x01"), "a\\\"b\\\\c\\nd\\u0001");
  EXPECT_EQ(JsonEscape("中文"), "中文");
  EXPECT_EQ(JsonEscape("x\xff\xc3("), "x\xEF\xBF\xBD\xEF\xBF\xBD(");
  EXPECT_EQ(JsonEscape("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
  EXPECT_EQ(JsonEscape("\xc0\xaf"), "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong '/'
}

TEST(JsonLogLineTest, IsOneJsonObjectWithTheMessageMasked) {
  const std::string line = JsonLogLine("error", "cannot open \"x\xff\" for 13812345678");
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  nlohmann::json j = nlohmann::json::parse(line);
  EXPECT_EQ(j["level"], "error");
  EXPECT_EQ(j["msg"], "cannot open \"x\xEF\xBF\xBD\" for 138****5678");
  EXPECT_TRUE(j.contains("time") && j.contains("logger"));
}

// What gRPC and protobuf log themselves (a request with invalid UTF-8, for one) goes into the
// JSON log instead of stderr as plain text.
TEST(InitJsonLoggingTest, RoutesGrpcAndProtobufLogsIntoJson) {
  InitJsonLogging("logging_test");
  grpc_init();  // gpr_log drops everything until gRPC has read its verbosity
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  gpr_log(__FILE__, __LINE__, GPR_LOG_SEVERITY_ERROR, "grpc says %s", "13812345678");
  GOOGLE_LOG(ERROR) << "protobuf says a@example.com";
  const std::string out = ::testing::internal::GetCapturedStdout();
  const std::string err = ::testing::internal::GetCapturedStderr();
  grpc_shutdown();
  EXPECT_EQ(err, "");
  std::vector<nlohmann::json> lines;
  size_t start = 0;
  for (size_t nl; (nl = out.find('\n', start)) != std::string::npos; start = nl + 1) {
    lines.push_back(nlohmann::json::parse(out.substr(start, nl - start)));
  }
  ASSERT_EQ(lines.size(), 2u) << out;
  EXPECT_EQ(lines[0]["level"], "error");
  EXPECT_EQ(lines[0]["logger"], "logging_test");
  EXPECT_NE(lines[0]["msg"].get<std::string>().find("grpc says 138****5678"), std::string::npos) << out;
  EXPECT_NE(lines[1]["msg"].get<std::string>().find("protobuf says a***@example.com"), std::string::npos) << out;
}

}  // namespace
}  // namespace crm::server
