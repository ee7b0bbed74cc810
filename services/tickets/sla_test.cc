#include "services/tickets/sla.h"

#include "gtest/gtest.h"
#include "services/tickets/domain_testing.h"

namespace crm::tickets {
namespace {

const absl::TimeZone kCst = absl::FixedTimeZone(8 * 3600);

absl::Time At(int d, int h, int mi = 0) {  // March 2026: the 2nd is a Monday
  return absl::FromCivil(absl::CivilMinute(2026, 3, d, h, mi), kCst);
}

// Monday to Friday 09:00-12:00 and 13:30-18:00.
BusinessCalendar Office() { return *BusinessCalendar::Make(testing::OfficeHours(), "calendar"); }

// Created Monday 10:00, answered 10:30, worked on from 11:00, waiting for the customer
// (paused) Monday 14:30 to Tuesday 10:00, resolved Tuesday 15:00.
TicketTimeline Ticket() {
  TicketTimeline t;
  t.created = At(2, 10);
  t.steps = {{At(2, 10)},
             {At(2, 11)},
             {At(2, 14, 30), /*pauses=*/true},
             {At(3, 10)},
             {At(3, 15), /*pauses=*/false, /*final=*/true}};
  t.first_response = At(2, 10, 30);
  return t;
}

TEST(SlaTest, ClocksCountBusinessTimeAndStopWhileWaiting) {
  const SlaStatus s = EvaluateSla(Ticket(), {absl::Hours(1), absl::Hours(8)}, Office(), At(4, 9));
  EXPECT_TRUE(s.first_response.stopped);
  EXPECT_EQ(s.first_response.elapsed, absl::Minutes(30));
  EXPECT_FALSE(s.first_response.breached);
  EXPECT_TRUE(s.resolution.stopped);
  // Monday 10:00-12:00 and 13:30-14:30, Tuesday 10:00-12:00 and 13:30-15:00.
  EXPECT_EQ(s.resolution.elapsed, absl::Minutes(390));
  EXPECT_FALSE(s.resolution.breached);
  EXPECT_EQ(s.resolution.warn_at, At(3, 14, 54));  // 80% of 8 h = 6 h 24 min
}

TEST(SlaTest, ThePastUnderAnotherPolicy) {
  // What if the resolution target had been 4 hours: breached Tuesday 11:00.
  const SlaStatus s = EvaluateSla(Ticket(), {absl::Hours(1), absl::Hours(4)}, Office(), At(4, 9));
  EXPECT_TRUE(s.resolution.breached);
  EXPECT_EQ(s.resolution.breached_at, At(3, 11));
  EXPECT_EQ(s.resolution.warn_at, At(3, 10, 12));  // 3 h 12 min: 12 minutes into Tuesday
  // And around the clock instead of office hours: breached Monday 14:00, before the wait.
  const SlaStatus a =
      EvaluateSla(Ticket(), {absl::Hours(1), absl::Hours(4)}, BusinessCalendar::AlwaysOpen(), At(4, 9));
  EXPECT_EQ(a.resolution.breached_at, At(2, 14));
}

TEST(SlaTest, AsOfAMomentPausedOrRunning) {
  const SlaTargets targets{absl::Hours(1), absl::Hours(8)};
  SlaStatus s = EvaluateSla(Ticket(), targets, Office(), At(2, 16));  // waiting for the customer
  EXPECT_TRUE(s.resolution.paused);
  EXPECT_FALSE(s.resolution.stopped);
  EXPECT_EQ(s.resolution.due, absl::InfiniteFuture());
  EXPECT_EQ(s.resolution.elapsed, absl::Hours(3));
  s = EvaluateSla(Ticket(), targets, Office(), At(3, 10, 30));  // working again
  EXPECT_FALSE(s.resolution.paused);
  EXPECT_EQ(s.resolution.elapsed, absl::Minutes(210));
  EXPECT_EQ(s.resolution.due, At(3, 16, 30));  // 4.5 h left: 10:30-12:00, 13:30-16:30
}

TEST(SlaTest, AReopenedTicketsClockRunsAgain) {
  TicketTimeline t = Ticket();
  t.steps.push_back({At(4, 9)});  // reopened Wednesday 09:00
  const SlaStatus s = EvaluateSla(t, {absl::Hours(1), absl::Hours(8)}, Office(), At(4, 10));
  EXPECT_FALSE(s.resolution.stopped);
  EXPECT_EQ(s.resolution.elapsed, absl::Minutes(390 + 60));
  EXPECT_TRUE(s.first_response.stopped);
}

TEST(SlaTest, NoResponseYetAndNoTarget) {
  TicketTimeline t;
  t.created = At(2, 10);
  t.steps = {{At(2, 10)}};
  const SlaStatus s = EvaluateSla(t, {absl::Hours(1), absl::ZeroDuration()}, Office(), At(2, 12));
  EXPECT_TRUE(s.first_response.breached);
  EXPECT_EQ(s.first_response.breached_at, At(2, 11));
  EXPECT_FALSE(s.resolution.has_target);
  EXPECT_FALSE(s.resolution.breached);
}

}  // namespace
}  // namespace crm::tickets
