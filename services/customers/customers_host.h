#ifndef CRM_SERVICES_CUSTOMERS_CUSTOMERS_HOST_H_
#define CRM_SERVICES_CUSTOMERS_CUSTOMERS_HOST_H_

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
#include "services/customers/customer_engine.h"
#include "services/customers/customers_service.h"

namespace crm::customers {

// The customers service as a process hosts it (crmd, crm-customers): projections opened (and
// rebuilt when asked or built by other code), the engine caught up, the gRPC service, and two
// background loops: the projection-lag gauge and the scheduler. Not thread-safe; one per process.
class CustomersHost {
 public:
  // The scheduler returns idle customers to the public pool and purges the recycle bin.
  using Options = server::HostOptions;

  // Opens everything up to a caught-up engine and the service on `runtime` (not yet started).
  // `log` and `runtime` must outlive the host.
  static absl::StatusOr<std::unique_ptr<CustomersHost>> Open(eventlog::Log* log, server::Runtime* runtime,
                                                             Options options);
  // Stops the loops, then closes the engine and projections. Call after the runtime drained.
  ~CustomersHost();

  // The gRPC services to register: customers and leads.
  std::vector<grpc::Service*> services() { return {service_.get(), leads_.get()}; }
  CustomerEngine* engine() { return engine_.get(); }
  // Starts the lag gauge and the scheduler.
  void StartLoops();

 private:
  CustomersHost(eventlog::Log* log, Options o) : log_(log), options_(std::move(o)) {}

  eventlog::Log* log_;
  const Options options_;
  std::unique_ptr<projection::ProjectionDb> db_;
  std::unique_ptr<CustomerEngine> engine_;
  std::unique_ptr<CustomersService> service_;
  std::unique_ptr<LeadsService> leads_;
  server::Periodic loops_;
};

}  // namespace crm::customers

#endif  // CRM_SERVICES_CUSTOMERS_CUSTOMERS_HOST_H_
