#ifndef CRM_TOOLS_BENCH_DAY_H_
#define CRM_TOOLS_BENCH_DAY_H_

// A mixed CRM day over gRPC, and the check that what it was told is durable really is.
//
// Each client keeps one call in flight and owns its own customers, opportunities, tasks and
// tickets, so no two of its calls race on one aggregate. 70% of calls read (a customer, a page
// of customers, 查重 by phone, an opportunity, the task list, a ticket, a customer's history);
// 30% write (create and update customers, follow-ups, create and move opportunities, create
// and complete tasks, create tickets), each durable before it is answered.
//
// With a journal, every acknowledged write is written down as it is answered, one line per
// write(2) on an O_APPEND file, so the journal outlives a crash of either process:
//   I <n> <request_id>              before customer n's create is sent (an intent)
//   C <name> <n> <request_id>       customer n's create was acknowledged as <name>
//   V <name> <version>              a write to <name> was acknowledged at <version>
//   F <parent> <follow-up name>     a follow-up was acknowledged
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
  int64_t versions_checked = 0, follow_ups_checked = 0, creates_checked = 0, creates_resent = 0;
  std::vector<std::string> problems;  // lost or duplicated writes, named
};

// Reads the journals and asks the services for each acknowledged write: every aggregate is at
// least at the version acknowledged, every follow-up is listed, every acknowledged customer is
// the only one with its phone. A create intended but not acknowledged is sent again with its
// request_id and must then exist exactly once; a create refused with a definite error (one
// that says nothing was written, e.g. RESOURCE_EXHAUSTED) must not exist at all.
// With `resend` false, creates never answered are only counted (while writes cannot succeed,
// e.g. on a full disk).
absl::StatusOr<DayCheck> CheckDay(const DayTargets& targets, const std::vector<std::string>& journals,
                                  bool resend = true);

}  // namespace crm::bench

#endif  // CRM_TOOLS_BENCH_DAY_H_
