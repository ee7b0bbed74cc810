#ifndef CRM_TOOLS_CRMCTL_OPS_H_
#define CRM_TOOLS_CRMCTL_OPS_H_

// The operator verbs that read the log itself rather than call a server. crm-ops runs them
// (they fold events with every service's projections, so it links the engines); crmctl hands
// these command lines to crm-ops unchanged (tools/crm_ops_verbs.h).
//   rebuild every projection from the log;
//   tail    the records of a topic, as CloudEvents JSON or one line each, optionally following;
//   lag     how far each projection is behind the log;
//   verify  the log's files (a damaged write-ahead log), every aggregate's hash chain and
//           gapless versions, every record against the latest seal (--seal-key), that no
//           projection holds events the log lost, and (crmd stopped) every projection against
//           a fresh rebuild by checksum.
// Each reads the embedded log of a data folder (beside a running crmd: a read-only follower)
// or a Kafka cluster.
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "libs/eventlog/log.h"
#include "libs/eventlog/seal.h"
#include "nlohmann/json.hpp"

namespace crm::ctl {

// verify's checks. Each returns its report and adds what it found wrong to *problems.
// The versions (1, 2, 3… per aggregate), hash chains and event ids of `topic`; with `seal`,
// also every record of the topic against the latest seal (SealCheck::Finish reports).
nlohmann::json VerifyChains(eventlog::Log& log, const std::string& topic, int* problems,
                            eventlog::SealCheck* seal = nullptr);
// The projections of `services` (folder names under `data_dir`: customers, opportunities,
// tasks, tickets, analytics) each against a fresh rebuild from `log`, built under `scratch`. A
// named folder that is missing is a problem, named in its row. Nothing may write the log or
// the projections meanwhile (crmd or the service stopped).
nlohmann::json VerifyProjections(eventlog::Log& log, const std::string& data_dir,
                                 const std::vector<std::string>& services, const std::string& scratch,
                                 int* problems);

class OpsCommands {
 public:
  // Adds the verbs tail, lag and verify to `app`.
  void Add(CLI::App& app);
  bool Parsed() const;
  // Runs the parsed verb: 0; 2 (bad flags, an unreachable log); 4 (verify found a problem,
  // a damaged log among them).
  int Run(bool json);

  struct Flags;

 private:
  std::shared_ptr<Flags> f_;
};

}  // namespace crm::ctl

#endif  // CRM_TOOLS_CRMCTL_OPS_H_
