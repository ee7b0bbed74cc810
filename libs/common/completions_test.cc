#include "libs/common/completions.h"

#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crm {
namespace {

TEST(CompletionsTest, KeepsTheFirstErrorAndCountsWhatWrote) {
  Completions batch(3);
  std::vector<std::thread> threads;
  threads.emplace_back([h = batch.handle()] { h.Done(absl::OkStatus(), true); });
  threads.emplace_back([h = batch.handle()] { h.Done(absl::OkStatus(), false); });
  threads.emplace_back([h = batch.handle()] { h.Done(absl::NotFoundError("gone"), false); });
  const absl::Status s = batch.Wait(absl::Now() + absl::Seconds(30));
  for (auto& t : threads) t.join();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(batch.written(), 1);
}

// A command whose callback never comes (lost, or stuck behind a stalled log) must not hold
// the waiter: it returns at its deadline, naming how many were missing.
TEST(CompletionsTest, AMissingCompletionEndsTheWaitAtTheDeadline) {
  auto batch = std::make_unique<Completions>(2);
  Completions::Handle late = batch->handle();
  batch->handle().Done(absl::OkStatus(), true);
  absl::Status got = absl::UnknownError("no answer");
  absl::Notification returned;
  std::thread waiter([&] {
    got = batch->Wait(absl::Now() + absl::Milliseconds(50));
    returned.Notify();
  });
  const bool in_time = returned.WaitForNotificationWithTimeout(absl::Seconds(10));
  EXPECT_TRUE(in_time) << "Wait() still blocked 10 s after its 50 ms deadline";
  if (!in_time) late.Done(absl::OkStatus());  // lets the thread end so the test can report
  waiter.join();
  EXPECT_EQ(got.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(got.message()), ::testing::HasSubstr("1 of"));
  EXPECT_EQ(batch->written(), 1);
}

// What a late completion would record goes nowhere: the waiter's variables it refers to are
// gone, and so is the Completions.
TEST(CompletionsTest, ACompletionAfterTheWaiterGaveUpRecordsNothing) {
  std::optional<Completions::Handle> late;
  auto counted = std::make_unique<int>(0);
  {
    Completions batch(1);
    late = batch.handle();
    EXPECT_EQ(batch.Wait(absl::Now() + absl::Milliseconds(10)).code(), absl::StatusCode::kDeadlineExceeded);
  }
  int* target = counted.get();
  counted.reset();  // the waiter's variable is freed: running the record would write into it
  EXPECT_FALSE(late->Record([target] { ++*target; }));
  late->Done(absl::InternalError("late"), true, [target] { ++*target; });
}

TEST(CompletionsTest, AnErrorIsReportedEvenWhenOthersAreMissing) {
  Completions batch(2);
  batch.handle().Done(absl::FailedPreconditionError("deleted"));
  EXPECT_EQ(batch.Wait(absl::Now() + absl::Milliseconds(10)).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(CompletionsTest, RecordsRunWhileTheWaiterWaits) {
  Completions batch(2);
  int sum = 0;
  std::thread t([h = batch.handle(), &sum] {
    h.Done(absl::OkStatus(), true, [&sum] { sum += 2; });
    h.Done(absl::OkStatus(), false, [&sum] { sum += 3; });
  });
  EXPECT_TRUE(batch.Wait(absl::Now() + absl::Seconds(30)).ok());
  t.join();
  EXPECT_EQ(sum, 5);
  EXPECT_EQ(batch.written(), 1);
}

}  // namespace
}  // namespace crm
