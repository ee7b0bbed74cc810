// crm-tickets: the tickets service alone, on Kafka (docs/architecture.md §6). It follows the customers topic,
// so that service writes to the same cluster.
#include "libs/server/kafka_service_main.h"
#include "services/tickets/tickets_module.h"

int main(int argc, char** argv) { return crm::server::KafkaServiceMain(crm::tickets::Module(), argc, argv); }
