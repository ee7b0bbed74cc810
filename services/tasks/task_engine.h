#ifndef CRM_SERVICES_TASKS_TASK_ENGINE_H_
#define CRM_SERVICES_TASKS_TASK_ENGINE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crm/tasks/v1/tasks_service.pb.h"
#include "libs/common/clock.h"
#include "libs/eventlog/log.h"
#include "libs/kernel/aggregate_store.h"
#include "libs/projection/aggregate_writer.h"
#include "libs/projection/follower.h"
#include "libs/projection/projection_db.h"
#include "libs/projection/rebuild.h"
#include "services/tasks/rule.h"
#include "services/tasks/task.h"
#include "services/tasks/task_projections.h"
#include "libs/topics/topics.h"

namespace crm::tasks {

inline constexpr const char* kTopic = topics::kTasks;
inline constexpr int32_t kPartitions = topics::kPartitions;
// Version of the projection code (task_projections.cc). Bump it with any change to the rows:
// OpenProjections then rebuilds.
inline constexpr int64_t kProjectionVersion = 3;  // 2: follows the tickets topic; 3: iy/ (every task by due)

// The rules the service ships, editable like any other (rules/{id} derived from the key):
// new lead → contact within 24 hours; opportunity enters 方案报价 → follow up in 3 days;
// contract ends in 30 days → renewal task; deal won → return visit in 15 days; customer lost →
// care message task; a follow-up's next follow-up time → task at that time; a ticket's SLA
// breached → urgent task for its assignee (the team managers' queue when unassigned).
struct DefaultRule {
  std::string key;
  RuleDefinition definition;
};
const std::vector<DefaultRule>& DefaultRules();

// The tasks service without the gRPC server around it: the task center (tasks, reminders,
// overdue notices) and automation (rules that turn other services' events and dates into
// tasks, exactly once per cause), on the write path of docs/architecture.md §3. It follows the other
// services' topics; what a rule decided is written as a pending row in the same commit as the
// followed record's checkpoint and becomes a task right after, or at the next start after a
// crash. Thread-safe. Writes complete through a callback on the log writer's thread.
class TaskEngine {
 public:
  struct Options {
    // Topic of this service's events. Default: crm.tasks.events.v1.
    std::string topic = kTopic;
    int32_t partitions = kPartitions;
    // Topics whose events rules see. Default: the customers, opportunities and tickets topics.
    std::vector<std::string> followed_topics = {topics::kCustomers, topics::kOpportunities, topics::kTickets};
    // "now" for occurred_at, recorded_at and the scheduler. Required.
    Clock* clock = nullptr;
    // Days ("today", yyyy-MM-dd dates of date triggers) in this zone. Default: UTC+8.
    absl::TimeZone zone = absl::FixedTimeZone(8 * 3600);
    std::string tenant = "default";
    std::function<void(absl::Duration)> observe_append;
    // Write the DefaultRules() that were never written (deleted ones stay deleted). Default: true.
    bool seed_default_rules = true;
    // How long a scheduler run or a round of pending actions waits for the commands it
    // started; then it answers DEADLINE_EXCEEDED (the commands still finish, the next run sees
    // them). Default: 60 s, twice the wait for one command (AwaitOptions,
    // libs/common/await.h): a batch's commands run at once, behind the same log.
    absl::Duration batch_timeout = absl::Seconds(60);
  };

  // Creates the topic if needed, catches the projections up with it and the followed topics,
  // becomes the topic's single writer, seeds the default rules, completes the pending actions
  // a crash interrupted, and starts following.
  static absl::StatusOr<std::unique_ptr<TaskEngine>> Open(eventlog::Log* log, projection::ProjectionDb* db,
                                                          Options options);
  ~TaskEngine();

  template <typename T>
  using Callback = absl::AnyInvocable<void(absl::StatusOr<T>)>;

  void CreateTask(const Caller& c, const v1::CreateTaskRequest& req, Callback<v1::Task> done);
  void UpdateTask(const Caller& c, const v1::UpdateTaskRequest& req, Callback<v1::Task> done);
  // The note goes back to the customer (see TaskCompleted).
  void CompleteTask(const Caller& c, const v1::CompleteTaskRequest& req, Callback<v1::Task> done);
  void CancelTask(const Caller& c, const v1::CancelTaskRequest& req, Callback<v1::Task> done);
  void ReopenTask(const Caller& c, const v1::ReopenTaskRequest& req, Callback<v1::Task> done);
  absl::StatusOr<v1::Task> GetTask(const Caller& c, const v1::GetTaskRequest& req, absl::Time deadline);
  absl::StatusOr<v1::ListTasksResponse> ListTasks(const Caller& c, const v1::ListTasksRequest& req,
                                                  absl::Time deadline);
  absl::StatusOr<v1::TaskCounts> CountTasks(const Caller& c, const v1::CountTasksRequest& req, absl::Time deadline);
  absl::StatusOr<v1::ListEventsResponse> ListEvents(const Caller& c, const v1::ListEventsRequest& req,
                                                    absl::Time deadline);

