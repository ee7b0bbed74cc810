#ifndef CRM_SERVICES_ANALYTICS_CUSTOMER_FACTS_H_
#define CRM_SERVICES_ANALYTICS_CUSTOMER_FACTS_H_

// Read models of the customers topic (customers, leads, channel costs) and the tasks topic,
// for the channels, team, customer value and churn reports. Rows (facts.h for the shapes):
//   acs/<customer id>                       CustomerDim, the latest (for folding)
//   ad/<customer id>/<recorded><event>      CustomerDim versions
//   al/<lead id>                            LeadFact
//   aw/<task id>                            TaskFact
//   ax/<channel>:<yyyy-MM>/<recorded><event> ChannelCostFact versions
//   af/customer_created  label: channel, related: the lead      owner: the customer's
//   af/customer_churned  label: churn reason (lifecycle to LOST)  owner: the customer's
//   af/follow_up         subject: the customer                  owner: who recorded it
//   af/lead_created      label: channel                         owner: the lead's
//   af/lead_converted    label: channel, related: the customer  owner: the lead's
//   af/task_done         count -1 when reopened                 owner: the assignee
//   af/task_overdue                                             owner: the assignee
// Depends on the event schemas only, never on the services' code.
#include "absl/status/status.h"
#include "libs/eventlog/log.h"
#include "libs/projection/projection_db.h"

namespace crm::analytics {

inline constexpr char kCustomerDimPrefix[] = "ad/";
inline constexpr char kChannelCostPrefix[] = "ax/";

absl::Status ApplyCustomersRecord(projection::ProjectionDb& db, const eventlog::Record& record,
                                  projection::Batch& batch);
absl::Status ApplyTasksRecord(projection::ProjectionDb& db, const eventlog::Record& record,
                              projection::Batch& batch);

}  // namespace crm::analytics

#endif  // CRM_SERVICES_ANALYTICS_CUSTOMER_FACTS_H_
