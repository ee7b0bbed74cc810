#ifndef CRM_SERVICES_OPPORTUNITIES_OPPORTUNITIES_HOST_H_
#define CRM_SERVICES_OPPORTUNITIES_OPPORTUNITIES_HOST_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/common/clock.h"
#include "libs/eventlog/log.h"
#include "libs/server/metrics.h"
#include "libs/server/periodic.h"
#include "libs/server/runtime.h"
#include "libs/server/service_projections.h"
#include "services/opportunities/opportunities_service.h"
#include "services/opportunities/opportunity_engine.h"

namespace crm::opportunities {

// The opportunities service as a process hosts it (crmd, crm-opportunities): projections
// opened (rebuilt when asked or built by other code), the engine caught up with its topic
// and the customers topic, the gRPC services, and background loops: the projection-lag
// gauges and the scheduler. One per process.
class OpportunitiesHost {
 public:
  // The scheduler emits stage timeouts, renewal notices, expiry and overdue instalments.
  using Options = server::HostOptions;

  static absl::StatusOr<std::unique_ptr<OpportunitiesHost>> Open(eventlog::Log* log, server::Runtime* runtime,
                                                                 Options options);
  ~OpportunitiesHost();

  std::vector<grpc::Service*> services() { return {opportunities_.get(), quotes_.get(), contracts_.get()}; }
  OpportunityEngine* engine() { return engine_.get(); }
  void StartLoops();

 private:
  OpportunitiesHost(eventlog::Log* log, Options o) : log_(log), options_(std::move(o)) {}

  eventlog::Log* log_;
  const Options options_;
  std::unique_ptr<projection::ProjectionDb> db_;
  std::unique_ptr<OpportunityEngine> engine_;
  std::unique_ptr<OpportunitiesService> opportunities_;
  std::unique_ptr<QuotesService> quotes_;
  std::unique_ptr<ContractsService> contracts_;
  server::Periodic loops_;
};

}  // namespace crm::opportunities

#endif  // CRM_SERVICES_OPPORTUNITIES_OPPORTUNITIES_HOST_H_
