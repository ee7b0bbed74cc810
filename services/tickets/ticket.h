#ifndef CRM_SERVICES_TICKETS_TICKET_H_
#define CRM_SERVICES_TICKETS_TICKET_H_

// The ticket aggregate (工单): form values checked against its type's version, moves only
// along the workflow, assignment, public and internal comments. Pure decisions and folds, no
// I/O (docs/architecture.md §3); the engine supplies the type version and the customer check.
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crm/tickets/v1/tickets_events.pb.h"
#include "libs/common/caller.h"
#include "services/tickets/form.h"

namespace crm::tickets {

using v1::TicketState;

using TicketEvent = std::variant<v1::TicketCreated, v1::TicketValuesChanged, v1::TicketTransitioned,
                                 v1::TicketAssigned, v1::TicketCommented, v1::TicketMigrated, v1::SlaWarning,
                                 v1::SlaBreached>;
using TicketDecision = absl::StatusOr<std::vector<TicketEvent>>;

// Who sees a ticket: admins and services all; managers their team's; reps the tickets
// assigned to them or created by them.
bool CanSee(const Caller& c, const TicketState& s);

struct CreateTicket {
  std::string type_id;
  v1::TicketTypeVersion type;  // the version in force, from the engine
  std::string title;
  std::string customer_id;  // known to exist (the engine checks), or empty
  FormValues values;
  v1::TicketPriority priority = v1::TICKET_PRIORITY_UNSPECIFIED;
  std::string assignee_id;  // default: unassigned
  std::string team_id;      // default: the caller's
};
// Sets the values given; an empty value clears a field (unless it is required).
struct UpdateValues {
  v1::TicketTypeVersion type;  // the ticket's own version
  FormValues values;
};
struct TakeTransition {
  v1::TicketTypeVersion type;
  std::string transition_id;
  std::string comment;
};
struct AssignTicket {
  std::string assignee_id;
  std::string team_id;  // default: the ticket's
};
struct CommentTicket {
  std::string comment_id;  // from the engine (derived from the request id)
  std::string body;
  bool internal = false;
};

// An admin moves an open ticket of version `from` to version `to`: values by `field_mapping`
// (old key -> new key, "" drops; an unnamed key stays when the new form has it), `defaults`
// for what is still empty, the state by `state_mapping` (an unnamed state keeps its id).
struct MigrateTicket {
  v1::TicketTypeVersion from;
  v1::TicketTypeVersion to;
  std::map<std::string, std::string> field_mapping;
  std::map<std::string, std::string> state_mapping;
  FormValues defaults;
};
// The scheduler's notices: those of `notices` not recorded on the ticket yet.
struct RecordSla {
  std::vector<std::variant<v1::SlaWarning, v1::SlaBreached>> notices;
};

// Errors: INVALID_ARGUMENT naming the request field ("ticket.values.<key>" on create,
// "values.<key>" on update, "transition", ...),
// PERMISSION_DENIED, NOT_FOUND, FAILED_PRECONDITION (a closed ticket's values, a transition's
// required fields). An empty vector: nothing to record. The etag is no part of the commands:
// the store checks it before deciding.
TicketDecision Decide(const TicketState* state, const Caller& caller, const CreateTicket& cmd);
TicketDecision Decide(const TicketState* state, const Caller& caller, const UpdateValues& cmd);
TicketDecision Decide(const TicketState* state, const Caller& caller, const TakeTransition& cmd);
TicketDecision Decide(const TicketState* state, const Caller& caller, const AssignTicket& cmd);
TicketDecision Decide(const TicketState* state, const Caller& caller, const CommentTicket& cmd);
TicketDecision Decide(const TicketState* state, const Caller& caller, const MigrateTicket& cmd);
TicketDecision Decide(const TicketState* state, const Caller& caller, const RecordSla& cmd);

// Folds `event`. The timeline gets a step per state entered; the first public comment is the
// first response (SLA).
void Apply(TicketState& state, const TicketEvent& event, int64_t version, absl::Time at, const std::string& actor);

}  // namespace crm::tickets

#endif  // CRM_SERVICES_TICKETS_TICKET_H_
