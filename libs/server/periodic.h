#ifndef CRM_LIBS_SERVER_PERIODIC_H_
#define CRM_LIBS_SERVER_PERIODIC_H_

#include <functional>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace crm::server {

// Background loops of a service host (the scheduler, gauges): each runs its function at once
// and then every interval on a thread of its own until the object is destroyed, which waits
// for the runs in progress. Not thread-safe.
class Periodic {
 public:
  Periodic() = default;
  Periodic(const Periodic&) = delete;
  Periodic& operator=(const Periodic&) = delete;
  ~Periodic() { Stop(); }

  void Every(absl::Duration interval, std::function<void()> fn) {
    threads_.emplace_back([this, interval, fn = std::move(fn)] {
      do {
        fn();
      } while (!stop_.WaitForNotificationWithTimeout(interval));
    });
  }
  void Stop() {
    if (!stop_.HasBeenNotified()) stop_.Notify();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  absl::Notification stop_;
  std::vector<std::thread> threads_;
};

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_PERIODIC_H_
