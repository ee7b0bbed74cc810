#ifndef CRM_TOOLS_CRMCTL_SALES_H_
#define CRM_TOOLS_CRMCTL_SALES_H_

// crmctl's verbs of the opportunities service: opportunities (商机), pipelines and the contract
// policy, quotes (报价单), contracts (合同) and payment collection (回款).
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "tools/crmctl_common.h"

namespace crm::ctl {

class SalesCommands {
 public:
  // Adds the nouns "opportunities", "quotes", "contracts" and "sales-settings" to `app`.
  void Add(CLI::App& app);
  // Whether one of them was parsed.
  bool Parsed() const;
  // Runs the parsed verb: 0, 1 (the server refused, printed), 2 (bad flags or input).
  int Run(const Connection& c);

 private:
  struct Flags;
  std::shared_ptr<Flags> f_;
};

}  // namespace crm::ctl

#endif  // CRM_TOOLS_CRMCTL_SALES_H_
