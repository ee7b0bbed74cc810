#include "services/tasks/task.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/field_mask.pb.h"
#include "google/protobuf/util/field_mask_util.h"
#include "libs/common/grpc_status.h"
#include "libs/common/proto_time.h"
#include "libs/common/text.h"
#include "libs/topics/contracts.h"

namespace crm::tasks {
namespace {

constexpr int kMaxOffsets = 5;
constexpr int kMaxOffsetMinutes = 30 * 24 * 60;

bool Has(const std::vector<std::string>& paths, absl::string_view f) {
  return paths.empty() || std::find(paths.begin(), paths.end(), f) != paths.end();
}

bool ValidRole(const std::string& r) { return r == "rep" || r == "manager" || r == "admin"; }

bool Open(const TaskState& s) { return s.status() == v1::TASK_STATUS_OPEN; }

// The task as the shared visibility rule sees it: the assignee owns it, the creator keeps
// it, and without an assignee it waits on its role's queue in its team.
RecordRef RefOf(const TaskState& s) {
  const auto& p = s.profile();
  return RecordRef{.owner = p.assignee_id(), .team = p.team_id(), .creator = s.created_by(),
                   .queue_role = p.assignee_role()};
}

// Edits (update, cancel, reopen): admins and services; managers of the task's team; the
// assignee and the creator.
bool CanEdit(const Caller& c, const TaskState& s) { return EditsRecord(c, RefOf(s)); }

// Completing also lets anyone of a queue task's role in its team take it.
bool CanComplete(const Caller& c, const TaskState& s) {
  if (CanEdit(c, s)) return true;
  const auto& p = s.profile();
  return p.assignee_id().empty() && InQueue(c, p.assignee_role(), p.team_id());
}

// The request's etag is the command's expected version, checked before Decide (TaskEngine).
absl::Status CheckExisting(const TaskState* state, const Caller& caller, bool (*may)(const Caller&, const TaskState&)) {
  if (state == nullptr || state->version() == 0) return absl::NotFoundError("task not found");
  if (!CanSee(caller, *state)) return absl::PermissionDeniedError("the task belongs to another assignee or team");
  if (!may(caller, *state)) return absl::PermissionDeniedError("only the assignee, the creator, a manager of the team or an admin may change the task");
  return absl::OkStatus();
}

absl::Time CeilHour(absl::Time t) {
  const absl::Time floor = absl::FromUnixSeconds(absl::ToUnixSeconds(t) / 3600 * 3600);
  return floor == t ? t : floor + absl::Hours(1);
}

}  // namespace

const std::vector<std::string>& EditableTaskFields() {
  static const auto* f = new std::vector<std::string>{
      "title", "description", "assignee_id", "assignee_role", "team_id", "related",
      "due_time", "priority", "reminder_offsets_minutes", "channels"};
  return *f;
}

bool ValidRelated(const std::string& related) {
  std::vector<std::string> parts = absl::StrSplit(related, '/');
  if (parts.size() != 2 || topics::FindRecordByCollection(parts[0]) == nullptr || parts[1].empty() ||
      parts[1].size() > 64) {
    return false;
  }
  return std::all_of(parts[1].begin(), parts[1].end(),
                     [](char ch) { return absl::ascii_isalnum(ch) || ch == '-' || ch == '_'; });
}

absl::Status ValidateTaskProfile(const TaskProfile& p, const std::vector<std::string>& paths,
                                 const std::string& prefix) {
  auto field = [&](absl::string_view f) { return absl::StrCat(prefix, ".", f); };
  if (Has(paths, "title")) {
    if (auto s = CheckText(p.title(), field("title"), 200, true); !s.ok()) return s;
  }
  if (Has(paths, "description")) {
    if (auto s = CheckText(p.description(), field("description"), 4000, false, TextKind::kMultiLine); !s.ok()) return s;
  }
  if (Has(paths, "assignee_id") && Has(paths, "assignee_role") && !p.assignee_id().empty() &&
      !p.assignee_role().empty()) {
    return InvalidFieldError(field("assignee_role"), "set assignee_id or assignee_role, not both");
  }
  if (Has(paths, "assignee_id")) {
    if (auto s = CheckText(p.assignee_id(), field("assignee_id"), 64, false); !s.ok()) return s;
  }
  if (Has(paths, "assignee_role") && !p.assignee_role().empty() && !ValidRole(p.assignee_role())) {
    return InvalidFieldError(field("assignee_role"), "must be rep, manager or admin");
  }
  if (Has(paths, "team_id")) {
    if (auto s = CheckText(p.team_id(), field("team_id"), 64, false); !s.ok()) return s;
  }
  if (Has(paths, "related") && !p.related().empty() && !ValidRelated(p.related())) {
    return InvalidFieldError(field("related"),
                             "must be customers/{id}, leads/{id}, opportunities/{id}, quotes/{id}, contracts/{id} or "
                             "tickets/{id}");
  }
  if (Has(paths, "due_time")) {
    if (!p.has_due_time()) return InvalidFieldError(field("due_time"), "is required");
    if (auto due = ClientTime(p.due_time(), field("due_time")); !due.ok()) return due.status();
    if (p.due_time().seconds() % 3600 != 0 || p.due_time().nanos() != 0) {
      return InvalidFieldError(field("due_time"), "must be on the hour (minutes and seconds zero)");
    }
  }
  if (Has(paths, "priority") && !v1::TaskPriority_IsValid(p.priority())) {
    return InvalidFieldError(field("priority"), "is not a TaskPriority");
  }
  if (Has(paths, "reminder_offsets_minutes")) {
    if (p.reminder_offsets_minutes_size() > kMaxOffsets) {
      return InvalidFieldError(field("reminder_offsets_minutes"), "at most 5");
    }
    std::set<int32_t> seen;
    for (int32_t m : p.reminder_offsets_minutes()) {
      if (m < 0 || m > kMaxOffsetMinutes) {
        return InvalidFieldError(field("reminder_offsets_minutes"), "each must be 0-43200 minutes (30 days)");
      }
      if (!seen.insert(m).second) return InvalidFieldError(field("reminder_offsets_minutes"), "must be distinct");
    }
  }
  if (Has(paths, "channels")) {
    std::set<int> seen;
    for (int ch : p.channels()) {
      if (!v1::Channel_IsValid(ch) || ch == v1::CHANNEL_UNSPECIFIED) {
        return InvalidFieldError(field("channels"), "must be IN_APP, SMS, EMAIL, WECOM or DINGTALK");
      }
      if (!seen.insert(ch).second) return InvalidFieldError(field("channels"), "must be distinct");
    }
  }
  return absl::OkStatus();
}

bool CanSee(const Caller& c, const TaskState& s) { return SeesRecord(c, RefOf(s)); }

bool MayAssignTask(const Caller& c, const TaskProfile& p) {
  // A role's queue in a team: whoever may hand out that team's records, and its members.
  if (p.assignee_id().empty() && !p.assignee_role().empty()) {
    return MayAssign(c, "", p.team_id()) || (ReachOf(c) == Reach::kOwn && InTeam(c, p.team_id()));
  }
  return MayAssign(c, p.assignee_id(), p.team_id());
}

namespace {

TaskProfile WithDefaults(TaskProfile p) {
  if (p.priority() == v1::TASK_PRIORITY_UNSPECIFIED) p.set_priority(v1::TASK_PRIORITY_NORMAL);
  if (p.reminder_offsets_minutes_size() > 0 && p.channels_size() == 0) p.add_channels(v1::CHANNEL_IN_APP);
  std::sort(p.mutable_reminder_offsets_minutes()->begin(), p.mutable_reminder_offsets_minutes()->end());
  return p;
}

}  // namespace

TaskDecision Decide(const TaskState* state, const Caller& caller, const CreateTask& cmd) {
  if (state != nullptr && state->version() > 0) return absl::AlreadyExistsError("task id already exists");
  TaskProfile p = cmd.profile;
  if (p.assignee_id().empty() && p.assignee_role().empty()) p.set_assignee_id(caller.user_id);
  if (p.team_id().empty()) p.set_team_id(caller.team);
  if (auto s = ValidateTaskProfile(p, {}, "task"); !s.ok()) return s;
  if (!MayAssignTask(caller, p)) {
    return absl::PermissionDeniedError(
        "a rep assigns tasks to self or to a role of their team, a manager within their team");
  }
  v1::TaskCreated e;
  *e.mutable_profile() = WithDefaults(std::move(p));
  return std::vector<TaskEvent>{std::move(e)};
}

TaskDecision Decide(const TaskState* state, const Caller& caller, const CreateAutomatedTask& cmd) {
  if (state != nullptr && state->version() > 0) return std::vector<TaskEvent>{};  // once per cause
  if (!IsPrivileged(caller)) return absl::PermissionDeniedError("only automation creates rule tasks");
  if (auto s = ValidateTaskProfile(cmd.profile, {}, "task"); !s.ok()) return s;
  v1::TaskCreated e;
  *e.mutable_profile() = WithDefaults(cmd.profile);
  *e.mutable_origin() = cmd.origin;
  return std::vector<TaskEvent>{std::move(e)};
}

TaskDecision Decide(const TaskState* state, const Caller& caller, const UpdateTask& cmd) {
  if (auto s = CheckExisting(state, caller, &CanEdit); !s.ok()) return s;
  if (!Open(*state)) return absl::FailedPreconditionError("only open tasks can be edited; reopen it first");
  if (cmd.paths.empty()) return InvalidFieldError("update_mask", "names no field");
  for (const auto& path : cmd.paths) {
    if (std::find(EditableTaskFields().begin(), EditableTaskFields().end(), path) == EditableTaskFields().end()) {
      return InvalidFieldError("update_mask", absl::StrCat("'", path, "' is not an editable field"));
    }
  }
  if (auto s = ValidateTaskProfile(cmd.profile, cmd.paths, "task"); !s.ok()) return s;
  TaskProfile next = state->profile();
  v1::TaskUpdated e;
  google::protobuf::util::FieldMaskUtil::MergeOptions opts;
  opts.set_replace_message_fields(true);
  opts.set_replace_repeated_fields(true);
  for (const auto& path : cmd.paths) {
    const std::string before = next.SerializeAsString();
    google::protobuf::FieldMask mask;
    mask.add_paths(path);
    google::protobuf::util::FieldMaskUtil::MergeMessageTo(cmd.profile, mask, opts, &next);
    if (next.SerializeAsString() != before) e.add_changed_fields(path);
  }
  if (e.changed_fields().empty()) return std::vector<TaskEvent>{};
  next = WithDefaults(std::move(next));
  if (auto s = ValidateTaskProfile(next, {}, "task"); !s.ok()) return s;  // e.g. both assignees now set
  if (!MayAssignTask(caller, next)) {
    return absl::PermissionDeniedError("cannot give the task to that assignee or team");
  }
  for (const auto& path : e.changed_fields()) {
    google::protobuf::FieldMask mask;
    mask.add_paths(path);
    google::protobuf::util::FieldMaskUtil::MergeMessageTo(next, mask, opts, e.mutable_profile());
  }
  return std::vector<TaskEvent>{std::move(e)};
}

TaskDecision Decide(const TaskState* state, const Caller& caller, const CompleteTask& cmd) {
  if (auto s = CheckExisting(state, caller, &CanComplete); !s.ok()) return s;
  if (state->status() == v1::TASK_STATUS_DONE) return std::vector<TaskEvent>{};
  if (!Open(*state)) return absl::FailedPreconditionError("the task is cancelled; reopen it first");
  if (auto s = CheckText(cmd.note, "note", 4000, false, TextKind::kMultiLine); !s.ok()) return s;
  v1::TaskCompleted e;
  e.set_note(cmd.note);
  e.set_customer_id(cmd.customer_id);
  return std::vector<TaskEvent>{std::move(e)};
}

TaskDecision Decide(const TaskState* state, const Caller& caller, const CancelTask& cmd) {
  if (auto s = CheckExisting(state, caller, &CanEdit); !s.ok()) return s;
  if (state->status() == v1::TASK_STATUS_CANCELLED) return std::vector<TaskEvent>{};
  if (!Open(*state)) return absl::FailedPreconditionError("the task is done; reopen it first");
  if (auto s = CheckText(cmd.reason, "reason", 500, false, TextKind::kMultiLine); !s.ok()) return s;
  v1::TaskCancelled e;
  e.set_reason(cmd.reason);
  return std::vector<TaskEvent>{std::move(e)};
}

TaskDecision Decide(const TaskState* state, const Caller& caller, const ReopenTask& cmd) {
  if (auto s = CheckExisting(state, caller, &CanEdit); !s.ok()) return s;
  if (Open(*state)) return std::vector<TaskEvent>{};
  if (auto s = CheckText(cmd.reason, "reason", 500, false, TextKind::kMultiLine); !s.ok()) return s;
  v1::TaskReopened e;
  e.set_reason(cmd.reason);
  return std::vector<TaskEvent>{std::move(e)};
}

TaskDecision Decide(const TaskState* state, const Caller&, const FireReminder& cmd) {
  if (state == nullptr || !Open(*state)) return std::vector<TaskEvent>{};
  for (const DueItem& item : PendingItems(*state)) {
    if (item.offset_minutes != cmd.offset_minutes || item.at > cmd.now) continue;
    const auto& p = state->profile();
    v1::ReminderDue e;
    e.set_offset_minutes(cmd.offset_minutes);
    e.set_assignee_id(p.assignee_id());
    e.set_assignee_role(p.assignee_role());
    e.set_team_id(p.team_id());
    e.set_title(p.title());
    e.set_related(p.related());
    *e.mutable_due_time() = p.due_time();
    *e.mutable_channels() = p.channels();
    return std::vector<TaskEvent>{std::move(e)};
  }
  return std::vector<TaskEvent>{};
}

TaskDecision Decide(const TaskState* state, const Caller&, const ReportOverdue& cmd) {
  if (state == nullptr || !Open(*state) || state->overdue_reported()) return std::vector<TaskEvent>{};
  if (FromProto(state->profile().due_time()) > cmd.now) return std::vector<TaskEvent>{};
  const auto& p = state->profile();
  v1::TaskOverdue e;
  *e.mutable_due_time() = p.due_time();
  e.set_assignee_id(p.assignee_id());
  e.set_assignee_role(p.assignee_role());
  e.set_team_id(p.team_id());
  return std::vector<TaskEvent>{std::move(e)};
}

void Apply(TaskState& s, const TaskEvent& event, int64_t version, absl::Time at, const std::string& actor) {
  s.set_version(version);
  *s.mutable_update_time() = ToProto(at);
  if (const auto* e = std::get_if<v1::TaskCreated>(&event)) {
    *s.mutable_profile() = e->profile();
    s.set_status(v1::TASK_STATUS_OPEN);
    if (e->has_origin()) *s.mutable_origin() = e->origin();
    s.set_created_by(actor);
    *s.mutable_create_time() = ToProto(at);
    *s.mutable_due_set_time() = ToProto(at);
  } else if (const auto* e = std::get_if<v1::TaskUpdated>(&event)) {
    google::protobuf::util::FieldMaskUtil::MergeOptions opts;
    opts.set_replace_message_fields(true);
    opts.set_replace_repeated_fields(true);
    for (const auto& path : e->changed_fields()) {
      google::protobuf::FieldMask mask;
      mask.add_paths(path);
      google::protobuf::util::FieldMaskUtil::MergeMessageTo(e->profile(), mask, opts, s.mutable_profile());
      if (path == "due_time") {
        s.clear_reminders_sent();
        s.set_overdue_reported(false);
        *s.mutable_due_set_time() = ToProto(at);
      }
    }
  } else if (const auto* e = std::get_if<v1::TaskCompleted>(&event)) {
    s.set_status(v1::TASK_STATUS_DONE);
    *s.mutable_close_time() = ToProto(at);
    s.set_closed_by(actor);
    s.set_completion_note(e->note());
    s.set_customer_id(e->customer_id());
  } else if (const auto* e = std::get_if<v1::TaskCancelled>(&event)) {
    s.set_status(v1::TASK_STATUS_CANCELLED);
    *s.mutable_close_time() = ToProto(at);
    s.set_closed_by(actor);
    s.set_cancel_reason(e->reason());
  } else if (std::get_if<v1::TaskReopened>(&event) != nullptr) {
    s.set_status(v1::TASK_STATUS_OPEN);
    s.clear_close_time();
    s.clear_closed_by();
    s.clear_completion_note();
    s.clear_cancel_reason();
  } else if (const auto* e = std::get_if<v1::ReminderDue>(&event)) {
    s.add_reminders_sent(e->offset_minutes());
  } else if (std::get_if<v1::TaskOverdue>(&event) != nullptr) {
    s.set_overdue_reported(true);
  }
}

std::vector<DueItem> PendingItems(const TaskState& s) {
  std::vector<DueItem> out;
  if (!Open(s) || !s.profile().has_due_time()) return out;
  const absl::Time due = FromProto(s.profile().due_time());
  const absl::Time set_at = FromProto(s.due_set_time());
  for (int32_t m : s.profile().reminder_offsets_minutes()) {
    const absl::Time at = due - absl::Minutes(m);
    if (at < set_at) continue;  // already past when the due time was set: no stale reminder
    if (std::find(s.reminders_sent().begin(), s.reminders_sent().end(), m) != s.reminders_sent().end()) continue;
    out.push_back({at, m});
  }
  if (!s.overdue_reported()) out.push_back({due, -1});
  return out;
}

// Rounds a computed due time up to the hour (automation's tasks are due "to the hour").
absl::Time DueOnTheHour(absl::Time t) { return CeilHour(t); }

}  // namespace crm::tasks
