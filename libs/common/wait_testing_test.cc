#include "libs/common/wait_testing.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

namespace crm::testing {
namespace {

TEST(WaitUntilTest, ReturnsOnceAnotherThreadMadeTheConditionTrue) {
  std::atomic<bool> set{false};
  std::thread t([&] {
    absl::SleepFor(absl::Milliseconds(50));
    set = true;
  });
  const absl::Time start = absl::Now();
  EXPECT_TRUE(WaitUntil("the flag", absl::Seconds(10), [&] { return set.load(); }, [] { return "unset"; }));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  t.join();
}

TEST(WaitUntilTest, FailsAtTheDeadlineNamingWhatItWaitedForAndWhatItSaw) {
  int polls = 0;
  const absl::Time start = absl::Now();
  ::testing::AssertionResult r = WaitUntil(
      "three replicas", absl::Milliseconds(100), [&] { return ++polls < 0; }, [&] { return polls; });
  EXPECT_FALSE(r);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(100));
  EXPECT_GT(polls, 1);
  EXPECT_NE(std::string(r.message()).find("waited 100ms for three replicas; last seen: "), std::string::npos)
      << r.message();
}

}  // namespace
}  // namespace crm::testing
