#include "tools/bench_crmd.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/common/clock.h"
#include "libs/common/status_macros.h"
#include "libs/common/token.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/server/kernel_metrics.h"
#include "services/registry/registry.h"

namespace crm::bench {

absl::StatusOr<std::unique_ptr<InProcessCrmd>> InProcessCrmd::Start(const std::string& dir,
                                                                    const std::set<std::string>& modules) {
  if (modules.empty()) return absl::InvalidArgumentError("modules: name at least one service");
  std::unique_ptr<InProcessCrmd> c(new InProcessCrmd());
  for (const server::ServiceModule* m : registry::CrmdModules()) {
    if (modules.contains(m->name)) c->modules_.push_back(m);
  }
  if (c->modules_.size() != modules.size()) {
    std::vector<std::string> known;
    for (const server::ServiceModule* m : registry::CrmdModules()) known.push_back(m->name);
    return absl::InvalidArgumentError(absl::StrCat("modules: {", absl::StrJoin(modules, ", "),
                                                   "} names a service crmd does not run (it runs ",
                                                   absl::StrJoin(known, ", "), ")"));
  }
  CRM_ASSIGN_OR_RETURN(c->log_, eventlog::OpenEmbeddedLog({.path = dir + "/log"}));
  CRM_ASSIGN_OR_RETURN(c->metrics_, server::Metrics::Start(""));
  const std::string key(48, 'k');
  c->auth_ = std::make_unique<server::Authenticator>(key, SystemClock::Get());
  server::RuntimeOptions ro;
  ro.listen = "127.0.0.1:0";
  ro.max_inflight = 1 << 16;
  c->runtime_ = std::make_unique<server::Runtime>(ro, c->auth_.get(), c->metrics_.get());
  CRM_ASSIGN_OR_RETURN(c->hosts_, server::ModuleSet::Open(c->modules_, c->log_.get(), c->runtime_.get(),
                                                          {.dir = dir, .clock = SystemClock::Get(),
                                                           .metrics = c->metrics_.get(),
                                                           .scheduler_interval = absl::ZeroDuration()}));
  CRM_RETURN_IF_ERROR(c->runtime_->Start(c->hosts_->services()));
  c->token_ = *MintToken(key, {"bench", "admin", "team1", absl::Now() + absl::Hours(1)});
  c->channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", c->runtime_->port()), grpc::InsecureChannelCredentials());
  return c;
}

KernelSource InProcessCrmd::kernel() const {
  return [m = metrics_.get()]() -> absl::StatusOr<server::KernelCounters> { return m->kernel().Read(); };
}

KernelSource ScrapedKernel(std::vector<std::string> addresses) {
  return [addresses = std::move(addresses)]() -> absl::StatusOr<server::KernelCounters> {
    server::KernelCounters all;
    for (const std::string& a : addresses) {
      CRM_ASSIGN_OR_RETURN(server::KernelCounters one, server::ScrapeKernelCounters(a, absl::Now() + absl::Seconds(5)));
      for (auto& [service, counters] : one) {
        if (!all.emplace(service, counters).second) {
          return absl::InvalidArgumentError(
              absl::StrCat("--metrics: more than one server exports the kernel counters of ", service));
        }
      }
    }
    return all;
  };
}

InProcessCrmd::~InProcessCrmd() {
  if (runtime_ != nullptr) runtime_->Shutdown();  // null when Start failed early
  hosts_.reset();
  runtime_.reset();
  log_.reset();
}

}  // namespace crm::bench
