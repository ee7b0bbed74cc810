#include "libs/server/admission.h"

#include <algorithm>
#include <cstdlib>

namespace crm::server {

void MethodLoad::Answered(absl::Duration took, absl::StatusCode code) {
  inflight_.fetch_sub(1, std::memory_order_relaxed);
  if (code == absl::StatusCode::kDeadlineExceeded || code == absl::StatusCode::kCancelled) return;
  const int64_t x = std::max<int64_t>(0, absl::ToInt64Nanoseconds(took));
  // The first answer sets the mean and half of it as the deviation (RFC 6298, 2.2).
  if (!seen_.load(std::memory_order_relaxed) && !seen_.exchange(true, std::memory_order_relaxed)) {
    mean_ns_.store(x, std::memory_order_relaxed);
    dev_ns_.store(x / 2, std::memory_order_relaxed);
    return;
  }
  const int64_t mean = mean_ns_.load(std::memory_order_relaxed);
  const int64_t dev = dev_ns_.load(std::memory_order_relaxed);
  const int64_t err = x - mean;
  mean_ns_.store(mean + err / 8, std::memory_order_relaxed);
  dev_ns_.store(dev + (std::abs(err) - dev) / 4, std::memory_order_relaxed);
}

}  // namespace crm::server
