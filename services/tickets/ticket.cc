#include "services/tickets/ticket.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "libs/common/grpc_status.h"
#include "libs/common/proto_time.h"
#include "libs/common/text.h"
#include "services/tickets/workflow.h"

namespace crm::tickets {
namespace {

// The ticket as the shared visibility rule sees it: its assignee owns it, its creator keeps it.
RecordRef RefOf(const TicketState& s) {
  return RecordRef{.owner = s.assignee_id(), .team = s.team_id(), .creator = s.created_by()};
}

// Edits: admins and services; managers of the ticket's team; its assignee and its creator.
bool CanEdit(const Caller& c, const TicketState& s) { return EditsRecord(c, RefOf(s)); }

// The request's etag is the command's expected version, checked before Decide (TicketEngine).
absl::Status CheckEditable(const TicketState* s, const Caller& c) {
  if (s == nullptr || s->version() == 0) return absl::NotFoundError("ticket not found");
  if (!CanSee(c, *s)) return absl::PermissionDeniedError("the ticket belongs to another assignee or team");
  if (!CanEdit(c, *s)) {
    return absl::PermissionDeniedError("only the assignee, the creator, a manager of the team or an admin may change it");
  }
  return absl::OkStatus();
}

FormValues ValuesOf(const TicketState& s) { return FormValues(s.values().begin(), s.values().end()); }

}  // namespace

bool CanSee(const Caller& c, const TicketState& s) { return SeesRecord(c, RefOf(s)); }

TicketDecision Decide(const TicketState* state, const Caller& caller, const CreateTicket& cmd) {
  if (state != nullptr && state->version() > 0) return absl::AlreadyExistsError("ticket id already exists");
  if (auto s = CheckText(cmd.title, "ticket.title", 200, true); !s.ok()) return s;
  if (auto s = CheckText(cmd.assignee_id, "ticket.assignee_id", 64, false); !s.ok()) return s;
  if (auto s = CheckText(cmd.team_id, "ticket.team_id", 128, false); !s.ok()) return s;
  if (!v1::TicketPriority_IsValid(cmd.priority)) return InvalidFieldError("ticket.priority", "is not a TicketPriority");
  if (auto s = ValidateValues(cmd.type.definition().form(), cmd.values, "ticket.values"); !s.ok()) return s;
  const std::string team = cmd.team_id.empty() ? caller.team : cmd.team_id;
  if (!MayAssign(caller, cmd.assignee_id.empty() ? caller.user_id : cmd.assignee_id, team)) {
    return absl::PermissionDeniedError("a rep creates tickets for self in their team, a manager within their team");
  }
  v1::TicketCreated e;
  e.set_type_id(cmd.type_id);
  e.set_type_version(cmd.type.number());
  e.set_title(cmd.title);
  e.set_customer_id(cmd.customer_id);
  for (const auto& [k, v] : cmd.values) {
    if (HasValue(cmd.values, k)) (*e.mutable_values())[k] = v;
  }
  e.set_priority(cmd.priority == v1::TICKET_PRIORITY_UNSPECIFIED ? v1::TICKET_PRIORITY_NORMAL : cmd.priority);
  e.set_state(cmd.type.definition().workflow().initial_state());
  const v1::WorkflowState* initial = FindState(cmd.type.definition().workflow(), e.state());
  e.set_pauses_sla(initial != nullptr && initial->pauses_sla());
  e.set_assignee_id(cmd.assignee_id);
  e.set_team_id(team);
  return std::vector<TicketEvent>{std::move(e)};
}

TicketDecision Decide(const TicketState* state, const Caller& caller, const UpdateValues& cmd) {
  if (auto s = CheckEditable(state, caller); !s.ok()) return s;
  if (state->closed()) return absl::FailedPreconditionError("the ticket is closed; reopen it to change its values");
  if (cmd.values.empty()) return InvalidFieldError("values", "names no field");
  if (auto s = ValidateValues(cmd.type.definition().form(), cmd.values, "values", /*require=*/false); !s.ok()) {
    return s;
  }
  FormValues next = ValuesOf(*state);
  v1::TicketValuesChanged e;
  for (const auto& [k, v] : cmd.values) {
    const bool set = HasValue(cmd.values, k);
    auto cur = next.find(k);
    const bool had = cur != next.end();
    if (set && had && cur->second.SerializeAsString() == v.SerializeAsString()) continue;
    if (!set && !had) continue;
    e.add_changed_fields(k);
    if (set) {
      (*e.mutable_values())[k] = v;
      next[k] = v;
    } else {
      next.erase(k);
    }
  }
  if (e.changed_fields().empty()) return std::vector<TicketEvent>{};
  // Clearing a required field is refused like leaving it out on create.
  if (auto s = ValidateValues(cmd.type.definition().form(), next, "values"); !s.ok()) return s;
  return std::vector<TicketEvent>{std::move(e)};
}

TicketDecision Decide(const TicketState* state, const Caller& caller, const TakeTransition& cmd) {
  if (auto s = CheckEditable(state, caller); !s.ok()) return s;
  if (auto s = CheckText(cmd.comment, "comment", 2000, false, TextKind::kMultiLine); !s.ok()) return s;
  const v1::Workflow& w = cmd.type.definition().workflow();
  auto t = CheckTransition(w, state->state(), cmd.transition_id, caller.role, ValuesOf(*state));
  if (!t.ok()) return t.status();
  v1::TicketTransitioned e;
  e.set_transition_id((*t)->id());
  e.set_from_state(state->state());
  e.set_to_state((*t)->to());
  e.set_comment(cmd.comment);
  const v1::WorkflowState* to = FindState(w, (*t)->to());
  e.set_to_final(to != nullptr && to->final());
  e.set_pauses_sla(to != nullptr && to->pauses_sla());
  return std::vector<TicketEvent>{std::move(e)};
}

TicketDecision Decide(const TicketState* state, const Caller& caller, const AssignTicket& cmd) {
  if (auto s = CheckEditable(state, caller); !s.ok()) return s;
  if (auto s = CheckText(cmd.assignee_id, "assignee_id", 64, false); !s.ok()) return s;
  if (auto s = CheckText(cmd.team_id, "team_id", 128, false); !s.ok()) return s;
  const std::string team = cmd.team_id.empty() ? state->team_id() : cmd.team_id;
  if (cmd.assignee_id == state->assignee_id() && team == state->team_id()) return std::vector<TicketEvent>{};
  if (!MayAssign(caller, cmd.assignee_id.empty() ? caller.user_id : cmd.assignee_id, team)) {
    return absl::PermissionDeniedError("cannot give the ticket to that assignee or team");
  }
  v1::TicketAssigned e;
  e.set_assignee_id(cmd.assignee_id);
  e.set_team_id(team);
  e.set_previous_assignee_id(state->assignee_id());
  return std::vector<TicketEvent>{std::move(e)};
}

TicketDecision Decide(const TicketState* state, const Caller& caller, const CommentTicket& cmd) {
  if (state == nullptr || state->version() == 0) return absl::NotFoundError("ticket not found");
  if (!CanSee(caller, *state)) return absl::PermissionDeniedError("the ticket belongs to another assignee or team");
  if (auto s = CheckText(cmd.body, "body", 4000, true, TextKind::kMultiLine); !s.ok()) return s;
  for (const auto& c : state->comments()) {
    if (c.comment_id() == cmd.comment_id) return std::vector<TicketEvent>{};  // a retry
  }
  v1::TicketCommented e;
  e.set_comment_id(cmd.comment_id);
  e.set_body(cmd.body);
  e.set_internal(cmd.internal);
  return std::vector<TicketEvent>{std::move(e)};
}

TicketDecision Decide(const TicketState* state, const Caller& caller, const MigrateTicket& cmd) {
  if (state == nullptr || state->version() == 0) return absl::NotFoundError("ticket not found");
  if (state->type_version() != cmd.from.number()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the ticket follows version ", state->type_version(), ", not ", cmd.from.number()));
  }
  if (state->closed()) return absl::FailedPreconditionError("the ticket is closed; only open tickets migrate");
  if (cmd.to.number() == cmd.from.number()) return std::vector<TicketEvent>{};
  const v1::FormSchema& form = cmd.to.definition().form();
  FormValues next;
  for (const auto& [key, value] : state->values()) {
    auto m = cmd.field_mapping.find(key);
    const std::string to_key = m != cmd.field_mapping.end() ? m->second : key;
    if (to_key.empty()) continue;
    if (FindField(form, to_key) == nullptr) {
      if (m != cmd.field_mapping.end()) {
        return InvalidFieldError(absl::StrCat("field_mapping.", key), absl::StrCat("names ", to_key, ", which the new form does not have"));
      }
      continue;  // not in the new form, not mapped: dropped
    }
    next[to_key] = value;
  }
  for (const auto& [key, value] : cmd.defaults) {
    if (!HasValue(next, key) && HasValue(cmd.defaults, key)) next[key] = value;
  }
  if (auto s = ValidateValues(form, next, "values"); !s.ok()) return s;
  auto sm = cmd.state_mapping.find(state->state());
  const std::string to_state = sm != cmd.state_mapping.end() ? sm->second : state->state();
  const v1::WorkflowState* st = FindState(cmd.to.definition().workflow(), to_state);
  if (st == nullptr) {
    return InvalidFieldError(absl::StrCat("state_mapping.", state->state()),
                             absl::StrCat("state ", to_state, " is not in version ", cmd.to.number(), "'s workflow"));
  }
  if (st->final()) {
    return InvalidFieldError(absl::StrCat("state_mapping.", state->state()),
                             absl::StrCat("maps an open ticket to final state ", to_state));
  }
  v1::TicketMigrated e;
  e.set_from_version(cmd.from.number());
  e.set_to_version(cmd.to.number());
  for (auto& [k, v] : next) (*e.mutable_values())[k] = v;
  e.set_from_state(state->state());
  e.set_to_state(to_state);
  e.set_pauses_sla(st->pauses_sla());
  return std::vector<TicketEvent>{std::move(e)};
}

namespace {
bool Has(const google::protobuf::RepeatedField<int>& kinds, v1::SlaClockKind k) {
  return std::find(kinds.begin(), kinds.end(), k) != kinds.end();
}
}  // namespace

TicketDecision Decide(const TicketState* state, const Caller& caller, const RecordSla& cmd) {
  if (state == nullptr || state->version() == 0) return absl::NotFoundError("ticket not found");
  if (caller.role != "service") return absl::PermissionDeniedError("only the scheduler records SLA notices");
  std::vector<TicketEvent> out;
  for (const auto& n : cmd.notices) {
    if (const auto* w = std::get_if<v1::SlaWarning>(&n)) {
      if (!Has(state->warned(), w->clock()) && !Has(state->breached(), w->clock())) out.push_back(*w);
    } else if (const auto* b = std::get_if<v1::SlaBreached>(&n)) {
      if (!Has(state->breached(), b->clock())) out.push_back(*b);
    }
  }
  return out;
}

namespace {
void Step(TicketState& s, absl::Time at, const std::string& state, bool pauses, bool final) {
  auto* step = s.add_timeline();
  *step->mutable_at() = ToProto(at);
  step->set_state(state);
  step->set_pauses_sla(pauses);
  step->set_final(final);
}
}  // namespace

void Apply(TicketState& s, const TicketEvent& event, int64_t version, absl::Time at, const std::string& actor) {
  s.set_version(version);
  *s.mutable_update_time() = ToProto(at);
  if (const auto* e = std::get_if<v1::TicketCreated>(&event)) {
    s.set_type_id(e->type_id());
    s.set_type_version(e->type_version());
    s.set_title(e->title());
    s.set_customer_id(e->customer_id());
    *s.mutable_values() = e->values();
    s.set_priority(e->priority());
    s.set_state(e->state());
    s.set_assignee_id(e->assignee_id());
    s.set_team_id(e->team_id());
    s.set_created_by(actor);
    *s.mutable_create_time() = ToProto(at);
    Step(s, at, e->state(), e->pauses_sla(), false);
  } else if (const auto* e = std::get_if<v1::TicketValuesChanged>(&event)) {
    for (const auto& k : e->changed_fields()) {
      auto it = e->values().find(k);
      if (it == e->values().end()) {
        s.mutable_values()->erase(k);
      } else {
        (*s.mutable_values())[k] = it->second;
      }
    }
  } else if (const auto* e = std::get_if<v1::TicketTransitioned>(&event)) {
    s.set_state(e->to_state());
    s.set_closed(e->to_final());
    Step(s, at, e->to_state(), e->pauses_sla(), e->to_final());
  } else if (const auto* e = std::get_if<v1::TicketAssigned>(&event)) {
    s.set_assignee_id(e->assignee_id());
    s.set_team_id(e->team_id());
  } else if (const auto* e = std::get_if<v1::TicketCommented>(&event)) {
    auto* c = s.add_comments();
    c->set_comment_id(e->comment_id());
    c->set_body(e->body());
    c->set_internal(e->internal());
    c->set_author_id(actor);
    *c->mutable_create_time() = ToProto(at);
    if (!e->internal() && !s.has_first_response_time()) *s.mutable_first_response_time() = ToProto(at);
  } else if (const auto* e = std::get_if<v1::TicketMigrated>(&event)) {
    s.set_type_version(e->to_version());
    *s.mutable_values() = e->values();
    if (e->to_state() != s.state() || e->pauses_sla() != (s.timeline_size() > 0 && s.timeline().rbegin()->pauses_sla())) {
      Step(s, at, e->to_state(), e->pauses_sla(), false);
    }
    s.set_state(e->to_state());
  } else if (const auto* e = std::get_if<v1::SlaWarning>(&event)) {
    s.add_warned(e->clock());
  } else if (const auto* e = std::get_if<v1::SlaBreached>(&event)) {
    s.add_breached(e->clock());
  }
}

}  // namespace crm::tickets
