#include "services/tickets/tickets_host.h"

#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "libs/server/logging.h"
#include "prometheus/counter.h"

namespace crm::tickets {

absl::StatusOr<std::unique_ptr<TicketsHost>> TicketsHost::Open(eventlog::Log* log, server::Runtime* runtime,
                                                               Options options) {
  if (options.clock == nullptr || options.metrics == nullptr || options.dir.empty()) {
    return absl::InvalidArgumentError("TicketsHost needs a dir, a clock and metrics");
  }
  std::unique_ptr<TicketsHost> h(new TicketsHost(log, std::move(options)));
  const Options& o = h->options_;
  TicketEngine::Options& eopts = h->engine_options_;
  eopts.clock = o.clock;
  server::Metrics* m = o.metrics;
  eopts.observe_append = [m](absl::Duration d) { m->ObserveAppend(kTopic, absl::ToDoubleSeconds(d)); };
  CRM_ASSIGN_OR_RETURN(h->db_,
                       server::OpenServiceProjections(*log, TicketEngine::Spec(eopts), o.dir, o.rebuild, "tickets"));
  const absl::Time t0 = absl::Now();
  CRM_ASSIGN_OR_RETURN(h->engine_, TicketEngine::Open(log, h->db_.get(), eopts));
  server::LogInfo(absl::StrCat("tickets caught up with the log in ", absl::FormatDuration(absl::Now() - t0)));
  h->types_ = std::make_unique<TicketTypesService>(h->engine_.get(), runtime);
  h->tickets_ = std::make_unique<TicketsService>(h->engine_.get(), runtime);
  h->sla_ = std::make_unique<SlaService>(h->engine_.get(), runtime);
  return h;
}

void TicketsHost::StartLoops() {
  auto& notices = prometheus::BuildCounter()
                      .Name("crm_sla_notices_total")
                      .Help("SLA warnings and breaches the scheduler recorded on tickets.")
                      .Register(options_.metrics->registry());
  auto& warnings = notices.Add({{"kind", "warning"}});
  auto& breaches = notices.Add({{"kind", "breach"}});
  loops_.Every(absl::Seconds(1), [this] {
    for (const std::string& topic : {std::string(kTopic), engine_options_.customers_topic}) {
      if (auto lag = projection::LagRecords(*log_, *db_, topic); lag.ok()) {
        options_.metrics->SetProjectionLag(topic == kTopic ? "tickets" : absl::StrCat("tickets_view_of_", topic),
                                           static_cast<double>(*lag));
      }
    }
  });
  if (options_.scheduler_interval <= absl::ZeroDuration()) return;
  loops_.Every(options_.scheduler_interval, [this, &warnings, &breaches] {
    auto run = engine_->RunScheduler(options_.clock->Now());
    if (!run.ok()) {
      server::LogWarn(absl::StrCat("tickets SLA scheduler: ", run.status().ToString()));
      return;
    }
    warnings.Increment(static_cast<double>(run->warnings));
    breaches.Increment(static_cast<double>(run->breaches));
    if (run->warnings + run->breaches > 0) {
      server::LogInfo(absl::StrCat("tickets SLA scheduler: ", run->tickets, " open tickets, ", run->warnings,
                                   " warnings, ", run->breaches, " breaches"));
    }
  });
}

TicketsHost::~TicketsHost() {
  loops_.Stop();
  sla_.reset();
  tickets_.reset();
  types_.reset();
  engine_.reset();
  db_.reset();
}

}  // namespace crm::tickets
