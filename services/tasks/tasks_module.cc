#include "services/tasks/tasks_module.h"

#include "absl/strings/str_cat.h"
#include "libs/server/engine_host.h"
#include "libs/server/logging.h"
#include "prometheus/gauge.h"
#include "services/tasks/task_engine.h"
#include "services/tasks/tasks_service.h"

namespace crm::tasks {

const server::ServiceModule& Module() {
  static const server::ServiceModule* const kModule = new server::ServiceModule(server::EngineModule<TaskEngine>(
      {.name = "tasks",
       .kafka = {.listen = "127.0.0.1:50063",
                 .metrics_listen = "127.0.0.1:9467",
                 .scheduler_help = "task reminders, overdue notices, date-triggered automation"}},
      {.spec = &TaskEngine::Spec,
       .services = &server::ServicesOver<TaskEngine, TasksService, AutomationService>,
       .scheduler = [](TaskEngine* engine, server::Metrics*) -> std::function<void(absl::Time)> {
         return [engine](absl::Time now) {
           auto run = engine->RunScheduler(now);
           if (!run.ok()) {
             server::LogWarn(absl::StrCat("tasks scheduler: ", run.status().ToString()));
           } else if (run->reminders + run->overdue + run->date_tasks > 0) {
             server::LogInfo(absl::StrCat("tasks scheduler: ", run->reminders, " reminders, ", run->overdue,
                                          " overdue notices, ", run->date_tasks, " date-triggered tasks"));
           }
         };
       },
       .gauges = [](TaskEngine* engine, const TaskEngine::Options& options,
                    server::Metrics* metrics) -> std::function<void()> {
         auto& pending = prometheus::BuildGauge()
                             .Name("crm_automation_pending_actions")
                             .Help("Tasks and reminders automation decided on and has not written yet.")
                             .Register(metrics->registry())
                             .Add({});
         auto& following = prometheus::BuildGauge()
                               .Name("crm_automation_following")
                               .Help("1 while the tasks service applies a followed topic; 0 while a record halts it.")
                               .Register(metrics->registry());
         return [engine, topics = options.followed_topics, &pending, &following] {
           if (auto n = engine->PendingActions(); n.ok()) pending.Set(static_cast<double>(*n));
           for (size_t i = 0; i < engine->followers().size() && i < topics.size(); ++i) {
             following.Add({{"topic", topics[i]}}).Set(engine->followers()[i]->status().ok() ? 1 : 0);
           }
         };
       }}));
  return *kModule;
}

}  // namespace crm::tasks
