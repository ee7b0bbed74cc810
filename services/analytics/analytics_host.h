#ifndef CRM_SERVICES_ANALYTICS_ANALYTICS_HOST_H_
#define CRM_SERVICES_ANALYTICS_ANALYTICS_HOST_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/eventlog/log.h"
#include "libs/server/metrics.h"
#include "libs/server/periodic.h"
#include "libs/server/runtime.h"
#include "libs/server/service_projections.h"
#include "services/analytics/analytics_engine.h"
#include "services/analytics/analytics_service.h"
#include "services/analytics/dashboard.h"

namespace crm::analytics {

// The analytics service as a process hosts it (crmd, crm-analytics): read models opened
// (rebuilt when asked or built by other code), followers of the other services' topics, the
// gRPC service, and the projection-lag gauges. It has no scheduler. One per process.
class AnalyticsHost {
 public:
  using Options = server::HostOptions;

  static absl::StatusOr<std::unique_ptr<AnalyticsHost>> Open(eventlog::Log* log, server::Runtime* runtime,
                                                              Options options);
  ~AnalyticsHost();

  std::vector<grpc::Service*> services() { return {service_.get()}; }
  AnalyticsEngine* engine() { return engine_.get(); }
  void StartLoops();
  // Serves the web dashboard and its JSON/CSV API over HTTP on `listen` (dashboard.h),
  // authenticated as the gRPC calls are.
  absl::Status StartDashboard(const std::string& listen);
  int dashboard_port() const { return dashboard_ ? dashboard_->port() : 0; }

 private:
  AnalyticsHost(eventlog::Log* log, server::Runtime* runtime, Options o)
      : log_(log), runtime_(runtime), options_(std::move(o)) {}

  eventlog::Log* log_;
  server::Runtime* runtime_;
  const Options options_;
  AnalyticsEngine::Options engine_options_;
  std::unique_ptr<projection::ProjectionDb> db_;
  std::unique_ptr<AnalyticsEngine> engine_;
  std::unique_ptr<AnalyticsService> service_;
  server::Periodic loops_;
  std::unique_ptr<Dashboard> dashboard_;
};

}  // namespace crm::analytics

#endif  // CRM_SERVICES_ANALYTICS_ANALYTICS_HOST_H_
