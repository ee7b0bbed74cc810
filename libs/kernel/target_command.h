#ifndef CRM_LIBS_KERNEL_TARGET_COMMAND_H_
#define CRM_LIBS_KERNEL_TARGET_COMMAND_H_

// The store's command for the resource a request names, so that no service sets the caller,
// id, request id and etag expectation field by field (and forgets one).
#include <utility>

#include "libs/common/caller.h"
#include "libs/common/request.h"
#include "libs/kernel/aggregate_store.h"

namespace crm::kernel {

// The command of `caller` on `target` (ParseTarget's result): its id and request id, and its
// etag as the expected version (ExpectedFromEtag: none given is Any()), named by the etag's
// request field when the store answers it as stale (ABORTED, ETAG_MISMATCH). The store checks
// that expectation once, after `decide`, so a command's own refusal comes first.
template <typename State, typename Event>
Command<State, Event> TargetCommand(const Caller& caller, const Target& target, Decider<State, Event> decide = {},
                                    Cause cause = {}) {
  Command<State, Event> cmd;
  cmd.caller = caller;
  cmd.id = target.id;
  cmd.request_id = target.request_id;
  cmd.expected = ExpectedFromEtag(target.etag);
  cmd.expected_field = target.etag_field;
  cmd.decide = std::move(decide);
  cmd.cause = std::move(cause);
  return cmd;
}

}  // namespace crm::kernel

#endif  // CRM_LIBS_KERNEL_TARGET_COMMAND_H_
