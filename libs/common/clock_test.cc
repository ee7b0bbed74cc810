#include "libs/common/clock.h"

#include "gtest/gtest.h"

namespace crm {
namespace {

TEST(ManualClockTest, MovesOnlyWhenTold) {
  ManualClock clock(absl::FromUnixSeconds(100));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(100));
  clock.Advance(absl::Seconds(5));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(105));
  clock.Set(absl::FromUnixSeconds(7));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(7));
}

TEST(SystemClockTest, IsCloseToAbslNow) {
  EXPECT_LT(absl::AbsDuration(SystemClock::Get()->Now() - absl::Now()), absl::Seconds(1));
}

}  // namespace
}  // namespace crm
