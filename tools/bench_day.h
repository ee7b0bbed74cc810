#ifndef CRM_TOOLS_BENCH_DAY_H_
#define CRM_TOOLS_BENCH_DAY_H_

// A mixed CRM day over gRPC, and the check that what it was told is durable really is.
//
// Each client keeps one call in flight and owns its own customers, opportunities, tasks and
// tickets, so no two of its calls race on one aggregate. 70% of calls read (a customer, a page
// of customers, 查重 by phone, an opportunity, the task list, a ticket, a customer's history);
// 30% write (create and update customers, follow-ups, create and move opportunities, create
// and complete tasks, create tickets), each durable before it is answered. Follow-ups carry a
// next follow-up time and stage moves reach "proposal", so the tasks service's shipped rules
// react to both other services' events.
//
// With a journal, every write is written down as it is sent and as it is answered, one line
// per write(2) on an O_APPEND file, so the journal outlives a crash of either process. Every
// write carries a request id; a create writes its request id into the record it creates (an
// opportunity's or task's description, a ticket's title after its last space, a follow-up's
// next_step), so that a second record from one intent can be found:
//   I <n> <request_id>              before customer n's create is sent (an intent)
//   C <name> <n> <request_id>       customer n's create was acknowledged as <name>
//   R <n> <code>                    customer n's create was refused with a definite error
//   W <request_id> <kind> <base64>  before any other write is sent: its kind and the request
//   V <name> <version> [<request_id>]  a write to <name> was acknowledged at <version>
//   F <parent> <follow-up name> [<request_id>]  a follow-up was acknowledged
//   X <request_id> <code>           the write was refused with a definite error
// CheckDay then asks the services for every one of them.
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "tools/bench_common.h"

namespace crm::bench {

// Where each service answers; crmd serves all four on one channel.
struct DayTargets {
  std::shared_ptr<grpc::Channel> customers, opportunities, tasks, tickets;
  std::string token;  // an admin's
  // The kernel counters of the services (the in-process crmd's, or --metrics); null: not shown.
  KernelSource kernel;
};

struct DayOptions {
  int clients = 16;
  absl::Duration duration = absl::Seconds(10);
  absl::Duration warmup = absl::Seconds(2);
  std::string journal;  // empty: none
  uint64_t seed = 1;
  // Numbers customers from here on (phones 13xxxxxxxxx), so that runs against one server do
  // not collide.
  int64_t first_customer = 0;
};

// Sets the ticket type up (once per server), then runs the day. Calls that fail count as
// errors; the run goes on (a crash trial kills the server under it).
absl::StatusOr<Result> RunDay(const DayTargets& targets, const DayOptions& options);

struct DayCheck {
  int64_t versions_checked = 0, follow_ups_checked = 0;
  int64_t creates_checked = 0;   // customer creates
  int64_t writes_checked = 0;    // the other writes (W lines)
  int64_t creates_resent = 0;    // creates of any kind never answered, sent again
  int64_t changes_resent = 0;    // changes (updates, stage moves, completions) never answered, sent again
  int64_t changes_checked = 0;   // changes whose events were counted
  int64_t causes_checked = 0;    // automation causes whose tasks were counted
  std::vector<std::string> problems;  // lost or duplicated writes and journal lines that cannot be true, named
};

struct DayCheckOptions {
  // Whether writes never answered are sent again with their request id (and then must exist
  // once). false while writes cannot succeed (a full disk): they are only counted, and
  // automation that has not fired yet is not waited for.
  // Default: true.
  bool resend = true;
  // How long automation (the tasks service following the other topics) may take to catch up
  // before a cause without its task is reported.
  // Default: 30 s.
  absl::Duration settle = absl::Seconds(30);
};

// Reads the journals and asks the services for each write:
// - every aggregate is at least at the version acknowledged; every follow-up is listed;
// - every acknowledged customer is the only one with its phone, and every other acknowledged
//   create (opportunity, task, ticket, follow-up) the only record under its customer that
//   carries its request id;
// - a write intended but not answered is sent again with its request id: a create must then
//   exist exactly once, a change may be refused definitely (its aggregate moved on);
// - a write refused with a definite error (one that says nothing was written, e.g.
//   RESOURCE_EXHAUSTED) must not exist at all;
// - no change's request id is on more than one event of its aggregate, nor on any when the
//   change was refused definitely;
// - automation fired exactly once per cause (waited for up to `settle`): every move of a
//   journalled opportunity to the proposal stage has exactly one task of the shipped rule
//   default.proposal_follow_up, every journalled follow-up (each has a next follow-up time)
//   exactly one of default.next_follow_up, and neither rule made a task for anything else;
// - the journal itself is consistent: no request answered twice or without being sent, no
//   two customers acknowledged as one.
// Returns INVALID_ARGUMENT for an unreadable journal or a line that is not a journal line;
// everything else is a problem in the result.
absl::StatusOr<DayCheck> CheckDay(const DayTargets& targets, const std::vector<std::string>& journals,
                                  const DayCheckOptions& options = {});

}  // namespace crm::bench

#endif  // CRM_TOOLS_BENCH_DAY_H_
