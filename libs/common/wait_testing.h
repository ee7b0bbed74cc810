#ifndef CRM_LIBS_COMMON_WAIT_TESTING_H_
#define CRM_LIBS_COMMON_WAIT_TESTING_H_

// Waiting in tests for something another thread does (tests only): on the condition, never
// for a fixed time, and with a deadline, so that a slow machine makes a test slower, not
// flaky, and a broken one fails with what it was waiting for instead of hanging.
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace crm::testing {

// Calls `done()` until it returns true or `timeout` passed, `poll` apart. Returns success, or
// a failure naming `what`, how long it waited and `state()` (what the condition saw last),
// for ASSERT_TRUE / EXPECT_TRUE to report. `state` returns something absl::StrCat takes.
template <typename Done, typename State>
::testing::AssertionResult WaitUntil(absl::string_view what, absl::Duration timeout, Done done, State state,
                                     absl::Duration poll = absl::Milliseconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (done()) return ::testing::AssertionSuccess();
    if (absl::Now() >= deadline) break;
    absl::SleepFor(poll);
  }
  return ::testing::AssertionFailure() << "waited " << absl::FormatDuration(timeout) << " for " << what
                                       << "; last seen: " << absl::StrCat(state());
}

}  // namespace crm::testing

#endif  // CRM_LIBS_COMMON_WAIT_TESTING_H_
