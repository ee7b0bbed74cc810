// crm-tasks: the tasks service alone, on Kafka (docs/architecture.md §6). It follows the customers and
// opportunities topics, so those services write to the same cluster.
#include "libs/server/kafka_service_main.h"
#include "services/tasks/tasks_module.h"

int main(int argc, char** argv) { return crm::server::KafkaServiceMain(crm::tasks::Module(), argc, argv); }
