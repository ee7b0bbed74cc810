#include "services/opportunities/opportunities_module.h"

#include "absl/strings/str_cat.h"
#include "libs/server/engine_host.h"
#include "libs/server/logging.h"
#include "libs/topics/topics.h"
#include "services/opportunities/opportunities_service.h"
#include "services/opportunities/opportunity_engine.h"

namespace crm::opportunities {

const server::ServiceModule& Module() {
  static const server::ServiceModule* const kModule = new server::ServiceModule(server::EngineModule<OpportunityEngine>(
      {.name = "opportunities",
       .kafka = {.listen = "127.0.0.1:50062",
                 .metrics_listen = "127.0.0.1:9466",
                 .scheduler_help = "stage timeouts, contract renewal notices and expiry, overdue instalments"}},
      {.spec = &OpportunityEngine::Spec,
       .services = &server::ServicesOver<OpportunityEngine, OpportunitiesService, QuotesService, ContractsService>,
       .scheduler = [](OpportunityEngine* engine, server::Metrics*) -> std::function<void(absl::Time)> {
         return [engine](absl::Time now) {
           auto run = engine->RunScheduler(now);
           if (!run.ok()) {
             server::LogWarn(absl::StrCat("opportunities scheduler: ", run.status().ToString()));
           } else if (run->stage_timeouts + run->renewal_notices + run->expired + run->overdue_instalments > 0) {
             server::LogInfo(absl::StrCat("opportunities scheduler: ", run->stage_timeouts, " stage timeouts, ",
                                          run->renewal_notices, " renewal notices, ", run->expired,
                                          " contracts expired, ", run->overdue_instalments, " instalments overdue"));
           }
         };
       },
       // The label this view had before the others' "<name>_view_of_<topic>"; dashboards and
       // alerts may name it.
       .lag_label = [](const std::string& topic) -> std::string {
         return topic == topics::kCustomers ? "opportunities_customers_view"
                                            : absl::StrCat("opportunities_view_of_", topic);
       }}));
  return *kModule;
}

}  // namespace crm::opportunities
