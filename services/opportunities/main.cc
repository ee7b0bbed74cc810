// crm-opportunities: the opportunities service alone, on Kafka (DESIGN §6). It follows the
// customers topic, so crm-customers writes to the same cluster.
#include "libs/server/kafka_service_main.h"
#include "services/opportunities/opportunities_host.h"

int main(int argc, char** argv) {
  return crm::server::KafkaServiceMain<crm::opportunities::OpportunitiesHost>(
      argc, argv,
      {.name = "crm-opportunities", .service = "opportunities", .listen = "127.0.0.1:50062",
       .metrics_listen = "127.0.0.1:9466",
       .scheduler_help = "stage timeouts, contract renewal notices and expiry, overdue instalments"});
}
