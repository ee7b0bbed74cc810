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
  std::string bootstrap, data_dir = "data-" + module.name, listen = d.listen, metrics_listen = d.metrics_listen,
                         key_file;
  bool create_key = false, rebuild = false;
  int scheduler_seconds = 60;
  std::string max_token_lifetime = absl::FormatDuration(kDefaultMaxTokenLifetime);
  app.add_option("--bootstrap-servers", bootstrap, "Kafka bootstrap servers (env KAFKA_BOOTSTRAP_SERVERS)")
      ->envname("KAFKA_BOOTSTRAP_SERVERS")
      ->required();
  std::vector<std::string> kafka_properties;
  app.add_option("--kafka-property", kafka_properties,
                 "librdkafka property KEY=VALUE for every Kafka client, e.g. security.protocol=ssl "
                 "(repeatable; env KAFKA_PROPERTIES, separated by spaces)")
      ->envname("KAFKA_PROPERTIES")
      ->delimiter(' ');
  app.add_option("--data-dir", data_dir, "Folder for projections and key")->capture_default_str();
  app.add_option("--listen", listen, "gRPC address (port 0 picks one)")->capture_default_str();
  std::string dashboard_listen = d.dashboard_listen;
  if (module.dashboard) {
    app.add_option("--dashboard-listen", dashboard_listen, "Web dashboard (HTTP) address; empty disables")
        ->capture_default_str();
  }
  app.add_option("--metrics-listen", metrics_listen, "Prometheus /metrics address; empty disables")
      ->capture_default_str();
  app.add_option("--key-file", key_file, "Token signing key (default <data-dir>/signing.key; $CRM_SIGNING_KEY wins)");
  app.add_flag("--create-key", create_key, "Create the key file with a random key when missing");
  AddTokenLifetimeFlag(app, &max_token_lifetime);
  if (d.projections) app.add_flag("--rebuild", rebuild, "Rebuild the projections from the log before serving");
  RuntimeOptions ropts;
  AddRuntimeFlags(app, &ropts);
  if (d.scheduler) {
    app.add_option("--scheduler-interval", scheduler_seconds,
                   absl::StrCat("Seconds between scheduler runs (", d.scheduler_help, "); 0 disables"))
        ->capture_default_str()
        ->check(CLI::Range(0, 86400));
  }
  std::unique_ptr<ModuleFlags> module_flags;
  if (module.add_flags) module_flags = module.add_flags(app);
  CLI11_PARSE(app, argc, argv);
  if (key_file.empty()) key_file = data_dir + "/signing.key";
  const TokenPolicy token_policy = TokenPolicyOrExit(max_token_lifetime);
  eventlog::KafkaLogOptions kopts;
  kopts.bootstrap_servers = bootstrap;
  kopts.client_id = name;
  absl::StatusOr<std::map<std::string, std::string>> extra = eventlog::ParseKafkaProperties(kafka_properties);
  if (!extra.ok()) ExitWithError(std::string(extra.status().message()));
  kopts.extra = *std::move(extra);

  InitJsonLogging(name);
  PrepareDataDirOrExit(data_dir);
  auto key = LoadProcessSigningKey(key_file, create_key);
  if (!key.ok()) ExitWithError(std::string(key.status().message()));
  auto log = eventlog::OpenKafkaLog(kopts);
  if (!log.ok()) ExitWithError(std::string(log.status().message()));
  auto metrics = Metrics::Start(metrics_listen);
  if (!metrics.ok()) ExitWithError(std::string(metrics.status().message()));
  Metrics* m = metrics->get();

  Authenticator auth(*key, SystemClock::Get(), token_policy);
  ropts.listen = listen;
  Runtime runtime(ropts, &auth, m);
  HostOptions host_options{.dir = data_dir + "/" + module.name, .rebuild = rebuild, .clock = SystemClock::Get(),
                           .metrics = m, .scheduler_interval = absl::Seconds(scheduler_seconds),
                           .signing_key = *key, .max_token_lifetime = token_policy.max_lifetime};
  auto host = module.open(log->get(), &runtime, std::move(host_options), module_flags.get());
  if (!host.ok()) ExitWithError(std::string(host.status().message()));
  if (module.dashboard && !dashboard_listen.empty()) {
    if (auto s = (*host)->StartDashboard(dashboard_listen); !s.ok()) ExitWithError(std::string(s.message()));
    LogInfo(absl::StrCat(name, " dashboard on http://", dashboard_listen.substr(0, dashboard_listen.rfind(':')), ":",
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
