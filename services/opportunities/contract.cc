#include "services/opportunities/contract.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/grpc_status.h"
#include "libs/common/money.h"
#include "libs/common/proto_time.h"
#include "libs/common/text.h"
#include "services/opportunities/opportunity.h"

namespace crm::opportunities {
namespace {



const std::vector<std::string>& EditableTerms() {
  static const auto* f =
      new std::vector<std::string>{"title", "amount", "start_date", "end_date", "notes", "owner_id", "team_id"};
  return *f;
}

// Title, amount and dates as a contract needs them.
absl::Status ValidateTerms(ContractTerms& t) {
  if (auto s = CheckText(t.title(), "contract.title", 200, true); !s.ok()) return s;
  if (auto s = CheckText(t.notes(), "contract.notes", 2000, false); !s.ok()) return s;
  if (t.amount().currency().empty()) t.mutable_amount()->set_currency("CNY");
  if (auto d = money::MinorDigits(t.amount().currency()); !d.ok()) {
    return InvalidFieldError("contract.amount.currency", d.status().message());
  }
  if (t.amount().amount_minor() <= 0) return InvalidFieldError("contract.amount.amount_minor", "must be positive");
  auto start = ParseDate(t.start_date(), "contract.start_date");
  if (!start.ok()) return start.status();
  auto end = ParseDate(t.end_date(), "contract.end_date");
  if (!end.ok()) return end.status();
  if (*end < *start) return InvalidFieldError("contract.end_date", "is before start_date");
  return absl::OkStatus();
}

absl::Status CheckContract(const ContractState* s, const Caller& caller, int64_t expected) {
  if (s == nullptr || s->version() == 0) return absl::NotFoundError("contract not found");
  if (!CanSee(caller, *s)) return absl::PermissionDeniedError("the contract belongs to another owner or team");
  return CheckEtag(s->version(), expected, "contract");
}

absl::Status WrongStatus(const ContractState& s, absl::string_view want) {
  return WithErrorInfo(absl::FailedPreconditionError(absl::StrCat("the contract is ",
                                                                  v1::ContractStatus_Name(s.status()), "; ", want)),
                       "CONTRACT_STATUS", {{"status", v1::ContractStatus_Name(s.status())}});
}

absl::Status CheckApprover(const ContractState& s, const Caller& caller) {
  if (caller.role == "admin" || (caller.role == "manager" && caller.team == s.terms().team_id())) return absl::OkStatus();
  return absl::PermissionDeniedError("contracts are approved by a manager of their team or an admin");
}

bool Noticed(const ContractState& s, int days) {
  return std::find(s.renewal_notices().begin(), s.renewal_notices().end(), days) != s.renewal_notices().end();
}

}  // namespace

bool CanSee(const Caller& c, const ContractState& s) { return SeesRecord(c, s.terms().owner_id(), s.terms().team_id()); }

ContractDecision Decide(const ContractState* state, const Caller& caller, const DraftContract& cmd) {
  if (state != nullptr && state->version() > 0) return absl::AlreadyExistsError("contract id already exists");
  ContractTerms t = cmd.terms;
  if (t.customer_id().empty() || !cmd.customer_exists) {
    return InvalidFieldError("contract.customer", t.customer_id().empty() ? "is required"
                                                                          : absl::StrCat("customers/", t.customer_id(), " does not exist"));
  }
  if (!SeesRecord(caller, cmd.customer_owner_id, cmd.customer_team_id)) {
    return absl::PermissionDeniedError("the customer belongs to another owner or team");
  }
  if (auto s = ValidateTerms(t); !s.ok()) return s;
  if (t.owner_id().empty()) t.set_owner_id(caller.user_id);
  if (t.team_id().empty()) t.set_team_id(caller.team);
  if (!MayAssign(caller, t.owner_id(), t.team_id())) {
    return absl::PermissionDeniedError("cannot draft a contract for another owner or team");
  }
  v1::ContractDrafted e;
  *e.mutable_terms() = std::move(t);
  return std::vector<ContractEvent>{std::move(e)};
}

ContractDecision Decide(const ContractState* state, const Caller& caller, const UpdateContract& cmd) {
  if (auto s = CheckContract(state, caller, cmd.expected_version); !s.ok()) return s;
  if (state->status() != v1::CONTRACT_STATUS_DRAFT) return WrongStatus(*state, "only drafts change");
  if (cmd.paths.empty()) return InvalidFieldError("update_mask", "names no field");
  ContractTerms next = state->terms();
  v1::ContractUpdated e;
  for (const auto& path : cmd.paths) {
    if (std::find(EditableTerms().begin(), EditableTerms().end(), path) == EditableTerms().end()) {
      return InvalidFieldError("update_mask", absl::StrCat("'", path, "' is not an editable field"));
    }
    if (AssignField(cmd.terms, &next, ContractTerms::descriptor()->FindFieldByName(path))) e.add_changed_fields(path);
  }
  if (auto s = ValidateTerms(next); !s.ok()) return s;
  if (e.changed_fields().empty()) return std::vector<ContractEvent>{};
  if (!MayAssign(caller, next.owner_id(), next.team_id())) {
    return absl::PermissionDeniedError("cannot give the contract to another owner or team");
  }
  *e.mutable_terms() = std::move(next);
  return std::vector<ContractEvent>{std::move(e)};
}

ContractDecision Decide(const ContractState* state, const Caller& caller, const SubmitContract& cmd) {
  if (auto s = CheckContract(state, caller, cmd.expected_version); !s.ok()) return s;
  if (state->status() != v1::CONTRACT_STATUS_DRAFT) return WrongStatus(*state, "only drafts are submitted");
  v1::ContractSubmitted e;
  e.set_approval_threshold_minor(cmd.approval_threshold_minor);
  e.set_needs_approval(state->terms().amount().amount_minor() > cmd.approval_threshold_minor);
  std::vector<ContractEvent> out{e};
  if (!e.needs_approval()) out.push_back(v1::ContractActivated());
  return out;
}

ContractDecision Decide(const ContractState* state, const Caller& caller, const ApproveContract& cmd) {
  if (auto s = CheckContract(state, caller, cmd.expected_version); !s.ok()) return s;
  if (state->status() != v1::CONTRACT_STATUS_PENDING_APPROVAL) return WrongStatus(*state, "only submitted contracts are approved");
  // A manager of the contract's team or an admin, and never the one who submitted it.
  if (auto s = CheckApprover(*state, caller); !s.ok()) return s;
  if (caller.user_id == state->submitted_by()) {
    return absl::PermissionDeniedError("the one who submitted a contract does not approve it");
  }
  if (auto s = CheckText(cmd.comment, "comment", 500, false); !s.ok()) return s;
  v1::ContractApproved e;
  e.set_comment(cmd.comment);
  return std::vector<ContractEvent>{std::move(e), v1::ContractActivated()};
}

ContractDecision Decide(const ContractState* state, const Caller& caller, const RejectContractApproval& cmd) {
  if (auto s = CheckContract(state, caller, cmd.expected_version); !s.ok()) return s;
  if (state->status() != v1::CONTRACT_STATUS_PENDING_APPROVAL) return WrongStatus(*state, "only submitted contracts are rejected");
  if (auto s = CheckApprover(*state, caller); !s.ok()) return s;
  if (auto s = CheckText(cmd.reason, "reason", 500, true); !s.ok()) return s;
  v1::ContractApprovalRejected e;
  e.set_reason(cmd.reason);
  return std::vector<ContractEvent>{std::move(e)};
}

ContractDecision Decide(const ContractState* state, const Caller& caller, const TerminateContract& cmd) {
  if (auto s = CheckContract(state, caller, cmd.expected_version); !s.ok()) return s;
  if (state->status() != v1::CONTRACT_STATUS_ACTIVE) return WrongStatus(*state, "only active contracts are terminated");
  if (auto s = CheckText(cmd.reason, "reason", 500, true); !s.ok()) return s;
  v1::ContractTerminated e;
  e.set_reason(cmd.reason);
  return std::vector<ContractEvent>{std::move(e)};
}

ContractDecision Decide(const ContractState* state, const Caller&, const CheckContractDates& cmd) {
  if (state == nullptr || state->status() != v1::CONTRACT_STATUS_ACTIVE) return std::vector<ContractEvent>{};
  auto today = ParseDate(cmd.today, "today");
  if (!today.ok()) return today.status();
  auto end = ParseDate(state->terms().end_date(), "contract.end_date");
  if (!end.ok()) return end.status();
  if (*today > *end) return std::vector<ContractEvent>{v1::ContractExpired()};
  // The nearest notice due and not given; it stands for the farther ones too (a contract
  // activated 5 days before its end gets the 7-day notice only).
  const int64_t left = *end - *today;
  for (auto it = std::rbegin(kRenewalNoticeDays); it != std::rend(kRenewalNoticeDays); ++it) {
    if (left <= *it) {
      if (Noticed(*state, *it)) return std::vector<ContractEvent>{};
      v1::ContractRenewalDue e;
      e.set_days_before(*it);
      e.set_end_date(state->terms().end_date());
      return std::vector<ContractEvent>{std::move(e)};
    }
  }
  return std::vector<ContractEvent>{};
}

void Apply(ContractState& s, const ContractEvent& event, int64_t version, absl::Time at, const std::string& actor) {
  const google::protobuf::Timestamp ts = ToProto(at);
  std::visit(
      [&](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, v1::ContractDrafted>) {
          *s.mutable_terms() = e.terms();
          s.set_status(v1::CONTRACT_STATUS_DRAFT);
          *s.mutable_create_time() = ts;
          s.set_created_by(actor);
        } else if constexpr (std::is_same_v<T, v1::ContractUpdated>) {
          *s.mutable_terms() = e.terms();
        } else if constexpr (std::is_same_v<T, v1::ContractSubmitted>) {
          s.set_status(v1::CONTRACT_STATUS_PENDING_APPROVAL);
          s.set_submitted_by(actor);
          s.clear_reason();
        } else if constexpr (std::is_same_v<T, v1::ContractApproved>) {
          s.set_approved_by(actor);
        } else if constexpr (std::is_same_v<T, v1::ContractApprovalRejected>) {
          s.set_status(v1::CONTRACT_STATUS_DRAFT);
          s.set_reason(e.reason());
        } else if constexpr (std::is_same_v<T, v1::ContractActivated>) {
          s.set_status(v1::CONTRACT_STATUS_ACTIVE);
          *s.mutable_active_time() = ts;
        } else if constexpr (std::is_same_v<T, v1::ContractRenewalDue>) {
          for (int d : kRenewalNoticeDays) {
            if (d >= e.days_before() && !Noticed(s, d)) s.add_renewal_notices(d);
          }
        } else if constexpr (std::is_same_v<T, v1::ContractExpired>) {
          s.set_status(v1::CONTRACT_STATUS_EXPIRED);
        } else if constexpr (std::is_same_v<T, v1::ContractTerminated>) {
          s.set_status(v1::CONTRACT_STATUS_TERMINATED);
          s.set_reason(e.reason());
        }
      },
      event);
  s.set_version(version);
  *s.mutable_update_time() = ts;
}

}  // namespace crm::opportunities
