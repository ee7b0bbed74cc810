#ifndef CRM_LIBS_SERVER_RUNTIME_FLAGS_H_
#define CRM_LIBS_SERVER_RUNTIME_FLAGS_H_

// The command-line flags every server shares, the same in crmd and every single-service main.
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "libs/common/token.h"
#include "libs/server/runtime.h"

namespace crm::server {

// Adds --max-inflight, --admit-by-deadline, --max-wait, --drain-timeout and
// --stream-idle-timeout, which write into `options` when parsed; `options` must outlive the
// parse. Times are in seconds.
inline void AddRuntimeFlags(CLI::App& app, RuntimeOptions* options) {
  auto seconds = [&app](const char* name, absl::Duration* d, const char* help, double max) {
    app.add_option_function<double>(
           name, [d](double s) { *d = absl::Seconds(s); }, help)
        ->default_str(absl::StrCat(absl::ToDoubleSeconds(*d)))
        ->check(CLI::Range(0.1, max));
  };
  app.add_option("--max-inflight", options->max_inflight, "Requests in flight before RESOURCE_EXHAUSTED")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--admit-by-deadline", options->admit_by_deadline,
                 "Refuse at once (RESOURCE_EXHAUSTED) a call whose deadline is shorter than its method's calls "
                 "now take to be answered")
      ->capture_default_str();
  seconds("--max-wait", &options->max_wait,
          "Longest a call may wait (e.g. for min_consistency_token), whatever deadline the client set", 3600);
  seconds("--drain-timeout", &options->drain_timeout,
          "On SIGTERM, how long calls in flight may finish before they are ended", 3600);
  seconds("--stream-idle-timeout", &options->stream_idle_timeout,
          "A bulk import or export stream that sends or reads nothing this long is cancelled", 86400);
}

// Adds --max-token-lifetime, written into `max_lifetime` (a duration such as 24h; see
// TokenPolicyOrExit), which must outlive the parse.
inline void AddTokenLifetimeFlag(CLI::App& app, std::string* max_lifetime) {
  app.add_option("--max-token-lifetime", *max_lifetime,
                 "Refuse bearer tokens that live longer (exp - iat, or exp - now without iat), e.g. 24h, 168h")
      ->capture_default_str();
}

// What a server's shared flags hold once parsed. Defaults are the constructor's; the listen
// addresses are given per binary.
struct ServerFlags {
  std::string data_dir;
  std::string listen;
  std::string metrics_listen;
  std::string dashboard_listen;
  std::string key_file;  // empty: <data_dir>/signing.key
  bool create_key = false;
  bool rebuild = false;
  int scheduler_seconds = 60;
  std::string max_token_lifetime = absl::FormatDuration(kDefaultMaxTokenLifetime);
  RuntimeOptions runtime;

  // The signing key's file: --key-file, else <data_dir>/signing.key.
  std::string KeyFile() const { return key_file.empty() ? data_dir + "/signing.key" : key_file; }
};

// What differs between the binaries' help for the shared flags. A null text leaves its flag out.
struct ServerFlagTexts {
  const char* data_dir = "Folder for projections and key";
  const char* dashboard = nullptr;
  const char* rebuild = nullptr;
  // What the scheduler runs, for --scheduler-interval's help; empty leaves the flag out.
  std::string scheduled;
};

// Adds --data-dir, --listen, --dashboard-listen, --metrics-listen, --key-file, --create-key,
// --max-token-lifetime, --rebuild, the runtime's flags and --scheduler-interval, writing into
// `flags`, which must outlive the parse.
inline void AddServerFlags(CLI::App& app, ServerFlags* flags, const ServerFlagTexts& texts) {
  app.add_option("--data-dir", flags->data_dir, texts.data_dir)->capture_default_str();
  app.add_option("--listen", flags->listen, "gRPC address (port 0 picks one)")->capture_default_str();
  if (texts.dashboard != nullptr) {
    app.add_option("--dashboard-listen", flags->dashboard_listen, texts.dashboard)->capture_default_str();
  }
  app.add_option("--metrics-listen", flags->metrics_listen, "Prometheus /metrics address; empty disables")
      ->capture_default_str();
  app.add_option("--key-file", flags->key_file,
                 "Token signing key (default <data-dir>/signing.key; $CRM_SIGNING_KEY wins)");
  app.add_flag("--create-key", flags->create_key, "Create the key file with a random key when missing");
  AddTokenLifetimeFlag(app, &flags->max_token_lifetime);
  if (texts.rebuild != nullptr) app.add_flag("--rebuild", flags->rebuild, texts.rebuild);
  AddRuntimeFlags(app, &flags->runtime);
  if (!texts.scheduled.empty()) {
    app.add_option("--scheduler-interval", flags->scheduler_seconds,
                   absl::StrCat("Seconds between scheduler runs (", texts.scheduled, "); 0 disables"))
        ->capture_default_str()
        ->check(CLI::Range(0, 86400));
  }
}

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_RUNTIME_FLAGS_H_
