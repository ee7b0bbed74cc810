#include "services/customers/customers_module.h"

#include "absl/strings/str_cat.h"
#include "libs/server/engine_host.h"
#include "libs/server/logging.h"
#include "services/customers/customer_engine.h"
#include "services/customers/customers_service.h"

namespace crm::customers {

const server::ServiceModule& Module() {
  static const server::ServiceModule* const kModule = new server::ServiceModule(server::EngineModule<CustomerEngine>(
      {.name = "customers",
       .kafka = {.listen = "127.0.0.1:50061",
                 .metrics_listen = "127.0.0.1:9465",
                 .scheduler_help = "public-pool returns, recycle-bin purges"}},
      {.spec = [](const CustomerEngine::Options& o) {
         return CustomerEngine::Spec(o.topic, o.partitions, o.opportunities_topic, o.tasks_topic);
       },
       .services = &server::ServicesOver<CustomerEngine, CustomersService, LeadsService>,
       .scheduler = [](CustomerEngine* engine, server::Metrics*) -> std::function<void(absl::Time)> {
         return [engine](absl::Time now) {
           auto run = engine->RunScheduler(now);
           if (!run.ok()) {
             server::LogWarn(absl::StrCat("customers scheduler: ", run.status().ToString()));
           } else if (run->returned_to_pool + run->purged > 0) {
             server::LogInfo(absl::StrCat("customers scheduler: ", run->returned_to_pool,
                                          " returned to the public pool, ", run->purged,
                                          " purged from the recycle bin"));
           }
         };
       }}));
  return *kModule;
}

}  // namespace crm::customers
