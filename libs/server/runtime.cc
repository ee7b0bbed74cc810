#include "libs/server/runtime.h"

#include <csignal>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "libs/common/grpc_status.h"

namespace crm::server {

absl::Status InflightLimiter::Acquire() {
  if (inflight_.fetch_add(1, std::memory_order_relaxed) >= max_) {
    inflight_.fetch_sub(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(
        absl::StrCat("server busy: ", max_, " requests in flight; retry with backoff"));
  }
  return absl::OkStatus();
}

absl::Status Runtime::Start(const std::vector<grpc::Service*>& services) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.listen, grpc::InsecureServerCredentials(), &port_);
  for (grpc::Service* s : services) builder.RegisterService(s);
  if (metrics_ != nullptr) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> f;
    f.push_back(metrics_->InterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(f));
  }
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.listen));
  }
  server_->GetHealthCheckService()->SetServingStatus(true);
  return absl::OkStatus();
}

Runtime::~Runtime() { Shutdown(); }

absl::StatusOr<CallScope> Runtime::Begin(const grpc::CallbackServerContext& ctx) {
  if (absl::Status s = limiter_.Acquire(); !s.ok()) return s;
  absl::StatusOr<Claims> claims = auth_->Authenticate(ctx);
  if (!claims.ok()) {
    limiter_.Release();
    return claims.status();
  }
  CallScope scope;
  scope.claims = *std::move(claims);
  const absl::Time cap = absl::Now() + options_.max_wait;
  const auto d = ctx.deadline();
  const absl::Time client = absl::FromChrono(d);
  scope.deadline = std::min(cap, client);
  return scope;
}

void Runtime::Finish(grpc::ServerUnaryReactor* reactor, const absl::Status& status) {
  limiter_.Release();
  reactor->Finish(ToGrpcStatus(status));
}

void Runtime::Refuse(grpc::ServerUnaryReactor* reactor, const absl::Status& status) {
  reactor->Finish(ToGrpcStatus(status));
}

void Runtime::Shutdown() {
  if (shut_down_ || !server_) return;
  shut_down_ = true;
  server_->GetHealthCheckService()->SetServingStatus(false);
  server_->Shutdown(absl::ToChronoTime(absl::Now() + options_.drain_timeout));
  server_->Wait();
}

namespace {
sigset_t TerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}
}  // namespace

void BlockTerminationSignals() {
  sigset_t set = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void SkipMutexDeadlockDetection() { absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore); }

int WaitForTerminationSignal() {
  sigset_t set = TerminationSignals();
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

}  // namespace crm::server
