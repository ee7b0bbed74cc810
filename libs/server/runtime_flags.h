#ifndef CRM_LIBS_SERVER_RUNTIME_FLAGS_H_
#define CRM_LIBS_SERVER_RUNTIME_FLAGS_H_

// The gRPC runtime's command-line flags, the same in crmd and every single-service main.
#include "CLI/CLI.hpp"
#include "libs/server/runtime.h"

namespace crm::server {

// Adds --max-inflight, --max-wait, --drain-timeout and --stream-idle-timeout, which write into
// `options` when parsed; `options` must outlive the parse. Times are in seconds.
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

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_RUNTIME_FLAGS_H_
