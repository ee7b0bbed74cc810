#ifndef CRM_SERVICES_TICKETS_TICKET_PROJECTIONS_H_
#define CRM_SERVICES_TICKETS_TICKET_PROJECTIONS_H_

#include <string>

#include "absl/status/statusor.h"
#include "libs/eventlog/log.h"
#include "libs/projection/projection_db.h"
#include "libs/topics/contracts.h"
#include "services/tickets/sla_policy.h"
#include "services/tickets/ticket.h"
#include "services/tickets/ticket_type.h"

namespace crm::tickets {

// The topic's aggregates (types, collections) are topics::tickets's (libs/topics).

// Projection rows of the tickets service. Times in keys are projection::TimeKey (8 bytes).
//   k/<id>                           TicketState
//   y/<id>                           TicketTypeState
//   p/<id>                           SlaPolicyState (id: PolicyId(type, priority))
//   l/<id>                           CalendarState (id: CalendarId(key))
//   h/<id>/<be64 version>, r/<request id>/<id>   history and request ids
//   ix/<create>/<id>                 every ticket
//   io/<create>/<id>                 open tickets (the scheduler's work)
//   ia/<assignee>/<create>/<id>      tickets by assignee
//   ib/<creator>/<create>/<id>       tickets by creator
//   it/<team>/<create>/<id>          tickets by team
//   ic/<type>/<create>/<id>          tickets by type (EvaluateSla's periods)
//   ik/<customer>/<create>/<id>      tickets by the customer linked
//   iv/<type>/<version>/<create>/<id>  open tickets by type version (migration)
//   ip/<type>/<priority key>         the policy ids of a type
// Of the customers topic (libs/customer_view): cr/<id>, cw/<id>, and
//   cm/<survivor>/<merged id>        customers merged into another
namespace rows {
std::string Ticket(absl::string_view id);
std::string TicketType(absl::string_view id);
std::string Policy(absl::string_view id);
std::string Calendar(absl::string_view id);
inline constexpr char kTicketTypePrefix[] = "y/";
inline constexpr char kCalendarPrefix[] = "l/";
inline constexpr char kAllPrefix[] = "ix/";
inline constexpr char kOpenPrefix[] = "io/";
std::string AssigneePrefix(absl::string_view user);
std::string CreatorPrefix(absl::string_view user);
std::string TeamPrefix(absl::string_view team);
std::string TypePrefix(absl::string_view type);
std::string CustomerPrefix(absl::string_view customer);
std::string VersionPrefix(absl::string_view type, int32_t version);
std::string PolicyIndexPrefix(absl::string_view type);
std::string MergedPrefix(absl::string_view survivor);
}  // namespace rows

// The aggregate id of ticketTypes/{type}/slaPolicies/{PriorityKey(priority)}.
std::string PolicyId(absl::string_view type, v1::TicketPriority priority);
// The aggregate id of calendars/{key}.
std::string CalendarId(absl::string_view key);

absl::StatusOr<TicketEvent> UnpackTicketEvent(const common::v1::EventEnvelope& e);

// Folds one record of the tickets topic into the rows above. DATA_LOSS on a version gap, a
// broken hash chain or an unknown event; records already applied are skipped.
absl::Status ApplyTicketsRecord(projection::ProjectionDb& db, const eventlog::Record& record, projection::Batch& batch);

// Folds one record of the customers topic: the customer view and the merged-into rows.
absl::Status ApplyCustomersRecord(projection::ProjectionDb& db, const eventlog::Record& record,
                                  projection::Batch& batch);

}  // namespace crm::tickets

#endif  // CRM_SERVICES_TICKETS_TICKET_PROJECTIONS_H_
