#ifndef CRM_SERVICES_CUSTOMERS_CUSTOMERS_MODULE_H_
#define CRM_SERVICES_CUSTOMERS_CUSTOMERS_MODULE_H_

#include "libs/server/service_module.h"

namespace crm::customers {

// The customers service as crmd and crm-customers compose it (libs/server/service_module.h):
// CustomerEngine over its projections, the customers and leads gRPC services, and a scheduler
// that returns idle customers to the public pool and purges the recycle bin.
const server::ServiceModule& Module();

}  // namespace crm::customers

#endif  // CRM_SERVICES_CUSTOMERS_CUSTOMERS_MODULE_H_
