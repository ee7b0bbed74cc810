#include "libs/common/clock.h"

namespace crm {

Clock* SystemClock::Get() {
  static Clock* clock = new SystemClock();
  return clock;
}

absl::Time ManualClock::Now() const {
  absl::MutexLock l(&mu_);
  return now_;
}

void ManualClock::Set(absl::Time t) {
  absl::MutexLock l(&mu_);
  now_ = t;
}

void ManualClock::Advance(absl::Duration d) {
  absl::MutexLock l(&mu_);
  now_ += d;
}

}  // namespace crm
