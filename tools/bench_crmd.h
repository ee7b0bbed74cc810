#ifndef CRM_TOOLS_BENCH_CRMD_H_
#define CRM_TOOLS_BENCH_CRMD_H_

// crmd in crm-bench's process for the workloads over gRPC: the embedded log under a folder,
// the named services of the registry (services/registry/registry.h) with their schedulers off,
// the gRPC runtime on a free loopback port, and an admin token.
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "libs/eventlog/log.h"
#include "libs/server/engine_host.h"
#include "libs/server/metrics.h"
#include "libs/server/runtime.h"
#include "libs/server/service_module.h"
#include "tools/bench_common.h"

namespace crm::bench {

class InProcessCrmd {
 public:
  // Serving `modules` (names of crmd's modules, e.g. {"customers", "opportunities"}) once this
  // returns; they open in crmd's order whatever the order given. INVALID_ARGUMENT when
  // `modules` is empty or names a module crmd does not run.
  static absl::StatusOr<std::unique_ptr<InProcessCrmd>> Start(const std::string& dir,
                                                              const std::set<std::string>& modules);
  // Stops serving, then closes the services (newest first) and the log.
  ~InProcessCrmd();

  eventlog::Log& log() { return *log_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  const std::string& token() const { return token_; }
  // The kernel counters of its engines, as its /metrics would serve them; valid while it lives.
  KernelSource kernel() const;
  // The engine of the module named `module`; null when it was not started or has no `Engine`.
  template <typename Engine>
  Engine* engine(std::string_view module) {
    return server::EngineOf<Engine>(hosts_->host(module));
  }

 private:
  InProcessCrmd() = default;

  std::unique_ptr<eventlog::Log> log_;
  std::unique_ptr<server::Metrics> metrics_;
  std::unique_ptr<server::Authenticator> auth_;
  std::unique_ptr<server::Runtime> runtime_;
  std::vector<const server::ServiceModule*> modules_;
  std::unique_ptr<server::ModuleSet> hosts_;
  std::shared_ptr<grpc::Channel> channel_;
  std::string token_;
};

// The kernel counters served on /metrics at each of `addresses` (host:port of crmd's
// --metrics-listen, or of each service's), merged; each scrape must be done within 5 s.
// INVALID_ARGUMENT when two servers export one service; ScrapeKernelCounters' errors.
KernelSource ScrapedKernel(std::vector<std::string> addresses);

}  // namespace crm::bench

#endif  // CRM_TOOLS_BENCH_CRMD_H_
