#ifndef CRM_LIBS_SERVER_KAFKA_SERVICE_MAIN_H_
#define CRM_LIBS_SERVER_KAFKA_SERVICE_MAIN_H_

// The main() of a service alone on Kafka (crm-customers, crm-opportunities, ...; DESIGN §6):
// flags, private data folder, signing key and token policy, Kafka log, metrics, the gRPC
// runtime, the service's host, and a drain on SIGTERM. `Host` has Open(log, runtime, {dir,
// rebuild, clock, metrics, scheduler_interval, signing_key, max_token_lifetime}), services()
// and StartLoops(); a host with flags of its own
// has a `Flags` struct, static AddFlags(CLI::App&, Flags&) and Open(log, runtime, options, flags).
#include <map>
#include <string>
#include <type_traits>
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

struct KafkaServiceDefaults {
  std::string name;            // crm-customers
  std::string service;         // customers: the projections' folder under --data-dir
  std::string listen;          // 127.0.0.1:50061
  std::string metrics_listen;  // 127.0.0.1:9465
  std::string scheduler_help;  // what the scheduler does
  // Hosts with StartDashboard(listen): its default address ("" disables by default).
  std::string dashboard_listen;
  // Whether the host has projections to rebuild and a scheduler: without, --rebuild and
  // --scheduler-interval are not offered. Default: true.
  bool projections = true;
  bool scheduler = true;
};

// Host::Flags when the host has one, else an empty struct.
template <typename Host, typename = void>
struct HostFlagsOf {
  struct type {};
};
template <typename Host>
struct HostFlagsOf<Host, std::void_t<typename Host::Flags>> {
  using type = typename Host::Flags;
};

template <typename Host>
int KafkaServiceMain(int argc, char** argv, const KafkaServiceDefaults& d) {
  RestrictNewFileModes();
  BlockTerminationSignals();
  SkipMutexDeadlockDetection();
  CLI::App app{absl::StrCat(d.name, ": the ", d.service, " service on Kafka")};
  std::string bootstrap, data_dir = "data-" + d.service, listen = d.listen, metrics_listen = d.metrics_listen, key_file;
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
  if constexpr (requires(Host& h) { h.StartDashboard(std::string()); }) {
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
  constexpr bool kHostFlags = requires { typename Host::Flags; };
  typename HostFlagsOf<Host>::type host_flags;
  if constexpr (kHostFlags) Host::AddFlags(app, host_flags);
  CLI11_PARSE(app, argc, argv);
  if (key_file.empty()) key_file = data_dir + "/signing.key";
  const TokenPolicy token_policy = TokenPolicyOrExit(max_token_lifetime);
  eventlog::KafkaLogOptions kopts;
  kopts.bootstrap_servers = bootstrap;
  kopts.client_id = d.name;
  absl::StatusOr<std::map<std::string, std::string>> extra = eventlog::ParseKafkaProperties(kafka_properties);
  if (!extra.ok()) ExitWithError(std::string(extra.status().message()));
  kopts.extra = *std::move(extra);

  InitJsonLogging(d.name);
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
  const HostOptions host_options{.dir = data_dir + "/" + d.service, .rebuild = rebuild, .clock = SystemClock::Get(),
                                 .metrics = m, .scheduler_interval = absl::Seconds(scheduler_seconds),
                                 .signing_key = *key, .max_token_lifetime = token_policy.max_lifetime};
  auto host = [&] {
    if constexpr (kHostFlags) {
      return Host::Open(log->get(), &runtime, host_options, host_flags);
    } else {
      return Host::Open(log->get(), &runtime, host_options);
    }
  }();
  if (!host.ok()) ExitWithError(std::string(host.status().message()));
  if constexpr (requires(Host& h) { h.StartDashboard(std::string()); }) {
    if (!dashboard_listen.empty()) {
      if (auto s = (*host)->StartDashboard(dashboard_listen); !s.ok()) ExitWithError(std::string(s.message()));
      LogInfo(absl::StrCat(d.name, " dashboard on http://", dashboard_listen.substr(0, dashboard_listen.rfind(':')), ":",
                           (*host)->dashboard_port(), "/"));
    }
  }
  if (auto s = runtime.Start((*host)->services()); !s.ok()) ExitWithError(std::string(s.message()));
  (*host)->StartLoops();
  LogInfo(absl::StrCat(d.name, " serving gRPC on port ", runtime.port(), ", Kafka ", bootstrap, ", metrics on port ",
                       m->port()));
  const int sig = WaitForTerminationSignal();
  LogInfo(absl::StrCat("signal ", sig, ": draining"));
  runtime.Shutdown();
  host->reset();
  LogInfo(absl::StrCat(d.name, " stopped"));
  return 0;
}

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_KAFKA_SERVICE_MAIN_H_
