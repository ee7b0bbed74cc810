// crm-customers: the customers service alone, on Kafka (docs/architecture.md §6).
#include "libs/server/kafka_service_main.h"
#include "services/customers/customers_module.h"

int main(int argc, char** argv) { return crm::server::KafkaServiceMain(crm::customers::Module(), argc, argv); }
