#include "services/opportunities/opportunity.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/grpc_status.h"
#include "libs/common/money.h"
#include "libs/common/proto_time.h"
#include "libs/common/text.h"

namespace crm::opportunities {
namespace {

using google::protobuf::FieldDescriptor;


bool ValidId(const std::string& id) {
  return !id.empty() && id.size() <= 40 && std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_';
  });
}

const std::vector<std::string>& EditableFields() {
  static const auto* f = new std::vector<std::string>{"name",     "amount",  "expected_close_date",
                                                      "description", "owner_id", "team_id"};
  return *f;
}

bool Has(const std::vector<std::string>& paths, absl::string_view f) {
  return paths.empty() || std::find(paths.begin(), paths.end(), f) != paths.end();
}

absl::Status CheckMoney(const v1::Money& m, const std::string& field) {
  if (m.amount_minor() < 0) return InvalidFieldError(absl::StrCat(field, ".amount_minor"), "must not be negative");
  if (auto s = money::CheckAmount(m.amount_minor(), absl::StrCat(field, ".amount_minor")); !s.ok()) return s;
  if (auto d = money::MinorDigits(m.currency()); !d.ok()) {
    return InvalidFieldError(absl::StrCat(field, ".currency"), d.status().message());
  }
  return absl::OkStatus();
}

