#ifndef CRM_SERVICES_CUSTOMERS_CUSTOMER_H_
#define CRM_SERVICES_CUSTOMERS_CUSTOMER_H_

#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "crm/customers/v1/customers_events.pb.h"

namespace crm::customers {

using v1::CustomerProfile;
using v1::CustomerState;

using CustomerEvent = std::variant<v1::CustomerCreated, v1::CustomerUpdated, v1::CustomerDeleted,
                                   v1::CustomerUndeleted>;

// Who asks, from the verified token.
struct Caller {
  std::string user_id;
  std::string role;  // rep, manager, admin, service
  std::string team;
};

// Mainland mobile numbers: accepts full-width digits, spaces, dashes, dots, parentheses and a
// +86 / 0086 / 86 prefix; returns the 11 ASCII digits starting with 1, or INVALID_ARGUMENT.
absl::StatusOr<std::string> NormalizePhone(absl::string_view phone);
// Trims, lower-cases, folds full-width characters; INVALID_ARGUMENT unless local@domain.tld.
absl::StatusOr<std::string> NormalizeEmail(absl::string_view email);

// Checks every editable field of `profile` named in `paths` (all when empty); errors are
// INVALID_ARGUMENT naming "<prefix>.<field>".
absl::Status ValidateProfile(const CustomerProfile& profile, const std::vector<std::string>& paths,
                             absl::string_view prefix);

// The editable profile fields, as update_mask paths.
const std::vector<std::string>& EditableFields();

// Reps see their own customers, managers their team's, admins and services all.
bool CanSee(const Caller& caller, const CustomerState& state);
// Whether `caller` may give a customer to (owner, team).
bool CanAssign(const Caller& caller, const std::string& owner, const std::string& team);

struct CreateCustomer {
  CustomerProfile profile;
  std::string customer_number;  // allocated by the service
};
struct UpdateCustomer {
  CustomerProfile profile;        // new values
  std::vector<std::string> paths; // which fields of profile to apply
  int64_t expected_version = 0;   // 0: any
};
struct DeleteCustomer {
  std::string reason;
  int64_t expected_version = 0;
};
struct UndeleteCustomer {
  int64_t expected_version = 0;
};

// Pure decisions. `state` is null when the customer does not exist. Errors: INVALID_ARGUMENT
// (field named), PERMISSION_DENIED, NOT_FOUND, ABORTED (version mismatch),
// FAILED_PRECONDITION (a broken rule, e.g. updating a deleted customer). Uniqueness of
// phone/email needs the indexes and is the service's check.
absl::StatusOr<std::vector<CustomerEvent>> Decide(const CustomerState* state, const Caller& caller,
                                                  const CreateCustomer& cmd);
absl::StatusOr<std::vector<CustomerEvent>> Decide(const CustomerState* state, const Caller& caller,
                                                  const UpdateCustomer& cmd);
absl::StatusOr<std::vector<CustomerEvent>> Decide(const CustomerState* state, const Caller& caller,
                                                  const DeleteCustomer& cmd);
absl::StatusOr<std::vector<CustomerEvent>> Decide(const CustomerState* state, const Caller& caller,
                                                  const UndeleteCustomer& cmd);

// Folds one event into `state` (version, times and actor come from the envelope).
void Apply(CustomerState& state, const CustomerEvent& event, int64_t version, absl::Time occurred_at,
           const std::string& actor);

// The profile fields an event set or changed.
std::vector<std::string> ChangedFields(const CustomerEvent& event);

}  // namespace crm::customers

#endif  // CRM_SERVICES_CUSTOMERS_CUSTOMER_H_
