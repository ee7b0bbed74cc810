#ifndef CRM_TOOLS_CRMCTL_REPORTS_H_
#define CRM_TOOLS_CRMCTL_REPORTS_H_

// crmctl's verbs of the analytics service: every report (报表), printed or exported as CSV
// (UTF-8 with BOM).
#include <memory>

#include "CLI/CLI.hpp"
#include "tools/crmctl_common.h"

namespace crm::ctl {

class ReportCommands {
 public:
  // Adds the noun "reports" to `app`.
  void Add(CLI::App& app);
  bool Parsed() const;
  // Runs the parsed verb: 0, 1 (the server refused, printed), 2 (bad flags or input).
  int Run(const Connection& c);

  // The parsed flags (defined in the .cc).
  struct Flags;

 private:
  std::shared_ptr<Flags> f_;
};

}  // namespace crm::ctl

#endif  // CRM_TOOLS_CRMCTL_REPORTS_H_
