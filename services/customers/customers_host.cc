#include "services/customers/customers_host.h"

#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "libs/server/logging.h"

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
  if (o.rebuild) {
    CRM_RETURN_IF_ERROR(log->CreateTopic(eopts.topic, eopts.partitions));
    const absl::Time t0 = absl::Now();
    CRM_ASSIGN_OR_RETURN(int64_t n, CustomerEngine::RebuildAndSwap(*log, eopts.topic, o.dir));
    server::LogInfo(absl::StrCat("rebuilt customers projections from ", n, " events in ",
                                 absl::FormatDuration(absl::Now() - t0)));
  }
  int64_t rebuilt = 0;
  const absl::Time t_open = absl::Now();
  CRM_ASSIGN_OR_RETURN(h->db_, CustomerEngine::OpenProjections(*log, o.dir, eopts, &rebuilt));
  if (rebuilt > 0) {
    server::LogInfo(absl::StrCat("customers projections were built by other code: rebuilt from ", rebuilt,
                                 " events in ", absl::FormatDuration(absl::Now() - t_open)));
  }
  const absl::Time t0 = absl::Now();
  CRM_ASSIGN_OR_RETURN(h->engine_, CustomerEngine::Open(log, h->db_.get(), eopts));
  server::LogInfo(absl::StrCat("customers caught up with the log in ", absl::FormatDuration(absl::Now() - t0)));
  h->service_ = std::make_unique<CustomersService>(h->engine_.get(), runtime);
  h->leads_ = std::make_unique<LeadsService>(h->engine_.get(), runtime);
  return h;
}

void CustomersHost::StartLoops() {
  // Projection lag: log end minus what the projections applied, every second.
  lag_ = std::thread([this] {
    while (!stop_.WaitForNotificationWithTimeout(absl::Seconds(1))) {
      auto ends = log_->EndOffsets(kTopic);
      if (!ends.ok()) continue;
      double lag_records = 0;
      for (int32_t p = 0; p < static_cast<int32_t>(ends->size()); ++p) {
        lag_records += static_cast<double>((*ends)[p] - db_->NextOffset(kTopic, p));
      }
      options_.metrics->SetProjectionLag("customers", lag_records);
    }
  });
  if (options_.scheduler_interval <= absl::ZeroDuration()) return;
  scheduler_ = std::thread([this] {
    do {
      auto run = engine_->RunScheduler(options_.clock->Now());
      if (!run.ok()) {
        server::LogWarn(absl::StrCat("customers scheduler: ", run.status().ToString()));
      } else if (run->returned_to_pool + run->purged > 0) {
        server::LogInfo(absl::StrCat("customers scheduler: ", run->returned_to_pool,
                                     " returned to the public pool, ", run->purged,
                                     " purged from the recycle bin"));
      }
    } while (!stop_.WaitForNotificationWithTimeout(options_.scheduler_interval));
  });
}

CustomersHost::~CustomersHost() {
  stop_.Notify();
  if (lag_.joinable()) lag_.join();
  if (scheduler_.joinable()) scheduler_.join();
  leads_.reset();
  service_.reset();
  engine_.reset();
  db_.reset();
}

}  // namespace crm::customers
