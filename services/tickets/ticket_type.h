#ifndef CRM_SERVICES_TICKETS_TICKET_TYPE_H_
#define CRM_SERVICES_TICKETS_TICKET_TYPE_H_

// The ticket type aggregate (工单类型): an admin-defined form and workflow, versioned. Pure
// decisions and folds, no I/O (docs/architecture.md §3).
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crm/tickets/v1/tickets_events.pb.h"
#include "libs/common/caller.h"

namespace crm::tickets {

using v1::TicketTypeDefinition;
using v1::TicketTypeState;

using TicketTypeEvent = std::variant<v1::TicketTypeCreated, v1::TicketTypeVersionPublished, v1::TicketTypeArchived>;
using TicketTypeDecision = absl::StatusOr<std::vector<TicketTypeEvent>>;

// INVALID_ARGUMENT naming "<prefix>.<part>" unless the definition is complete: a name of 1-40
// characters, a description of at most 2000, a valid form (ValidateSchema) and a valid
// workflow over it (ValidateWorkflow).
absl::Status ValidateDefinition(const TicketTypeDefinition& d, const std::string& prefix);

struct CreateTicketType {
  TicketTypeDefinition definition;
};
// A new version; tickets created from now on use it.
struct PublishTicketType {
  TicketTypeDefinition definition;
};
struct ArchiveTicketType {
  std::string reason;
};

// Admins (by the rpcs' access options; not checked here). NOT_FOUND, FAILED_PRECONDITION
// (publishing to an archived type), INVALID_ARGUMENT (field named). An empty vector: nothing to
// record (publishing the definition in force, archiving twice). The etag is the store's.
TicketTypeDecision Decide(const TicketTypeState* state, const Caller& caller, const CreateTicketType& cmd);
TicketTypeDecision Decide(const TicketTypeState* state, const Caller& caller, const PublishTicketType& cmd);
TicketTypeDecision Decide(const TicketTypeState* state, const Caller& caller, const ArchiveTicketType& cmd);

void Apply(TicketTypeState& state, const TicketTypeEvent& event, int64_t version, absl::Time at,
           const std::string& actor);

// The version in force (the last published); null before the first.
const v1::TicketTypeVersion* CurrentVersion(const TicketTypeState& s);
// Version `number`; null when there is none.
const v1::TicketTypeVersion* FindVersion(const TicketTypeState& s, int32_t number);

}  // namespace crm::tickets

#endif  // CRM_SERVICES_TICKETS_TICKET_TYPE_H_
