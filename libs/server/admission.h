#ifndef CRM_LIBS_SERVER_ADMISSION_H_
#define CRM_LIBS_SERVER_ADMISSION_H_

// Admission by deadline: the runtime refuses at once, before authenticating or deciding
// anything, a unary call whose deadline is shorter than the time its method's calls now take
// to be answered. Such a call would otherwise take a slot, wait in the per-aggregate and log
// queues, be decided and written, and be answered after its client gave up: work that only
// delays the calls that could still be served in time (docs/benchmarks.md, "Overload").
#include <atomic>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace crm::server {

// How long one method's admitted unary calls take from admission to answer, and how many are
// in flight. The estimate is a smoothed mean plus two mean deviations of the recent answers,
// as TCP estimates a round trip (RFC 6298, gains 1/8 and 1/4): it follows a change of load
// within some ten answers and sits above most of them when latencies vary.
//
// Thread-safe and lock-free: Answered() is a few relaxed atomic operations, and two answers
// racing may lose one update of the estimate, which only slows its convergence.
class MethodLoad {
 public:
  // A call of the method was admitted; Answered() must follow once.
  void Admitted() { inflight_.fetch_add(1, std::memory_order_relaxed); }
  // An admitted call was answered with `code` (or ended by the runtime) `took` after it was
  // admitted. DEADLINE_EXCEEDED and CANCELLED answers leave the estimate alone: their time is
  // the client's deadline (a read parked on a consistency token until then), not the server's,
  // and one client's long waits must not get everyone else's calls refused.
  void Answered(absl::Duration took, absl::StatusCode code);

  // Whether a call with `remaining` left until its deadline may be admitted: false when
  // `remaining` is not positive, or when calls are in flight and `remaining` is shorter than
  // Estimate(). A method with no call in flight admits whatever deadline is left, so that a
  // stale estimate (a burst that has passed) is replaced by the next answer instead of
  // refusing every later call.
  bool CanMeet(absl::Duration remaining) const {
    if (remaining <= absl::ZeroDuration()) return false;
    return inflight_.load(std::memory_order_relaxed) == 0 || remaining >= Estimate();
  }

  // The admission-to-answer time a call can expect now; zero until a call was answered.
  absl::Duration Estimate() const {
    return absl::Nanoseconds(mean_ns_.load(std::memory_order_relaxed) + 2 * dev_ns_.load(std::memory_order_relaxed));
  }
  int inflight() const { return inflight_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int> inflight_{0};
  std::atomic<int64_t> mean_ns_{0};
  std::atomic<int64_t> dev_ns_{0};
  std::atomic<bool> seen_{false};
};

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_ADMISSION_H_
