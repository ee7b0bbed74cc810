#include "libs/server/runtime.h"

#include <csignal>

#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/impl/server_initializer.h"
#include "libs/common/grpc_status.h"
#include "libs/common/thread_name.h"
#include "libs/server/logging.h"
#include "libs/server/undecodable.h"

namespace crm::server {

absl::Status InflightLimiter::Acquire() {
  if (inflight_.fetch_add(1, std::memory_order_relaxed) >= max_) {
    inflight_.fetch_sub(1, std::memory_order_relaxed);
    // ClientSafe: the runtime's own refusals say what to do, and are not incidents to log.
    return ClientSafe(absl::ResourceExhaustedError(
        absl::StrCat("server busy: ", max_, " requests in flight; retry with backoff")));
  }
  return absl::OkStatus();
}

AdmittedCall::AdmittedCall(std::shared_ptr<CallRegistry> registry, MethodLoad* load)
    : registry_(std::move(registry)), load_(load) {
  if (load_ != nullptr) load_->Admitted();
}

AdmittedCall::~AdmittedCall() { Release(); }

void AdmittedCall::Release(absl::StatusCode code) {
  if (released_.exchange(true, std::memory_order_acq_rel)) return;
  registry_->Remove(this);
  registry_->limiter().Release();
  if (load_ != nullptr) load_->Answered(absl::FromChrono(std::chrono::steady_clock::now() - admitted_), code);
}

UnaryCall::~UnaryCall() {
  if (Claim()) Answer(absl::InternalError("the call was dropped without an answer"));
}

void UnaryCall::Answer(const absl::Status& status) {
  Release(status.code());
  reactor_->Finish(ToGrpcStatus(status));
}

void UnaryCall::Abort() {
  Finish(ClientSafe(absl::UnavailableError("the server is shutting down; retry on another instance")));
}

void StreamCall::End() {
  {
    absl::MutexLock l(&mu_);
    ctx_ = nullptr;
  }
  Release();
}

void StreamCall::Cancel() {
  absl::MutexLock l(&mu_);
  if (ctx_ != nullptr) ctx_->TryCancel();
}

void CallRegistry::SetMethods(const std::vector<const google::protobuf::MethodDescriptor*>& methods) {
  for (const auto* m : methods) loads_.try_emplace(m, std::make_unique<MethodLoad>());
}

void CallRegistry::Add(const std::shared_ptr<AdmittedCall>& call) {
  absl::MutexLock l(&mu_);
  calls_.emplace(call.get(), call);
}

void CallRegistry::Remove(AdmittedCall* call) {
  absl::MutexLock l(&mu_);
  calls_.erase(call);
}

size_t CallRegistry::size() const {
  absl::MutexLock l(&mu_);
  return calls_.size();
}

void CallRegistry::AbortAll() {
  std::vector<std::shared_ptr<AdmittedCall>> live;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [ptr, ref] : calls_) {
      // A call whose last reference is going answers from its destructor.
      if (auto call = ref.lock()) live.push_back(std::move(call));
    }
  }
  for (const auto& call : live) call->Abort();
}

namespace {

// The full names ("/pkg.Svc/Method") of the methods `server` serves, from the protobuf
// descriptors of its services (grpc::ServerInitializer reads the service list the way gRPC's
// reflection plugin does). Health and reflection, registered inside gRPC, are named outright.
// `descriptors` gets the descriptors of the services' methods (what admission keeps a load for).
absl::flat_hash_set<std::string> ServedMethods(grpc::Server* server,
                                               std::vector<const google::protobuf::MethodDescriptor*>* descriptors) {
  absl::flat_hash_set<std::string> out = {"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch",
                                          "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"};
  grpc::ServerInitializer peek(server);
  for (const std::string& name : *peek.GetServiceList()) {
    const auto* service = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      out.insert(absl::StrCat("/", name, "/", service->method(i)->name()));
      descriptors->push_back(service->method(i));
    }
  }
  return out;
}

}  // namespace

Runtime::Runtime(RuntimeOptions options, const Authenticator* auth, Metrics* metrics)
    : options_(std::move(options)),
      auth_(auth),
      metrics_(metrics),
      registry_(std::make_shared<CallRegistry>(options_.max_inflight)) {}

absl::Status Runtime::Start(const std::vector<grpc::Service*>& services) {
  auto listener = Listener::Bind({.address = options_.listen, .reserve = options_.fd_reserve});
  if (!listener.ok()) return listener.status();
  listener_ = *std::move(listener);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  acceptor_ = builder.experimental().AddExternalConnectionAcceptor(
      grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD, grpc::InsecureServerCredentials());
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(options_.handshake_timeout)));
  for (grpc::Service* s : services) builder.RegisterService(s);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> f;
  f.push_back(UndecodableRequestInterceptorFactory());  // first: metrics counts the code it sends
  if (metrics_ != nullptr) f.push_back(metrics_->InterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(f));
  server_ = builder.BuildAndStart();
  if (!server_) return absl::UnavailableError(absl::StrCat("cannot start the gRPC server on ", options_.listen));
  // Before the listener hands over the first connection.
  std::vector<const google::protobuf::MethodDescriptor*> descriptors;
  absl::flat_hash_set<std::string> served = ServedMethods(server_.get(), &descriptors);
  if (options_.admit_by_deadline) registry_->SetMethods(descriptors);
  if (metrics_ != nullptr) metrics_->SetKnownMethods(std::move(served));
  listener_->Start(acceptor_.get());
  port_ = listener_->port();
  SetServing(true);
  watchdog_ = std::thread([this] {
    NameThisThread("grpc-watchdog");
    Watch();
  });
  return absl::OkStatus();
}

