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
  if (auto s = CheckText(t.notes(), "contract.notes", 2000, false, TextKind::kMultiLine); !s.ok()) return s;
  if (t.amount().currency().empty()) t.mutable_amount()->set_currency("CNY");
  if (auto d = money::MinorDigits(t.amount().currency()); !d.ok()) {
    return InvalidFieldError("contract.amount.currency", d.status().message());
  }
  if (t.amount().amount_minor() <= 0) return InvalidFieldError("contract.amount.amount_minor", "must be positive");
  if (auto s = money::CheckAmount(t.amount().amount_minor(), "contract.amount.amount_minor"); !s.ok()) return s;
  if (auto s = CheckText(t.owner_id(), "contract.owner_id", 128, false); !s.ok()) return s;
  if (auto s = CheckText(t.team_id(), "contract.team_id", 128, false); !s.ok()) return s;
  auto start = ParseClientDate(t.start_date(), "contract.start_date");
  if (!start.ok()) return start.status();
  auto end = ParseClientDate(t.end_date(), "contract.end_date");
  if (!end.ok()) return end.status();
  if (*end < *start) return InvalidFieldError("contract.end_date", "is before start_date");
  return absl::OkStatus();
}

// The request's etag is the command's expected version, checked before Decide
// (OpportunityEngine::Execute).
absl::Status CheckContract(const ContractState* s, const Caller& caller) {
  if (s == nullptr || s->version() == 0) return absl::NotFoundError("contract not found");
  if (!CanSee(caller, *s)) return absl::PermissionDeniedError("the contract belongs to another owner or team");
  return absl::OkStatus();
}

absl::Status WrongStatus(const ContractState& s, absl::string_view want) {
  return WithErrorInfo(absl::FailedPreconditionError(absl::StrCat("the contract is ",
                                                                  v1::ContractStatus_Name(s.status()), "; ", want)),
                       "CONTRACT_STATUS", {{"status", v1::ContractStatus_Name(s.status())}});
}

// A manager of the contract's team, an admin, or a service: an OA system's approval comes
// through crm-integration, which names the approver in the comment.
absl::Status CheckApprover(const ContractState& s, const Caller& caller) {
  if (ManagesTeam(caller, s.terms().team_id())) return absl::OkStatus();
  return absl::PermissionDeniedError("contracts are approved by a manager of their team, an admin or an OA integration");
}

// Plans and payments belong to contracts that were signed.
bool Collecting(const ContractState& s) {
  return s.status() == v1::CONTRACT_STATUS_ACTIVE || s.status() == v1::CONTRACT_STATUS_EXPIRED ||
         s.status() == v1::CONTRACT_STATUS_TERMINATED;
}

v1::Payment* FindPayment(ContractState& s, const std::string& id) {
  for (auto& p : *s.mutable_payments()) {
    if (p.payment_id() == id) return &p;
  }
  return nullptr;
}

const v1::Payment* FindPayment(const ContractState& s, const std::string& id) {
  return FindPayment(const_cast<ContractState&>(s), id);
}

// Recomputes what was collected and what each instalment has received: the collected sum
// fills the instalments in due-date order.
void Allocate(ContractState& s) {
  int64_t collected = 0;
  for (const auto& p : s.payments()) {
    if (!p.voided()) collected += p.amount_minor();
  }
  s.set_collected_minor(collected);
  int64_t left = collected;
  for (auto& i : *s.mutable_plan()) {
    const int64_t take = std::min(left, i.amount_minor());
    i.set_paid_minor(take);
    left -= take;
  }
}

absl::Status CheckPaymentFields(const std::string& method, const std::string& reference, const std::string& note) {
  if (auto s = CheckText(method, "payment.method", 40, false); !s.ok()) return s;
  if (auto s = CheckText(reference, "payment.reference", 100, false); !s.ok()) return s;
  return CheckText(note, "payment.note", 500, false, TextKind::kMultiLine);
}

// The collected sum with `delta` added may not pass the contract amount. Every term is at most
// kMaxAmountMinor (the collected sum never passes the amount), so the sum cannot overflow.
absl::Status CheckWithinAmount(const ContractState& s, int64_t delta, absl::string_view field) {
  const int64_t amount = s.terms().amount().amount_minor();
  if (s.collected_minor() + delta > amount) {
    return InvalidFieldError(field, absl::StrCat("would bring the collected sum to ", s.collected_minor() + delta,
                                                 " above the contract amount ", amount, " (minor units)"));
  }
  return absl::OkStatus();
}

