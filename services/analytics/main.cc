// crm-analytics: the analytics service alone, on Kafka (docs/architecture.md §6). It follows the other
// services' topics; it writes none.
#include "libs/server/kafka_service_main.h"
#include "services/analytics/analytics_module.h"

int main(int argc, char** argv) { return crm::server::KafkaServiceMain(crm::analytics::Module(), argc, argv); }
