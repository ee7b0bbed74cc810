// crm-opportunities: the opportunities service alone, on Kafka (docs/architecture.md §6). It follows the
// customers topic, so crm-customers writes to the same cluster.
#include "libs/server/kafka_service_main.h"
#include "services/opportunities/opportunities_module.h"

int main(int argc, char** argv) { return crm::server::KafkaServiceMain(crm::opportunities::Module(), argc, argv); }
