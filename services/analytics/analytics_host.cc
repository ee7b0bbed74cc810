#include "services/analytics/analytics_host.h"

#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "libs/server/logging.h"

namespace crm::analytics {

absl::StatusOr<std::unique_ptr<AnalyticsHost>> AnalyticsHost::Open(eventlog::Log* log, server::Runtime* runtime,
                                                                   Options options) {
  if (options.clock == nullptr || options.metrics == nullptr || options.dir.empty()) {
    return absl::InvalidArgumentError("AnalyticsHost needs a dir, a clock and metrics");
  }
  std::unique_ptr<AnalyticsHost> h(new AnalyticsHost(log, runtime, std::move(options)));
  h->engine_options_.clock = h->options_.clock;
  CRM_ASSIGN_OR_RETURN(h->db_, server::OpenServiceProjections(*log, AnalyticsEngine::Spec(h->engine_options_),
                                                              h->options_.dir, h->options_.rebuild, "analytics"));
  const absl::Time t0 = absl::Now();
  CRM_ASSIGN_OR_RETURN(h->engine_, AnalyticsEngine::Open(log, h->db_.get(), h->engine_options_));
  server::LogInfo(absl::StrCat("analytics caught up with the log in ", absl::FormatDuration(absl::Now() - t0)));
  h->service_ = std::make_unique<AnalyticsService>(h->engine_.get(), runtime);
  return h;
}

void AnalyticsHost::StartLoops() {
  loops_.Every(absl::Seconds(1), [this] {
    for (const projection::Source& s : AnalyticsEngine::Spec(engine_options_).sources) {
      if (auto lag = projection::LagRecords(*log_, *db_, s.topic); lag.ok()) {
        options_.metrics->SetProjectionLag(absl::StrCat("analytics_view_of_", s.topic), static_cast<double>(*lag));
      }
    }
  });
}

absl::Status AnalyticsHost::StartDashboard(const std::string& listen) {
  CRM_ASSIGN_OR_RETURN(dashboard_, Dashboard::Start({.listen = listen, .auth = runtime_->authenticator(),
                                                     .engine = engine_.get()}));
  return absl::OkStatus();
}

AnalyticsHost::~AnalyticsHost() {
  dashboard_.reset();
  loops_.Stop();
  service_.reset();
  engine_.reset();
  db_.reset();
}

}  // namespace crm::analytics
