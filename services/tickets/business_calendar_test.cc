#include "services/tickets/business_calendar.h"

#include "gtest/gtest.h"
#include "libs/common/status_testing.h"
#include "services/tickets/domain_testing.h"

namespace crm::tickets {
namespace {

using crm::testing::FieldOf;

const absl::TimeZone kCst = absl::FixedTimeZone(8 * 3600);

absl::Time At(int y, int mo, int d, int h, int mi = 0) {
  return absl::FromCivil(absl::CivilMinute(y, mo, d, h, mi), kCst);
}

// Monday to Friday 09:00-12:00 and 13:30-18:00 (7.5 hours a day). An example holiday week
// 2026-10-01..07 and a make-up Saturday 2026-10-10 (the dates are the test's, not an official
// calendar).
v1::BusinessCalendar Office() {
  v1::BusinessCalendar c = testing::OfficeHours();
  for (int d = 1; d <= 7; ++d) c.add_holidays(absl::StrCat("2026-10-0", d));
  c.add_workdays("2026-10-10");
  return c;
}

TEST(BusinessCalendarTest, CountsOnlyWorkingWindows) {
  auto cal = BusinessCalendar::Make(Office(), "calendar");
  ASSERT_TRUE(cal.ok()) << cal.status();
  // Monday 2026-03-02.
  EXPECT_EQ(cal->Between(At(2026, 3, 2, 10), At(2026, 3, 2, 11)), absl::Hours(1));
  EXPECT_EQ(cal->Between(At(2026, 3, 2, 11), At(2026, 3, 2, 14, 30)), absl::Hours(2));  // across lunch
  EXPECT_EQ(cal->Between(At(2026, 3, 2, 17), At(2026, 3, 3, 10)), absl::Hours(2));      // across the night
  EXPECT_EQ(cal->Between(At(2026, 3, 6, 17), At(2026, 3, 9, 10)), absl::Hours(2));      // across the weekend
  EXPECT_EQ(cal->Between(At(2026, 3, 2, 0), At(2026, 3, 9, 0)), absl::Minutes(5 * 450));
  EXPECT_EQ(cal->Between(At(2026, 3, 3, 10), At(2026, 3, 2, 10)), absl::ZeroDuration());
}

TEST(BusinessCalendarTest, HolidaysStopTheClockAndMakeUpWorkdaysRunIt) {
  auto cal = BusinessCalendar::Make(Office(), "calendar");
  ASSERT_TRUE(cal.ok());
  // Wednesday 2026-09-30 17:00 to Thursday 2026-10-08 10:00: one hour before the holiday
  // week, one after it.
  EXPECT_EQ(cal->Between(At(2026, 9, 30, 17), At(2026, 10, 8, 10)), absl::Hours(2));
  // The make-up Saturday works Monday's hours.
  EXPECT_EQ(cal->Between(At(2026, 10, 10, 0), At(2026, 10, 11, 0)), absl::Minutes(450));
  EXPECT_EQ(cal->Between(At(2026, 10, 17, 0), At(2026, 10, 18, 0)), absl::ZeroDuration());  // an ordinary one
}

TEST(BusinessCalendarTest, AddingBusinessTimeSkipsClosedHours) {
  auto cal = BusinessCalendar::Make(Office(), "calendar");
  ASSERT_TRUE(cal.ok());
  EXPECT_EQ(cal->Add(At(2026, 3, 6, 17), absl::Hours(4)), At(2026, 3, 9, 12));  // Friday 17:00 + 4 h
  EXPECT_EQ(cal->Add(At(2026, 3, 7, 20), absl::Minutes(30)), At(2026, 3, 9, 9, 30));
  EXPECT_EQ(cal->Add(At(2026, 9, 30, 17), absl::Hours(2)), At(2026, 10, 8, 10));
  // Add and Between agree.
  const absl::Time due = cal->Add(At(2026, 3, 2, 11, 15), absl::Hours(20));
  EXPECT_EQ(cal->Between(At(2026, 3, 2, 11, 15), due), absl::Hours(20));
  EXPECT_EQ(BusinessCalendar::AlwaysOpen().Add(At(2026, 3, 7, 20), absl::Hours(4)), At(2026, 3, 8, 0));
  auto closed = BusinessCalendar::Make(v1::BusinessCalendar(), "calendar");
  ASSERT_TRUE(closed.ok());
  EXPECT_EQ(closed->Add(At(2026, 3, 2, 9), absl::Hours(1)), absl::InfiniteFuture());
}

TEST(BusinessCalendarTest, MistakesNameTheirPart) {
  v1::BusinessCalendar c = Office();
  c.mutable_windows(1)->set_start_minute(11 * 60);  // overlaps the morning
  EXPECT_EQ(FieldOf(BusinessCalendar::Make(c, "calendar").status()), "calendar.windows");
  c = Office();
  c.add_holidays("2026-02-30");
  EXPECT_EQ(FieldOf(BusinessCalendar::Make(c, "calendar").status()), "calendar.holidays[7]");
  c = Office();
  c.add_workdays("2026-10-03");
  EXPECT_EQ(FieldOf(BusinessCalendar::Make(c, "calendar").status()), "calendar.workdays[1]");
  c = Office();
  c.mutable_windows(0)->set_weekday(8);
  EXPECT_EQ(FieldOf(BusinessCalendar::Make(c, "calendar").status()), "calendar.windows[0].weekday");
}

}  // namespace
}  // namespace crm::tickets
