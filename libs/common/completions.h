#ifndef CRM_LIBS_COMMON_COMPLETIONS_H_
#define CRM_LIBS_COMMON_COMPLETIONS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"

namespace crm {

// Waits for a known number of asynchronous completions (callbacks on any thread), keeping the
// first error and counting those that wrote something: a batch of commands run at once.
class Completions {
 public:
  explicit Completions(int n) : pending_(n) {}

  // One completion. Counts down last, after releasing the lock: the waiter may destroy this
  // object as soon as Wait() returns.
  void Done(const absl::Status& status, bool wrote = false) {
    {
      absl::MutexLock l(&mu_);
      if (!status.ok() && first_error_.ok()) first_error_ = status;
      if (wrote) ++written_;
    }
    pending_.DecrementCount();
  }

  // Blocks until every completion came; the first error, or OK.
  absl::Status Wait() {
    pending_.Wait();
    absl::MutexLock l(&mu_);
    return first_error_;
  }

  // Completions that wrote (read after Wait()).
  int64_t written() {
    absl::MutexLock l(&mu_);
    return written_;
  }

 private:
  absl::BlockingCounter pending_;
  absl::Mutex mu_;
  absl::Status first_error_ ABSL_GUARDED_BY(mu_);
  int64_t written_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace crm

#endif  // CRM_LIBS_COMMON_COMPLETIONS_H_
