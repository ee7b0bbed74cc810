#ifndef CRM_LIBS_SERVER_METRICS_H_
#define CRM_LIBS_SERVER_METRICS_H_

#include <memory>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "grpcpp/support/server_interceptor.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace crm::server {

class KernelMetrics;

// Why the runtime refused a call at admission, before authenticating it: the values of
// crm_admission_refused_total's `reason` label.
enum class Refusal {
  kInflight,      // "inflight": RuntimeOptions::max_inflight calls were in flight
  kDeadline,      // "deadline": the call's deadline is shorter than its method's calls now take
  kShuttingDown,  // "shutting_down": the server was draining
};

// The Prometheus series of docs/architecture.md §5, served at http://<address>/metrics. Thread-safe.
class Metrics {
 public:
  // Serves /metrics on `address` (host:port; port 0 picks one); empty serves nothing.
  static absl::StatusOr<std::unique_ptr<Metrics>> Start(const std::string& address);

  // The methods the server serves, as "/pkg.Svc/Method": the only values the method labels
  // take. Call before the server starts; not thread-safe against ObserveCall.
  void SetKnownMethods(absl::flat_hash_set<std::string> methods) { known_ = std::move(methods); }

  // grpc_server_handled_total{grpc_service,grpc_method,grpc_code} and
  // grpc_server_handling_seconds{grpc_service,grpc_method}; `full_method` is "/pkg.Svc/Method".
  // A method outside the known set counts as service and method "unknown": label values come
  // from a closed set, whatever names clients make up (20k made-up names once grew the process
  // by 196 MiB and one scrape to 1.64 GB).
  void ObserveCall(const std::string& full_method, int code, double seconds);
  // crm_log_append_seconds{topic}
  void ObserveAppend(const std::string& topic, double seconds);
  // crm_admission_refused_total{reason}: one more call refused at admission for `reason`.
  void CountRefusal(Refusal reason);
  // crm_projection_lag_records{projection}
  void SetProjectionLag(const std::string& projection, double records);

  // Counts and times every call of a server built with it.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> InterceptorFactory();

  // The services' kernel counters (crm_kernel_*, libs/server/kernel_metrics.h), served with the
  // other series and readable in the process.
  KernelMetrics& kernel() { return *kernel_; }

  // The bound HTTP port (0 when not serving).
  int port() const;
  prometheus::Registry& registry() { return *registry_; }

 private:
  Metrics();
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<KernelMetrics> kernel_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  prometheus::Family<prometheus::Counter>* handled_;
  prometheus::Family<prometheus::Histogram>* handling_;
  prometheus::Family<prometheus::Histogram>* append_;
  prometheus::Family<prometheus::Gauge>* lag_;
  // One series per Refusal, made up front: counting a refusal looks nothing up.
  prometheus::Counter* refused_[3];
  absl::flat_hash_set<std::string> known_;
};

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_METRICS_H_
