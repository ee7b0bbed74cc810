#ifndef CRM_LIBS_SERVER_SERVICE_PROJECTIONS_H_
#define CRM_LIBS_SERVER_SERVICE_PROJECTIONS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/common/clock.h"
#include "libs/common/token.h"
#include "libs/eventlog/log.h"
#include "libs/server/metrics.h"
#include "libs/projection/rebuild.h"

namespace crm::server {

// What a service host is opened with (ServiceModule::open, service_module.h).
struct HostOptions {
  // Folder of the projections. Required.
  std::string dir;
  // Rebuild the projections from the log before serving. Default: false.
  bool rebuild = false;
  // Required.
  Clock* clock = nullptr;
  // Required; must outlive the host.
  Metrics* metrics = nullptr;
  // How often the service's scheduler runs; zero disables it. Default: 1 minute.
  absl::Duration scheduler_interval = absl::Minutes(1);
  // The token signing key, for hosts that call other services. Default: empty.
  std::string signing_key;
  // The longest lifetime the services accept (--max-token-lifetime): tokens a host mints
  // for its calls live no longer. Default: kDefaultMaxTokenLifetime.
  absl::Duration max_token_lifetime = kDefaultMaxTokenLifetime;
};

// A service host's projections at start: rebuilt from the log first when `rebuild` (crmd
// --rebuild), or when another projection version built them, with what happened and how
// long it took logged under `service`.
absl::StatusOr<std::unique_ptr<projection::ProjectionDb>> OpenServiceProjections(eventlog::Log& log,
                                                                                const projection::ProjectionSpec& spec,
                                                                                const std::string& dir, bool rebuild,
                                                                                const std::string& service);

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_SERVICE_PROJECTIONS_H_
