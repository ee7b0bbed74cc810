// crm-tickets: the tickets service alone, on Kafka (DESIGN §6). It follows the customers topic,
// so that service writes to the same cluster.
#include "libs/server/kafka_service_main.h"
#include "services/tickets/tickets_host.h"

int main(int argc, char** argv) {
  return crm::server::KafkaServiceMain<crm::tickets::TicketsHost>(
      argc, argv,
      {.name = "crm-tickets", .service = "tickets", .listen = "127.0.0.1:50064", .metrics_listen = "127.0.0.1:9468",
       .scheduler_help = "SLA warnings and breaches"});
}
