#ifndef CRM_SERVICES_OPPORTUNITIES_CONTRACT_H_
#define CRM_SERVICES_OPPORTUNITIES_CONTRACT_H_

// The contract aggregate (合同): draft → (pending approval above an admin-set amount) →
// active → expired / terminated, with renewal notices 30 and 7 days before the end. Pure
// decisions and folds.
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crm/opportunities/v1/opportunities_events.pb.h"
#include "libs/common/caller.h"

namespace crm::opportunities {

using v1::ContractState;
using v1::ContractTerms;

using ContractEvent =
    std::variant<v1::ContractDrafted, v1::ContractUpdated, v1::ContractSubmitted, v1::ContractApproved,
                 v1::ContractApprovalRejected, v1::ContractActivated, v1::ContractRenewalDue, v1::ContractExpired,
                 v1::ContractTerminated, v1::PaymentPlanSet, v1::PaymentRecorded, v1::PaymentCorrected,
                 v1::PaymentVoided, v1::InstalmentOverdue, v1::ContractCustomerChanged>;
using ContractDecision = absl::StatusOr<std::vector<ContractEvent>>;

// Renewal notices, in days before the end date.
inline constexpr int kRenewalNoticeDays[] = {30, 7};

bool CanSee(const Caller& c, const ContractState& s);

// A draft: by hand (customer_id, amount, dates ...) or from an accepted quote (quote_id set).
struct DraftContract {
  ContractTerms terms;  // number assigned by the service
  bool customer_exists = false;
  std::string customer_owner_id, customer_team_id;
};
struct UpdateContract {
  ContractTerms terms;
  std::vector<std::string> paths;  // title, amount, start_date, end_date, notes, owner_id, team_id
};
struct SubmitContract {
  int64_t approval_threshold_minor = 0;  // admin-set; amounts above it need approval
};
struct ApproveContract {
  std::string comment;
};
struct RejectContractApproval {
  std::string reason;  // required
};
struct TerminateContract {
  std::string reason;  // required
};
// The scheduler's, on `today` (a yyyy-MM-dd in the service's zone): renewal notices due,
// expiry after the end date, and instalments past their due date and not fully paid.
struct CheckContractDates {
  std::string today;
};

// Payment collection (回款). Plans and payments belong to active contracts (and to expired
// or terminated ones, whose money may still be owed); amounts are in the contract's currency.
// The plan (replaces the last one): due dates yyyy-MM-dd, positive amounts, at most 120
// instalments, their sum at most the contract amount.
struct SetPaymentPlan {
  std::vector<v1::Instalment> instalments;
};
// Money received: payment_id (assigned by the service), amount, paid_at (not in the future
// of `now`), method, reference, note. The collected sum may not exceed the contract amount.
struct RecordPayment {
  v1::PaymentRecorded payment;
  absl::Time now;
};
// A manager of the contract's team or an admin: a new amount and day paid for a recorded
// payment, with a reason.
struct CorrectPayment {
  v1::PaymentCorrected correction;
  absl::Time now;
};
struct VoidPayment {
  std::string payment_id;
  std::string reason;  // required
};

ContractDecision Decide(const ContractState* state, const Caller& caller, const DraftContract& cmd);
ContractDecision Decide(const ContractState* state, const Caller& caller, const UpdateContract& cmd);
ContractDecision Decide(const ContractState* state, const Caller& caller, const SubmitContract& cmd);
ContractDecision Decide(const ContractState* state, const Caller& caller, const ApproveContract& cmd);
ContractDecision Decide(const ContractState* state, const Caller& caller, const RejectContractApproval& cmd);
ContractDecision Decide(const ContractState* state, const Caller& caller, const TerminateContract& cmd);
ContractDecision Decide(const ContractState* state, const Caller& caller, const CheckContractDates& cmd);
ContractDecision Decide(const ContractState* state, const Caller& caller, const SetPaymentPlan& cmd);
ContractDecision Decide(const ContractState* state, const Caller& caller, const RecordPayment& cmd);
ContractDecision Decide(const ContractState* state, const Caller& caller, const CorrectPayment& cmd);
ContractDecision Decide(const ContractState* state, const Caller& caller, const VoidPayment& cmd);
// The reaction to a customers merge: nothing when it is with `survivor_id` already.
struct FollowContractCustomerMerge {
  std::string survivor_id;
};
ContractDecision Decide(const ContractState* state, const Caller& caller, const FollowContractCustomerMerge& cmd);

// What had been collected by `as_of` (payments paid then or before, not voided), by the
// state's knowledge: fold the history up to a recording time first for "as known then".
int64_t CollectedAsOf(const ContractState& s, absl::Time as_of);
// The receivable: the contract amount minus what was collected.
inline int64_t Receivable(const ContractState& s) { return s.terms().amount().amount_minor() - s.collected_minor(); }

void Apply(ContractState& state, const ContractEvent& event, int64_t version, absl::Time at, const std::string& actor);

}  // namespace crm::opportunities

#endif  // CRM_SERVICES_OPPORTUNITIES_CONTRACT_H_
