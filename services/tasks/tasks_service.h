#ifndef CRM_SERVICES_TASKS_TASKS_SERVICE_H_
#define CRM_SERVICES_TASKS_TASKS_SERVICE_H_

#include "crm/tasks/v1/tasks_service.grpc.pb.h"
#include "libs/server/runtime.h"
#include "services/tasks/task_engine.h"

namespace crm::tasks {

#define CRM_TASK_RPC(Rpc, Req, Resp) \
  grpc::ServerUnaryReactor* Rpc(grpc::CallbackServerContext* ctx, const v1::Req* req, v1::Resp* resp) override;

// gRPC faces of TaskEngine: proto in, proto out, absl::Status -> grpc::Status. No rules.
// `engine` and `runtime` must outlive them.
class TasksService final : public v1::TaskService::CallbackService {
 public:
  TasksService(TaskEngine* engine, server::Runtime* runtime) : engine_(engine), runtime_(runtime) {}
  CRM_TASK_RPC(CreateTask, CreateTaskRequest, Task)
  CRM_TASK_RPC(GetTask, GetTaskRequest, Task)
  CRM_TASK_RPC(UpdateTask, UpdateTaskRequest, Task)
  CRM_TASK_RPC(CompleteTask, CompleteTaskRequest, Task)
  CRM_TASK_RPC(CancelTask, CancelTaskRequest, Task)
  CRM_TASK_RPC(ReopenTask, ReopenTaskRequest, Task)
  CRM_TASK_RPC(ListTasks, ListTasksRequest, ListTasksResponse)
  CRM_TASK_RPC(CountTasks, CountTasksRequest, TaskCounts)
  CRM_TASK_RPC(ListEvents, ListEventsRequest, ListEventsResponse)

 private:
  TaskEngine* engine_;
  server::Runtime* runtime_;
};

class AutomationService final : public v1::AutomationService::CallbackService {
 public:
  AutomationService(TaskEngine* engine, server::Runtime* runtime) : engine_(engine), runtime_(runtime) {}
  CRM_TASK_RPC(CreateRule, CreateRuleRequest, Rule)
  CRM_TASK_RPC(GetRule, GetRuleRequest, Rule)
  CRM_TASK_RPC(ListRules, ListRulesRequest, ListRulesResponse)
  CRM_TASK_RPC(UpdateRule, UpdateRuleRequest, Rule)
  CRM_TASK_RPC(DeleteRule, DeleteRuleRequest, Rule)

 private:
  TaskEngine* engine_;
  server::Runtime* runtime_;
};

#undef CRM_TASK_RPC

}  // namespace crm::tasks

#endif  // CRM_SERVICES_TASKS_TASKS_SERVICE_H_
