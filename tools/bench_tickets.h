#ifndef CRM_TOOLS_BENCH_TICKETS_H_
#define CRM_TOOLS_BENCH_TICKETS_H_

// crm-bench's workloads of the tickets service.
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crm/tickets/v1/tickets_service.pb.h"
#include "grpcpp/grpcpp.h"
#include "tools/bench_common.h"

namespace crm::bench {

// The 售后维修 ticket type (an eleven-field form, five states), a business calendar and an SLA
// policy, set up over gRPC as an admin. A type that exists already is left as it is.
absl::Status SetupRepairTickets(const std::shared_ptr<grpc::Channel>& channel, const std::string& token);
// The n-th 售后维修 ticket: a title, a priority and three form values.
void FillRepairTicket(int64_t n, tickets::v1::Ticket* t);

// Durable CreateTicket over gRPC: an in-process crmd (customers, opportunities, tickets on the
// embedded log under `base`, schedulers off) with the 售后维修 type (eleven-field form, five
// states) and an SLA policy; `clients` create tickets with three form values each, every one
// checked against the form, for `duration`.
absl::StatusOr<Result> RunTicketCreate(int clients, absl::Duration duration, absl::Duration warmup,
                                       const std::string& base);

// SLA re-evaluation: the same crmd; `tickets` tickets created over gRPC (64 at a time; every
// second one then answered with a public comment and started, every fourth one closed), then,
// `runs` times, EvaluateSla over all of them under the policy in force and a what-if policy
// on a business calendar (both clocks of every ticket, twice), then `runs` scheduler passes
// over the open ones as of now. Prints each run; the result's p50 is the median EvaluateSla,
// in ms.
absl::StatusOr<Result> RunSlaEvaluation(int64_t tickets, int runs, const std::string& base, bool json);

}  // namespace crm::bench

#endif  // CRM_TOOLS_BENCH_TICKETS_H_
