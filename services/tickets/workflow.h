#ifndef CRM_SERVICES_TICKETS_WORKFLOW_H_
#define CRM_SERVICES_TICKETS_WORKFLOW_H_

// Custom workflows of ticket types (自定义流程): states, the transitions between them with the
// roles allowed and the form fields each requires. Pure, no I/O.
#include <string>

#include "absl/status/statusor.h"
#include "crm/tickets/v1/tickets_events.pb.h"
#include "services/tickets/form.h"

namespace crm::tickets {

// INVALID_ARGUMENT naming "<prefix>.<part>" unless the workflow is well formed: 2-30 states
// with unique ids [a-z][a-z0-9_]{0,39} and names; an initial state that exists and is not
// final; at least one final state; transitions with unique ids and names between existing
// states (not to themselves), roles among rep, manager, admin, service, required fields
// that the form has; every state reachable from the initial one.
absl::Status ValidateWorkflow(const v1::Workflow& w, const v1::FormSchema& form, const std::string& prefix);

const v1::WorkflowState* FindState(const v1::Workflow& w, const std::string& id);

// The transition `transition_id` out of `state` (a pointer into `w`) that a caller of `role`
// may take with `values` on the ticket: INVALID_ARGUMENT naming "transition" when the
// workflow has no such transition from that state (the message lists those it has),
// PERMISSION_DENIED when the role may not take it, FAILED_PRECONDITION naming the required
// fields still empty (BadRequest lists each as "values.<key>").
absl::StatusOr<const v1::Transition*> CheckTransition(const v1::Workflow& w, const std::string& state,
                                                      const std::string& transition_id, const std::string& role,
                                                      const FormValues& values);

}  // namespace crm::tickets

#endif  // CRM_SERVICES_TICKETS_WORKFLOW_H_