// The editable fields of `p` named in `paths` (all when empty), checked.
absl::Status ValidateProfile(OpportunityProfile& p, const std::vector<std::string>& paths) {
  if (Has(paths, "name")) {
    if (auto s = CheckText(p.name(), "opportunity.name", 200, true); !s.ok()) return s;
  }
  if (Has(paths, "amount")) {
    if (p.amount().currency().empty()) p.mutable_amount()->set_currency("CNY");
    if (auto s = CheckMoney(p.amount(), "opportunity.amount"); !s.ok()) return s;
  }
  if (Has(paths, "expected_close_date") && !p.expected_close_date().empty()) {
    if (auto d = ParseClientDate(p.expected_close_date(), "opportunity.expected_close_date"); !d.ok()) return d.status();
  }
  if (Has(paths, "description")) {
    if (auto s = CheckText(p.description(), "opportunity.description", 2000, false, TextKind::kMultiLine); !s.ok()) return s;
  }
  if (Has(paths, "owner_id")) {
    if (auto s = CheckText(p.owner_id(), "opportunity.owner_id", 128, false); !s.ok()) return s;
  }
  if (Has(paths, "team_id")) {
    if (auto s = CheckText(p.team_id(), "opportunity.team_id", 128, false); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status CheckVisible(const OpportunityState* s, const Caller& caller) {
  if (s == nullptr || s->version() == 0) return absl::NotFoundError("opportunity not found");
  if (!CanSee(caller, *s)) return absl::PermissionDeniedError("the opportunity belongs to another owner or team");
  return absl::OkStatus();
}

// The request's etag is the command's expected version, checked before Decide
// (OpportunityEngine::Execute).
absl::Status CheckEditable(const OpportunityState* s, const Caller& caller) {
  if (auto st = CheckVisible(s, caller); !st.ok()) return st;
  if (s->deleted()) return absl::FailedPreconditionError("the opportunity is in the recycle bin");
  return absl::OkStatus();
}

absl::Status CheckOpen(const OpportunityState& s) {
  if (s.status() == v1::OPPORTUNITY_STATUS_OPEN) return absl::OkStatus();
  return WithErrorInfo(absl::FailedPreconditionError(absl::StrCat(
                           "the opportunity is ", s.status() == v1::OPPORTUNITY_STATUS_WON ? "won" : "lost",
                           "; reopen it first")),
                       "CLOSED", {});
}

// The first stage of `p` of `kind`; null when none.
const v1::Stage* FirstOfKind(const Pipeline& p, v1::StageKind kind) {
  for (const auto& s : p.stages()) {
    if (s.kind() == kind) return &s;
  }
  return nullptr;
}

// A stage of `p` named by the caller that must be of `kind`.
absl::StatusOr<const v1::Stage*> StageOfKind(const Pipeline& p, const std::string& id, v1::StageKind kind,
                                             const std::string& field, absl::string_view hint) {
  const v1::Stage* s = id.empty() ? FirstOfKind(p, kind) : FindStage(p, id);
  if (s == nullptr) return InvalidFieldError(field, absl::StrCat("'", id, "' is not a stage of pipeline ", p.id()));
  if (s->kind() != kind) return InvalidFieldError(field, absl::StrCat("'", id, "' ", hint));
  return s;
}

void CloseVisit(OpportunityState& s, absl::Time at) {
  if (!s.visits().empty() && !s.visits().rbegin()->has_left_at()) {
    *s.mutable_visits()->rbegin()->mutable_left_at() = ToProto(at);
  }
}

void Enter(OpportunityState& s, const std::string& stage, absl::Time at) {
  CloseVisit(s, at);
  v1::StageVisit* v = s.add_visits();
  v->set_stage_id(stage);
  *v->mutable_entered_at() = ToProto(at);
  s.set_stage_id(stage);
}

}  // namespace

bool AssignField(const google::protobuf::Message& from, google::protobuf::Message* to, const FieldDescriptor* fd) {
  const auto* r = from.GetReflection();
  if (fd->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    const google::protobuf::Message& want = r->GetMessage(from, fd);
    if (r->GetMessage(*to, fd).SerializeAsString() == want.SerializeAsString()) return false;
    r->MutableMessage(to, fd)->CopyFrom(want);
    return true;
  }
  const std::string want = r->GetString(from, fd);
  if (r->GetString(*to, fd) == want) return false;
  r->SetString(to, fd, want);
  return true;
}

absl::Status ValidatePipeline(const Pipeline& p, const std::string& field) {
  if (!ValidId(p.id())) return InvalidFieldError(absl::StrCat(field, ".id"), "must be [a-z0-9_]{1,40}");
  if (auto s = CheckText(p.name(), absl::StrCat(field, ".name"), 40, true); !s.ok()) return s;
  std::set<std::string> ids;
  int open = 0, won = 0, lost = 0;
  for (int i = 0; i < p.stages_size(); ++i) {
    const v1::Stage& s = p.stages(i);
    const std::string f = absl::StrCat(field, ".stages[", i, "]");
    if (!ValidId(s.id())) return InvalidFieldError(absl::StrCat(f, ".id"), "must be [a-z0-9_]{1,40}");
    if (!ids.insert(s.id()).second) return InvalidFieldError(absl::StrCat(f, ".id"), absl::StrCat("'", s.id(), "' appears twice"));
    if (auto st = CheckText(s.name(), absl::StrCat(f, ".name"), 40, true); !st.ok()) return st;
    if (s.win_probability() < 0 || s.win_probability() > 100) {
      return InvalidFieldError(absl::StrCat(f, ".win_probability"), "must be 0-100");
    }
    if (s.timeout_days() < 0 || s.timeout_days() > 3650) {
      return InvalidFieldError(absl::StrCat(f, ".timeout_days"), "must be 0-3650");
    }
    switch (s.kind()) {
      case v1::STAGE_KIND_OPEN: ++open; break;
      case v1::STAGE_KIND_WON:
        ++won;
        if (s.win_probability() != 100) return InvalidFieldError(absl::StrCat(f, ".win_probability"), "is 100 for the won stage");
        break;
      case v1::STAGE_KIND_LOST:
        ++lost;
        if (s.win_probability() != 0) return InvalidFieldError(absl::StrCat(f, ".win_probability"), "is 0 for a lost stage");
        break;
      default: return InvalidFieldError(absl::StrCat(f, ".kind"), "must be OPEN, WON or LOST");
    }
  }
  if (open == 0 || won != 1 || lost == 0) {
    return InvalidFieldError(absl::StrCat(field, ".stages"), "needs open stages, exactly one won stage and a lost stage");
  }
  return absl::OkStatus();
}

const v1::Stage* FindStage(const Pipeline& p, const std::string& id) {
  for (const auto& s : p.stages()) {
    if (s.id() == id) return &s;
  }
  return nullptr;
}

int StageIndex(const Pipeline& p, const std::string& id) {
  for (int i = 0; i < p.stages_size(); ++i) {
    if (p.stages(i).id() == id) return i;
  }
  return -1;
}

bool CanSee(const Caller& c, const OpportunityState& s) {
  return SeesRecord(c, s.profile().owner_id(), s.profile().team_id());
}

Decision Decide(const OpportunityState* state, const Caller& caller, const CreateOpportunity& cmd) {
  if (state != nullptr && state->version() > 0) return absl::AlreadyExistsError("opportunity id already exists");
  OpportunityProfile p = cmd.profile;
  if (p.customer_id().empty()) return InvalidFieldError("opportunity.customer", "is required");
  if (!cmd.customer.exists) {
    return InvalidFieldError("opportunity.customer", absl::StrCat("customers/", p.customer_id(), " does not exist"));
  }
  if (!cmd.customer.merged_into.empty()) {
    return WithErrorInfo(absl::FailedPreconditionError(absl::StrCat("customers/", p.customer_id(),
                                                                    " was merged into customers/", cmd.customer.merged_into)),
                         "MERGED", {{"survivor", absl::StrCat("customers/", cmd.customer.merged_into)}});
  }
  if (cmd.customer.deleted) return absl::FailedPreconditionError(absl::StrCat("customers/", p.customer_id(), " is in the recycle bin"));
  if (!SeesRecord(caller, cmd.customer.owner_id, cmd.customer.team_id)) {
    return absl::PermissionDeniedError("the customer belongs to another owner or team");
  }
  if (auto s = ValidateProfile(p, {}); !s.ok()) return s;
  if (p.owner_id().empty()) p.set_owner_id(caller.user_id);
  if (p.team_id().empty()) p.set_team_id(caller.team);
  if (!MayAssign(caller, p.owner_id(), p.team_id())) {
    return absl::PermissionDeniedError("cannot create an opportunity for another owner or team");
  }
  auto stage = StageOfKind(cmd.pipeline, cmd.stage_id, v1::STAGE_KIND_OPEN, "stage_id",
                           "is not an open stage (create it open, then win or lose it)");
  if (!stage.ok()) return stage.status();
  v1::OpportunityCreated e;
  *e.mutable_profile() = std::move(p);
  e.set_pipeline_id(cmd.pipeline.id());
  e.set_stage_id((*stage)->id());
  return std::vector<OpportunityEvent>{std::move(e)};
}

Decision Decide(const OpportunityState* state, const Caller& caller, const UpdateOpportunity& cmd) {
  if (auto s = CheckEditable(state, caller); !s.ok()) return s;
  if (cmd.paths.empty()) return InvalidFieldError("update_mask", "names no field");
  for (const auto& path : cmd.paths) {
    if (std::find(EditableFields().begin(), EditableFields().end(), path) == EditableFields().end()) {
      return InvalidFieldError("update_mask", absl::StrCat("'", path, "' is not an editable field"));
    }
  }
  OpportunityProfile p = cmd.profile;
  if (auto s = ValidateProfile(p, cmd.paths); !s.ok()) return s;
  OpportunityProfile next = state->profile();
  v1::OpportunityUpdated e;
  for (const auto& path : cmd.paths) {
    if (AssignField(p, &next, OpportunityProfile::descriptor()->FindFieldByName(path))) e.add_changed_fields(path);
  }
  if (e.changed_fields().empty()) return std::vector<OpportunityEvent>{};
  if (!MayAssign(caller, next.owner_id(), next.team_id())) {
    return absl::PermissionDeniedError("cannot give the opportunity to another owner or team");
  }
  *e.mutable_profile() = std::move(next);
  return std::vector<OpportunityEvent>{std::move(e)};
}

Decision Decide(const OpportunityState* state, const Caller& caller, const MoveStage& cmd) {
  if (auto s = CheckEditable(state, caller); !s.ok()) return s;
  if (auto s = CheckOpen(*state); !s.ok()) return s;
  if (cmd.stage_id.empty()) return InvalidFieldError("stage_id", "is required");
  auto stage = StageOfKind(cmd.pipeline, cmd.stage_id, v1::STAGE_KIND_OPEN, "stage_id",
                           "closes the opportunity: win or lose it instead");
  if (!stage.ok()) return stage.status();
  if (auto s = CheckText(cmd.note, "note", 500, false, TextKind::kMultiLine); !s.ok()) return s;
  if (cmd.stage_id == state->stage_id()) return std::vector<OpportunityEvent>{};
  v1::OpportunityStageChanged e;
  e.set_from_stage_id(state->stage_id());
  e.set_to_stage_id(cmd.stage_id);
  e.set_backwards(StageIndex(cmd.pipeline, cmd.stage_id) < StageIndex(cmd.pipeline, state->stage_id()));
  e.set_note(cmd.note);
  return std::vector<OpportunityEvent>{std::move(e)};
}

Decision Decide(const OpportunityState* state, const Caller& caller, const Win& cmd) {
  if (auto s = CheckEditable(state, caller); !s.ok()) return s;
  if (auto s = CheckOpen(*state); !s.ok()) return s;
  if (auto s = CheckText(cmd.reason, "reason", 500, false, TextKind::kMultiLine); !s.ok()) return s;
  v1::OpportunityWon e;
  e.set_stage_id(FirstOfKind(cmd.pipeline, v1::STAGE_KIND_WON)->id());
  *e.mutable_amount() = cmd.amount.amount_minor() == 0 && cmd.amount.currency().empty() ? state->profile().amount()
                                                                                       : cmd.amount;
  if (e.amount().currency().empty()) e.mutable_amount()->set_currency("CNY");
  if (auto s = CheckMoney(e.amount(), "amount"); !s.ok()) return s;
  e.set_reason(cmd.reason);
  return std::vector<OpportunityEvent>{std::move(e)};
}

Decision Decide(const OpportunityState* state, const Caller& caller, const Lose& cmd) {
  if (auto s = CheckEditable(state, caller); !s.ok()) return s;
  if (auto s = CheckOpen(*state); !s.ok()) return s;
  if (auto s = CheckText(cmd.reason, "reason", 500, true, TextKind::kMultiLine); !s.ok()) return s;
  auto stage = StageOfKind(cmd.pipeline, cmd.stage_id, v1::STAGE_KIND_LOST, "stage_id", "is not a lost stage");
  if (!stage.ok()) return stage.status();
  v1::OpportunityLost e;
  e.set_stage_id((*stage)->id());
  e.set_reason(cmd.reason);
  return std::vector<OpportunityEvent>{std::move(e)};
}

Decision Decide(const OpportunityState* state, const Caller& caller, const Reopen& cmd) {
  if (auto s = CheckEditable(state, caller); !s.ok()) return s;
  if (state->status() == v1::OPPORTUNITY_STATUS_OPEN) {
    return absl::FailedPreconditionError("the opportunity is open already");
  }
  if (auto s = CheckText(cmd.reason, "reason", 500, false, TextKind::kMultiLine); !s.ok()) return s;
  std::string target = cmd.stage_id;
  if (target.empty()) {  // back where it was before it closed
    for (auto it = state->visits().rbegin(); it != state->visits().rend() && target.empty(); ++it) {
      const v1::Stage* s = FindStage(cmd.pipeline, it->stage_id());
      if (s != nullptr && s->kind() == v1::STAGE_KIND_OPEN) target = s->id();
    }
  }
  auto stage = StageOfKind(cmd.pipeline, target, v1::STAGE_KIND_OPEN, "stage_id", "is not an open stage");
  if (!stage.ok()) return stage.status();
  v1::OpportunityReopened e;
  e.set_stage_id((*stage)->id());
  e.set_reason(cmd.reason);
  return std::vector<OpportunityEvent>{std::move(e)};
}

Decision Decide(const OpportunityState* state, const Caller& caller, const DeleteOpportunity& cmd) {
  if (auto s = CheckEditable(state, caller); !s.ok()) return s;
  if (auto s = CheckText(cmd.reason, "reason", 500, false, TextKind::kMultiLine); !s.ok()) return s;
  v1::OpportunityDeleted e;
  e.set_reason(cmd.reason);
  return std::vector<OpportunityEvent>{std::move(e)};
}

Decision Decide(const OpportunityState* state, const Caller& caller, const UndeleteOpportunity& cmd) {
  if (auto s = CheckVisible(state, caller); !s.ok()) return s;
  if (!state->deleted()) return absl::FailedPreconditionError("the opportunity is not in the recycle bin");
  return std::vector<OpportunityEvent>{v1::OpportunityUndeleted()};
}

absl::Time IdleSince(const OpportunityState& s) {
  absl::Time since = FromProto(s.last_activity_time());
  if (!s.visits().empty()) since = std::max(since, FromProto(s.visits().rbegin()->entered_at()));
  return since;
}

Decision Decide(const OpportunityState* state, const Caller&, const CheckStageTimeout& cmd) {
  if (state == nullptr || state->deleted() || state->status() != v1::OPPORTUNITY_STATUS_OPEN || state->visits().empty()) {
    return std::vector<OpportunityEvent>{};
  }
  const v1::StageVisit& visit = *state->visits().rbegin();
  const v1::Stage* stage = FindStage(cmd.pipeline, state->stage_id());
  if (visit.timed_out() || stage == nullptr || stage->timeout_days() <= 0) return std::vector<OpportunityEvent>{};
  const absl::Time idle_since = IdleSince(*state);
  if (cmd.now - idle_since < absl::Hours(24) * stage->timeout_days()) return std::vector<OpportunityEvent>{};
  v1::OpportunityStageTimedOut e;
  e.set_stage_id(stage->id());
  e.set_timeout_days(stage->timeout_days());
  *e.mutable_idle_since() = ToProto(idle_since);
  return std::vector<OpportunityEvent>{std::move(e)};
}

Decision Decide(const OpportunityState* state, const Caller&, const FollowCustomerMerge& cmd) {
  if (state == nullptr || state->version() == 0 || state->profile().customer_id() == cmd.survivor_id) {
    return std::vector<OpportunityEvent>{};
  }
  v1::OpportunityCustomerChanged e;
  e.set_from_customer_id(state->profile().customer_id());
  e.set_to_customer_id(cmd.survivor_id);
  return std::vector<OpportunityEvent>{std::move(e)};
}

Decision Decide(const OpportunityState* state, const Caller&, const FlagCustomerDeleted& cmd) {
  if (state == nullptr || state->version() == 0 || state->customer_deleted() == cmd.deleted) {
    return std::vector<OpportunityEvent>{};
  }
  // Open opportunities are flagged (someone must decide what becomes of them); won and lost
  // ones are history. A flag is always cleared.
  if (cmd.deleted && state->status() != v1::OPPORTUNITY_STATUS_OPEN) return std::vector<OpportunityEvent>{};
  v1::OpportunityCustomerDeletedFlag e;
  e.set_customer_deleted(cmd.deleted);
  return std::vector<OpportunityEvent>{std::move(e)};
}

void Apply(OpportunityState& s, const OpportunityEvent& event, int64_t version, absl::Time at, const std::string& actor) {
  const google::protobuf::Timestamp ts = ToProto(at);
  std::visit(
      [&](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, v1::OpportunityCreated>) {
          *s.mutable_profile() = e.profile();
          s.set_pipeline_id(e.pipeline_id());
          s.set_status(v1::OPPORTUNITY_STATUS_OPEN);
          Enter(s, e.stage_id(), at);
          *s.mutable_create_time() = ts;
          s.set_created_by(actor);
          *s.mutable_last_activity_time() = ts;
        } else if constexpr (std::is_same_v<T, v1::OpportunityUpdated>) {
          for (const auto& f : e.changed_fields()) {
            const FieldDescriptor* fd = OpportunityProfile::descriptor()->FindFieldByName(f);
            if (fd != nullptr) AssignField(e.profile(), s.mutable_profile(), fd);
          }
          *s.mutable_last_activity_time() = ts;
        } else if constexpr (std::is_same_v<T, v1::OpportunityStageChanged>) {
          Enter(s, e.to_stage_id(), at);
          *s.mutable_last_activity_time() = ts;
        } else if constexpr (std::is_same_v<T, v1::OpportunityWon> || std::is_same_v<T, v1::OpportunityLost>) {
          Enter(s, e.stage_id(), at);
          CloseVisit(s, at);  // a closed opportunity is in no stage's clock
          const bool won = std::is_same_v<T, v1::OpportunityWon>;
          s.set_status(won ? v1::OPPORTUNITY_STATUS_WON : v1::OPPORTUNITY_STATUS_LOST);
          s.set_won_lost_reason(e.reason());
          if constexpr (std::is_same_v<T, v1::OpportunityWon>) *s.mutable_won_amount() = e.amount();
          *s.mutable_close_time() = ts;
          *s.mutable_last_activity_time() = ts;
        } else if constexpr (std::is_same_v<T, v1::OpportunityReopened>) {
          Enter(s, e.stage_id(), at);
          s.set_status(v1::OPPORTUNITY_STATUS_OPEN);
          s.clear_won_lost_reason();
          s.clear_won_amount();
          s.clear_close_time();
          *s.mutable_last_activity_time() = ts;
        } else if constexpr (std::is_same_v<T, v1::OpportunityStageTimedOut>) {
          if (!s.visits().empty()) s.mutable_visits()->rbegin()->set_timed_out(true);
        } else if constexpr (std::is_same_v<T, v1::OpportunityCustomerChanged>) {
          s.mutable_profile()->set_customer_id(e.to_customer_id());
        } else if constexpr (std::is_same_v<T, v1::OpportunityCustomerDeletedFlag>) {
          s.set_customer_deleted(e.customer_deleted());
        } else if constexpr (std::is_same_v<T, v1::OpportunityDeleted>) {
          s.set_deleted(true);
          *s.mutable_delete_time() = ts;
        } else if constexpr (std::is_same_v<T, v1::OpportunityUndeleted>) {
          s.set_deleted(false);
          s.clear_delete_time();
        }
      },
      event);
  s.set_version(version);
  *s.mutable_update_time() = ts;
}

std::vector<std::pair<std::string, absl::Duration>> TimeInStages(const OpportunityState& s, absl::Time now) {
  std::vector<std::pair<std::string, absl::Duration>> out;
  for (const auto& v : s.visits()) {
    const absl::Time end = v.has_left_at() ? FromProto(v.left_at()) : now;
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& p) { return p.first == v.stage_id(); });
    if (it == out.end()) it = out.insert(out.end(), {v.stage_id(), absl::ZeroDuration()});
    it->second += end - FromProto(v.entered_at());
  }
  return out;
}

}  // namespace crm::opportunities
