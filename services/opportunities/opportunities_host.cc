#include "services/opportunities/opportunities_host.h"

#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "libs/server/logging.h"
#include "libs/server/service_projections.h"

namespace crm::opportunities {

absl::StatusOr<std::unique_ptr<OpportunitiesHost>> OpportunitiesHost::Open(eventlog::Log* log,
                                                                           server::Runtime* runtime, Options options) {
  if (options.clock == nullptr || options.metrics == nullptr || options.dir.empty()) {
    return absl::InvalidArgumentError("OpportunitiesHost needs a dir, a clock and metrics");
  }
  std::unique_ptr<OpportunitiesHost> h(new OpportunitiesHost(log, std::move(options)));
  const Options& o = h->options_;
  OpportunityEngine::Options eopts;
  eopts.clock = o.clock;
  server::Metrics* m = o.metrics;
  eopts.observe_append = [m](absl::Duration d) { m->ObserveAppend(kTopic, absl::ToDoubleSeconds(d)); };
  CRM_ASSIGN_OR_RETURN(h->db_, server::OpenServiceProjections(*log, OpportunityEngine::Spec(eopts), o.dir, o.rebuild, "opportunities"));
  const absl::Time t0 = absl::Now();
  CRM_ASSIGN_OR_RETURN(h->engine_, OpportunityEngine::Open(log, h->db_.get(), eopts));
  server::LogInfo(absl::StrCat("opportunities caught up with the log in ", absl::FormatDuration(absl::Now() - t0)));
  h->opportunities_ = std::make_unique<OpportunitiesService>(h->engine_.get(), runtime);
  h->quotes_ = std::make_unique<QuotesService>(h->engine_.get(), runtime);
  h->contracts_ = std::make_unique<ContractsService>(h->engine_.get(), runtime);
  return h;
}

void OpportunitiesHost::StartLoops() {
  loops_.Every(absl::Seconds(1), [this] {
    if (auto lag = projection::LagRecords(*log_, *db_, kTopic); lag.ok()) {
      options_.metrics->SetProjectionLag("opportunities", static_cast<double>(*lag));
    }
    if (auto lag = projection::LagRecords(*log_, *db_, topics::kCustomers); lag.ok()) {
      options_.metrics->SetProjectionLag("opportunities_customers_view", static_cast<double>(*lag));
    }
  });
  if (options_.scheduler_interval <= absl::ZeroDuration()) return;
  loops_.Every(options_.scheduler_interval, [this] {
    auto run = engine_->RunScheduler(options_.clock->Now());
    if (!run.ok()) {
      server::LogWarn(absl::StrCat("opportunities scheduler: ", run.status().ToString()));
    } else if (run->stage_timeouts + run->renewal_notices + run->expired + run->overdue_instalments > 0) {
      server::LogInfo(absl::StrCat("opportunities scheduler: ", run->stage_timeouts, " stage timeouts, ",
                                   run->renewal_notices, " renewal notices, ", run->expired, " contracts expired, ",
                                   run->overdue_instalments, " instalments overdue"));
    }
  });
}

OpportunitiesHost::~OpportunitiesHost() {
  loops_.Stop();
  contracts_.reset();
  quotes_.reset();
  opportunities_.reset();
  engine_.reset();
  db_.reset();
}

}  // namespace crm::opportunities
