#ifndef CRM_LIBS_COMMON_COMPLETIONS_H_
#define CRM_LIBS_COMMON_COMPLETIONS_H_

#include <cstdint>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace crm {

namespace completions_internal {

struct State {
  explicit State(int n) : pending(n) {}
  absl::Mutex mu;
  int pending ABSL_GUARDED_BY(mu);
  // The waiter returned (in time or not) or the Completions was destroyed: late completions
  // only count down, and what they would record is dropped.
  bool abandoned ABSL_GUARDED_BY(mu) = false;
  absl::Status first_error ABSL_GUARDED_BY(mu);
  int64_t written ABSL_GUARDED_BY(mu) = 0;
};

}  // namespace completions_internal

// Waits, up to a deadline, for a known number of asynchronous completions (callbacks on any
// thread), keeping the first error and counting those that wrote something: a batch of
// commands run at once.
//
// The callbacks hold a Handle, which shares the batch's state, so a completion that comes
// after the waiter gave up (or after this object is gone) touches no freed memory. What a
// completion adds to the waiter's own variables goes through Handle::Record, which runs only
// while the waiter still waits: a callback may then refer to the waiter's stack frame.
class Completions {
 public:
  // One share of the batch, for a callback: cheap to copy, may outlive the Completions.
  class Handle {
   public:
    // Runs `record` under the batch's lock unless the waiter already returned; true when it
    // ran. Completions' records never run concurrently with each other.
    template <typename F>
    bool Record(F&& record) const {
      absl::MutexLock l(&s_->mu);
      if (s_->abandoned) return false;
      std::forward<F>(record)();
      return true;
    }

    // One completion: keeps the first error, counts `wrote`. Call once per expected one.
    void Done(const absl::Status& status, bool wrote = false) const {
      Done(status, wrote, [] {});
    }

    // Record(record) and Done(status, wrote) under one lock: what `record` adds is there
    // whenever the completion counts.
    template <typename F>
    void Done(const absl::Status& status, bool wrote, F&& record) const {
      absl::MutexLock l(&s_->mu);
      if (!s_->abandoned) {
        std::forward<F>(record)();
        if (!status.ok() && s_->first_error.ok()) s_->first_error = status;
        if (wrote) ++s_->written;
      }
      --s_->pending;
    }

   private:
    friend class Completions;
    explicit Handle(std::shared_ptr<completions_internal::State> s) : s_(std::move(s)) {}
    std::shared_ptr<completions_internal::State> s_;
  };

  // `n` completions are expected.
  explicit Completions(int n) : s_(std::make_shared<completions_internal::State>(n)) {}
  Completions(const Completions&) = delete;
  Completions& operator=(const Completions&) = delete;
  ~Completions() { Abandon(); }

  // A share for one (or several) of the expected completions.
  Handle handle() const { return Handle(s_); }

  // Blocks until every completion came or `deadline` passed: the first error, or OK; when
  // some are still missing at the deadline, DEADLINE_EXCEEDED naming how many (the first
  // error wins over it). Either way, the batch is over on return: later completions record
  // nothing. Call once.
  absl::Status Wait(absl::Time deadline) {
    absl::MutexLock l(&s_->mu);
    auto done = [this]() ABSL_SHARED_LOCKS_REQUIRED(s_->mu) { return s_->pending <= 0; };
    s_->mu.AwaitWithDeadline(absl::Condition(&done), deadline);
    s_->abandoned = true;
    if (!s_->first_error.ok() || s_->pending <= 0) return s_->first_error;
    return absl::DeadlineExceededError(
        absl::StrCat("gave up waiting: ", s_->pending, " of a batch's commands did not answer in time"));
  }

  // Completions that wrote, counted until the wait ended (read after it).
  int64_t written() const {
    absl::MutexLock l(&s_->mu);
    return s_->written;
  }

 private:
  void Abandon() {
    absl::MutexLock l(&s_->mu);
    s_->abandoned = true;
  }

  std::shared_ptr<completions_internal::State> s_;
};

}  // namespace crm

#endif  // CRM_LIBS_COMMON_COMPLETIONS_H_
