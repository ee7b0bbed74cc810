// crmd: every service in one process on the embedded log (docs/architecture.md §6): customers,
// opportunities, tasks, tickets and analytics (its reports and the web dashboard).
#include <filesystem>
#include <optional>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "libs/common/clock.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/eventlog/seal.h"
#include "libs/server/logging.h"
#include "libs/server/process.h"
#include "libs/server/runtime.h"
#include "libs/server/runtime_flags.h"
#include "libs/server/service_module.h"
#include "services/registry/registry.h"

int main(int argc, char** argv) {
  crm::server::RestrictNewFileModes();
  crm::server::BlockTerminationSignals();
  crm::server::SkipMutexDeadlockDetection();
  CLI::App app{"crmd: the CRM backbone in one process, on the embedded log"};
  crm::server::ServerFlags f{.data_dir = "data",
                             .listen = "127.0.0.1:50051",
                             .metrics_listen = "127.0.0.1:9464",
                             .dashboard_listen = "127.0.0.1:8080"};
  crm::server::AddServerFlags(
      app, &f,
      {.data_dir = "Folder for the log, projections and key",
       .dashboard = "Web dashboard (数据看板, HTTP) address; empty disables",
       .rebuild = "Rebuild every projection from the log before serving",
       .scheduled = "public-pool returns, recycle-bin purges, stage timeouts, contract renewals and expiry, overdue "
                    "instalments, task reminders and overdue notices, date-triggered automation, SLA warnings and "
                    "breaches"});
  bool accept_truncation = false;
  std::string seal_key_file;
  bool create_seal_key = false;
  std::string seal_dir;
  int seal_seconds = 5;
  app.add_flag("--accept-log-truncation", accept_truncation,
               "Start although the log lost acknowledged writes (a damaged write-ahead log, projections ahead of "
               "the log, a log not as its latest seal says): drop what is lost, rebuild every projection from the "
               "log as it is, re-seal, and log AUDIT lines saying what was dropped. Without it crmd refuses to "
               "start, naming the damage");
  app.add_option("--seal-key", seal_key_file,
                 "Ed25519 private key (PEM) that signs seals of the log, kept apart from --data-dir; off when empty")
      ->envname("CRM_SEAL_KEY");
  app.add_flag("--create-seal-key", create_seal_key, "Create the seal key file with a new key when missing");
  app.add_option("--seal-dir", seal_dir, "Folder of the latest seal (default <data-dir>/seals; another volume is better)");
  app.add_option("--seal-interval", seal_seconds, "Seconds between seals: records newer than the last seal are "
                                                  "covered by the unkeyed hash chains only")
      ->capture_default_str()->check(CLI::Range(1, 3600));
  CLI11_PARSE(app, argc, argv);
  const crm::TokenPolicy token_policy = crm::server::TokenPolicyOrExit(f.max_token_lifetime);
  if (seal_dir.empty()) seal_dir = f.data_dir + "/seals";
  // A truncation makes every projection suspect: they may hold rows of the dropped events.
  if (accept_truncation) f.rebuild = true;

  crm::server::InitJsonLogging("crmd");
  crm::server::PrepareDataDirOrExit(f.data_dir);
  auto key = crm::server::LoadProcessSigningKey(f.KeyFile(), f.create_key);
  if (!key.ok()) crm::server::ExitWithError(std::string(key.status().message()));

  std::optional<crm::eventlog::SealKey> seal_key;
  if (!seal_key_file.empty()) {
    std::error_code ec_key, ec_data;
    const auto key_path = std::filesystem::weakly_canonical(seal_key_file, ec_key);
    const auto data_path = std::filesystem::weakly_canonical(f.data_dir, ec_data);
    if (!ec_key && !ec_data && key_path.string().rfind(data_path.string() + "/", 0) == 0) {
      crm::server::ExitWithError("--seal-key must be kept apart from --data-dir: whoever can rewrite the log's files "
                                 "could then make seals too");
    }
    auto k = crm::eventlog::SealKey::LoadPrivate(seal_key_file, create_seal_key);
    if (!k.ok()) crm::server::ExitWithError(std::string(k.status().message()));
    seal_key = *std::move(k);
  } else if (std::filesystem::exists(seal_dir + "/latest.seal")) {
    crm::server::ExitWithError(absl::StrCat("the log is sealed (", seal_dir, "): give --seal-key to keep sealing it"));
  }

  auto log = crm::eventlog::OpenEmbeddedLog(
      {.path = f.data_dir + "/log",
       .accept_truncation = accept_truncation,
       .on_truncation = [](const std::string& line) { crm::server::LogWarn(absl::StrCat("AUDIT: ", line)); }});
  if (!log.ok()) crm::server::ExitWithError(std::string(log.status().message()));
  if (accept_truncation) {
    crm::server::LogWarn("AUDIT: started with --accept-log-truncation: every projection is rebuilt from the log as it is");
  }
  auto metrics = crm::server::Metrics::Start(f.metrics_listen);
  if (!metrics.ok()) crm::server::ExitWithError(std::string(metrics.status().message()));
  crm::server::Metrics* m = metrics->get();

  crm::server::Authenticator auth(*key, crm::SystemClock::Get(), token_policy);
  f.runtime.listen = f.listen;
  crm::server::Runtime runtime(f.runtime, &auth, m);
  // Opened in the registry's order, closed in the reverse one.
  auto hosts = crm::server::ModuleSet::Open(
      crm::registry::CrmdModules(), log->get(), &runtime,
      {.dir = f.data_dir, .rebuild = f.rebuild, .clock = crm::SystemClock::Get(), .metrics = m,
       .scheduler_interval = absl::Seconds(f.scheduler_seconds)});
  if (!hosts.ok()) crm::server::ExitWithError(std::string(hosts.status().message()));
  // Started once every service caught up with the log: the seal's check (no sealed record
  // lost) runs before anything is served.
  std::unique_ptr<crm::eventlog::Sealer> sealer;
  if (seal_key.has_value()) {
    auto s = crm::eventlog::Sealer::Start(
        log->get(), *seal_key,
        {.topics = crm::server::OwnedTopics(crm::registry::CrmdModules()),
         .dir = seal_dir,
         .interval = absl::Seconds(seal_seconds),
         .accept_truncation = accept_truncation,
         .on_audit = [](const std::string& line) { crm::server::LogWarn(absl::StrCat("AUDIT: ", line)); }});
    if (!s.ok()) crm::server::ExitWithError(std::string(s.status().message()));
    sealer = *std::move(s);
  } else {
    crm::server::LogWarn("the log is not sealed (no --seal-key): a rewrite of its files with recomputed hash chains "
                         "would not be detected");
  }
  std::vector<grpc::Service*> services = (*hosts)->services();
  if (!f.dashboard_listen.empty()) {
    if (auto s = (*hosts)->StartDashboard(f.dashboard_listen); !s.ok()) {
      crm::server::ExitWithError(std::string(s.message()));
    }
  }
  if (auto s = runtime.Start(services); !s.ok()) {
    crm::server::ExitWithError(std::string(s.message()));
  }
  (*hosts)->StartLoops();

  crm::server::LogInfo(absl::StrCat("crmd serving gRPC on port ", runtime.port(), " (", f.listen,
                                    "), metrics on port ", m->port(), ", dashboard on port ",
                                    (*hosts)->dashboard_port(), ", data in ", f.data_dir));
  const int sig = crm::server::WaitForTerminationSignal();
  crm::server::LogInfo(absl::StrCat("signal ", sig, ": draining"));
  const absl::Time t0_stop = absl::Now();
  runtime.Shutdown();
  const absl::Time t1_stop = absl::Now();
  hosts->reset();  // in the reverse of the opening order
  sealer.reset();  // seals the last writes: after a clean stop every record is sealed
  log->reset();
  crm::server::LogInfo(absl::StrCat("drained in ", absl::FormatDuration(t1_stop - t0_stop),
                                    ", closed storage in ", absl::FormatDuration(absl::Now() - t1_stop)));
  crm::server::LogInfo("crmd stopped");
  return 0;
}
