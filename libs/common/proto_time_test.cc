#include "libs/common/proto_time.h"

#include "gtest/gtest.h"
#include "libs/common/status_testing.h"

namespace crm {
namespace {

using testing::FieldOf;

google::protobuf::Timestamp At(int64_t seconds, int32_t nanos = 0) {
  google::protobuf::Timestamp t;
  t.set_seconds(seconds);
  t.set_nanos(nanos);
  return t;
}

TEST(ProtoTimeTest, FromProtoDoesNotWrapFarFromNow) {
  // 10000-01-01T00:00:00Z: as nanoseconds in 64 bits it wrapped to 1816.
  const absl::Time t = FromProto(At(253402300800));
  EXPECT_EQ(absl::ToCivilYear(t, absl::UTCTimeZone()).year(), 10000);
  EXPECT_EQ(FromProto(At(1700000000, 5)), absl::FromUnixSeconds(1700000000) + absl::Nanoseconds(5));
}

TEST(ProtoTimeTest, ClientTimeAcceptsTheSupportedRange) {
  EXPECT_EQ(*ClientTime(At(0), "as_of"), absl::UnixEpoch());
  EXPECT_EQ(*ClientTime(At(kClientTimeEndSeconds - 1, 999999999), "as_of"),
            absl::FromUnixSeconds(kClientTimeEndSeconds) - absl::Nanoseconds(1));
}

TEST(ProtoTimeTest, ClientTimeRefusesTimesOutsideTheRangeNamingTheField) {
  for (const auto& t : {At(253402300800), At(kClientTimeEndSeconds), At(-1), At(-5617123200) /* 1792 */,
                        At(100, -1), At(100, 1000000000)}) {
    auto got = ClientTime(t, "payment.paid_at");
    ASSERT_FALSE(got.ok()) << t.DebugString();
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(FieldOf(got.status()), "payment.paid_at");
  }
}

TEST(ProtoTimeTest, OptionalClientTimeFallsBackOnlyWhenUnset) {
  const absl::Time now = absl::FromUnixSeconds(1700000000);
  EXPECT_EQ(*OptionalClientTime(false, At(-1), "as_of", now), now);
  EXPECT_EQ(FieldOf(OptionalClientTime(true, At(-1), "as_of", now).status()), "as_of");
}

TEST(ProtoTimeTest, ClientTimeRangeNamesTheBadBound) {
  const auto a = At(1700000000), b = At(1700003600), far = At(253402300800);
  auto r = ClientTimeRange(&a, "start_time", &b, "end_time");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->end - r->start, absl::Hours(1));
  EXPECT_EQ(FieldOf(ClientTimeRange(nullptr, "start_time", &b, "end_time").status()), "start_time");
  EXPECT_EQ(FieldOf(ClientTimeRange(&a, "start_time", nullptr, "end_time").status()), "end_time");
  EXPECT_EQ(FieldOf(ClientTimeRange(&far, "start_time", &b, "end_time").status()), "start_time");
  EXPECT_EQ(FieldOf(ClientTimeRange(&a, "start_time", &far, "end_time").status()), "end_time");
  EXPECT_EQ(FieldOf(ClientTimeRange(&b, "start_time", &a, "end_time").status()), "end_time");
}

TEST(ProtoTimeTest, ParseClientDateTakesRealDaysInRange) {
  EXPECT_EQ(*ParseClientDate("2026-12-06", "due_date"), absl::CivilDay(2026, 12, 6));
  for (absl::string_view bad : {"2024-02-30", "1754-01-01", "2200-01-01", "10000-01-01", "2026-1-06", "", "today"}) {
    EXPECT_EQ(FieldOf(ParseClientDate(bad, "due_date").status()), "due_date") << bad;
  }
}

TEST(ProtoTimeTest, ParseStoredDateTakesWhatOlderVersionsStored) {
  EXPECT_EQ(*ParseStoredDate("2999-12-31", "d"), absl::CivilDay(2999, 12, 31));
  EXPECT_EQ(*ParseStoredDate("1900-01-01", "d"), absl::CivilDay(1900, 1, 1));
  EXPECT_EQ(ParseStoredDate("2024-02-30", "d").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseStoredDate("2024-2-3", "d").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseStoredDate("", "d").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ProtoTimeTest, ParseDayOrTimeRefusesTimesOutsideTheRange) {
  ASSERT_TRUE(ParseDayOrTime("2026-12-06").has_value());
  EXPECT_EQ(ParseDayOrTime("2026-12-06")->seconds(), 1796515200 - 8 * 3600);
  EXPECT_TRUE(ParseDayOrTime("2026-12-06T10:00:00Z").has_value());
  EXPECT_FALSE(ParseDayOrTime("9999-12-31T00:00:00Z").has_value());
  EXPECT_FALSE(ParseDayOrTime("1754-01-01").has_value());
  EXPECT_FALSE(ParseDayOrTime("1754-01-01T00:00:00Z").has_value());
  EXPECT_FALSE(ParseDayOrTime("2024-02-30").has_value());
}

}  // namespace
}  // namespace crm
