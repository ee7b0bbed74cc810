// crm-tasks: the tasks service alone, on Kafka (DESIGN §6). It follows the customers and
// opportunities topics, so those services write to the same cluster.
#include "libs/server/kafka_service_main.h"
#include "services/tasks/tasks_host.h"

int main(int argc, char** argv) {
  return crm::server::KafkaServiceMain<crm::tasks::TasksHost>(
      argc, argv,
      {.name = "crm-tasks", .service = "tasks", .listen = "127.0.0.1:50063", .metrics_listen = "127.0.0.1:9467",
       .scheduler_help = "task reminders, overdue notices, date-triggered automation"});
}
