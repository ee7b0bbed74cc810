#ifndef CRM_LIBS_SERVER_RUNTIME_H_
#define CRM_LIBS_SERVER_RUNTIME_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "libs/common/token.h"
#include "libs/server/access.h"
#include "libs/server/admission.h"
#include "libs/server/auth.h"
#include "libs/server/listener.h"
#include "libs/server/metrics.h"

namespace crm::server {

struct RuntimeOptions {
  // host:port for gRPC; port 0 picks a free one (see Runtime::port()). Default: 127.0.0.1:50051.
  std::string listen = "127.0.0.1:50051";
  // Requests handled at once; more get RESOURCE_EXHAUSTED at once. Default: 512.
  int max_inflight = 512;
  // Refuse with RESOURCE_EXHAUSTED, before authenticating it, a unary call whose deadline
  // (capped at max_wait) is shorter than the time its method's calls now take from admission to
  // answer (MethodLoad, libs/server/admission.h), instead of deciding it and answering it after
  // the client gave up. Default: true.
  bool admit_by_deadline = true;
  // Longest wait a call may do (e.g. for min_consistency_token), whatever deadline the client
  // set. Default: 10 s.
  absl::Duration max_wait = absl::Seconds(10);
  // On shutdown, calls in flight get this long to finish; then the runtime answers those left
  // with UNAVAILABLE and cancels the streams, so a shutdown ends within about this limit
  // whatever the handlers do. Default: 10 s.
  absl::Duration drain_timeout = absl::Seconds(10);
  // A connection that has not completed its HTTP/2 handshake by then is closed. Default: 10 s.
  absl::Duration handshake_timeout = absl::Seconds(10);
  // Descriptors kept free for anything but client connections (see Listener::Options).
  // Default: 0, 1/8 of the process's descriptor limit.
  int fd_reserve = 0;
  // A streaming call (bulk import, export) whose client sends or reads nothing for this long
  // is cancelled, giving back its slot. Default: 60 s.
  absl::Duration stream_idle_timeout = absl::Seconds(60);
  // How often the health watchdog looks, and how long the server may sit with every slot held
  // and no call finishing before it reports NOT_SERVING. Default: 1 s and 5 s.
  absl::Duration watchdog_interval = absl::Seconds(1);
  absl::Duration stuck_after = absl::Seconds(5);
};

// Limits requests in flight. Thread-safe.
class InflightLimiter {
 public:
  explicit InflightLimiter(int max) : max_(max) {}
  // RESOURCE_EXHAUSTED when `max` requests are in flight already; else call Release() later.
  absl::Status Acquire();
  void Release() {
    inflight_.fetch_sub(1, std::memory_order_relaxed);
    released_.fetch_add(1, std::memory_order_relaxed);
  }
  int inflight() const { return inflight_.load(std::memory_order_relaxed); }
  int max() const { return max_; }
  // Calls released since start: the watchdog's sign of progress.
  int64_t released() const { return released_.load(std::memory_order_relaxed); }

 private:
  const int max_;
  std::atomic<int> inflight_{0};
  std::atomic<int64_t> released_{0};
};

class CallRegistry;

// One admitted call's hold on the server: its in-flight slot, released exactly once, and its
// entry in the runtime's registry, which ends calls that outlive a shutdown's drain. Whoever
// answers first (the handler, or the runtime on shutdown) wins; the other finds the call
// claimed and does nothing, and must not touch the call's request or response after that.
// Thread-safe.
class AdmittedCall {
 public:
  AdmittedCall(const AdmittedCall&) = delete;
  AdmittedCall& operator=(const AdmittedCall&) = delete;
  virtual ~AdmittedCall();

  // True for exactly one caller: it may then read the request, write the response and must
  // call Answer() (unary) or let the stream end (streams).
  bool Claim() { return !claimed_.exchange(true, std::memory_order_acq_rel); }
  bool claimed() const { return claimed_.load(std::memory_order_acquire); }

