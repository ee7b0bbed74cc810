#ifndef CRM_SERVICES_ANALYTICS_ANALYTICS_ENGINE_H_
#define CRM_SERVICES_ANALYTICS_ANALYTICS_ENGINE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "crm/analytics/v1/analytics_service.pb.h"
#include "libs/common/caller.h"
#include "libs/common/clock.h"
#include "libs/eventlog/log.h"
#include "libs/projection/follower.h"
#include "libs/projection/projection_db.h"
#include "libs/projection/rebuild.h"
#include "libs/topics/topics.h"

namespace crm::analytics {

// Version of the read-model code (funnel.cc, tickets_report.cc). Bump it with any change to
// the rows.
inline constexpr int64_t kProjectionVersion = 3;  // 2: the tickets topic; 3: customers, tasks, deals, payments

// The analytics service without the gRPC server around it: it owns no aggregate and no topic;
// followers keep its read models of the other services' topics, and reports read them.
// Thread-safe.
class AnalyticsEngine {
 public:
  struct Options {
    std::string customers_topic = topics::kCustomers;
    std::string opportunities_topic = topics::kOpportunities;
    std::string tasks_topic = topics::kTasks;
    std::string tickets_topic = topics::kTickets;
    // "now" for reports without as_of. Required.
    Clock* clock = nullptr;
  };

  // Catches the read models up with the topics that exist and starts following them all.
  static absl::StatusOr<std::unique_ptr<AnalyticsEngine>> Open(eventlog::Log* log, projection::ProjectionDb* db,
                                                               Options options);
  ~AnalyticsEngine();

  absl::StatusOr<v1::FunnelReport> GetFunnelReport(const Caller& c, const v1::GetFunnelReportRequest& req,
                                                   absl::Time deadline);
  absl::StatusOr<v1::TicketsReport> GetTicketsReport(const Caller& c, const v1::GetTicketsReportRequest& req,
                                                     absl::Time deadline);
  absl::StatusOr<v1::ChannelsReport> GetChannelsReport(const Caller& c, const v1::GetChannelsReportRequest& req,
                                                       absl::Time deadline);
  absl::StatusOr<v1::TeamReport> GetTeamReport(const Caller& c, const v1::GetTeamReportRequest& req,
                                               absl::Time deadline);
  absl::StatusOr<v1::CustomerValueReport> GetCustomerValueReport(const Caller& c,
                                                                 const v1::GetCustomerValueReportRequest& req,
                                                                 absl::Time deadline);
  absl::StatusOr<v1::ChurnReport> GetChurnReport(const Caller& c, const v1::GetChurnReportRequest& req,
                                                 absl::Time deadline);
  absl::StatusOr<v1::ReceivablesReport> GetReceivablesReport(const Caller& c,
                                                             const v1::GetReceivablesReportRequest& req,
                                                             absl::Time deadline);

  void AfterToken(const std::string& token, absl::string_view field, absl::Time deadline,
                  absl::AnyInvocable<void(absl::Status)> done) {
    projection::AfterToken(*db_, token, field, deadline, std::move(done));
  }

  static projection::ProjectionSpec Spec(const Options& options);
  const std::vector<std::unique_ptr<projection::Follower>>& followers() const { return followers_; }

 private:
  AnalyticsEngine(projection::ProjectionDb* db, Options o) : db_(db), options_(std::move(o)) {}

  projection::ProjectionDb* db_;
  const Options options_;
  std::vector<std::unique_ptr<projection::Follower>> followers_;
};

}  // namespace crm::analytics

#endif  // CRM_SERVICES_ANALYTICS_ANALYTICS_ENGINE_H_
