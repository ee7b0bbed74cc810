#ifndef CRM_SERVICES_TICKETS_TICKETS_MODULE_H_
#define CRM_SERVICES_TICKETS_TICKETS_MODULE_H_

#include "libs/server/service_module.h"

namespace crm::tickets {

// The tickets service as crmd and crm-tickets compose it (libs/server/service_module.h):
// TicketEngine over its projections and its view of the customers topic, the ticket types,
// tickets and SLA gRPC services, and the SLA scheduler (crm_sla_notices_total{kind}).
const server::ServiceModule& Module();

}  // namespace crm::tickets

#endif  // CRM_SERVICES_TICKETS_TICKETS_MODULE_H_
