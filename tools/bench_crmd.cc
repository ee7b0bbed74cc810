#include "tools/bench_crmd.h"

#include "absl/strings/str_cat.h"
#include "libs/common/clock.h"
#include "libs/common/status_macros.h"
#include "libs/common/token.h"
#include "libs/eventlog/embedded_log.h"

namespace crm::bench {

absl::StatusOr<std::unique_ptr<InProcessCrmd>> InProcessCrmd::Start(const std::string& dir, Hosts hosts) {
  std::unique_ptr<InProcessCrmd> c(new InProcessCrmd());
  CRM_ASSIGN_OR_RETURN(c->log_, eventlog::OpenEmbeddedLog({.path = dir + "/log"}));
  CRM_ASSIGN_OR_RETURN(c->metrics_, server::Metrics::Start(""));
  const std::string key(48, 'k');
  c->auth_ = std::make_unique<server::Authenticator>(key, SystemClock::Get());
  server::RuntimeOptions ro;
  ro.listen = "127.0.0.1:0";
  ro.max_inflight = 1 << 16;
  c->runtime_ = std::make_unique<server::Runtime>(ro, c->auth_.get(), c->metrics_.get());
  const server::HostOptions opts{.clock = SystemClock::Get(), .metrics = c->metrics_.get(),
                                 .scheduler_interval = absl::ZeroDuration()};
  server::HostOptions copts = opts, oopts = opts, topts = opts, kopts = opts, aopts = opts;
  copts.dir = dir + "/customers";
  oopts.dir = dir + "/opportunities";
  topts.dir = dir + "/tasks";
  kopts.dir = dir + "/tickets";
  aopts.dir = dir + "/analytics";
  CRM_ASSIGN_OR_RETURN(c->customers_, customers::CustomersHost::Open(c->log_.get(), c->runtime_.get(), copts));
  CRM_ASSIGN_OR_RETURN(c->opportunities_,
                       opportunities::OpportunitiesHost::Open(c->log_.get(), c->runtime_.get(), oopts));
  std::vector<grpc::Service*> services = c->customers_->services();
  for (auto* s : c->opportunities_->services()) services.push_back(s);
  if (hosts.tasks) {
    CRM_ASSIGN_OR_RETURN(c->tasks_, tasks::TasksHost::Open(c->log_.get(), c->runtime_.get(), topts));
    for (auto* s : c->tasks_->services()) services.push_back(s);
  }
  if (hosts.tickets) {
    CRM_ASSIGN_OR_RETURN(c->tickets_, tickets::TicketsHost::Open(c->log_.get(), c->runtime_.get(), kopts));
    for (auto* s : c->tickets_->services()) services.push_back(s);
  }
  if (hosts.analytics) {
    CRM_ASSIGN_OR_RETURN(c->analytics_, analytics::AnalyticsHost::Open(c->log_.get(), c->runtime_.get(), aopts));
    for (auto* s : c->analytics_->services()) services.push_back(s);
  }
  CRM_RETURN_IF_ERROR(c->runtime_->Start(services));
  c->token_ = *MintToken(key, {"bench", "admin", "team1", absl::Now() + absl::Hours(1)});
  c->channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", c->runtime_->port()), grpc::InsecureChannelCredentials());
  return c;
}

InProcessCrmd::~InProcessCrmd() {
  if (runtime_ != nullptr) runtime_->Shutdown();  // null when Start failed early
  analytics_.reset();
  tickets_.reset();
  tasks_.reset();
  opportunities_.reset();
  customers_.reset();
  runtime_.reset();
  log_.reset();
}

}  // namespace crm::bench
