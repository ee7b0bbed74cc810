#ifndef CRM_SERVICES_TASKS_TASKS_HOST_H_
#define CRM_SERVICES_TASKS_TASKS_HOST_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/eventlog/log.h"
#include "libs/server/metrics.h"
#include "libs/server/periodic.h"
#include "libs/server/runtime.h"
#include "libs/server/service_projections.h"
#include "services/tasks/task_engine.h"
#include "services/tasks/tasks_service.h"

namespace crm::tasks {

// The tasks service as a process hosts it (crmd, crm-tasks): projections opened (rebuilt when
// asked or built by other code), the engine caught up with its topic and the topics it
// follows, the gRPC services, and background loops: the projection-lag gauges and the
// scheduler (reminders, overdue notices, date triggers). One per process.
class TasksHost {
 public:
  using Options = server::HostOptions;

  static absl::StatusOr<std::unique_ptr<TasksHost>> Open(eventlog::Log* log, server::Runtime* runtime, Options options);
  ~TasksHost();

  std::vector<grpc::Service*> services() { return {tasks_.get(), automation_.get()}; }
  TaskEngine* engine() { return engine_.get(); }
  void StartLoops();

 private:
  TasksHost(eventlog::Log* log, Options o) : log_(log), options_(std::move(o)) {}

  eventlog::Log* log_;
  const Options options_;
  TaskEngine::Options engine_options_;
  std::unique_ptr<projection::ProjectionDb> db_;
  std::unique_ptr<TaskEngine> engine_;
  std::unique_ptr<TasksService> tasks_;
  std::unique_ptr<AutomationService> automation_;
  server::Periodic loops_;
};

}  // namespace crm::tasks

#endif  // CRM_SERVICES_TASKS_TASKS_HOST_H_
