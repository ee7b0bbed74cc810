#include "services/tasks/tasks_service.h"

#include "libs/server/serve.h"

namespace crm::tasks {

CRM_SERVE_WRITE(TasksService, CreateTask, v1::CreateTaskRequest, v1::Task, CreateTask)
CRM_SERVE_READ(TasksService, GetTask, v1::GetTaskRequest, v1::Task, GetTask)
CRM_SERVE_WRITE(TasksService, UpdateTask, v1::UpdateTaskRequest, v1::Task, UpdateTask)
CRM_SERVE_WRITE(TasksService, CompleteTask, v1::CompleteTaskRequest, v1::Task, CompleteTask)
CRM_SERVE_WRITE(TasksService, CancelTask, v1::CancelTaskRequest, v1::Task, CancelTask)
CRM_SERVE_WRITE(TasksService, ReopenTask, v1::ReopenTaskRequest, v1::Task, ReopenTask)
CRM_SERVE_READ(TasksService, ListTasks, v1::ListTasksRequest, v1::ListTasksResponse, ListTasks)
CRM_SERVE_READ(TasksService, CountTasks, v1::CountTasksRequest, v1::TaskCounts, CountTasks)
CRM_SERVE_READ(TasksService, ListEvents, v1::ListEventsRequest, v1::ListEventsResponse, ListEvents)

CRM_SERVE_WRITE(AutomationService, CreateRule, v1::CreateRuleRequest, v1::Rule, CreateRule)
CRM_SERVE_READ(AutomationService, GetRule, v1::GetRuleRequest, v1::Rule, GetRule)
CRM_SERVE_READ(AutomationService, ListRules, v1::ListRulesRequest, v1::ListRulesResponse, ListRules)
CRM_SERVE_WRITE(AutomationService, UpdateRule, v1::UpdateRuleRequest, v1::Rule, UpdateRule)
CRM_SERVE_WRITE(AutomationService, DeleteRule, v1::DeleteRuleRequest, v1::Rule, DeleteRule)

}  // namespace crm::tasks
