#ifndef CRM_SERVICES_TASKS_TASK_PROJECTIONS_H_
#define CRM_SERVICES_TASKS_TASK_PROJECTIONS_H_

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crm/common/v1/envelope.pb.h"
#include "libs/eventlog/log.h"
#include "libs/projection/projection_db.h"
#include "libs/projection/rows.h"
#include "libs/topics/contracts.h"
#include "services/tasks/rule.h"
#include "services/tasks/task.h"

namespace crm::tasks {

// The topic's aggregates (types, collections) are topics::tasks's (libs/topics).

// Projection rows of the tasks service. Times in keys are projection::TimeKey.
//   t/<id>                          TaskState
//   u/<id>                          RuleState
//   m/<id>                          ReminderState (a rule's standalone reminder)
//   h/<id>/<be64 version>, r/<request id>/<id>   history and request ids
//   ug                              generation of the rules (changes with every rule event)
//   ia/<assignee>/<due>/<id>        open tasks of a user
//   iq/<team>/<role>/<due>/<id>     open queue tasks of a role in a team
//   it/<team>/<due>/<id>            open tasks of a team
//   ix/<due>/<id>                   every open task
//   ir/<related>/<id>               every task about a record
//   iy/<due>/<id>                   every task, any status (ListTasks without a view)
//   ca/<user>/<close>/<id>          tasks a user completed
//   ct/<team>/<close>/<id>          tasks of a team completed
//   sr/<time>/<id>/<offset>         open tasks' reminders (offset minutes) and overdue notice
//                                   (offset -1) not yet emitted: the scheduler's work
// Rows about the other services' records (the followed topics):
//   v/<record>                      RecordRef (owner, team, name, customer of customers/{id}, ...)
//   pa/<id>                         PendingAction: a task or reminder automation decided on
//   dv/<rule>/<record>              DateWatch of a date trigger
//   dw/<fire time>/<rule>/<record>  armed watches by fire time, not yet fired
//   df/<rule>/<record>/<date>       "" once the trigger fired for that date
namespace rows {
std::string Task(absl::string_view id);
std::string Rule(absl::string_view id);
std::string Reminder(absl::string_view id);
inline constexpr char kRulePrefix[] = "u/";
inline constexpr char kRulesGeneration[] = "ug";
std::string AssigneePrefix(absl::string_view user);
std::string QueuePrefix(absl::string_view team, absl::string_view role);
std::string TeamPrefix(absl::string_view team);
inline constexpr char kOpenPrefix[] = "ix/";
inline constexpr char kAllPrefix[] = "iy/";
std::string RelatedPrefix(absl::string_view related);
std::string DoneByPrefix(absl::string_view user);
std::string DoneTeamPrefix(absl::string_view team);
inline constexpr char kSchedulePrefix[] = "sr/";
std::string RecordRef(absl::string_view record);
inline constexpr char kPendingPrefix[] = "pa/";
std::string Pending(absl::string_view id);
std::string Watch(absl::string_view rule, absl::string_view record);
inline constexpr char kWatchDuePrefix[] = "dw/";
std::string WatchDue(absl::Time fire, absl::string_view rule, absl::string_view record);
std::string Fired(absl::string_view rule, absl::string_view record, absl::string_view date);
}  // namespace rows

absl::StatusOr<TaskEvent> UnpackTaskEvent(const common::v1::EventEnvelope& e);
absl::StatusOr<RuleEvent> UnpackRuleEvent(const common::v1::EventEnvelope& e);

// A rule's standalone reminder (m/<id>) has one event: the reminder emitted.
using ReminderEvent = std::variant<v1::RuleReminderEmitted>;

// The folds of the topic's events into their state rows: the projection's (FoldRow) and the
// write kernel's reply's (task_engine.cc), one definition so that a reply equals the row.
void ApplyTask(TaskState& s, const TaskEvent& e, int64_t version, absl::Time at, const std::string& actor);
void ApplyRule(RuleState& s, const RuleEvent& e, int64_t version, absl::Time at, const std::string& actor);
void ApplyReminder(v1::ReminderState& s, const ReminderEvent& e, int64_t version, absl::Time at,
                   const std::string& actor);

// Folds one record of the tasks topic into the rows above. DATA_LOSS on a version gap, a
// broken hash chain or an unknown event; records already applied are skipped.
absl::Status ApplyTasksRecord(projection::ProjectionDb& db, const eventlog::Record& record, projection::Batch& batch);

// The rules, read once per change of their generation. Thread-safe.
class RuleBook {
 public:
  using Rules = std::vector<RuleState>;
  // The committed rules of `db`.
  absl::StatusOr<std::shared_ptr<const Rules>> Get(projection::ProjectionDb& db);

 private:
  absl::Mutex mu_;
  std::string generation_ ABSL_GUARDED_BY(mu_) = "unread";
  std::shared_ptr<const Rules> rules_ ABSL_GUARDED_BY(mu_);
};

// What the automation of a followed topic needs besides the rows.
struct FollowContext {
  RuleBook* book = nullptr;
  // Dates in yyyy-MM-dd fields are midnight in this zone.
  absl::TimeZone zone;
};

// Folds one record of another service's topic: keeps the RecordRef of its record, evaluates
// every rule in force when it was recorded, and writes a PendingAction per rule it fires (once:
// not when the task exists or is pending already) and the date watches. An event type this
// build does not know is skipped (counted by the caller), never an error: a newer producer
// must not halt the tasks service.
absl::Status ApplyFollowedRecord(projection::ProjectionDb& db, const FollowContext& ctx, const eventlog::Record& record,
                                 projection::Batch& batch);

// The id of the task (or reminder) rule `rule_id` makes for an event, or for a record's date.
std::string EventTaskId(const std::string& rule_id, const std::string& event_id);
std::string DateTaskId(const std::string& rule_id, const std::string& record, const std::string& date);

// The task automation makes from `def` for a cause at `cause_time` on `record`: assignee,
// team, title and due time (rounded up to the hour) filled in.
TaskProfile MakeProfile(const RuleDefinition& def, const v1::RecordRef& ref, const std::string& record,
                        const std::string& event_type, absl::Time due_base);

}  // namespace crm::tasks

#endif  // CRM_SERVICES_TASKS_TASK_PROJECTIONS_H_