 protected:
  // `load` (may be null) learns how long the call took when it is released.
  AdmittedCall(std::shared_ptr<CallRegistry> registry, MethodLoad* load);
  // Releases the slot and leaves the registry; once. `code` is the answer's (see MethodLoad).
  void Release(absl::StatusCode code = absl::StatusCode::kOk);
  // Called by the runtime on shutdown past the drain limit.
  virtual void Abort() = 0;

 private:
  friend class CallRegistry;
  std::shared_ptr<CallRegistry> registry_;
  MethodLoad* const load_;
  // Monotonic: a step of the wall clock must not teach the load a wrong time.
  const std::chrono::steady_clock::time_point admitted_ = std::chrono::steady_clock::now();
  std::atomic<bool> claimed_{false};
  std::atomic<bool> released_{false};
};

// A unary call: finished by the handler through Finish(), or by the runtime on shutdown. One
// that every holder drops unanswered (a handler that lost its callback) is answered INTERNAL
// when the last reference goes, so its slot is never lost.
class UnaryCall final : public AdmittedCall {
 public:
  // `load` (may be null): the method's, which learns from this call's answer.
  UnaryCall(std::shared_ptr<CallRegistry> registry, grpc::ServerUnaryReactor* reactor, MethodLoad* load = nullptr)
      : AdmittedCall(std::move(registry), load), reactor_(reactor) {}
  ~UnaryCall() override;

  // Answers with `status` (mapped to google.rpc details); only after a successful Claim().
  void Answer(const absl::Status& status);
  // Claim() and Answer(); a no-op when the call was claimed already.
  void Finish(const absl::Status& status) {
    if (Claim()) Answer(status);
  }

 private:
  void Abort() override;
  grpc::ServerUnaryReactor* const reactor_;
};

// A streaming call: ends when its reactor is done (End(), or the last reference going); on
// shutdown past the drain limit the runtime cancels it, which ends its reads and writes.
class StreamCall final : public AdmittedCall {
 public:
  StreamCall(std::shared_ptr<CallRegistry> registry, grpc::CallbackServerContext* ctx)
      : AdmittedCall(std::move(registry), nullptr), ctx_(ctx) {}
  ~StreamCall() override { End(); }
  // The stream is over (its reactor's OnDone, before gRPC frees the context): releases the
  // slot; the context is not touched after this returns.
  void End();
  // Cancels the call (an idle client, or shutdown): its pending and later reads and writes
  // fail. A no-op after End().
  void Cancel();

 private:
  void Abort() override { Cancel(); }
  absl::Mutex mu_;
  grpc::CallbackServerContext* ctx_ ABSL_GUARDED_BY(mu_);
};

// The calls a runtime admitted and has not seen end, with the in-flight limit and each served
// method's load. Shared with the calls themselves, so that a call answered after its runtime is
// gone touches live memory.
class CallRegistry {
 public:
  explicit CallRegistry(int max_inflight) : limiter_(max_inflight) {}
  InflightLimiter& limiter() { return limiter_; }
  // Gives each of `methods` a MethodLoad. Call once, before the server takes calls: LoadOf()
  // reads the map without a lock.
  void SetMethods(const std::vector<const google::protobuf::MethodDescriptor*>& methods);
  // The load of `method`; null for a method SetMethods() was not given (and for null).
  MethodLoad* LoadOf(const google::protobuf::MethodDescriptor* method) const {
    auto it = loads_.find(method);
    return it == loads_.end() ? nullptr : it->second.get();
  }
  // Enters a call that holds one of the limiter's slots; it leaves when it releases it.
  void Add(const std::shared_ptr<AdmittedCall>& call);
  // Calls still admitted.
  size_t size() const;
  // Aborts every call still admitted (see AdmittedCall::Abort).
  void AbortAll();

 private:
  friend class AdmittedCall;
  void Remove(AdmittedCall* call);