absl::Status CheckPaidAt(const google::protobuf::Timestamp& paid_at, absl::Time now, absl::string_view field) {
  if (paid_at.seconds() == 0 && paid_at.nanos() == 0) return InvalidFieldError(field, "is required");
  absl::StatusOr<absl::Time> at = ClientTime(paid_at, field);
  if (!at.ok()) return at.status();
  // Clocks disagree a little; a payment a minute "ahead" is not from the future.
  if (*at > now + absl::Minutes(1)) return InvalidFieldError(field, "is in the future");
  return absl::OkStatus();
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
  if (auto s = CheckContract(state, caller); !s.ok()) return s;
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
  if (auto s = CheckContract(state, caller); !s.ok()) return s;
  if (state->status() != v1::CONTRACT_STATUS_DRAFT) return WrongStatus(*state, "only drafts are submitted");
  v1::ContractSubmitted e;
  e.set_approval_threshold_minor(cmd.approval_threshold_minor);
  e.set_needs_approval(state->terms().amount().amount_minor() > cmd.approval_threshold_minor);
  std::vector<ContractEvent> out{e};
  if (!e.needs_approval()) out.push_back(v1::ContractActivated());
  return out;
}

ContractDecision Decide(const ContractState* state, const Caller& caller, const ApproveContract& cmd) {
  if (auto s = CheckContract(state, caller); !s.ok()) return s;
  if (state->status() != v1::CONTRACT_STATUS_PENDING_APPROVAL) return WrongStatus(*state, "only submitted contracts are approved");
  // A manager of the contract's team or an admin, and never the one who submitted it.
  if (auto s = CheckApprover(*state, caller); !s.ok()) return s;
  if (caller.user_id == state->submitted_by()) {
    return absl::PermissionDeniedError("the one who submitted a contract does not approve it");
  }
  if (auto s = CheckText(cmd.comment, "comment", 500, false, TextKind::kMultiLine); !s.ok()) return s;
  v1::ContractApproved e;
  e.set_comment(cmd.comment);
  return std::vector<ContractEvent>{std::move(e), v1::ContractActivated()};
}

ContractDecision Decide(const ContractState* state, const Caller& caller, const RejectContractApproval& cmd) {
  if (auto s = CheckContract(state, caller); !s.ok()) return s;
  if (state->status() != v1::CONTRACT_STATUS_PENDING_APPROVAL) return WrongStatus(*state, "only submitted contracts are rejected");
  if (auto s = CheckApprover(*state, caller); !s.ok()) return s;
  if (auto s = CheckText(cmd.reason, "reason", 500, true, TextKind::kMultiLine); !s.ok()) return s;
  v1::ContractApprovalRejected e;
  e.set_reason(cmd.reason);
  return std::vector<ContractEvent>{std::move(e)};
}

ContractDecision Decide(const ContractState* state, const Caller& caller, const TerminateContract& cmd) {
  if (auto s = CheckContract(state, caller); !s.ok()) return s;
  if (state->status() != v1::CONTRACT_STATUS_ACTIVE) return WrongStatus(*state, "only active contracts are terminated");
  if (auto s = CheckText(cmd.reason, "reason", 500, true, TextKind::kMultiLine); !s.ok()) return s;
  v1::ContractTerminated e;
  e.set_reason(cmd.reason);
  return std::vector<ContractEvent>{std::move(e)};
}

ContractDecision Decide(const ContractState* state, const Caller&, const CheckContractDates& cmd) {
  std::vector<ContractEvent> out;
  if (state == nullptr) return out;
  auto today = ParseClientDate(cmd.today, "today");
  if (!today.ok()) return today.status();
  if (state->status() == v1::CONTRACT_STATUS_ACTIVE || state->status() == v1::CONTRACT_STATUS_EXPIRED) {
    for (const auto& i : state->plan()) {
      auto due = ParseStoredDate(i.due_date(), "plan.due_date");  // as stored, perhaps by an older version
      if (!due.ok()) return due.status();
      if (*today <= *due || i.paid_minor() >= i.amount_minor() || i.overdue_reported()) continue;
      v1::InstalmentOverdue e;
      e.set_number(i.number());
      e.set_due_date(i.due_date());
      e.set_outstanding_minor(i.amount_minor() - i.paid_minor());
      out.push_back(std::move(e));
    }
  }
  if (state->status() != v1::CONTRACT_STATUS_ACTIVE) return out;
  auto end = ParseStoredDate(state->terms().end_date(), "contract.end_date");
  if (!end.ok()) return end.status();
  if (*today > *end) {
    out.push_back(v1::ContractExpired());
    return out;
  }
  // The nearest notice due and not given; it stands for the farther ones too (a contract
  // activated 5 days before its end gets the 7-day notice only).
  const int64_t left = *end - *today;
  for (auto it = std::rbegin(kRenewalNoticeDays); it != std::rend(kRenewalNoticeDays); ++it) {
    if (left <= *it) {
      if (Noticed(*state, *it)) break;
      v1::ContractRenewalDue e;
      e.set_days_before(*it);
      e.set_end_date(state->terms().end_date());
      out.push_back(std::move(e));
      break;
    }
  }
  return out;
}

