#ifndef CRM_LIBS_SERVER_RUNTIME_H_
#define CRM_LIBS_SERVER_RUNTIME_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "libs/common/token.h"
#include "libs/server/auth.h"
#include "libs/server/metrics.h"

namespace crm::server {

struct RuntimeOptions {
  // host:port for gRPC; port 0 picks a free one (see Runtime::port()). Default: 127.0.0.1:50051.
  std::string listen = "127.0.0.1:50051";
  // Requests handled at once; more get RESOURCE_EXHAUSTED at once. Default: 512.
  int max_inflight = 512;
  // Longest wait a call may do (e.g. for min_consistency_token) when the client set no
  // deadline. Default: 10 s.
  absl::Duration max_wait = absl::Seconds(10);
  // On shutdown, calls in flight get this long to finish before they are cancelled.
  // Default: 10 s.
  absl::Duration drain_timeout = absl::Seconds(10);
};

// Limits requests in flight. Thread-safe.
class InflightLimiter {
 public:
  explicit InflightLimiter(int max) : max_(max) {}
  // RESOURCE_EXHAUSTED when `max` requests are in flight already; else call Release() later.
  absl::Status Acquire();
  void Release() { inflight_.fetch_sub(1, std::memory_order_relaxed); }
  int inflight() const { return inflight_.load(std::memory_order_relaxed); }

 private:
  const int max_;
  std::atomic<int> inflight_{0};
};

// What every handler needs at the start of a call.
struct CallScope {
  Claims claims;
  absl::Time deadline;  // the client's deadline, capped at now + max_wait
};

// The gRPC server of one process: health checking, reflection, metrics interceptor, bounded
// in-flight requests and authentication for the services it hosts.
class Runtime {
 public:
  // `auth` and `metrics` (may be null) must outlive the runtime.
  Runtime(RuntimeOptions options, const Authenticator* auth, Metrics* metrics)
      : options_(std::move(options)), auth_(auth), metrics_(metrics), limiter_(options_.max_inflight) {}
  // For other faces of the same services (the analytics dashboard's HTTP API).
  const Authenticator* authenticator() const { return auth_; }
  ~Runtime();

  // Builds and starts the server with `services` (which must outlive it), health checking
  // and reflection. UNAVAILABLE when the address cannot be bound.
  absl::Status Start(const std::vector<grpc::Service*>& services);

  // Admission, authentication and deadline for one call. On error, the caller finishes the
  // call with it (RESOURCE_EXHAUSTED, UNAUTHENTICATED); on success it must call Finish().
  absl::StatusOr<CallScope> Begin(const grpc::CallbackServerContext& ctx);
  // Finishes a call that Begin() admitted, with `status` mapped to google.rpc details.
  void Finish(grpc::ServerUnaryReactor* reactor, const absl::Status& status);
  // Ends a streaming call that Begin() admitted, once its reactor is done.
  void EndStream() { limiter_.Release(); }
  // Finishes a call that Begin() refused.
  static void Refuse(grpc::ServerUnaryReactor* reactor, const absl::Status& status);

  // Marks the services NOT_SERVING, stops taking calls and waits up to drain_timeout for
  // those in flight.
  void Shutdown();

  int port() const { return port_; }
  grpc::Server* server() { return server_.get(); }

 private:
  const RuntimeOptions options_;
  const Authenticator* auth_;
  Metrics* metrics_;
  InflightLimiter limiter_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
};

// Blocks SIGTERM and SIGINT in the calling thread and every thread it starts later, so that
// WaitForTerminationSignal() receives them. Call first thing in main, before any thread starts.
void BlockTerminationSignals();
// Turns absl::Mutex's deadlock detection off for a production binary. Debian's absl runs it
// in release builds, where it keeps a lock graph on every acquisition: with it, durable
// CreateCustomer at 64 clients measured 4.1-4.2k/s (two runs), without it 5.1-7.0k/s (five
// runs; crm-bench --workload create, 2026-11-29, this 2-core machine). Tests keep it on.
void SkipMutexDeadlockDetection();
// Waits until SIGTERM or SIGINT arrives; returns the signal number.
int WaitForTerminationSignal();

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_RUNTIME_H_
