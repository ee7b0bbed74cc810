#include "libs/common/request.h"

#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "gtest/gtest.h"
#include "libs/common/etag.h"
#include "libs/common/grpc_status.h"
#include "libs/common/status_testing.h"

namespace crm {
namespace {

TEST(OrderByTest, ParsesAFieldAndADirectionAndNamesOrderByOtherwise) {
  auto o = ParseOrderBy("", {"create_time", "amount"}, "create_time");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->field, "create_time");
  EXPECT_FALSE(o->desc);
  o = ParseOrderBy("amount desc", {"create_time", "amount"}, "create_time");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->field, "amount");
  EXPECT_TRUE(o->desc);
  for (const char* bad : {"colour", "amount sideways", "amount desc now"}) {
    auto b = ParseOrderBy(bad, {"create_time", "amount"}, "create_time");
    ASSERT_FALSE(b.ok()) << bad;
    auto br = GetBadRequest(b.status());
    ASSERT_TRUE(br.has_value());
    EXPECT_EQ(br->field_violations(0).field(), "order_by");
  }
}

TEST(OrderByTest, NamesThePositionOfTextAfterTheOrder) {
  auto b = ParseOrderBy("amount desc, create_time", {"create_time", "amount"}, "create_time");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(b.status().message().find("order_by"), absl::string_view::npos);
  EXPECT_NE(b.status().message().find("position 12"), absl::string_view::npos) << b.status();
  EXPECT_TRUE(ParseOrderBy("  amount\tasc ", {"amount"}, "amount").ok());
}

std::string FilterError(const std::string& text, const std::vector<std::string>& allowed = {"owner_id", "team_id"}) {
  auto got = ParseFilterTerms(text, allowed);
  if (got.ok()) return "ok";
  auto br = GetBadRequest(got.status());
  EXPECT_TRUE(br.has_value());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  if (br.has_value()) EXPECT_EQ(br->field_violations(0).field(), "filter");
  return std::string(got.status().message());
}

TEST(FilterTest, ParsesTermsJoinedByAnd) {
  auto f = ParseFilterTerms(R"(owner_id = "w 1" AND team_id=t2   AND tags:"a\"b")", {"owner_id", "team_id", "tags"},
                            {"tags"});
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->size(), 3u);
  EXPECT_EQ((*f)[0].field, "owner_id");
  EXPECT_EQ((*f)[0].value, "w 1");
  EXPECT_EQ((*f)[1].value, "t2");
  EXPECT_EQ((*f)[2].op, ':');
  EXPECT_EQ((*f)[2].value, "a\"b");
  EXPECT_TRUE(ParseFilterTerms("  ", {"owner_id"})->empty());
}

TEST(FilterTest, RefusesTrailingTextNamingItsPosition) {
  // What an outside tester sent: the OR and everything after it used to be ignored.
  EXPECT_NE(FilterError(R"(owner_id = "w1" OR 1=1)").find("position 17"), std::string::npos);
  EXPECT_NE(FilterError(R"(owner_id = "w1" AND)").find("ends where"), std::string::npos);
  EXPECT_NE(FilterError(R"(owner_id = "w1")" "\")").find("position 16"), std::string::npos);
  EXPECT_NE(FilterError(R"(owner_id = w1 team_id = t1)").find("position 15"), std::string::npos);
  EXPECT_NE(FilterError(R"(owner_id = "w1)").find("closing quote"), std::string::npos);
  EXPECT_NE(FilterError(R"(owner_id != "w1")").find("position 10"), std::string::npos);
  EXPECT_NE(FilterError(R"(owner_id:"w1")").find("position 9"), std::string::npos);
  EXPECT_NE(FilterError(R"((owner_id = "w1"))").find("position 1"), std::string::npos);
  EXPECT_NE(FilterError(R"(owner_id = "w1" and team_id = "t")").find("position 17"), std::string::npos);
  // Positions count characters, not bytes.
  EXPECT_NE(FilterError("owner_id = \"张三\" OR x").find("position 17"), std::string::npos);
}

TEST(FilterTest, RefusesUnknownFieldsEmptyValuesAndRepeats) {
  EXPECT_NE(FilterError(R"(colour = "red")").find("cannot filter on 'colour'"), std::string::npos);
  EXPECT_NE(FilterError(R"(owner_id = "")").find("has no value"), std::string::npos);
  EXPECT_NE(FilterError(R"(owner_id = a AND owner_id = b)").find("twice"), std::string::npos);
}

TEST(TimeSortKeyTest, OrdersAsTimeDoes) {
  google::protobuf::Timestamp a, b, c;
  a.set_seconds(9);
  a.set_nanos(999999999);
  b.set_seconds(10);
  c.set_seconds(10);
  c.set_nanos(1);
  EXPECT_LT(TimeSortKey(a), TimeSortKey(b));
  EXPECT_LT(TimeSortKey(b), TimeSortKey(c));
}

TEST(CopySameNamedTest, CopiesRepeatedIntegersAndStrings) {
  // SourceCodeInfo.Location has repeated int32 (path, span) and repeated string fields.
  google::protobuf::SourceCodeInfo::Location from, to;
  from.add_path(4);
  from.add_path(2);
  from.add_leading_detached_comments("x");
  from.set_leading_comments("lead");
  to.add_path(9);
  CopySameNamed(from, &to);
  ASSERT_EQ(to.path_size(), 2);
  EXPECT_EQ(to.path(0), 4);
  EXPECT_EQ(to.path(1), 2);
  ASSERT_EQ(to.leading_detached_comments_size(), 1);
  EXPECT_EQ(to.leading_comments(), "lead");
}

// A read of a resource never written (the sales settings) answers etag "0": passed back, it is
// a test-and-set against "still unwritten", not a refusal.
TEST(EtagTest, ZeroMeansNothingWrittenYet) {
  auto zero = ParseEtag("0", "etag");
  ASSERT_TRUE(zero.ok()) << zero.status();
  EXPECT_TRUE(CheckEtag(0, *zero, "settings").ok());
  EXPECT_EQ(CheckEtag(1, *zero, "settings").code(), absl::StatusCode::kAborted);
  EXPECT_EQ(*ParseEtag("", "etag"), 0);
  EXPECT_TRUE(CheckEtag(5, *ParseEtag("", "etag"), "settings").ok());
  EXPECT_TRUE(CheckEtag(5, *ParseEtag("5", "etag"), "settings").ok());
  EXPECT_EQ(CheckEtag(6, *ParseEtag("5", "etag"), "settings").code(), absl::StatusCode::kAborted);
  EXPECT_EQ(testing::FieldOf(ParseEtag("-1", "etag").status()), "etag");
  EXPECT_EQ(testing::FieldOf(ParseEtag("x", "etag").status()), "etag");
}

}  // namespace
}  // namespace crm
