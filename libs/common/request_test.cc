#include "libs/common/request.h"

#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "gtest/gtest.h"
#include "libs/common/grpc_status.h"

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

}  // namespace
}  // namespace crm