ContractDecision Decide(const ContractState* state, const Caller& caller, const SetPaymentPlan& cmd) {
  if (auto s = CheckContract(state, caller); !s.ok()) return s;
  if (!EditsRecord(caller, state->terms().owner_id(), state->terms().team_id())) {
    return absl::PermissionDeniedError("the contract belongs to another owner or team");
  }
  if (!Collecting(*state)) return WrongStatus(*state, "payment plans belong to signed contracts");
  if (cmd.instalments.size() > 120) return InvalidFieldError("plan.instalments", "has more than 120 instalments");
  std::vector<v1::Instalment> plan = cmd.instalments;
  int64_t sum = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    const std::string f = absl::StrCat("plan.instalments[", i, "]");
    if (auto d = ParseClientDate(plan[i].due_date(), f + ".due_date"); !d.ok()) return d.status();
    if (plan[i].amount_minor() <= 0) return InvalidFieldError(f + ".amount_minor", "must be positive");
    if (auto s = money::CheckAmount(plan[i].amount_minor(), f + ".amount_minor"); !s.ok()) return s;
    if (auto s = CheckText(plan[i].note(), f + ".note", 200, false, TextKind::kMultiLine); !s.ok()) return s;
    sum += plan[i].amount_minor();  // at most 120 × kMaxAmountMinor: no overflow
    if (sum > state->terms().amount().amount_minor()) {
      return InvalidFieldError("plan.instalments", absl::StrCat("add up to more than the contract amount ",
                                                                state->terms().amount().amount_minor(), " (minor units)"));
    }
  }
  std::stable_sort(plan.begin(), plan.end(),
                   [](const v1::Instalment& a, const v1::Instalment& b) { return a.due_date() < b.due_date(); });
  v1::PaymentPlanSet e;
  for (size_t i = 0; i < plan.size(); ++i) {
    v1::Instalment* out = e.add_instalments();
    out->set_number(static_cast<int32_t>(i + 1));
    out->set_due_date(plan[i].due_date());
    out->set_amount_minor(plan[i].amount_minor());
    out->set_note(plan[i].note());
  }
  return std::vector<ContractEvent>{std::move(e)};
}

ContractDecision Decide(const ContractState* state, const Caller& caller, const RecordPayment& cmd) {
  if (auto s = CheckContract(state, caller); !s.ok()) return s;
  if (!EditsRecord(caller, state->terms().owner_id(), state->terms().team_id())) {
    return absl::PermissionDeniedError("the contract belongs to another owner or team");
  }
  if (!Collecting(*state)) return WrongStatus(*state, "payments are recorded on signed contracts");
  const v1::PaymentRecorded& p = cmd.payment;
  if (FindPayment(*state, p.payment_id()) != nullptr) return std::vector<ContractEvent>{};  // a retry
  if (p.amount_minor() <= 0) return InvalidFieldError("payment.amount_minor", "must be positive");
  if (auto s = money::CheckAmount(p.amount_minor(), "payment.amount_minor"); !s.ok()) return s;
  if (auto s = CheckWithinAmount(*state, p.amount_minor(), "payment.amount_minor"); !s.ok()) return s;
  if (auto s = CheckPaidAt(p.paid_at(), cmd.now, "payment.paid_at"); !s.ok()) return s;
  if (auto s = CheckPaymentFields(p.method(), p.reference(), p.note()); !s.ok()) return s;
  return std::vector<ContractEvent>{p};
}

