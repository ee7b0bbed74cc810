// crm-integration: ERP/OA integration on Kafka (issue 8). Republishes every service's events
// as CloudEvents JSON on crm.public.events.v1 and applies the commands ERP/OA systems put on
// crm.inbound.v1 through the customers and opportunities services' gRPC APIs; what cannot be
// applied goes to crm.inbound.v1.dlq with the reason in its headers.
#include "libs/server/kafka_service_main.h"
#include "services/integration/integration_module.h"

int main(int argc, char** argv) { return crm::server::KafkaServiceMain(crm::integration::Module(), argc, argv); }
