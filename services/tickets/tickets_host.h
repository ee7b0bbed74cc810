#ifndef CRM_SERVICES_TASKS_TICKETS_HOST_H_
#define CRM_SERVICES_TASKS_TICKETS_HOST_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/eventlog/log.h"
#include "libs/server/metrics.h"
#include "libs/server/periodic.h"
#include "libs/server/runtime.h"
#include "libs/server/service_projections.h"
#include "services/tickets/ticket_engine.h"
#include "services/tickets/tickets_service.h"

namespace crm::tickets {

// The tickets service as a process hosts it (crmd, crm-tickets): projections opened (rebuilt
// when asked or built by other code), the engine caught up with its topic and the customers
// topic, the gRPC services, and background loops: the projection-lag gauges and the SLA
// scheduler. One per process.
class TicketsHost {
 public:
  using Options = server::HostOptions;

  static absl::StatusOr<std::unique_ptr<TicketsHost>> Open(eventlog::Log* log, server::Runtime* runtime, Options options);
  ~TicketsHost();

  std::vector<grpc::Service*> services() { return {types_.get(), tickets_.get(), sla_.get()}; }
  TicketEngine* engine() { return engine_.get(); }
  void StartLoops();

 private:
  TicketsHost(eventlog::Log* log, Options o) : log_(log), options_(std::move(o)) {}

  eventlog::Log* log_;
  const Options options_;
  TicketEngine::Options engine_options_;
  std::unique_ptr<projection::ProjectionDb> db_;
  std::unique_ptr<TicketEngine> engine_;
  std::unique_ptr<TicketTypesService> types_;
  std::unique_ptr<TicketsService> tickets_;
  std::unique_ptr<SlaService> sla_;
  server::Periodic loops_;
};

}  // namespace crm::tickets

#endif  // CRM_SERVICES_TASKS_TICKETS_HOST_H_
