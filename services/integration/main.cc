// crm-integration: ERP/OA integration on Kafka (issue 8). Republishes every service's events
// as CloudEvents JSON on crm.public.events.v1 and applies the commands ERP/OA systems put on
// crm.inbound.v1 through the customers and opportunities services' gRPC APIs; what cannot be
// applied goes to crm.inbound.v1.dlq with the reason in its headers.
#include "libs/server/kafka_service_main.h"
#include "services/integration/integration_host.h"

int main(int argc, char** argv) {
  return crm::server::KafkaServiceMain<crm::integration::IntegrationHost>(
      argc, argv,
      {.name = "crm-integration", .service = "integration", .listen = "127.0.0.1:50066",
       .metrics_listen = "127.0.0.1:9470", .projections = false, .scheduler = false});
}
