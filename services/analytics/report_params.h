#ifndef CRM_SERVICES_ANALYTICS_REPORT_PARAMS_H_
#define CRM_SERVICES_ANALYTICS_REPORT_PARAMS_H_

// Report requests from named text parameters, as the dashboard's query strings and crmctl's
// flags give them. The seven requests number their fields differently, so fields are set by
// name.
#include <map>
#include <string>

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace crm::analytics {

// Sets `req` from `params`: from, to, as_of (a day yyyy-MM-dd meaning its midnight in UTC+8,
// or RFC 3339), group_by (day, week, month), scope (own, team, all), owner, team, currency,
// pipeline, ticket_type, limit, consistency_token. Empty values are skipped; other names are
// not looked at. INVALID_ARGUMENT naming the parameter for a bad value or one this report
// does not take.
absl::Status FillReportRequest(const std::map<std::string, std::string>& params, google::protobuf::Message* req);

}  // namespace crm::analytics

#endif  // CRM_SERVICES_ANALYTICS_REPORT_PARAMS_H_
