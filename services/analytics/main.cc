// crm-analytics: the analytics service alone, on Kafka (DESIGN §6). It follows the other
// services' topics; it writes none.
#include "libs/server/kafka_service_main.h"
#include "services/analytics/analytics_host.h"

int main(int argc, char** argv) {
  return crm::server::KafkaServiceMain<crm::analytics::AnalyticsHost>(
      argc, argv,
      {.name = "crm-analytics", .service = "analytics", .listen = "127.0.0.1:50065", .metrics_listen = "127.0.0.1:9469",
       .scheduler_help = "none: analytics has no scheduler", .dashboard_listen = "127.0.0.1:8065"});
}
