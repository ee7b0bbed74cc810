#ifndef CRM_SERVICES_TASKS_TASKS_MODULE_H_
#define CRM_SERVICES_TASKS_TASKS_MODULE_H_

#include "libs/server/service_module.h"

namespace crm::tasks {

// The tasks service as crmd and crm-tasks compose it (libs/server/service_module.h): TaskEngine
// over its projections and its views of the topics rules follow, the tasks and automation gRPC
// services, the automation gauges (crm_automation_pending_actions, crm_automation_following)
// and a scheduler of reminders, overdue notices and date-triggered tasks.
const server::ServiceModule& Module();

}  // namespace crm::tasks

#endif  // CRM_SERVICES_TASKS_TASKS_MODULE_H_
