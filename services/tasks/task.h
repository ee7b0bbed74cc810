#ifndef CRM_SERVICES_TASKS_TASK_H_
#define CRM_SERVICES_TASKS_TASK_H_

// The task aggregate (待办): pure decisions and folds, no I/O (docs/architecture.md §3). Reminders and the
// overdue notice are the scheduler's decisions on it, one event per due item.
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crm/tasks/v1/tasks_events.pb.h"
#include "libs/common/caller.h"

namespace crm::tasks {

using v1::TaskProfile;
using v1::TaskState;

using TaskEvent = std::variant<v1::TaskCreated, v1::TaskUpdated, v1::TaskCompleted, v1::TaskCancelled,
                               v1::TaskReopened, v1::ReminderDue, v1::TaskOverdue>;
using TaskDecision = absl::StatusOr<std::vector<TaskEvent>>;

// The fields UpdateTask may name.
const std::vector<std::string>& EditableTaskFields();

// INVALID_ARGUMENT naming "<prefix>.<field>" unless the fields among `paths` (every field when
// empty) are valid: title 1-200 characters, description at most 4000, at most one of
// assignee_id and assignee_role (rep, manager or admin), related "<collection>/<id>", a due
// time on the hour, a known priority, at most 5 distinct reminder offsets of 0-43200 minutes
// and known, distinct channels.
absl::Status ValidateTaskProfile(const TaskProfile& p, const std::vector<std::string>& paths,
                                 const std::string& prefix);

// Who sees a task: admins and services all; managers their team's; reps the tasks assigned to
// them or created by them, and the queue tasks of their role in their team.
bool CanSee(const Caller& c, const TaskState& s);
// Who may give a task to (assignee_id, assignee_role, team): admins and services anyone;
// managers within their team; reps themselves, or a role's queue, in their own team.
bool MayAssignTask(const Caller& c, const TaskProfile& p);

struct CreateTask {
  TaskProfile profile;  // assignee defaults to the caller, team to the caller's
};
// Automation's: the rule decided the assignee; only validated.
struct CreateAutomatedTask {
  TaskProfile profile;
  v1::Origin origin;
};
struct UpdateTask {
  TaskProfile profile;
  std::vector<std::string> paths;
};
struct CompleteTask {
  std::string note;
  std::string customer_id;  // where the note goes (the engine resolves it from `related`)
};
struct CancelTask {
  std::string reason;
};
struct ReopenTask {
  std::string reason;
};
// The scheduler's: the reminder `offset_minutes` before the due time, once it is `now` or later.
struct FireReminder {
  int32_t offset_minutes = 0;
  absl::Time now;
};
// The scheduler's: the due time passed while open.
struct ReportOverdue {
  absl::Time now;
};

// Pure decisions. `state` is null when the task does not exist. Errors: INVALID_ARGUMENT
// (field named), PERMISSION_DENIED, NOT_FOUND, FAILED_PRECONDITION (e.g. completing a
// cancelled task), ALREADY_EXISTS (create on an existing id). An empty vector: nothing to
// record. The etag is no part of the commands: the store checks it before deciding.
TaskDecision Decide(const TaskState* state, const Caller& caller, const CreateTask& cmd);
TaskDecision Decide(const TaskState* state, const Caller& caller, const CreateAutomatedTask& cmd);
TaskDecision Decide(const TaskState* state, const Caller& caller, const UpdateTask& cmd);
TaskDecision Decide(const TaskState* state, const Caller& caller, const CompleteTask& cmd);
TaskDecision Decide(const TaskState* state, const Caller& caller, const CancelTask& cmd);
TaskDecision Decide(const TaskState* state, const Caller& caller, const ReopenTask& cmd);
TaskDecision Decide(const TaskState* state, const Caller& caller, const FireReminder& cmd);
TaskDecision Decide(const TaskState* state, const Caller& caller, const ReportOverdue& cmd);

// Folds one event, recorded as `version` at `at` by `actor`, into `state`.
void Apply(TaskState& state, const TaskEvent& event, int64_t version, absl::Time at, const std::string& actor);

// The scheduler's work on an open task: (time, offset) of each reminder not yet emitted and
// not before the due time was set, and the due time unless reported overdue (offset -1).
struct DueItem {
  absl::Time at;
  int32_t offset_minutes;  // -1: the overdue notice
};
std::vector<DueItem> PendingItems(const TaskState& s);

// `t` rounded up to the hour: automation's due times.
absl::Time DueOnTheHour(absl::Time t);

// "<collection>/<id>" of a related record: the collections a task may relate to.
bool ValidRelated(const std::string& related);

}  // namespace crm::tasks

#endif  // CRM_SERVICES_TASKS_TASK_H_
