// crm-customers: the customers service alone, on Kafka (DESIGN §6).
#include <filesystem>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "libs/common/clock.h"
#include "libs/eventlog/kafka_log.h"
#include "libs/server/logging.h"
#include "libs/server/process.h"
#include "libs/server/runtime.h"
#include "services/customers/customers_host.h"

int main(int argc, char** argv) {
  crm::server::BlockTerminationSignals();
  CLI::App app{"crm-customers: the customers service on Kafka"};
  std::string bootstrap, data_dir = "data-customers", listen = "127.0.0.1:50061",
                         metrics_listen = "127.0.0.1:9465", key_file;
  bool create_key = false;
  int max_inflight = 512;
  int scheduler_seconds = 60;
  app.add_option("--bootstrap-servers", bootstrap, "Kafka bootstrap servers (env KAFKA_BOOTSTRAP_SERVERS)")
      ->envname("KAFKA_BOOTSTRAP_SERVERS")->required();
  app.add_option("--data-dir", data_dir, "Folder for projections and key")->capture_default_str();
  app.add_option("--listen", listen, "gRPC address (port 0 picks one)")->capture_default_str();
  app.add_option("--metrics-listen", metrics_listen, "Prometheus /metrics address; empty disables")
      ->capture_default_str();
  app.add_option("--key-file", key_file, "Token signing key (default <data-dir>/signing.key; $CRM_SIGNING_KEY wins)");
  app.add_flag("--create-key", create_key, "Create the key file with a random key when missing");
  app.add_option("--max-inflight", max_inflight, "Requests in flight before RESOURCE_EXHAUSTED")
      ->capture_default_str()->check(CLI::Range(1, 1 << 20));
  app.add_option("--scheduler-interval", scheduler_seconds,
                 "Seconds between scheduler runs (public-pool returns, recycle-bin purges); 0 disables")
      ->capture_default_str()->check(CLI::Range(0, 86400));
  CLI11_PARSE(app, argc, argv);
  if (key_file.empty()) key_file = data_dir + "/signing.key";

  crm::server::InitJsonLogging("crm-customers");
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) crm::server::ExitWithError(absl::StrCat("cannot create ", data_dir, ": ", ec.message()));
  auto key = crm::server::LoadProcessSigningKey(key_file, create_key);
  if (!key.ok()) crm::server::ExitWithError(std::string(key.status().message()));
  crm::eventlog::KafkaLogOptions kopts;
  kopts.bootstrap_servers = bootstrap;
  kopts.client_id = "crm-customers";
  auto log = crm::eventlog::OpenKafkaLog(kopts);
  if (!log.ok()) crm::server::ExitWithError(std::string(log.status().message()));
  auto metrics = crm::server::Metrics::Start(metrics_listen);
  if (!metrics.ok()) crm::server::ExitWithError(std::string(metrics.status().message()));
  crm::server::Metrics* m = metrics->get();

  crm::server::Authenticator auth(*key, crm::SystemClock::Get());
  crm::server::RuntimeOptions ropts;
  ropts.listen = listen;
  ropts.max_inflight = max_inflight;
  crm::server::Runtime runtime(ropts, &auth, m);
  auto customers = crm::customers::CustomersHost::Open(
      log->get(), &runtime,
      {.dir = data_dir + "/customers", .clock = crm::SystemClock::Get(), .metrics = m,
       .scheduler_interval = absl::Seconds(scheduler_seconds)});
  if (!customers.ok()) crm::server::ExitWithError(std::string(customers.status().message()));
  if (auto s = runtime.Start((*customers)->services()); !s.ok()) {
    crm::server::ExitWithError(std::string(s.message()));
  }
  (*customers)->StartLoops();
  crm::server::LogInfo(absl::StrCat("crm-customers serving gRPC on port ", runtime.port(), ", Kafka ",
                                    bootstrap, ", metrics on port ", m->port()));
  const int sig = crm::server::WaitForTerminationSignal();
  crm::server::LogInfo(absl::StrCat("signal ", sig, ": draining"));
  runtime.Shutdown();
  customers->reset();
  crm::server::LogInfo("crm-customers stopped");
  return 0;
}
