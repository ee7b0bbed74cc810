#include "services/customers/customers_host.h"

#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "libs/server/logging.h"
#include "libs/server/service_projections.h"

namespace crm::customers {

absl::StatusOr<std::unique_ptr<CustomersHost>> CustomersHost::Open(eventlog::Log* log,
                                                                   server::Runtime* runtime,
                                                                   Options options) {
  if (options.clock == nullptr || options.metrics == nullptr || options.dir.empty()) {
    return absl::InvalidArgumentError("CustomersHost needs a dir, a clock and metrics");
  }
  std::unique_ptr<CustomersHost> h(new CustomersHost(log, std::move(options)));
  const Options& o = h->options_;
  CustomerEngine::Options eopts;
  eopts.clock = o.clock;
  server::Metrics* m = o.metrics;
  eopts.observe_append = [m](absl::Duration d) { m->ObserveAppend(kTopic, absl::ToDoubleSeconds(d)); };
  CRM_ASSIGN_OR_RETURN(h->db_, server::OpenServiceProjections(*log, CustomerEngine::Spec(eopts.topic, eopts.partitions), o.dir, o.rebuild, "customers"));
  const absl::Time t0 = absl::Now();
  CRM_ASSIGN_OR_RETURN(h->engine_, CustomerEngine::Open(log, h->db_.get(), eopts));
  server::LogInfo(absl::StrCat("customers caught up with the log in ", absl::FormatDuration(absl::Now() - t0)));
  h->service_ = std::make_unique<CustomersService>(h->engine_.get(), runtime);
  h->leads_ = std::make_unique<LeadsService>(h->engine_.get(), runtime);
  return h;
}

void CustomersHost::StartLoops() {
  loops_.Every(absl::Seconds(1), [this] {
    if (auto lag = projection::LagRecords(*log_, *db_, kTopic); lag.ok()) {
      options_.metrics->SetProjectionLag("customers", static_cast<double>(*lag));
    }
  });
  if (options_.scheduler_interval <= absl::ZeroDuration()) return;
  loops_.Every(options_.scheduler_interval, [this] {
    auto run = engine_->RunScheduler(options_.clock->Now());
    if (!run.ok()) {
      server::LogWarn(absl::StrCat("customers scheduler: ", run.status().ToString()));
    } else if (run->returned_to_pool + run->purged > 0) {
      server::LogInfo(absl::StrCat("customers scheduler: ", run->returned_to_pool, " returned to the public pool, ",
                                   run->purged, " purged from the recycle bin"));
    }
  });
}

CustomersHost::~CustomersHost() {
  loops_.Stop();
  leads_.reset();
  service_.reset();
  engine_.reset();
  db_.reset();
}

}  // namespace crm::customers
