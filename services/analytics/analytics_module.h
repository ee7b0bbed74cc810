#ifndef CRM_SERVICES_ANALYTICS_ANALYTICS_MODULE_H_
#define CRM_SERVICES_ANALYTICS_ANALYTICS_MODULE_H_

#include "libs/server/service_module.h"

namespace crm::analytics {

// The analytics service as crmd and crm-analytics compose it (libs/server/service_module.h):
// AnalyticsEngine's read models of the other services' topics, the analytics gRPC service and
// the web dashboard (dashboard.h), authenticated as the gRPC calls are. It owns no topic and
// has no scheduler.
const server::ServiceModule& Module();

}  // namespace crm::analytics

#endif  // CRM_SERVICES_ANALYTICS_ANALYTICS_MODULE_H_
