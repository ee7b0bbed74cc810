#ifndef CRM_SERVICES_TICKETS_TICKET_ENGINE_H_
#define CRM_SERVICES_TICKETS_TICKET_ENGINE_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crm/tickets/v1/tickets_service.pb.h"
#include "libs/common/clock.h"
#include "libs/eventlog/log.h"
#include "libs/kernel/aggregate_store.h"
#include "libs/projection/aggregate_writer.h"
#include "libs/projection/follower.h"
#include "libs/projection/projection_db.h"
#include "libs/projection/rebuild.h"
#include "services/tickets/business_calendar.h"
#include "services/tickets/ticket_projections.h"
#include "libs/topics/topics.h"

namespace crm::tickets {

inline constexpr const char* kTopic = topics::kTickets;
inline constexpr int32_t kPartitions = topics::kPartitions;
// Version of the projection code (ticket_projections.cc). Bump it with any change to the rows:
// OpenProjections then rebuilds.
inline constexpr int64_t kProjectionVersion = 1;

// The tickets service without the gRPC server around it: ticket types (forms and workflows,
// versioned), tickets, SLA policies and calendars, on the write path of docs/architecture.md §3; the SLA
// scheduler; and what-if evaluation of the clocks from history. It follows the customers topic
// to check the customer a ticket links and to see merges. Thread-safe. Writes complete through
// a callback on the log writer's thread.
class TicketEngine {
 public:
  struct Options {
    std::string topic = kTopic;
    int32_t partitions = kPartitions;
    std::string customers_topic = topics::kCustomers;
    // "now" for occurred_at, recorded_at, the scheduler and the SLA shown on reads. Required.
    Clock* clock = nullptr;
    std::string tenant = "default";
    std::function<void(absl::Duration)> observe_append;
  };

  static absl::StatusOr<std::unique_ptr<TicketEngine>> Open(eventlog::Log* log, projection::ProjectionDb* db,
                                                            Options options);
  ~TicketEngine();

  template <typename T>
  using Callback = absl::AnyInvocable<void(absl::StatusOr<T>)>;

  void CreateTicketType(const Caller& c, const v1::CreateTicketTypeRequest& req, Callback<v1::TicketType> done);
  void PublishTicketTypeVersion(const Caller& c, const v1::PublishTicketTypeVersionRequest& req,
                                Callback<v1::TicketType> done);
  void ArchiveTicketType(const Caller& c, const v1::ArchiveTicketTypeRequest& req, Callback<v1::TicketType> done);
  absl::StatusOr<v1::TicketType> GetTicketType(const Caller& c, const v1::GetTicketTypeRequest& req,
                                               absl::Time deadline);
  absl::StatusOr<v1::ListTicketTypesResponse> ListTicketTypes(const Caller& c, const v1::ListTicketTypesRequest& req,
                                                              absl::Time deadline);
  void MigrateTickets(const Caller& c, const v1::MigrateTicketsRequest& req, Callback<v1::MigrateTicketsResponse> done);

  void CreateTicket(const Caller& c, const v1::CreateTicketRequest& req, Callback<v1::Ticket> done);
  void UpdateTicket(const Caller& c, const v1::UpdateTicketRequest& req, Callback<v1::Ticket> done);
  void TransitionTicket(const Caller& c, const v1::TransitionTicketRequest& req, Callback<v1::Ticket> done);
  void AssignTicket(const Caller& c, const v1::AssignTicketRequest& req, Callback<v1::Ticket> done);
  void AddComment(const Caller& c, const v1::AddCommentRequest& req, Callback<v1::Ticket> done);
  absl::StatusOr<v1::Ticket> GetTicket(const Caller& c, const v1::GetTicketRequest& req, absl::Time deadline);
  absl::StatusOr<v1::ListTicketsResponse> ListTickets(const Caller& c, const v1::ListTicketsRequest& req,
                                                      absl::Time deadline);
  absl::StatusOr<v1::ListEventsResponse> ListEvents(const Caller& c, const v1::ListEventsRequest& req,
                                                    absl::Time deadline);

