#include "libs/server/metrics.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "libs/server/http_server.h"
#include "libs/server/kernel_metrics.h"

namespace crm::server {
namespace {

const char* CodeName(int code) {
  static const char* kNames[] = {"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded",
                                 "NotFound", "AlreadyExists", "PermissionDenied", "ResourceExhausted",
                                 "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented",
                                 "Internal", "Unavailable", "DataLoss", "Unauthenticated"};
  return code >= 0 && code <= 16 ? kNames[code] : "Unknown";
}

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return *b;
}

class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(Metrics* m, std::string method) : m_(m), method_(std::move(method)) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      m_->ObserveCall(method_, methods->GetSendStatus().error_code(),
                      absl::ToDoubleSeconds(absl::Now() - start_));
    }
    methods->Proceed();
  }

 private:
  Metrics* m_;
  std::string method_;
  absl::Time start_ = absl::Now();
};

class MetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(Metrics* m) : m_(m) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new MetricsInterceptor(m_, info->method());
  }

 private:
  Metrics* m_;
};

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()), kernel_(std::make_shared<KernelMetrics>()) {
  handled_ = &prometheus::BuildCounter()
                  .Name("grpc_server_handled_total")
                  .Help("Total number of RPCs completed on the server, regardless of success or failure.")
                  .Register(*registry_);
  handling_ = &prometheus::BuildHistogram()
                   .Name("grpc_server_handling_seconds")
                   .Help("Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.")
                   .Register(*registry_);
  append_ = &prometheus::BuildHistogram()
                 .Name("crm_log_append_seconds")
                 .Help("Time from a log append to its durable acknowledgement.")
                 .Register(*registry_);
  lag_ = &prometheus::BuildGauge()
              .Name("crm_projection_lag_records")
              .Help("Records in the log that a projection has not applied yet.")
              .Register(*registry_);
  auto& refused = prometheus::BuildCounter()
                      .Name("crm_admission_refused_total")
                      .Help("Calls refused at admission with RESOURCE_EXHAUSTED or UNAVAILABLE, before authentication, "
                            "by reason: inflight (the in-flight limit), deadline (the deadline is shorter than the "
                            "method's calls now take), shutting_down.")
                      .Register(*registry_);
  refused_[static_cast<int>(Refusal::kInflight)] = &refused.Add({{"reason", "inflight"}});
  refused_[static_cast<int>(Refusal::kDeadline)] = &refused.Add({{"reason", "deadline"}});
  refused_[static_cast<int>(Refusal::kShuttingDown)] = &refused.Add({{"reason", "shutting_down"}});
}

void Metrics::CountRefusal(Refusal reason) { refused_[static_cast<int>(reason)]->Increment(); }

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Start(const std::string& address) {
  std::unique_ptr<Metrics> m(new Metrics());
  if (!address.empty()) {
    try {
      // The same civetweb limits as the dashboard: a scrape port must not be held by a few
      // slow connections either.
      m->exposer_ = std::make_unique<prometheus::Exposer>(CivetOptions(address, {.threads = 4}));
    } catch (const std::exception& e) {
      return absl::UnavailableError(absl::StrCat("cannot serve /metrics on ", address, ": ", e.what()));
    }
    m->exposer_->RegisterCollectable(m->registry_);
    m->exposer_->RegisterCollectable(m->kernel_);
  }
  return m;
}

int Metrics::port() const {
  if (!exposer_) return 0;
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

void Metrics::ObserveCall(const std::string& full_method, int code, double seconds) {
  std::vector<std::string> parts = absl::StrSplit(full_method, '/', absl::SkipEmpty());
  const bool known = parts.size() == 2 && known_.contains(full_method);
  const std::string service = known ? parts[0] : "unknown";
  const std::string method = known ? parts[1] : "unknown";
  handled_->Add({{"grpc_type", "unary"}, {"grpc_service", service}, {"grpc_method", method},
                 {"grpc_code", CodeName(code)}})
      .Increment();
  handling_->Add({{"grpc_type", "unary"}, {"grpc_service", service}, {"grpc_method", method}},
                 LatencyBuckets())
      .Observe(seconds);
}

void Metrics::ObserveAppend(const std::string& topic, double seconds) {
  append_->Add({{"topic", topic}}, LatencyBuckets()).Observe(seconds);
}

void Metrics::SetProjectionLag(const std::string& projection, double records) {
  lag_->Add({{"projection", projection}}).Set(records);
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> Metrics::InterceptorFactory() {
  return std::make_unique<MetricsInterceptorFactory>(this);
}

}  // namespace crm::server
