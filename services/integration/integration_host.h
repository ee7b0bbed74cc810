#ifndef CRM_SERVICES_INTEGRATION_INTEGRATION_HOST_H_
#define CRM_SERVICES_INTEGRATION_INTEGRATION_HOST_H_

#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "libs/eventlog/log.h"
#include "libs/server/periodic.h"
#include "libs/server/runtime.h"
#include "libs/server/service_module.h"
#include "libs/server/service_projections.h"
#include "services/integration/grpc_sink.h"
#include "services/integration/inbound.h"
#include "services/integration/public_relay.h"

namespace crm::integration {

// crm-integration as a process hosts it (integration_module.h): the public-events relay and
// the inbound processor with its gRPC sink. It serves gRPC health only, and metrics.
class IntegrationHost final : public server::ServiceHost {
 public:
  using Options = server::HostOptions;
  struct Flags : server::ModuleFlags {
    std::string customers_address = "127.0.0.1:50061";
    std::string opportunities_address = "127.0.0.1:50062";
    bool relay = true;
    bool inbound = true;
  };
  static void AddFlags(CLI::App& app, Flags& flags);

  static absl::StatusOr<std::unique_ptr<IntegrationHost>> Open(eventlog::Log* log, server::Runtime* runtime,
                                                                Options options, Flags flags);
  std::vector<grpc::Service*> services() override { return {}; }
  void StartLoops() override;

 private:
  explicit IntegrationHost(Options o) : options_(std::move(o)) {}

  const Options options_;
  std::unique_ptr<PublicEventsRelay> relay_;
  std::unique_ptr<GrpcCommandSink> sink_;
  std::unique_ptr<InboundProcessor> inbound_;
  server::Periodic loops_;
};

}  // namespace crm::integration

#endif  // CRM_SERVICES_INTEGRATION_INTEGRATION_HOST_H_
