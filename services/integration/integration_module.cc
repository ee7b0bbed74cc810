#include "services/integration/integration_module.h"

#include "libs/common/status_macros.h"
#include "libs/topics/topics.h"
#include "services/integration/integration_host.h"

namespace crm::integration {

const server::ServiceModule& Module() {
  static const server::ServiceModule* const kModule = [] {
    auto* m = new server::ServiceModule{
        .name = "integration",
        .kafka = {.listen = "127.0.0.1:50066", .metrics_listen = "127.0.0.1:9470", .projections = false,
                  .scheduler = false},
        .in_crmd = false};
    // The relay republishes every service's events; the inbound processor reads what ERP/OA
    // systems send.
    m->follows = topics::ServiceTopics();
    m->follows.push_back(topics::kInbound);
    m->open = [](eventlog::Log* log, server::Runtime* runtime, server::HostOptions options,
                 const server::ModuleFlags* flags) -> absl::StatusOr<std::unique_ptr<server::ServiceHost>> {
      // Outside its Kafka main (no flags parsed) it runs with the flags' defaults.
      const IntegrationHost::Flags f =
          flags != nullptr ? static_cast<const IntegrationHost::Flags&>(*flags) : IntegrationHost::Flags{};
      CRM_ASSIGN_OR_RETURN(std::unique_ptr<IntegrationHost> host,
                           IntegrationHost::Open(log, runtime, std::move(options), f));
      return std::unique_ptr<server::ServiceHost>(std::move(host));
    };
    m->add_flags = [](CLI::App& app) -> std::unique_ptr<server::ModuleFlags> {
      auto f = std::make_unique<IntegrationHost::Flags>();
      IntegrationHost::AddFlags(app, *f);
      return f;
    };
    return m;
  }();
  return *kModule;
}

}  // namespace crm::integration
