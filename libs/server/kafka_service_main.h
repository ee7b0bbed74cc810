#ifndef CRM_LIBS_SERVER_KAFKA_SERVICE_MAIN_H_
#define CRM_LIBS_SERVER_KAFKA_SERVICE_MAIN_H_

// The main() of a service alone on Kafka (crm-customers, crm-opportunities, ...; docs/architecture.md §6).
#include "libs/server/service_module.h"

namespace crm::server {

// Runs `module` as the process crm-<name>: flags (module.kafka's defaults, and the module's own
// through add_flags), its data folder, signing key and token policy, the Kafka log, metrics,
// the gRPC runtime, the module's host, its dashboard when it has one, and a drain on SIGTERM.
// Returns the process's exit code; exits non-zero with one line on a configuration or start-up
// error.
int KafkaServiceMain(const ServiceModule& module, int argc, char** argv);

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_KAFKA_SERVICE_MAIN_H_
