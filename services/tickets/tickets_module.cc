#include "services/tickets/tickets_module.h"

#include "absl/strings/str_cat.h"
#include "libs/server/engine_host.h"
#include "libs/server/logging.h"
#include "prometheus/counter.h"
#include "services/tickets/ticket_engine.h"
#include "services/tickets/tickets_service.h"

namespace crm::tickets {

const server::ServiceModule& Module() {
  static const server::ServiceModule* const kModule = new server::ServiceModule(server::EngineModule<TicketEngine>(
      {.name = "tickets",
       .kafka = {.listen = "127.0.0.1:50064", .metrics_listen = "127.0.0.1:9468",
                 .scheduler_help = "SLA warnings and breaches"}},
      {.spec = &TicketEngine::Spec,
       .services = &server::ServicesOver<TicketEngine, TicketTypesService, TicketsService, SlaService>,
       .scheduler = [](TicketEngine* engine, server::Metrics* metrics) -> std::function<void(absl::Time)> {
         auto& notices = prometheus::BuildCounter()
                             .Name("crm_sla_notices_total")
                             .Help("SLA warnings and breaches the scheduler recorded on tickets.")
                             .Register(metrics->registry());
         auto& warnings = notices.Add({{"kind", "warning"}});
         auto& breaches = notices.Add({{"kind", "breach"}});
         return [engine, &warnings, &breaches](absl::Time now) {
           auto run = engine->RunScheduler(now);
           if (!run.ok()) {
             server::LogWarn(absl::StrCat("tickets SLA scheduler: ", run.status().ToString()));
             return;
           }
           warnings.Increment(static_cast<double>(run->warnings));
           breaches.Increment(static_cast<double>(run->breaches));
           if (run->warnings + run->breaches > 0) {
             server::LogInfo(absl::StrCat("tickets SLA scheduler: ", run->tickets, " open tickets, ", run->warnings,
                                          " warnings, ", run->breaches, " breaches"));
           }
         };
       }}));
  return *kModule;
}

}  // namespace crm::tickets
