#include "libs/server/kafka_service_main.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "libs/common/clock.h"
#include "libs/eventlog/kafka_log.h"
#include "libs/server/logging.h"
#include "libs/server/metrics.h"
#include "libs/server/process.h"
#include "libs/server/runtime.h"
#include "libs/server/runtime_flags.h"
#include "libs/server/service_projections.h"

namespace crm::server {

int KafkaServiceMain(const ServiceModule& module, int argc, char** argv) {
  RestrictNewFileModes();
  BlockTerminationSignals();
  SkipMutexDeadlockDetection();
  const KafkaServiceDefaults& d = module.kafka;
  const std::string name = absl::StrCat("crm-", module.name);
  CLI::App app{absl::StrCat(name, ": the ", module.name, " service on Kafka")};
  std::string bootstrap;
  app.add_option("--bootstrap-servers", bootstrap, "Kafka bootstrap servers (env KAFKA_BOOTSTRAP_SERVERS)")
      ->envname("KAFKA_BOOTSTRAP_SERVERS")
      ->required();
  std::vector<std::string> kafka_properties;
  app.add_option("--kafka-property", kafka_properties,
                 "librdkafka property KEY=VALUE for every Kafka client, e.g. security.protocol=ssl "
                 "(repeatable; env KAFKA_PROPERTIES, separated by spaces)")
      ->envname("KAFKA_PROPERTIES")
      ->delimiter(' ');
  ServerFlags f{.data_dir = "data-" + module.name,
                .listen = d.listen,
                .metrics_listen = d.metrics_listen,
                .dashboard_listen = d.dashboard_listen};
  AddServerFlags(app, &f,
                 {.dashboard = module.dashboard ? "Web dashboard (HTTP) address; empty disables" : nullptr,
                  .rebuild = d.projections ? "Rebuild the projections from the log before serving" : nullptr,
                  .scheduled = d.scheduler ? d.scheduler_help : ""});
  std::unique_ptr<ModuleFlags> module_flags;
  if (module.add_flags) module_flags = module.add_flags(app);
  CLI11_PARSE(app, argc, argv);
  const TokenPolicy token_policy = TokenPolicyOrExit(f.max_token_lifetime);
  eventlog::KafkaLogOptions kopts;
  kopts.bootstrap_servers = bootstrap;
  kopts.client_id = name;
  absl::StatusOr<std::map<std::string, std::string>> extra = eventlog::ParseKafkaProperties(kafka_properties);
  if (!extra.ok()) ExitWithError(std::string(extra.status().message()));
  kopts.extra = *std::move(extra);

  InitJsonLogging(name);
  PrepareDataDirOrExit(f.data_dir);
  auto key = LoadProcessSigningKey(f.KeyFile(), f.create_key);
  if (!key.ok()) ExitWithError(std::string(key.status().message()));
  auto log = eventlog::OpenKafkaLog(kopts);
  if (!log.ok()) ExitWithError(std::string(log.status().message()));
  auto metrics = Metrics::Start(f.metrics_listen);
  if (!metrics.ok()) ExitWithError(std::string(metrics.status().message()));
  Metrics* m = metrics->get();

  Authenticator auth(*key, SystemClock::Get(), token_policy);
  f.runtime.listen = f.listen;
  Runtime runtime(f.runtime, &auth, m);
  HostOptions host_options{.dir = f.data_dir + "/" + module.name, .rebuild = f.rebuild, .clock = SystemClock::Get(),
                           .metrics = m, .scheduler_interval = absl::Seconds(f.scheduler_seconds),
                           .signing_key = *key, .max_token_lifetime = token_policy.max_lifetime};
  auto host = module.open(log->get(), &runtime, std::move(host_options), module_flags.get());
  if (!host.ok()) ExitWithError(std::string(host.status().message()));
  if (module.dashboard && !f.dashboard_listen.empty()) {
    if (auto s = (*host)->StartDashboard(f.dashboard_listen); !s.ok()) ExitWithError(std::string(s.message()));
    LogInfo(absl::StrCat(name, " dashboard on http://", f.dashboard_listen.substr(0, f.dashboard_listen.rfind(':')), ":",
                         (*host)->dashboard_port(), "/"));
  }
  if (auto s = runtime.Start((*host)->services()); !s.ok()) ExitWithError(std::string(s.message()));
  (*host)->StartLoops();
  LogInfo(absl::StrCat(name, " serving gRPC on port ", runtime.port(), ", Kafka ", bootstrap, ", metrics on port ",
                       m->port()));
  const int sig = WaitForTerminationSignal();
  LogInfo(absl::StrCat("signal ", sig, ": draining"));
  runtime.Shutdown();
  host->reset();
  LogInfo(absl::StrCat(name, " stopped"));
  return 0;
}

}  // namespace crm::server
