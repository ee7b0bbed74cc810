#include "libs/server/admission.h"

#include "gtest/gtest.h"

namespace crm::server {
namespace {

// Admits one call and answers it after `took`.
void Serve(MethodLoad& load, absl::Duration took) {
  load.Admitted();
  load.Answered(took, absl::StatusCode::kOk);
}

TEST(MethodLoadTest, LearnsHowLongCallsTakeAndRefusesShorterDeadlinesWhileBusy) {
  MethodLoad load;
  EXPECT_EQ(load.Estimate(), absl::ZeroDuration());
  for (int i = 0; i < 20; ++i) Serve(load, absl::Milliseconds(50));
  EXPECT_GE(load.Estimate(), absl::Milliseconds(50));
  EXPECT_LT(load.Estimate(), absl::Milliseconds(60));
  load.Admitted();  // one call in flight
  EXPECT_FALSE(load.CanMeet(absl::Milliseconds(10)));
  EXPECT_TRUE(load.CanMeet(absl::Milliseconds(200)));
  load.Answered(absl::Milliseconds(50), absl::StatusCode::kOk);
  EXPECT_EQ(load.inflight(), 0);
}

// Calls whose time varies: the estimate sits above most of them, not at their mean.
TEST(MethodLoadTest, EstimateCoversVaryingAnswers) {
  MethodLoad load;
  for (int i = 0; i < 200; ++i) Serve(load, absl::Milliseconds(i % 2 == 0 ? 10 : 90));
  EXPECT_GT(load.Estimate(), absl::Milliseconds(90));
  EXPECT_LT(load.Estimate(), absl::Milliseconds(200));
}

// A burst taught a long time; with nothing in flight, the next call is admitted whatever its
// deadline, and its answer brings the estimate back down: a stale estimate cannot lock a
// method out.
TEST(MethodLoadTest, AnIdleMethodAdmitsAndRelearns) {
  MethodLoad load;
  for (int i = 0; i < 20; ++i) Serve(load, absl::Seconds(2));
  EXPECT_TRUE(load.CanMeet(absl::Milliseconds(5)));
  for (int i = 0; i < 40; ++i) Serve(load, absl::Milliseconds(1));
  load.Admitted();
  EXPECT_TRUE(load.CanMeet(absl::Milliseconds(50)));
  EXPECT_LT(load.Estimate(), absl::Milliseconds(50));
}

// Reads parked on a consistency token until their client's deadline took that deadline, not
// the server's time: they must not get calls with shorter deadlines refused.
TEST(MethodLoadTest, AnswersAtTheClientsDeadlineTeachNothing) {
  MethodLoad load;
  for (int i = 0; i < 20; ++i) Serve(load, absl::Milliseconds(2));
  const absl::Duration learned = load.Estimate();
  for (int i = 0; i < 20; ++i) {
    load.Admitted();
    load.Answered(absl::Seconds(10), i % 2 == 0 ? absl::StatusCode::kDeadlineExceeded : absl::StatusCode::kCancelled);
  }
  EXPECT_EQ(load.Estimate(), learned);
  EXPECT_EQ(load.inflight(), 0);
}

TEST(MethodLoadTest, AnExpiredDeadlineIsNeverMet) {
  MethodLoad load;
  EXPECT_FALSE(load.CanMeet(absl::ZeroDuration()));
  EXPECT_FALSE(load.CanMeet(absl::Milliseconds(-3)));
  EXPECT_TRUE(load.CanMeet(absl::Milliseconds(1)));
}

}  // namespace
}  // namespace crm::server
