#ifndef CRM_SERVICES_INTEGRATION_INTEGRATION_MODULE_H_
#define CRM_SERVICES_INTEGRATION_INTEGRATION_MODULE_H_

#include "libs/server/service_module.h"

namespace crm::integration {

// crm-integration as its Kafka main composes it (libs/server/service_module.h): the
// IntegrationHost, with flags of its own (the services' addresses, --relay, --inbound). It
// runs on Kafka only, not in crmd.
const server::ServiceModule& Module();

}  // namespace crm::integration

#endif  // CRM_SERVICES_INTEGRATION_INTEGRATION_MODULE_H_
