// crm-ops: the operator verbs that read the log and fold its events with every service's
// projections (rebuild, tail, lag, verify; tools/crmctl_ops.h). crmctl runs this program for
// them with its own command line, so crm-ops takes crmctl's global flags too.
#include <string>

#include "CLI/CLI.hpp"
#include "libs/server/process.h"
#include "libs/server/runtime.h"
#include "tools/crmctl_ops.h"

int main(int argc, char** argv) {
  crm::server::RestrictNewFileModes();  // rebuilds and scratch copies hold personal data
  crm::server::SkipMutexDeadlockDetection();  // rebuild and verify take many locks
  CLI::App app{"crm-ops: crmctl's operator verbs that read the log (crmctl runs this program for them)"};
  app.footer(
      "Exit codes: 0 done; 2 bad usage or an unreachable log; 4 verify found a problem.");
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the verb, as with crmctl
  std::string output = "table", addr, token;
  double timeout_s = 10;
  app.add_option("-o,--output", output, "table or json")->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  // crmctl's connection flags: no verb here calls a server, but crmctl's command lines carry them.
  app.add_option("--addr", addr, "Ignored (crmctl's server address)");
  app.add_option("--token", token, "Ignored (crmctl's bearer token)");
  app.add_option("--timeout", timeout_s, "Ignored (crmctl's wait for the server)");
  crm::ctl::OpsCommands ops;
  ops.Add(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return ops.Run(output == "json");
}
