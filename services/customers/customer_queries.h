#ifndef CRM_SERVICES_CUSTOMERS_CUSTOMER_QUERIES_H_
#define CRM_SERVICES_CUSTOMERS_CUSTOMER_QUERIES_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crm/customers/v1/customers_service.pb.h"
#include "libs/common/caller.h"
#include "libs/common/clock.h"
#include "libs/projection/projection_db.h"
#include "services/customers/customer.h"
#include "services/customers/lead.h"

namespace crm::customers {

// The customers service's query side (docs/architecture.md §4): every read of customers, leads
// and settings, over the projections only. It holds no write path, so nothing here can change
// the log. Thread-safe; the reads are synchronous.
//
// Each read that takes a request with a min_consistency_token first waits (blocking, until
// `deadline`) for the projections to reach it; servers call AfterToken first so that the wait
// does not hold a thread. Errors: INVALID_ARGUMENT naming the field, NOT_FOUND,
// PERMISSION_DENIED for a record the caller may not see, DEADLINE_EXCEEDED.
class CustomerQueries {
 public:
  // `db` (the customers' projections) and `clock` must outlive the queries; `zone` is the
  // customers' business time zone (dates in exports).
  CustomerQueries(projection::ProjectionDb* db, Clock* clock, absl::TimeZone zone)
      : db_(db), clock_(clock), zone_(zone) {}

  // Calls `done` once the projections reached `token` (a min_consistency_token; empty is
  // reached at once), with INVALID_ARGUMENT naming `field` for a malformed token or
  // DEADLINE_EXCEEDED at `deadline`. Does not block; see ProjectionDb::NotifyWhenReached.
  void AfterToken(const std::string& token, absl::string_view field, absl::Time deadline,
                  absl::AnyInvocable<void(absl::Status)> done) const;
  // AfterToken, blocking.
  absl::Status WaitToken(const std::string& token, absl::string_view field, absl::Time deadline) const;

  // Customers.
  absl::StatusOr<v1::Customer> Get(const Caller& caller, const v1::GetCustomerRequest& req, absl::Time deadline) const;
  absl::StatusOr<v1::ListCustomersResponse> List(const Caller& caller, const v1::ListCustomersRequest& req,
                                                 absl::Time deadline) const;
  absl::StatusOr<v1::ListCustomerEventsResponse> History(const Caller& caller, const v1::ListCustomerEventsRequest& req,
                                                         absl::Time deadline) const;
  absl::StatusOr<v1::ListFollowUpsResponse> ListFollowUps(const Caller& caller, const v1::ListFollowUpsRequest& req,
                                                          absl::Time deadline) const;
  // Duplicates (查重) of a customer or of candidate values.
  absl::StatusOr<v1::FindDuplicatesResponse> FindDuplicates(const Caller& caller, const v1::FindDuplicatesRequest& req,
                                                           absl::Time deadline) const;
  // Bulk export (批量导出): what List would return for the request's filter, from one snapshot,
  // handed to `emit` in chunks (first the header). `emit` returns false when the client has
  // gone; Export then stops with CANCELLED.
  absl::Status Export(const Caller& caller, const v1::ExportCustomersRequest& req, absl::Time deadline,
                      absl::FunctionRef<bool(v1::ExportCustomersResponse)> emit) const;

  // Leads (线索).
  absl::StatusOr<v1::Lead> GetLead(const Caller& caller, const v1::GetLeadRequest& req, absl::Time deadline) const;
  absl::StatusOr<v1::ListLeadsResponse> ListLeads(const Caller& caller, const v1::ListLeadsRequest& req,
                                                  absl::Time deadline) const;

  // Settings.
  absl::StatusOr<v1::PoolPolicy> GetPoolPolicy(const Caller& caller, const v1::GetPoolPolicyRequest& req,
                                               absl::Time deadline) const;
  absl::StatusOr<v1::ListChannelCostsResponse> ListChannelCosts(const Caller& caller,
                                                                const v1::ListChannelCostsRequest& req,
                                                                absl::Time deadline) const;
  absl::StatusOr<v1::ListIndustriesResponse> ListIndustries(const Caller& caller, const v1::ListIndustriesRequest& req,
                                                            absl::Time deadline) const;
  absl::StatusOr<v1::ListTagRulesResponse> ListTagRules(const Caller& caller, const v1::ListTagRulesRequest& req,
                                                        absl::Time deadline) const;
  // What a behaviour tag rule would tag now, without tagging.
  absl::StatusOr<v1::PreviewTagRuleResponse> PreviewTagRule(const Caller& caller, const v1::PreviewTagRuleRequest& req,
                                                            absl::Time deadline) const;

  // For the command side: the API views of states, and the reads its commands start from.
  v1::Customer ToApi(const CustomerState& s) const;
  v1::Lead LeadToApi(const LeadState& s) const;
  // The effective settings (stored ones over the defaults).
  absl::StatusOr<CustomerSettings> Settings() const;
  // The state of customer `id` visible to `caller`: NOT_FOUND naming `what` / PERMISSION_DENIED
  // otherwise.
  absl::StatusOr<CustomerState> LoadVisible(const Caller& caller, const std::string& id, absl::string_view what) const;
  // Per rule, each customer's measure over the events that occurred in [from, now] (from: the
  // rule's window start), from one scan of the customers' histories; a merged customer's
  // events count for its survivor. *scanned counts the events read.
  struct RuleWindow {
    v1::TagRule rule;
    absl::Time from;
  };
  absl::StatusOr<std::vector<std::map<std::string, int64_t>>> EvaluateTagRules(const std::vector<RuleWindow>& rules,
                                                                               absl::Time now, int64_t* scanned) const;
  // The customers holding rule tags, by rule id (from the g/ index).
  absl::StatusOr<std::map<std::string, std::set<std::string>>> TaggedByRule() const;

 private:
  projection::ProjectionDb* const db_;
  Clock* const clock_;
  const absl::TimeZone zone_;
};

}  // namespace crm::customers

#endif  // CRM_SERVICES_CUSTOMERS_CUSTOMER_QUERIES_H_
