#ifndef CRM_TOOLS_BENCH_ANALYTICS_H_
#define CRM_TOOLS_BENCH_ANALYTICS_H_

// crm-bench's workloads of the analytics service.
#include <string>

#include "absl/status/statusor.h"
#include "tools/bench_common.h"

namespace crm::bench {

// A year of a sales organisation as events (customers, opportunities, tasks and tickets
// topics; 50 reps in 5 teams, 8 channels, 10 regions): per account a lead created and
// converted, its customer with two follow-ups (one in ten later lost, with a reason), an
// opportunity moved twice then won (seven in ten) or lost, for a won one a contract with a
// two-instalment plan and two payments, a task created and completed, and a ticket opened and
// closed (tickets topic too). Business times are
// spread over the 300 days before the last 65. `events` events are written into an embedded
// log under `log_dir` (reused when it holds one; else a temporary one under `base`). Then
// (1) all analytics read models are rebuilt from it `runs` times, and (2) each report over the
// whole year, grouped by month, is asked `runs` x 5 times through the engine. Prints a table
// (or JSON lines) of medians.
absl::Status RunAnalytics(int64_t events, const std::string& base, const std::string& log_dir, int runs, bool json);

// Lag from an event to the reports: an in-process crmd with analytics on the embedded log;
// `clients` record follow-ups over gRPC for `duration`; for each acknowledged one, the time
// from the acknowledgement until the analytics read models hold it (the moment a report asked
// with its consistency_token would answer; 0 when they held it before the ack arrived). The
// time from the call's start, the durable write included, goes to stderr. ops = follow-ups
// acknowledged in the measured window.
absl::StatusOr<Result> RunAnalyticsLag(int clients, absl::Duration duration, absl::Duration warmup,
                                       const std::string& base);

}  // namespace crm::bench

#endif  // CRM_TOOLS_BENCH_ANALYTICS_H_
