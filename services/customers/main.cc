// crm-customers: the customers service alone, on Kafka (DESIGN §6).
#include "libs/server/kafka_service_main.h"
#include "services/customers/customers_host.h"

int main(int argc, char** argv) {
  return crm::server::KafkaServiceMain<crm::customers::CustomersHost>(
      argc, argv,
      {.name = "crm-customers", .service = "customers", .listen = "127.0.0.1:50061",
       .metrics_listen = "127.0.0.1:9465", .scheduler_help = "public-pool returns, recycle-bin purges"});
}
