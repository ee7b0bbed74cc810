#ifndef CRM_TOOLS_CRMCTL_TICKETS_H_
#define CRM_TOOLS_CRMCTL_TICKETS_H_

// crmctl's verbs of the tickets service: ticket types (forms and workflows), tickets (工单),
// SLA policies, calendars and what-if evaluation.
#include <memory>

#include "CLI/CLI.hpp"
#include "tools/crmctl_common.h"

namespace crm::ctl {

class TicketCommands {
 public:
  // Adds the nouns "ticket-types", "tickets" and "sla" to `app`.
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

#endif  // CRM_TOOLS_CRMCTL_TICKETS_H_
