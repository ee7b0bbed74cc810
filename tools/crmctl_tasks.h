#ifndef CRM_TOOLS_CRMCTL_TASKS_H_
#define CRM_TOOLS_CRMCTL_TASKS_H_

// crmctl's verbs of the tasks service: the task center (待办) and automation rules (自动化).
#include <memory>

#include "CLI/CLI.hpp"
#include "tools/crmctl_common.h"

namespace crm::ctl {

class TaskCommands {
 public:
  // Adds the nouns "tasks" and "automation" to `app`.
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

#endif  // CRM_TOOLS_CRMCTL_TASKS_H_
