#ifndef CRM_TOOLS_BENCH_TASKS_H_
#define CRM_TOOLS_BENCH_TASKS_H_

// crm-bench's workloads of the tasks service.
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tools/bench_common.h"

namespace crm::bench {

// Automation lag: an in-process crmd (customers, opportunities, tasks on the embedded log
// under `base`, scheduler off); `clients` create leads over gRPC for `duration`, and the
// default rule makes a task for each. The latencies are from each LeadCreated's recorded_at
// to its TaskCreated's recorded_at (one clock, both stamped when the append is sealed): how
// long after the cause was written its task was written. ops = leads created in the measured
// window; errors = leads whose task did not appear within 30 s of the end.
absl::StatusOr<Result> RunTaskLag(int clients, absl::Duration duration, absl::Duration warmup,
                                  const std::string& base);

// Rule evaluation: seeds the default rules into an embedded log, writes `events` events of
// the customers and opportunities topics after them (per account, ten events: a lead created and qualified, a customer, two
// follow-ups one of which plans the next, an update that marks one in ten lost, an
// opportunity created, moved twice, into 方案报价, and won), then times a rebuild of the tasks
// projections from the log: every event read, its record's owner kept, every rule evaluated,
// a pending task written per firing. ops = events; `*fired` = pending tasks decided.
absl::StatusOr<Result> RunRuleEvaluation(int64_t events, const std::string& base, const std::string& log_dir,
                                         int64_t* fired);

}  // namespace crm::bench

#endif  // CRM_TOOLS_BENCH_TASKS_H_
