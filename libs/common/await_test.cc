#include "libs/common/await.h"

#include <thread>

#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crm {
namespace {

using Callback = absl::AnyInvocable<void(absl::StatusOr<int>)>;

TEST(AwaitCallbackTest, ReturnsWhatTheCallbackGetsOnAnotherThread) {
  std::thread answerer;
  absl::StatusOr<int> got = AwaitCallback<absl::StatusOr<int>>([&](Callback done) {
    answerer = std::thread([done = std::move(done)]() mutable { done(42); });
  });
  answerer.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, 42);
}

TEST(AwaitCallbackTest, ACallbackRunInsideStartAnswersAtOnce) {
  absl::Status got = AwaitCallback<absl::Status>(
      [](absl::AnyInvocable<void(absl::Status)> done) { done(absl::NotFoundError("gone")); });
  EXPECT_EQ(got.code(), absl::StatusCode::kNotFound);
}

// The waiter gives up at its deadline; the callback that comes later writes into the state it
// shares with the waiter, not into the waiter's stack frame, which is gone by then.
TEST(AwaitCallbackTest, GivesUpAtTheDeadlineAndALateAnswerGoesNowhere) {
  Callback kept;
  const absl::Time start = absl::Now();
  absl::StatusOr<int> got = AwaitCallback<absl::StatusOr<int>>(
      [&](Callback done) { kept = std::move(done); }, {.timeout = absl::Milliseconds(30), .what = "the test's answer"});
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(30));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(got.status().message()), ::testing::HasSubstr("the test's answer"));
  kept(7);  // after the waiter returned: touches only the shared state
  kept = nullptr;
}

// A callback destroyed unanswered (an operation that dropped it) ends the wait at once instead
// of holding the caller until the deadline.
TEST(AwaitCallbackTest, ACallbackDroppedUnansweredEndsTheWaitAtOnce) {
  const absl::Time start = absl::Now();
  absl::StatusOr<int> got =
      AwaitCallback<absl::StatusOr<int>>([](Callback done) { Callback dropped = std::move(done); },
                                         {.timeout = absl::Seconds(30)});
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInternal);
}

TEST(AwaitCallbackTest, TheFirstAnswerStands) {
  absl::StatusOr<int> got = AwaitCallback<absl::StatusOr<int>>([](Callback done) {
    done(1);
    done(2);
  });
  EXPECT_EQ(*got, 1);
}

}  // namespace
}  // namespace crm
