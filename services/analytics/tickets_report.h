#ifndef CRM_SERVICES_ANALYTICS_TICKETS_REPORT_H_
#define CRM_SERVICES_ANALYTICS_TICKETS_REPORT_H_

// The tickets report (工单统计) of the analytics service: volume, closures, SLA breaches and
// compliance by period, from dated facts with both their business time and their log time,
// so a report as of T equals the one over the log cut at T. Depends on the tickets' event
// schemas only.
//   at/<ticket id>                                   TicketFact
//   af/<kind>/<occurred TimeKey><event id>           PointFact: ticket_opened, ticket_closed,
//                                                    sla_breached (label: FIRST_RESPONSE or
//                                                    RESOLUTION)
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/eventlog/log.h"
#include "libs/projection/projection_db.h"
#include "services/analytics/facts.h"

namespace crm::analytics {

// Folds one record of the tickets topic. Other aggregates and events are skipped, as are
// events applied already (by aggregate version).
absl::Status ApplyTicketsRecord(projection::ProjectionDb& db, const eventlog::Record& record,
                                projection::Batch& batch);

struct TicketsQuery {
  absl::Time from, to;  // business time, [from, to)
  absl::Time as_of = absl::InfiniteFuture();
  Period group_by = Period::kDay;
  absl::TimeZone zone = ReportZone();
  std::string owner_id;  // the assignee when it happened; empty: any
  std::string team_id;   // empty: any
  std::string type_id;   // empty: every type
};

struct TicketsBucket {
  absl::Time start;
  int64_t opened = 0, closed = 0;
  int64_t first_response_breaches = 0, resolution_breaches = 0;
};

struct TicketsReport {
  std::vector<TicketsBucket> buckets;  // every period of the range, in order
  int64_t opened = 0, closed = 0, first_response_breaches = 0, resolution_breaches = 0;
  // Of the tickets closed in the range: the share without a resolution breach recorded by
  // as_of, percent; 100 when none closed.
  double resolution_compliance_percent = 100;
};

absl::StatusOr<TicketsReport> Tickets(rocksdb::DB* db, const TicketsQuery& q);

}  // namespace crm::analytics

#endif  // CRM_SERVICES_ANALYTICS_TICKETS_REPORT_H_
