// crmd: every service in one process on the embedded log (DESIGN §6): customers,
// opportunities, tasks, tickets and analytics (its reports and the web dashboard).
#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "libs/common/clock.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/server/logging.h"
#include "libs/server/process.h"
#include "libs/server/runtime.h"
#include "libs/server/runtime_flags.h"
#include "services/analytics/analytics_host.h"
#include "services/customers/customers_host.h"
#include "services/opportunities/opportunities_host.h"
#include "services/tasks/tasks_host.h"
#include "services/tickets/tickets_host.h"

int main(int argc, char** argv) {
  crm::server::RestrictNewFileModes();
  crm::server::BlockTerminationSignals();
  crm::server::SkipMutexDeadlockDetection();
  CLI::App app{"crmd: the CRM backbone in one process, on the embedded log"};
  std::string data_dir = "data";
  std::string listen = "127.0.0.1:50051";
  std::string metrics_listen = "127.0.0.1:9464";
  std::string dashboard_listen = "127.0.0.1:8080";
  std::string key_file;
  bool create_key = false;
  bool rebuild = false;
  crm::server::RuntimeOptions ropts;
  int scheduler_seconds = 60;
  std::string max_token_lifetime = absl::FormatDuration(crm::kDefaultMaxTokenLifetime);
  app.add_option("--data-dir", data_dir, "Folder for the log, projections and key")->capture_default_str();
  app.add_option("--listen", listen, "gRPC address (port 0 picks one)")->capture_default_str();
  app.add_option("--metrics-listen", metrics_listen, "Prometheus /metrics address; empty disables")
      ->capture_default_str();
  app.add_option("--dashboard-listen", dashboard_listen, "Web dashboard (数据看板, HTTP) address; empty disables")
      ->capture_default_str();
  app.add_option("--key-file", key_file, "Token signing key (default <data-dir>/signing.key; $CRM_SIGNING_KEY wins)");
  app.add_flag("--create-key", create_key, "Create the key file with a random key when missing");
  crm::server::AddTokenLifetimeFlag(app, &max_token_lifetime);
  app.add_flag("--rebuild", rebuild, "Rebuild every projection from the log before serving");
  crm::server::AddRuntimeFlags(app, &ropts);
  app.add_option("--scheduler-interval", scheduler_seconds,
                 "Seconds between scheduler runs (public-pool returns, recycle-bin purges, stage timeouts, "
                 "contract renewals and expiry, overdue instalments, task reminders and overdue notices, date-triggered automation, SLA warnings and breaches); 0 disables")
      ->capture_default_str()->check(CLI::Range(0, 86400));
  CLI11_PARSE(app, argc, argv);
  if (key_file.empty()) key_file = data_dir + "/signing.key";
  const crm::TokenPolicy token_policy = crm::server::TokenPolicyOrExit(max_token_lifetime);

  crm::server::InitJsonLogging("crmd");
  crm::server::PrepareDataDirOrExit(data_dir);
  auto key = crm::server::LoadProcessSigningKey(key_file, create_key);
  if (!key.ok()) crm::server::ExitWithError(std::string(key.status().message()));

  auto log = crm::eventlog::OpenEmbeddedLog({.path = data_dir + "/log"});
  if (!log.ok()) crm::server::ExitWithError(std::string(log.status().message()));
  auto metrics = crm::server::Metrics::Start(metrics_listen);
  if (!metrics.ok()) crm::server::ExitWithError(std::string(metrics.status().message()));
  crm::server::Metrics* m = metrics->get();

  crm::server::Authenticator auth(*key, crm::SystemClock::Get(), token_policy);
  ropts.listen = listen;
  crm::server::Runtime runtime(ropts, &auth, m);
  auto customers = crm::customers::CustomersHost::Open(
      log->get(), &runtime,
      {.dir = data_dir + "/customers", .rebuild = rebuild, .clock = crm::SystemClock::Get(), .metrics = m,
       .scheduler_interval = absl::Seconds(scheduler_seconds)});
  if (!customers.ok()) crm::server::ExitWithError(std::string(customers.status().message()));
  auto opportunities = crm::opportunities::OpportunitiesHost::Open(
      log->get(), &runtime,
      {.dir = data_dir + "/opportunities", .rebuild = rebuild, .clock = crm::SystemClock::Get(), .metrics = m,
       .scheduler_interval = absl::Seconds(scheduler_seconds)});
  if (!opportunities.ok()) crm::server::ExitWithError(std::string(opportunities.status().message()));
  auto tasks = crm::tasks::TasksHost::Open(
      log->get(), &runtime,
      {.dir = data_dir + "/tasks", .rebuild = rebuild, .clock = crm::SystemClock::Get(), .metrics = m,
       .scheduler_interval = absl::Seconds(scheduler_seconds)});
  if (!tasks.ok()) crm::server::ExitWithError(std::string(tasks.status().message()));
  auto tickets = crm::tickets::TicketsHost::Open(
      log->get(), &runtime,
      {.dir = data_dir + "/tickets", .rebuild = rebuild, .clock = crm::SystemClock::Get(), .metrics = m,
       .scheduler_interval = absl::Seconds(scheduler_seconds)});
  if (!tickets.ok()) crm::server::ExitWithError(std::string(tickets.status().message()));
  auto analytics = crm::analytics::AnalyticsHost::Open(
      log->get(), &runtime,
      {.dir = data_dir + "/analytics", .rebuild = rebuild, .clock = crm::SystemClock::Get(), .metrics = m,
       .scheduler_interval = absl::Seconds(scheduler_seconds)});
  if (!analytics.ok()) crm::server::ExitWithError(std::string(analytics.status().message()));
  std::vector<grpc::Service*> services = (*customers)->services();
  for (grpc::Service* s : (*opportunities)->services()) services.push_back(s);
  for (grpc::Service* s : (*tasks)->services()) services.push_back(s);
  for (grpc::Service* s : (*tickets)->services()) services.push_back(s);
  for (grpc::Service* s : (*analytics)->services()) services.push_back(s);
  if (!dashboard_listen.empty()) {
    if (auto s = (*analytics)->StartDashboard(dashboard_listen); !s.ok()) {
      crm::server::ExitWithError(std::string(s.message()));
    }
  }
  if (auto s = runtime.Start(services); !s.ok()) {
    crm::server::ExitWithError(std::string(s.message()));
  }
  (*customers)->StartLoops();
  (*opportunities)->StartLoops();
  (*tasks)->StartLoops();
  (*tickets)->StartLoops();
  (*analytics)->StartLoops();

  crm::server::LogInfo(absl::StrCat("crmd serving gRPC on port ", runtime.port(), " (", listen,
                                    "), metrics on port ", m->port(), ", dashboard on port ",
                                    (*analytics)->dashboard_port(), ", data in ", data_dir));
  const int sig = crm::server::WaitForTerminationSignal();
  crm::server::LogInfo(absl::StrCat("signal ", sig, ": draining"));
  const absl::Time t0_stop = absl::Now();
  runtime.Shutdown();
  const absl::Time t1_stop = absl::Now();
  analytics->reset();
  tickets->reset();
  tasks->reset();
  opportunities->reset();
  customers->reset();
  log->reset();
  crm::server::LogInfo(absl::StrCat("drained in ", absl::FormatDuration(t1_stop - t0_stop),
                                    ", closed storage in ", absl::FormatDuration(absl::Now() - t1_stop)));
  crm::server::LogInfo("crmd stopped");
  return 0;
}
