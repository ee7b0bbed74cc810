#ifndef CRM_SERVICES_OPPORTUNITIES_DOMAIN_TESTING_H_
#define CRM_SERVICES_OPPORTUNITIES_DOMAIN_TESTING_H_

// Helpers for the given/when/then tests of the opportunities domain (tests only).
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "libs/common/caller.h"
#include "libs/common/grpc_status.h"
#include "libs/common/status_testing.h"

namespace crm::opportunities::testing {

using crm::testing::FieldOf;

// Decides `cmd` on `state` (absent while version 0) and folds the events in at `at`; the
// decision's status.
template <typename State, typename Cmd>
absl::Status Fold(State& state, const Caller& caller, const Cmd& cmd, absl::Time at) {
  auto events = Decide(state.version() == 0 ? nullptr : &state, caller, cmd);
  if (!events.ok()) return events.status();
  for (const auto& e : *events) Apply(state, e, state.version() + 1, at, caller.user_id);
  return absl::OkStatus();
}

}  // namespace crm::opportunities::testing

#endif  // CRM_SERVICES_OPPORTUNITIES_DOMAIN_TESTING_H_