ContractDecision Decide(const ContractState* state, const Caller& caller, const CorrectPayment& cmd) {
  if (auto s = CheckContract(state, caller); !s.ok()) return s;
  if (!ManagesTeam(caller, state->terms().team_id())) {
    return absl::PermissionDeniedError("payments are corrected by a manager of the contract's team or an admin");
  }
  const v1::PaymentCorrected& c = cmd.correction;
  const v1::Payment* p = FindPayment(*state, c.payment_id());
  if (p == nullptr) return absl::NotFoundError(absl::StrCat("payment ", c.payment_id(), " not found"));
  if (p->voided()) return absl::FailedPreconditionError("the payment was voided");
  if (c.amount_minor() <= 0) return InvalidFieldError("amount_minor", "must be positive");
  if (auto s = money::CheckAmount(c.amount_minor(), "amount_minor"); !s.ok()) return s;
  if (auto s = CheckWithinAmount(*state, c.amount_minor() - p->amount_minor(), "amount_minor"); !s.ok()) return s;
  if (auto s = CheckPaidAt(c.paid_at(), cmd.now, "paid_at"); !s.ok()) return s;
  if (auto s = CheckText(c.reason(), "reason", 500, true, TextKind::kMultiLine); !s.ok()) return s;
  if (c.amount_minor() == p->amount_minor() && c.paid_at().SerializeAsString() == p->paid_at().SerializeAsString()) {
    return std::vector<ContractEvent>{};
  }
  return std::vector<ContractEvent>{c};
}

ContractDecision Decide(const ContractState* state, const Caller& caller, const VoidPayment& cmd) {
  if (auto s = CheckContract(state, caller); !s.ok()) return s;
  if (!ManagesTeam(caller, state->terms().team_id())) {
    return absl::PermissionDeniedError("payments are voided by a manager of the contract's team or an admin");
  }
  const v1::Payment* p = FindPayment(*state, cmd.payment_id);
  if (p == nullptr) return absl::NotFoundError(absl::StrCat("payment ", cmd.payment_id, " not found"));
  if (p->voided()) return std::vector<ContractEvent>{};
  if (auto s = CheckText(cmd.reason, "reason", 500, true, TextKind::kMultiLine); !s.ok()) return s;
  v1::PaymentVoided e;
  e.set_payment_id(cmd.payment_id);
  e.set_reason(cmd.reason);
  return std::vector<ContractEvent>{std::move(e)};
}

ContractDecision Decide(const ContractState* state, const Caller&, const FollowContractCustomerMerge& cmd) {
  if (state == nullptr || state->version() == 0 || state->terms().customer_id() == cmd.survivor_id) {
    return std::vector<ContractEvent>{};
  }
  v1::ContractCustomerChanged e;
  e.set_from_customer_id(state->terms().customer_id());
  e.set_to_customer_id(cmd.survivor_id);
  return std::vector<ContractEvent>{std::move(e)};
}

int64_t CollectedAsOf(const ContractState& s, absl::Time as_of) {
  int64_t sum = 0;
  for (const auto& p : s.payments()) {
    if (!p.voided() && FromProto(p.paid_at()) <= as_of) sum += p.amount_minor();
  }
  return sum;
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
        } else if constexpr (std::is_same_v<T, v1::PaymentPlanSet>) {
          *s.mutable_plan() = e.instalments();
          Allocate(s);
        } else if constexpr (std::is_same_v<T, v1::PaymentRecorded>) {
          v1::Payment* p = s.add_payments();
          p->set_payment_id(e.payment_id());
          p->set_amount_minor(e.amount_minor());
          *p->mutable_paid_at() = e.paid_at();
          p->set_method(e.method());
          p->set_reference(e.reference());
          p->set_note(e.note());
          *p->mutable_recorded_at() = ts;
          p->set_recorded_by(actor);
          Allocate(s);
        } else if constexpr (std::is_same_v<T, v1::PaymentCorrected>) {
          if (v1::Payment* p = FindPayment(s, e.payment_id())) {
            p->set_amount_minor(e.amount_minor());
            *p->mutable_paid_at() = e.paid_at();
            p->set_corrections(p->corrections() + 1);
          }
          Allocate(s);
        } else if constexpr (std::is_same_v<T, v1::PaymentVoided>) {
          if (v1::Payment* p = FindPayment(s, e.payment_id())) p->set_voided(true);
          Allocate(s);
        } else if constexpr (std::is_same_v<T, v1::ContractCustomerChanged>) {
          s.mutable_terms()->set_customer_id(e.to_customer_id());
        } else if constexpr (std::is_same_v<T, v1::InstalmentOverdue>) {
          for (auto& i : *s.mutable_plan()) {
            if (i.number() == e.number()) i.set_overdue_reported(true);
          }
        }
      },
      event);
  s.set_version(version);
  *s.mutable_update_time() = ts;
}

}  // namespace crm::opportunities