  void CreateRule(const Caller& c, const v1::CreateRuleRequest& req, Callback<v1::Rule> done);
  void UpdateRule(const Caller& c, const v1::UpdateRuleRequest& req, Callback<v1::Rule> done);
  void DeleteRule(const Caller& c, const v1::DeleteRuleRequest& req, Callback<v1::Rule> done);
  absl::StatusOr<v1::Rule> GetRule(const Caller& c, const v1::GetRuleRequest& req, absl::Time deadline);
  absl::StatusOr<v1::ListRulesResponse> ListRules(const Caller& c, const v1::ListRulesRequest& req,
                                                  absl::Time deadline);

  // Calls `done` once the projections reached `token` (see projection::AfterToken).
  void AfterToken(const std::string& token, absl::string_view field, absl::Time deadline,
                  absl::AnyInvocable<void(absl::Status)> done) {
    projection::AfterToken(*db_, token, field, deadline, std::move(done));
  }

  // The scheduler as of `now`: reminders and overdue notices due, and date triggers due
  // (their tasks). Events carry the due moment as occurred_at. Blocks until durable.
  struct SchedulerRun {
    int64_t reminders = 0;
    int64_t overdue = 0;
    int64_t date_tasks = 0;
  };
  absl::StatusOr<SchedulerRun> RunScheduler(absl::Time now);

  // Writes the tasks and reminders automation decided on (pending rows). Blocks until durable;
  // returns how many were written. The followers call it after each commit.
  absl::StatusOr<int64_t> ProcessPending();

  // Pending actions (automation's decisions not yet written as tasks): more than a moment's
  // worth means the writes fail. For the operators' gauge.
  absl::StatusOr<int64_t> PendingActions() const;

  // The followers of the other services' topics, in Options::followed_topics order.
  const std::vector<std::unique_ptr<projection::Follower>>& followers() const { return followers_; }

  static projection::ProjectionSpec Spec(const Options& options);

  // What the write path did since the engine was opened (state reads, request-id lookups,
  // folds, seals, appends), the default rules' seeding included: for tests that count the work
  // a command costs.
  kernel::StoreCounters WriteCounters() const { return store_.counters(); }

  v1::Task ToApi(const TaskState& s) const;
  v1::Rule ToApi(const RuleState& s) const;

 private:
  TaskEngine(eventlog::Log* log, projection::ProjectionDb* db, Options o,
             std::unique_ptr<projection::AggregateWriter> writer)
      : log_(log), db_(db), options_(std::move(o)), writer_(std::move(writer)) {}
  absl::Status WaitToken(const std::string& token, absl::string_view field, absl::Time deadline);
  absl::Status SeedDefaultRules();
  // OK when `related` is empty or a record of the followed topics that `caller` may see; NOT_FOUND when unknown, PERMISSION_DENIED when
  // hidden from the caller.
  absl::Status CheckRelated(const Caller& caller, const std::string& related);
  // Runs `then` once `related` passes CheckRelated, after the followers caught up with the
  // other services' topics when it was unknown (a record created a moment ago); else `fail`
  // with INVALID_ARGUMENT naming `field`, or PERMISSION_DENIED.
  void WithRelated(const Caller& caller, const std::string& related, const std::string& field,
                   absl::AnyInvocable<void()> then, absl::AnyInvocable<void(absl::Status)> fail);
  // The customer a task's note goes to: the related customer, or the related record's.
  std::string CustomerOf(const std::string& related);
  // Deletes derived rows found stale (a pending action or a date watch whose task exists).
  absl::Status Housekeep(const std::vector<std::string>& keys);
  // Creates the automated task or reminder `a` (nothing when it exists).
  void WriteAction(const v1::PendingAction& a, absl::AnyInvocable<void(absl::StatusOr<bool>)> done);

  eventlog::Log* log_;
  projection::ProjectionDb* db_;
  const Options options_;
  std::unique_ptr<projection::AggregateWriter> writer_;
  // Every write of the service (API, scheduler, automation, seeding) runs through it.
  kernel::AggregateStore store_{writer_.get()};
  std::vector<std::unique_ptr<projection::Follower>> followers_;
  absl::Mutex pending_mu_;  // one ProcessPending at a time
};

}  // namespace crm::tasks

#endif  // CRM_SERVICES_TASKS_TASK_ENGINE_H_
