#include "services/tasks/tasks_host.h"

#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "libs/server/logging.h"
#include "prometheus/gauge.h"

namespace crm::tasks {

absl::StatusOr<std::unique_ptr<TasksHost>> TasksHost::Open(eventlog::Log* log, server::Runtime* runtime,
                                                           Options options) {
  if (options.clock == nullptr || options.metrics == nullptr || options.dir.empty()) {
    return absl::InvalidArgumentError("TasksHost needs a dir, a clock and metrics");
  }
  std::unique_ptr<TasksHost> h(new TasksHost(log, std::move(options)));
  const Options& o = h->options_;
  TaskEngine::Options& eopts = h->engine_options_;
  eopts.clock = o.clock;
  server::Metrics* m = o.metrics;
  eopts.observe_append = [m](absl::Duration d) { m->ObserveAppend(kTopic, absl::ToDoubleSeconds(d)); };
  CRM_ASSIGN_OR_RETURN(h->db_, server::OpenServiceProjections(*log, TaskEngine::Spec(eopts), o.dir, o.rebuild, "tasks"));
  const absl::Time t0 = absl::Now();
  CRM_ASSIGN_OR_RETURN(h->engine_, TaskEngine::Open(log, h->db_.get(), eopts));
  server::LogInfo(absl::StrCat("tasks caught up with the log in ", absl::FormatDuration(absl::Now() - t0)));
  h->tasks_ = std::make_unique<TasksService>(h->engine_.get(), runtime);
  h->automation_ = std::make_unique<AutomationService>(h->engine_.get(), runtime);
  return h;
}

void TasksHost::StartLoops() {
  auto& pending = prometheus::BuildGauge()
                      .Name("crm_automation_pending_actions")
                      .Help("Tasks and reminders automation decided on and has not written yet.")
                      .Register(options_.metrics->registry())
                      .Add({});
  auto& following = prometheus::BuildGauge()
                        .Name("crm_automation_following")
                        .Help("1 while the tasks service applies a followed topic; 0 while a record halts it.")
                        .Register(options_.metrics->registry());
  loops_.Every(absl::Seconds(1), [this, &pending, &following] {
    if (auto n = engine_->PendingActions(); n.ok()) pending.Set(static_cast<double>(*n));
    for (size_t i = 0; i < engine_->followers().size(); ++i) {
      following.Add({{"topic", engine_options_.followed_topics[i]}}).Set(engine_->followers()[i]->status().ok() ? 1 : 0);
    }
    if (auto lag = projection::LagRecords(*log_, *db_, kTopic); lag.ok()) {
      options_.metrics->SetProjectionLag("tasks", static_cast<double>(*lag));
    }
    for (const std::string& topic : engine_options_.followed_topics) {
      if (auto lag = projection::LagRecords(*log_, *db_, topic); lag.ok()) {
        options_.metrics->SetProjectionLag(absl::StrCat("tasks_view_of_", topic), static_cast<double>(*lag));
      }
    }
  });
  if (options_.scheduler_interval <= absl::ZeroDuration()) return;
  loops_.Every(options_.scheduler_interval, [this] {
    auto run = engine_->RunScheduler(options_.clock->Now());
    if (!run.ok()) {
      server::LogWarn(absl::StrCat("tasks scheduler: ", run.status().ToString()));
    } else if (run->reminders + run->overdue + run->date_tasks > 0) {
      server::LogInfo(absl::StrCat("tasks scheduler: ", run->reminders, " reminders, ", run->overdue,
                                   " overdue notices, ", run->date_tasks, " date-triggered tasks"));
    }
  });
}

TasksHost::~TasksHost() {
  loops_.Stop();
  automation_.reset();
  tasks_.reset();
  engine_.reset();
  db_.reset();
}

}  // namespace crm::tasks