  void SetSlaPolicy(const Caller& c, const v1::SetSlaPolicyRequest& req, Callback<v1::SlaPolicyResource> done);
  void DeleteSlaPolicy(const Caller& c, const v1::DeleteSlaPolicyRequest& req, Callback<v1::SlaPolicyResource> done);
  absl::StatusOr<v1::SlaPolicyResource> GetSlaPolicy(const Caller& c, const v1::GetSlaPolicyRequest& req,
                                                     absl::Time deadline);
  absl::StatusOr<v1::ListSlaPoliciesResponse> ListSlaPolicies(const Caller& c, const v1::ListSlaPoliciesRequest& req,
                                                              absl::Time deadline);
  void SetCalendar(const Caller& c, const v1::SetCalendarRequest& req, Callback<v1::Calendar> done);
  absl::StatusOr<v1::Calendar> GetCalendar(const Caller& c, const v1::GetCalendarRequest& req, absl::Time deadline);
  absl::StatusOr<v1::ListCalendarsResponse> ListCalendars(const Caller& c, const v1::ListCalendarsRequest& req,
                                                          absl::Time deadline);
  absl::StatusOr<v1::EvaluateSlaResponse> EvaluateSla(const Caller& c, const v1::EvaluateSlaRequest& req,
                                                      absl::Time deadline);

  void AfterToken(const std::string& token, absl::string_view field, absl::Time deadline,
                  absl::AnyInvocable<void(absl::Status)> done) {
    projection::AfterToken(*db_, token, field, deadline, std::move(done));
  }

  // The SLA scheduler as of `now`: records SlaWarning and SlaBreached on the open tickets whose
  // clocks reached the warning share or the target under the policy in force, once each, with
  // that moment as occurred_at. Blocks until durable.
  struct SchedulerRun {
    int64_t tickets = 0;  // open tickets looked at
    int64_t warnings = 0;
    int64_t breaches = 0;
  };
  absl::StatusOr<SchedulerRun> RunScheduler(absl::Time now);

  static projection::ProjectionSpec Spec(const Options& options);
  projection::Follower* customers_follower() { return follower_.get(); }
  // What the engine's write path did since Open: state reads, request-id lookups, folds, seals
  // and appends (kernel::StoreCounters).
  kernel::StoreCounters WriteCounters() const { return store_.counters(); }

  v1::Ticket ToApi(const TicketState& s) const;
  v1::TicketType ToApi(const TicketTypeState& s) const;
  v1::SlaPolicyResource ToApi(const v1::SlaPolicyState& s) const;
  v1::Calendar ToApi(const v1::CalendarState& s) const;

  // The policy in force for tickets of `type` and `priority` (its own, else the type's default)
  // with its calendar; nullopt when none applies.
  struct ResolvedPolicy {
    std::string name;
    v1::SlaPolicy policy;
    std::shared_ptr<const BusinessCalendar> calendar;
  };
  absl::StatusOr<std::optional<ResolvedPolicy>> PolicyFor(const std::string& type, v1::TicketPriority priority) const;

 private:
  TicketEngine(eventlog::Log* log, projection::ProjectionDb* db, Options o,
               std::unique_ptr<projection::AggregateWriter> writer)
      : log_(log), db_(db), options_(std::move(o)), writer_(std::move(writer)) {}
  absl::Status WaitToken(const std::string& token, absl::string_view field, absl::Time deadline);
  // The calendar of calendars/{key}; NOT_FOUND when there is none.
  absl::StatusOr<std::shared_ptr<const BusinessCalendar>> CalendarFor(const std::string& name) const;
  // Runs `then` with the customer (its survivor after merges) once it is known, waiting for the
  // customers follower when it is unknown; `fail` with INVALID_ARGUMENT naming `field` when it
  // does not exist or is in the recycle bin, PERMISSION_DENIED when hidden from the caller.
  void WithCustomer(const Caller& c, const std::string& customer, const std::string& field,
                    absl::AnyInvocable<void(std::string)> then, absl::AnyInvocable<void(absl::Status)> fail);
  // A command on the ticket named `name` that needs its type's version (the one it follows),
  // expecting the version of the request's `etag` (as ParseEtag reads it; 0: any).
  template <typename Cmd>
  void OnTicket(const Caller& c, const std::string& id, const std::string& request_id, int64_t etag, Cmd cmd,
                Callback<v1::Ticket> done);

  eventlog::Log* log_;
  projection::ProjectionDb* db_;
  const Options options_;
  std::unique_ptr<projection::AggregateWriter> writer_;
  // Every command of the engine runs here (docs/architecture.md §3).
  kernel::AggregateStore store_{writer_.get()};
  std::unique_ptr<projection::Follower> follower_;
};

}  // namespace crm::tickets

#endif  // CRM_SERVICES_TICKETS_TICKET_ENGINE_H_
