#ifndef CRM_SERVICES_OPPORTUNITIES_OPPORTUNITIES_MODULE_H_
#define CRM_SERVICES_OPPORTUNITIES_OPPORTUNITIES_MODULE_H_

#include "libs/server/service_module.h"

namespace crm::opportunities {

// The opportunities service as crmd and crm-opportunities compose it
// (libs/server/service_module.h): OpportunityEngine over its projections and its view of the
// customers topic, the opportunities, quotes and contracts gRPC services, and a scheduler that
// emits stage timeouts, renewal notices, contract expiry and overdue instalments.
const server::ServiceModule& Module();

}  // namespace crm::opportunities

#endif  // CRM_SERVICES_OPPORTUNITIES_OPPORTUNITIES_MODULE_H_
