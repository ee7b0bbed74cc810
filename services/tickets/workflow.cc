#include "services/tickets/workflow.h"

#include <deque>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/common/grpc_status.h"
#include "libs/common/text.h"

namespace crm::tickets {
namespace {

bool ValidRole(const std::string& r) { return r == "rep" || r == "manager" || r == "admin" || r == "service"; }

}  // namespace

const v1::WorkflowState* FindState(const v1::Workflow& w, const std::string& id) {
  for (const auto& s : w.states()) {
    if (s.id() == id) return &s;
  }
  return nullptr;
}

absl::Status ValidateWorkflow(const v1::Workflow& w, const v1::FormSchema& form, const std::string& prefix) {
  auto field = [&](const std::string& part) { return absl::StrCat(prefix, ".", part); };
  if (w.states_size() < 2 || w.states_size() > 30) return InvalidFieldError(field("states"), "needs 2-30 states");
  std::set<std::string> ids;
  int finals = 0;
  for (int i = 0; i < w.states_size(); ++i) {
    const auto& s = w.states(i);
    const std::string at = absl::StrCat("states[", i, "]");
    if (!ValidIdentifier(s.id())) return InvalidFieldError(field(at + ".id"), "must be [a-z][a-z0-9_]{0,39}");
    if (!ids.insert(s.id()).second) return InvalidFieldError(field(at + ".id"), "appears twice");
    if (auto st = CheckText(s.name(), "name", 40, true); !st.ok()) {
      return InvalidFieldError(field(at + ".name"), "must be 1-40 printable characters on one line");
    }
    if (s.final()) ++finals;
    if (s.final() && s.pauses_sla()) return InvalidFieldError(field(at + ".pauses_sla"), "a final state stops the clock");
  }
  const v1::WorkflowState* initial = FindState(w, w.initial_state());
  if (initial == nullptr) return InvalidFieldError(field("initial_state"), "is not one of the states");
  if (initial->final()) return InvalidFieldError(field("initial_state"), "must not be final");
  if (finals == 0) return InvalidFieldError(field("states"), "needs a final state");
  if (w.transitions_size() > 200) return InvalidFieldError(field("transitions"), "at most 200");
  std::set<std::string> tids;
  std::set<std::pair<std::string, std::string>> edges;
  for (int i = 0; i < w.transitions_size(); ++i) {
    const auto& t = w.transitions(i);
    const std::string at = absl::StrCat("transitions[", i, "]");
    if (!ValidIdentifier(t.id())) return InvalidFieldError(field(at + ".id"), "must be [a-z][a-z0-9_]{0,39}");
    if (!tids.insert(t.id()).second) return InvalidFieldError(field(at + ".id"), "appears twice");
    if (auto st = CheckText(t.name(), "name", 40, true); !st.ok()) {
      return InvalidFieldError(field(at + ".name"), "must be 1-40 printable characters on one line");
    }
    if (FindState(w, t.from()) == nullptr) return InvalidFieldError(field(at + ".from"), "is not one of the states");
    if (FindState(w, t.to()) == nullptr) return InvalidFieldError(field(at + ".to"), "is not one of the states");
    if (t.from() == t.to()) return InvalidFieldError(field(at + ".to"), "must differ from from");
    for (const auto& r : t.roles()) {
      if (!ValidRole(r)) return InvalidFieldError(field(at + ".roles"), absl::StrCat("'", r, "' is not a role"));
    }
    for (const auto& k : t.required_fields()) {
      if (FindField(form, k) == nullptr) {
        return InvalidFieldError(field(at + ".required_fields"), absl::StrCat("'", k, "' is not a field of the form"));
      }
    }
    edges.insert({t.from(), t.to()});
  }
  // Every state can be reached from the initial one: a state nobody can enter is a mistake.
  std::set<std::string> seen = {w.initial_state()};
  std::deque<std::string> todo = {w.initial_state()};
  while (!todo.empty()) {
    const std::string at = todo.front();
    todo.pop_front();
    for (const auto& [from, to] : edges) {
      if (from == at && seen.insert(to).second) todo.push_back(to);
    }
  }
  for (int i = 0; i < w.states_size(); ++i) {
    if (!seen.count(w.states(i).id())) {
      return InvalidFieldError(field(absl::StrCat("states[", i, "]")),
                               absl::StrCat("'", w.states(i).id(), "' cannot be reached from ", w.initial_state()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<const v1::Transition*> CheckTransition(const v1::Workflow& w, const std::string& state,
                                                      const std::string& transition_id, const std::string& role,
                                                      const FormValues& values) {
  const v1::Transition* found = nullptr;
  std::vector<std::string> available;
  for (const auto& t : w.transitions()) {
    if (t.from() != state) continue;
    available.push_back(t.id());
    if (t.id() == transition_id) found = &t;
  }
  if (found == nullptr) {
    return InvalidFieldError("transition", absl::StrCat("'", transition_id, "' does not leave state '", state,
                                                        "'; from there: ",
                                                        available.empty() ? "none" : absl::StrJoin(available, ", ")));
  }
  if (!found->roles().empty() && role != "service" &&
      std::find(found->roles().begin(), found->roles().end(), role) == found->roles().end()) {
    return absl::PermissionDeniedError(absl::StrCat("'", found->name(), "' is for ", absl::StrJoin(found->roles(), ", ")));
  }
  std::vector<std::pair<std::string, std::string>> missing;
  for (const auto& k : found->required_fields()) {
    if (!HasValue(values, k)) missing.push_back({absl::StrCat("values.", k), absl::StrCat("is required to ", found->name())});
  }
  if (!missing.empty()) {
    absl::Status bad = InvalidFieldsError(missing);
    // A broken precondition of the ticket, not of the request's shape; keep the field list.
    absl::Status out(absl::StatusCode::kFailedPrecondition, bad.message());
    bad.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
    return out;
  }
  return found;
}

}  // namespace crm::tickets