  InflightLimiter limiter_;
  // Fixed before the first call (SetMethods); one entry per served method, so bounded.
  absl::flat_hash_map<const google::protobuf::MethodDescriptor*, std::unique_ptr<MethodLoad>> loads_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<AdmittedCall*, std::weak_ptr<AdmittedCall>> calls_ ABSL_GUARDED_BY(mu_);
};

// What every handler needs at the start of a call.
struct CallScope {
  Claims claims;
  absl::Time deadline;  // the client's deadline, capped at now + max_wait
};
struct UnaryScope : CallScope {
  std::shared_ptr<UnaryCall> call;
};
struct StreamScope : CallScope {
  std::shared_ptr<StreamCall> call;
};

// The gRPC server of one process: health checking, reflection, metrics interceptor, bounded
// in-flight requests, authentication, a listener that survives descriptor exhaustion, and a
// shutdown that ends within its drain limit.
class Runtime {
 public:
  // `auth` and `metrics` (may be null) must outlive the runtime.
  Runtime(RuntimeOptions options, const Authenticator* auth, Metrics* metrics);
  // For other faces of the same services (the analytics dashboard's HTTP API).
  const Authenticator* authenticator() const { return auth_; }
  ~Runtime();

  // Builds and starts the server with `services` (which must outlive it), health checking
  // and reflection. UNAVAILABLE when the address cannot be bound.
  absl::Status Start(const std::vector<grpc::Service*>& services);

  // Admission, authentication, the permission matrix and the deadline for one unary call of
  // the method `access` describes, answered through `reactor`. Before authenticating:
  // UNAVAILABLE while shutting down, RESOURCE_EXHAUSTED when the call's deadline is shorter
  // than the method's calls now take (RuntimeOptions::admit_by_deadline) or max_inflight calls
  // are in flight. Then PERMISSION_DENIED (ErrorInfo reason ROLE_NOT_ADMITTED) when the
  // token's role is not one the method's access option lists, before the service sees
  // anything of the call. On error, the caller finishes the
  // call with Refuse(); on success the call is answered through scope.call (UnaryCall::Finish).
  absl::StatusOr<UnaryScope> BeginUnary(const grpc::CallbackServerContext& ctx, grpc::ServerUnaryReactor* reactor,
                                        const MethodAccess& access);
  // The same for a streaming call; scope.call ends with the stream (StreamCall::End).
  absl::StatusOr<StreamScope> BeginStream(grpc::CallbackServerContext* ctx, const MethodAccess& access);
  // Finishes a call that BeginUnary() refused.
  static void Refuse(grpc::ServerUnaryReactor* reactor, const absl::Status& status);

  // Marks the services NOT_SERVING, stops taking calls, waits up to drain_timeout for those in
  // flight, then ends the rest (see RuntimeOptions::drain_timeout).
  void Shutdown();

  int port() const { return port_; }
  grpc::Server* server() { return server_.get(); }
  absl::Duration stream_idle_timeout() const { return options_.stream_idle_timeout; }
  int inflight() const { return registry_->limiter().inflight(); }
  // What admission knows of `method` (one of the started services'); null for any other.
  const MethodLoad* load(const google::protobuf::MethodDescriptor* method) const { return registry_->LoadOf(method); }
  // Client connections the listener closed at once because descriptors ran short.
  int64_t connections_shed() const { return listener_ ? listener_->shed() : 0; }

 private:
  // `load` (may be null) is the method's, for the deadline rule.
  absl::StatusOr<CallScope> Admit(const grpc::CallbackServerContext& ctx, const MethodAccess& access,
                                  const MethodLoad* load);
  void CountRefusal(Refusal reason) {
    if (metrics_ != nullptr) metrics_->CountRefusal(reason);
  }
  void Watch();
  void SetServing(bool serving);

  const RuntimeOptions options_;
  const Authenticator* auth_;
  Metrics* metrics_;
  std::shared_ptr<CallRegistry> registry_;
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::atomic<bool> draining_{false};
  bool shut_down_ = false;

  absl::Mutex watch_mu_;
  bool stop_watch_ ABSL_GUARDED_BY(watch_mu_) = false;
  bool serving_ ABSL_GUARDED_BY(watch_mu_) = false;
  std::thread watchdog_;
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
