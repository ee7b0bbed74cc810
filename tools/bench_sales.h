#ifndef CRM_TOOLS_BENCH_SALES_H_
#define CRM_TOOLS_BENCH_SALES_H_

// crm-bench's workloads of the opportunities service.
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tools/bench_common.h"

namespace crm::bench {

// Durable MoveOpportunityStage over gRPC: an in-process crmd (customers and opportunities on
// the embedded log under `base`), 50 opportunities per client, each client moving its own
// round robin, forwards then back.
absl::StatusOr<Result> RunStageChanges(int clients, absl::Duration duration, absl::Duration warmup,
                                       const std::string& base);

// Writes `events` opportunity events (per opportunity: created, then four stage changes) into
// an embedded log under `log_dir` (reused when it holds one already; else a temporary one
// under `base`), then times a rebuild of the opportunities projections from it.
absl::StatusOr<Result> RunOpportunitiesRebuild(int64_t events, const std::string& base, const std::string& log_dir);

}  // namespace crm::bench

#endif  // CRM_TOOLS_BENCH_SALES_H_
