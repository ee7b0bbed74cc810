#ifndef CRM_SERVICES_TICKETS_SLA_POLICY_H_
#define CRM_SERVICES_TICKETS_SLA_POLICY_H_

// SLA policies (per ticket type and priority) and business calendars as aggregates, and how a
// ticket's history becomes the timeline its clocks run on. Pure decisions and folds, no I/O.
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crm/tickets/v1/tickets_events.pb.h"
#include "libs/common/caller.h"
#include "services/tickets/sla.h"

namespace crm::tickets {

using SlaPolicyEvent = std::variant<v1::SlaPolicySet, v1::SlaPolicyDeleted>;
using CalendarEvent = std::variant<v1::CalendarSet>;

// "low", "normal", "high", "urgent"; "default" for UNSPECIFIED. The last part of
// ticketTypes/{type}/slaPolicies/{priority}.
std::string PriorityKey(v1::TicketPriority p);
// The inverse; false for another word.
bool ParsePriorityKey(const std::string& key, v1::TicketPriority* p);

// INVALID_ARGUMENT naming "<prefix>.<field>": targets 0 to a year (at least one set), a
// warning share 0-99, a calendar name calendars/{id}, pause states that are identifiers.
absl::Status ValidatePolicy(const v1::SlaPolicy& p, const std::string& prefix);

struct SetSlaPolicy {
  v1::SlaPolicy policy;  // validated, with type and calendar known to exist (the engine checks)
};
struct DeleteSlaPolicy {
};
// Admins (by the rpcs' access options; not checked here). An empty vector: nothing to record (the same policy again, deleting twice).
absl::StatusOr<std::vector<SlaPolicyEvent>> Decide(const v1::SlaPolicyState* s, const Caller& c,
                                                   const SetSlaPolicy& cmd);
absl::StatusOr<std::vector<SlaPolicyEvent>> Decide(const v1::SlaPolicyState* s, const Caller& c,
                                                   const DeleteSlaPolicy& cmd);
void Apply(v1::SlaPolicyState& s, const SlaPolicyEvent& e, int64_t version, absl::Time at, const std::string& actor);

struct SetCalendar {
  std::string key;
  std::string display_name;
  v1::BusinessCalendar calendar;
};
// Admins (by the rpc's access option); INVALID_ARGUMENT naming "calendar.<field>" (BusinessCalendar::Make).
absl::StatusOr<std::vector<CalendarEvent>> Decide(const v1::CalendarState* s, const Caller& c, const SetCalendar& cmd);
void Apply(v1::CalendarState& s, const CalendarEvent& e, int64_t version, absl::Time at, const std::string& actor);

// The timeline of `t` for `policy`'s clocks: a state pauses when the policy names it, or, when
// the policy names none, when the workflow said so as the ticket entered it.
TicketTimeline TimelineOf(const v1::TicketState& t, const v1::SlaPolicy& policy);
SlaTargets TargetsOf(const v1::SlaPolicy& policy);

}  // namespace crm::tickets

#endif  // CRM_SERVICES_TICKETS_SLA_POLICY_H_
