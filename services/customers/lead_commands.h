#ifndef CRM_SERVICES_CUSTOMERS_LEAD_COMMANDS_H_
#define CRM_SERVICES_CUSTOMERS_LEAD_COMMANDS_H_

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "crm/customers/v1/customers_service.pb.h"
#include "libs/common/caller.h"
#include "libs/common/clock.h"
#include "libs/common/request.h"
#include "libs/kernel/aggregate_store.h"
#include "libs/projection/projection_db.h"
#include "services/customers/customer_queries.h"
#include "services/customers/lead.h"

namespace crm::customers {

// The lead (线索) commands of the customers service, each one command on one lead through the
// service's AggregateStore (docs/architecture.md §3): a repeated request_id answers with the
// lead as it is, a stale etag is ABORTED (ETAG_MISMATCH naming the etag's field) unless the
// decision refused first (lead.h's Decide). Answers with the API lead after the command.
// Converting a lead writes two aggregates and is CustomerEngine::ConvertLead's.
// Thread-safe; `done` runs on the log writer's thread, or on the caller's when nothing is
// appended.
class LeadCommands {
 public:
  template <typename T>
  using Callback = absl::AnyInvocable<void(absl::StatusOr<T>)>;
  using Done = Callback<v1::Lead>;

  // Every argument must outlive the commands.
  LeadCommands(kernel::AggregateStore* store, projection::ProjectionDb* db, const CustomerQueries* queries,
               Clock* clock)
      : store_(store), db_(db), queries_(queries), clock_(clock) {}

  void CreateLead(const Caller& caller, const v1::CreateLeadRequest& req, Done done);
  void UpdateLead(const Caller& caller, const v1::UpdateLeadRequest& req, Done done);
  void AssignLead(const Caller& caller, const v1::AssignLeadRequest& req, Done done);
  void ClaimLead(const Caller& caller, const v1::ClaimLeadRequest& req, Done done);
  void ReleaseLead(const Caller& caller, const v1::ReleaseLeadRequest& req, Done done);
  void QualifyLead(const Caller& caller, const v1::QualifyLeadRequest& req, Done done);
  void DisqualifyLead(const Caller& caller, const v1::DisqualifyLeadRequest& req, Done done);

 private:
  // Runs a lead command through the store and answers with the API lead: NOT_FOUND when
  // there is no lead and nothing was decided.
  using DecideFn = absl::AnyInvocable<absl::StatusOr<std::vector<LeadEvent>>(const LeadState*)>;
  void Execute(const Caller& caller, const Target& target, DecideFn decide, Done done, bool fresh_id = false);

  kernel::AggregateStore* const store_;
  projection::ProjectionDb* const db_;
  const CustomerQueries* const queries_;
  Clock* const clock_;
};

}  // namespace crm::customers

#endif  // CRM_SERVICES_CUSTOMERS_LEAD_COMMANDS_H_
