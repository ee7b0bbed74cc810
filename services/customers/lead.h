#ifndef CRM_SERVICES_CUSTOMERS_LEAD_H_
#define CRM_SERVICES_CUSTOMERS_LEAD_H_

#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crm/customers/v1/customers_events.pb.h"
#include "services/customers/customer.h"

namespace crm::customers {

using v1::LeadProfile;
using v1::LeadState;

using LeadEvent = std::variant<v1::LeadCreated, v1::LeadUpdated, v1::LeadAssigned, v1::LeadReleased,
                               v1::LeadQualified, v1::LeadDisqualified, v1::LeadConverted>;

// The editable lead fields, as update_mask paths.
const std::vector<std::string>& LeadFields();

// Reps see their own leads and their team's lead pool (all of it for leads without a team);
// managers their team's; admins and services all.
bool CanSee(const Caller& caller, const LeadState& lead);
// Reps work their own leads; managers their team's; admins and services all.
bool CanEdit(const Caller& caller, const LeadState& lead);

struct CreateLead {
  LeadProfile profile;
  std::string owner_id;  // empty: the caller when a rep, else the pool
  std::string team_id;   // empty: the caller's team
  CustomerSettings settings;
};
struct UpdateLead {
  LeadProfile profile;
  std::vector<std::string> paths;
  CustomerSettings settings;
};
struct AssignLead {
  std::string owner_id;
  std::string team_id;
};
struct ClaimLead {};
struct ReleaseLead {
  std::string reason;
};
struct QualifyLead {};
struct DisqualifyLead {
  std::string reason;
};
// After the customer side was written: records what the lead became.
struct ConvertLead {
  v1::LeadConverted converted;
};

// Pure decisions; errors as for customers (INVALID_ARGUMENT naming "lead.<field>",
// PERMISSION_DENIED, NOT_FOUND, FAILED_PRECONDITION with ErrorInfo reasons
// NOT_IN_POOL, LEAD_CLOSED).
using LeadDecision = absl::StatusOr<std::vector<LeadEvent>>;
LeadDecision Decide(const LeadState* lead, const Caller& caller, const CreateLead& cmd);
LeadDecision Decide(const LeadState* lead, const Caller& caller, const UpdateLead& cmd);
LeadDecision Decide(const LeadState* lead, const Caller& caller, const AssignLead& cmd);
LeadDecision Decide(const LeadState* lead, const Caller& caller, const ClaimLead& cmd);
LeadDecision Decide(const LeadState* lead, const Caller& caller, const ReleaseLead& cmd);
LeadDecision Decide(const LeadState* lead, const Caller& caller, const QualifyLead& cmd);
LeadDecision Decide(const LeadState* lead, const Caller& caller, const DisqualifyLead& cmd);
LeadDecision Decide(const LeadState* lead, const Caller& caller, const ConvertLead& cmd);
// Whether `caller` may convert `lead` now (checked before the customer side is written).
absl::Status CheckConvertible(const LeadState* lead, const Caller& caller);

void Apply(LeadState& lead, const LeadEvent& event, int64_t version, absl::Time occurred_at,
           const std::string& actor);
std::vector<std::string> ChangedFields(const LeadEvent& event);

// What converting `lead` does to the customer side: the profile of a new customer, the
// fields of an existing one to fill (only those it has empty), and the lead's person as a
// contact (none when the lead has no contact name or the customer has a contact with that
// phone already).
CustomerProfile CustomerProfileFromLead(const LeadState& lead);
UpdateCustomer FillFromLead(const CustomerState& customer, const LeadState& lead,
                            const CustomerSettings& settings);
absl::optional<Contact> ContactFromLead(const CustomerState* customer, const LeadState& lead);

}  // namespace crm::customers

#endif  // CRM_SERVICES_CUSTOMERS_LEAD_H_
