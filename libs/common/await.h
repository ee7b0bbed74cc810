#ifndef CRM_LIBS_COMMON_AWAIT_H_
#define CRM_LIBS_COMMON_AWAIT_H_

#include <memory>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace crm {

// How long a thread blocks for an asynchronous callback (AwaitCallback).
struct AwaitOptions {
  // The longest wait. Default: 30 s: three times the Kafka log's own bound on an append
  // (KafkaLogOptions::append_timeout, libs/eventlog/kafka_log.h), so a slow but healthy write
  // is waited for and a lost callback is not waited for forever.
  absl::Duration timeout = absl::Seconds(30);
  // What is waited for, named in the DEADLINE_EXCEEDED message ("the append"). Must outlive
  // the call. Default: "the operation".
  absl::string_view what = "the operation";
};

namespace await_internal {

template <typename R>
struct Shared {
  absl::Mutex mu;
  // The callback ran, or was destroyed unanswered.
  bool over ABSL_GUARDED_BY(mu) = false;
  bool answered ABSL_GUARDED_BY(mu) = false;
  R result ABSL_GUARDED_BY(mu);
};

// The callback handed out: owns a share of the state, so it may run (or be destroyed) after
// the waiter gave up and returned. Destroyed without being called, it tells the waiter at once.
template <typename R>
class Reply {
 public:
  explicit Reply(std::shared_ptr<Shared<R>> s) : s_(std::move(s)) {}
  Reply(Reply&&) = default;
  Reply& operator=(Reply&&) = default;
  ~Reply() {
    if (s_ == nullptr) return;
    absl::MutexLock l(&s_->mu);
    s_->over = true;
  }

  void operator()(R r) {
    if (s_ == nullptr) return;
    absl::MutexLock l(&s_->mu);
    if (s_->answered) return;  // a second call of a one-shot callback: the first answer stands
    s_->result = std::move(r);
    s_->answered = true;
    s_->over = true;
  }

 private:
  std::shared_ptr<Shared<R>> s_;
};

}  // namespace await_internal

// Calls `start` with a callback taking an R (absl::Status or absl::StatusOr<T>) and blocks
// until that callback ran or `deadline` passed: what it was called with; DEADLINE_EXCEEDED
// naming `what` when it did not come in time; INTERNAL when it was destroyed without being
// called. The callback may run on any thread, inside `start` too, and after this returned:
// it shares its state with the waiter and holds no reference to the caller's stack. `start`
// runs on the calling thread before the wait.
template <typename R, typename Start>
R AwaitCallback(Start&& start, absl::Time deadline, absl::string_view what = "the operation") {
  auto shared = std::make_shared<await_internal::Shared<R>>();
  std::forward<Start>(start)(absl::AnyInvocable<void(R)>(await_internal::Reply<R>(shared)));
  absl::MutexLock l(&shared->mu);
  if (!shared->mu.AwaitWithDeadline(absl::Condition(&shared->over), deadline)) {
    return absl::DeadlineExceededError(absl::StrCat("gave up waiting for ", what, ": no answer in time"));
  }
  if (!shared->answered) return absl::InternalError(absl::StrCat(what, " ended without an answer"));
  return std::move(shared->result);
}

// AwaitCallback with `options`: a deadline of options.timeout from now.
template <typename R, typename Start>
R AwaitCallback(Start&& start, const AwaitOptions& options = {}) {
  return AwaitCallback<R>(std::forward<Start>(start), absl::Now() + options.timeout, options.what);
}

}  // namespace crm

#endif  // CRM_LIBS_COMMON_AWAIT_H_