Runtime::~Runtime() { Shutdown(); }

void Runtime::SetServing(bool serving) {
  absl::MutexLock l(&watch_mu_);
  if (serving_ == serving || server_ == nullptr) return;
  serving_ = serving;
  server_->GetHealthCheckService()->SetServingStatus(serving);
}

void Runtime::Watch() {
  const InflightLimiter& limiter = registry_->limiter();
  int64_t last_released = limiter.released();
  absl::Time progress = absl::Now();
  for (;;) {
    {
      absl::MutexLock l(&watch_mu_);
      if (watch_mu_.AwaitWithTimeout(absl::Condition(&stop_watch_), options_.watchdog_interval)) return;
    }
    const absl::Time now = absl::Now();
    const int64_t released = limiter.released();
    if (released != last_released || limiter.inflight() < limiter.max()) progress = now;
    last_released = released;
    // Every slot held and none given back for a while: calls are refused and none is being
    // served, so the load balancer should send its callers elsewhere. Busy is not stuck.
    const bool stuck = now - progress >= options_.stuck_after;
    if (stuck) {
      absl::MutexLock l(&watch_mu_);
      if (serving_) {
        LogError(absl::StrCat("gRPC server stuck: all ", limiter.max(), " slots held and none released for ",
                              absl::FormatDuration(now - progress), "; reporting NOT_SERVING"));
      }
    }
    if (!draining_.load()) SetServing(!stuck);
  }
}

absl::StatusOr<CallScope> Runtime::Admit(const grpc::CallbackServerContext& ctx, const MethodAccess& access,
                                         const MethodLoad* load) {
  if (draining_.load(std::memory_order_relaxed)) {
    CountRefusal(Refusal::kShuttingDown);
    return ClientSafe(absl::UnavailableError("the server is shutting down; retry on another instance"));
  }
  const absl::Time now = absl::Now();
  const absl::Time deadline = std::min(now + options_.max_wait, absl::FromChrono(ctx.deadline()));
  if (load != nullptr && !load->CanMeet(deadline - now)) {
    CountRefusal(Refusal::kDeadline);
    // ClientSafe: our own words, and no incident to log (see InflightLimiter::Acquire).
    return ClientSafe(absl::ResourceExhaustedError(absl::StrCat(
        "server busy: this method's calls take about ", absl::ToInt64Milliseconds(load->Estimate()),
        " ms to be answered now, and this call's deadline is ",
        std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - now)), " ms away; retry later with backoff")));
  }
  if (absl::Status s = registry_->limiter().Acquire(); !s.ok()) {
    CountRefusal(Refusal::kInflight);
    return s;
  }
  absl::StatusOr<Claims> claims = auth_->Authenticate(ctx);
  if (!claims.ok()) {
    registry_->limiter().Release();
    return claims.status();
  }
  if (absl::Status s = access.Check(claims->role); !s.ok()) {
    registry_->limiter().Release();
    return s;
  }
  CallScope scope;
  scope.claims = *std::move(claims);
  scope.deadline = deadline;
  return scope;
}

absl::StatusOr<UnaryScope> Runtime::BeginUnary(const grpc::CallbackServerContext& ctx,
                                               grpc::ServerUnaryReactor* reactor, const MethodAccess& access) {
  MethodLoad* load = registry_->LoadOf(access.method());
  absl::StatusOr<CallScope> admitted = Admit(ctx, access, load);
  if (!admitted.ok()) return admitted.status();
  UnaryScope scope;
  static_cast<CallScope&>(scope) = *std::move(admitted);
  scope.call = std::make_shared<UnaryCall>(registry_, reactor, load);
  registry_->Add(scope.call);
  return scope;
}

absl::StatusOr<StreamScope> Runtime::BeginStream(grpc::CallbackServerContext* ctx, const MethodAccess& access) {
  // A stream's length is its client's (an import of a million rows): no deadline rule.
  absl::StatusOr<CallScope> admitted = Admit(*ctx, access, nullptr);
  if (!admitted.ok()) return admitted.status();
  StreamScope scope;
  static_cast<CallScope&>(scope) = *std::move(admitted);
  scope.call = std::make_shared<StreamCall>(registry_, ctx);
  registry_->Add(scope.call);
  return scope;
}

void Runtime::Refuse(grpc::ServerUnaryReactor* reactor, const absl::Status& status) {
  reactor->Finish(ToGrpcStatus(status));
}

void Runtime::Shutdown() {
  if (shut_down_ || !server_) return;
  shut_down_ = true;
  draining_.store(true);
  {
    absl::MutexLock l(&watch_mu_);
    stop_watch_ = true;
  }
  if (watchdog_.joinable()) watchdog_.join();
  SetServing(false);
  const absl::Time deadline = absl::Now() + options_.drain_timeout;
  while (registry_->size() > 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  if (const size_t left = registry_->size(); left > 0) {
    LogWarn(absl::StrCat("shutdown: ", left, " calls still running after the drain limit of ",
                         absl::FormatDuration(options_.drain_timeout), "; ending them"));
    registry_->AbortAll();
  }
  listener_->Stop();
  // Only calls that were never admitted can be left (refused ones finish at once): a short
  // grace for their answers to go out, then gRPC cancels what remains.
  server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
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
