#ifndef CRM_SERVICES_OPPORTUNITIES_OPPORTUNITY_ENGINE_H_
#define CRM_SERVICES_OPPORTUNITIES_OPPORTUNITY_ENGINE_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "crm/opportunities/v1/opportunities_service.pb.h"
#include "libs/common/clock.h"
#include "libs/common/request.h"
#include "libs/eventlog/log.h"
#include "libs/kernel/aggregate_store.h"
#include "libs/projection/aggregate_writer.h"
#include "libs/projection/day_numbers.h"
#include "libs/projection/follower.h"
#include "libs/projection/projection_db.h"
#include "libs/projection/rebuild.h"
#include "services/opportunities/contract.h"
#include "services/opportunities/customer_refs.h"
#include "services/opportunities/opportunity.h"
#include "services/opportunities/opportunity_projections.h"
#include "services/opportunities/quote.h"
#include "services/opportunities/settings.h"
#include "libs/topics/topics.h"

namespace crm::opportunities {

inline constexpr const char* kTopic = topics::kOpportunities;
inline constexpr int32_t kPartitions = topics::kPartitions;
// Version of the projection code (opportunity_projections.cc, customer_refs.cc). Bump it with
// any change to the rows: OpenProjections then rebuilds.
inline constexpr int64_t kProjectionVersion = 3;  // 3: the settings fold as every aggregate (id, r/ rows)

// The opportunities service without the gRPC server around it: opportunities (商机),
// quotes (报价单), contracts (合同) with payment collection (回款), and the sales settings, on
// the write path of docs/architecture.md §3. It follows the customers topic into a view of the customers
// (customer_refs.h) to check references and to react: a merged customer's opportunities
// follow the survivor, and a customer in the recycle bin flags its open opportunities.
// Thread-safe. Writes complete through a callback on the log writer's thread.
class OpportunityEngine {
 public:
  struct Options {
    // Topic of this service's events. Default: crm.opportunities.events.v1.
    std::string topic = kTopic;
    int32_t partitions = kPartitions;
    // The customers service's topic, followed for the view of the customers. Default:
    // crm.customers.events.v1.
    std::string customers_topic = topics::kCustomers;
    // "now" for occurred_at, recorded_at, contract numbers and the scheduler. Required.
    Clock* clock = nullptr;
    // Contract numbers and due dates use the date in this zone. Default: UTC+8.
    absl::TimeZone zone = absl::FixedTimeZone(8 * 3600);
    std::string tenant = "default";
    std::function<void(absl::Duration)> observe_append;
    // How long a scheduler run or a reaction to a customer waits for the commands it started;
    // then it answers DEADLINE_EXCEEDED (the commands still finish, the next run sees them).
    // Default: 60 s, twice the wait for one command (AwaitOptions, libs/common/await.h): a
    // batch's commands run at once, behind the same log.
    absl::Duration batch_timeout = absl::Seconds(60);
  };

  // Creates the topic if needed, catches the projections up with both topics, becomes the
  // topic's single writer, reconciles the opportunities of customers deleted or merged (a
  // reaction a crash interrupted completes here) and starts following the customers topic.
  static absl::StatusOr<std::unique_ptr<OpportunityEngine>> Open(eventlog::Log* log, projection::ProjectionDb* db,
                                                                Options options);
  ~OpportunityEngine();

  template <typename T>
  using Callback = absl::AnyInvocable<void(absl::StatusOr<T>)>;

  // Opportunities (opportunity_commands.cc).
  void CreateOpportunity(const Caller& c, const v1::CreateOpportunityRequest& req, Callback<v1::Opportunity> done);
  void UpdateOpportunity(const Caller& c, const v1::UpdateOpportunityRequest& req, Callback<v1::Opportunity> done);
  void DeleteOpportunity(const Caller& c, const v1::DeleteOpportunityRequest& req, Callback<v1::Opportunity> done);
  void UndeleteOpportunity(const Caller& c, const v1::UndeleteOpportunityRequest& req, Callback<v1::Opportunity> done);
  void MoveStage(const Caller& c, const v1::MoveOpportunityStageRequest& req, Callback<v1::Opportunity> done);
  void Win(const Caller& c, const v1::WinOpportunityRequest& req, Callback<v1::Opportunity> done);
  void Lose(const Caller& c, const v1::LoseOpportunityRequest& req, Callback<v1::Opportunity> done);
  void Reopen(const Caller& c, const v1::ReopenOpportunityRequest& req, Callback<v1::Opportunity> done);
  absl::StatusOr<v1::Opportunity> GetOpportunity(const Caller& c, const v1::GetOpportunityRequest& req,
                                                 absl::Time deadline);
  absl::StatusOr<v1::ListOpportunitiesResponse> ListOpportunities(const Caller& c,
                                                                  const v1::ListOpportunitiesRequest& req,
                                                                  absl::Time deadline);
  absl::StatusOr<v1::ListEventsResponse> ListEvents(const Caller& c, const v1::ListEventsRequest& req,
                                                    absl::Time deadline);
  absl::StatusOr<v1::SalesSettings> GetSettings(const Caller& c, const v1::GetSalesSettingsRequest& req,
                                                absl::Time deadline);
  void SetPipelines(const Caller& c, const v1::SetPipelinesRequest& req, Callback<v1::SalesSettings> done);
  void SetContractPolicy(const Caller& c, const v1::SetContractPolicyRequest& req, Callback<v1::SalesSettings> done);

  // Quotes, contracts and payments (contract_commands.cc).
  void CreateQuote(const Caller& c, const v1::CreateQuoteRequest& req, Callback<v1::Quote> done);
  void ReviseQuote(const Caller& c, const v1::ReviseQuoteRequest& req, Callback<v1::Quote> done);
  void SendQuote(const Caller& c, const v1::SendQuoteRequest& req, Callback<v1::Quote> done);
  // Drafts the contract (id derived from the quote and its version), then accepts the quote.
  // A crash between the two leaves the draft and a sent quote; accepting again completes.
  void AcceptQuote(const Caller& c, const v1::AcceptQuoteRequest& req, Callback<v1::AcceptQuoteResponse> done);
  void RejectQuote(const Caller& c, const v1::RejectQuoteRequest& req, Callback<v1::Quote> done);
  absl::StatusOr<v1::Quote> GetQuote(const Caller& c, const v1::GetQuoteRequest& req, absl::Time deadline);
  absl::StatusOr<v1::ListQuotesResponse> ListQuotes(const Caller& c, const v1::ListQuotesRequest& req,
                                                    absl::Time deadline);
  void CreateContract(const Caller& c, const v1::CreateContractRequest& req, Callback<v1::Contract> done);
  void UpdateContract(const Caller& c, const v1::UpdateContractRequest& req, Callback<v1::Contract> done);
  void SubmitContract(const Caller& c, const v1::SubmitContractRequest& req, Callback<v1::Contract> done);
  void ApproveContract(const Caller& c, const v1::ApproveContractRequest& req, Callback<v1::Contract> done);
  void RejectContract(const Caller& c, const v1::RejectContractRequest& req, Callback<v1::Contract> done);
  void TerminateContract(const Caller& c, const v1::TerminateContractRequest& req, Callback<v1::Contract> done);
  void SetPaymentPlan(const Caller& c, const v1::SetPaymentPlanRequest& req, Callback<v1::Contract> done);
  void RecordPayment(const Caller& c, const v1::RecordPaymentRequest& req, Callback<v1::Contract> done);
  void CorrectPayment(const Caller& c, const v1::CorrectPaymentRequest& req, Callback<v1::Contract> done);
  void VoidPayment(const Caller& c, const v1::VoidPaymentRequest& req, Callback<v1::Contract> done);
  absl::StatusOr<v1::Contract> GetContract(const Caller& c, const v1::GetContractRequest& req, absl::Time deadline);
  absl::StatusOr<v1::ListContractsResponse> ListContracts(const Caller& c, const v1::ListContractsRequest& req,
                                                          absl::Time deadline);
  absl::StatusOr<v1::Receivable> GetReceivable(const Caller& c, const v1::GetReceivableRequest& req,
                                               absl::Time deadline);
  absl::StatusOr<v1::CustomerReceivables> GetCustomerReceivables(const Caller& c,
                                                                 const v1::GetCustomerReceivablesRequest& req,
                                                                 absl::Time deadline);

  // Calls `done` once the projections reached `token` (see projection::AfterToken).
  void AfterToken(const std::string& token, absl::string_view field, absl::Time deadline,
                  absl::AnyInvocable<void(absl::Status)> done);

  // The scheduler as of `now`: stage timeouts, contract renewal notices and expiry, overdue
  // instalments. Events carry the due time as occurred_at. Blocks until durable.
  struct SchedulerRun {
    int64_t stage_timeouts = 0;
    int64_t renewal_notices = 0;
    int64_t expired = 0;
    int64_t overdue_instalments = 0;
  };
  absl::StatusOr<SchedulerRun> RunScheduler(absl::Time now);

  // Reacts to customer `id` as the view knows it: its opportunities and contracts follow a
  // merge, its open opportunities carry the recycle-bin flag. Blocks until durable; returns
  // the opportunities and contracts changed.
  absl::StatusOr<int64_t> ReconcileCustomer(const std::string& id);
  // Creates the opportunities that lead conversions asked for (pending "lc/" rows) once their
  // customer is known. Blocks until durable; returns the opportunities created.
  absl::StatusOr<int64_t> ReconcileConversions();
  // The customers view's follower (status, progress).
  const projection::Follower* customers_follower() const { return follower_.get(); }

  static projection::ProjectionSpec Spec(const Options& options);
  static absl::StatusOr<std::unique_ptr<projection::ProjectionDb>> OpenProjections(eventlog::Log& log,
                                                                                  const std::string& path,
                                                                                  const Options& options,
                                                                                  int64_t* rebuilt);

  // The write path shared by the command files (public for them; not an API).
  template <typename State>
  using Written = kernel::Written<State>;
  using Cause = kernel::Cause;
  template <typename State, typename Event>
  using DecideFn = absl::AnyInvocable<absl::StatusOr<std::vector<Event>>(const State*)>;
  // The aggregate a command writes and the version its request's etag expects of it: the
  // store checks it before `decide` (ABORTED, ErrorInfo ETAG_MISMATCH naming `etag_field`).
  struct Versioned {
    Versioned(std::string id) : id(std::move(id)) {}  // NOLINT: any version, from an id
    Versioned(const Target& target, std::string field)
        : id(target.id), etag(target.etag), etag_field(std::move(field)) {}
    std::string id;
    int64_t etag = 0;  // as ParseEtag reads it: 0 any, kEtagNothingWritten none written yet
    std::string etag_field;
  };
  // Runs `decide` on aggregate `target.id` (of type State: an opportunity, quote, contract or
  // the settings) under a lease on it and appends its events, answering with the state they
  // fold into (kernel::AggregateStore::Execute). A request_id seen on the aggregate before is
  // answered with the state without deciding again; one seen on another aggregate is
  // INVALID_ARGUMENT. Then a version other than `target.etag` is ABORTED, before `decide`.
  template <typename State, typename Event>
  void Execute(const Caller& caller, const Versioned& target, const std::string& request_id,
               DecideFn<State, Event> decide, Callback<Written<State>> done, Cause cause = {});
  // Execute under `lease`, which holds `target.id` (FAILED_PRECONDITION otherwise) and may
  // hold the other aggregates of a request that writes several (AcceptQuote): their rows of
  // `request_id` are no reuse.
  template <typename State, typename Event>
  void ExecuteHeld(kernel::Lease lease, const Caller& caller, const Versioned& target, const std::string& request_id,
                   DecideFn<State, Event> decide, Callback<Written<State>> done, Cause cause = {});
  // What the write path did since Open: state reads, request-id lookups, folds, seals and
  // appends, so that the work per command can be counted.
  kernel::StoreCounters WriteCounters() const { return store_.counters(); }
  projection::ProjectionDb* db() const { return db_; }
  Clock* clock() const { return options_.clock; }
  const Options& options() const { return options_; }

  // API views.
  v1::Opportunity ToApi(const OpportunityState& s) const;
  v1::Quote ToApi(const QuoteState& s) const;
  v1::Contract ToApi(const ContractState& s) const;
  v1::SalesSettings ToApi(const OpportunitySettings& s) const;
  // A state row visible to `caller`: NOT_FOUND / PERMISSION_DENIED otherwise.
  template <typename State>
  absl::StatusOr<State> LoadVisible(const Caller& caller, const std::string& id, absl::string_view name);
  absl::StatusOr<std::string> AllocateContractNumber();
  absl::Status WaitToken(const std::string& token, absl::string_view field, absl::Time deadline);

 private:
  OpportunityEngine(eventlog::Log* log, projection::ProjectionDb* db, Options o,
                    std::unique_ptr<projection::AggregateWriter> writer)
      : log_(log),
        db_(db),
        options_(std::move(o)),
        writer_(std::move(writer)),
        numbers_(db, kContractNumberPrefix, options_.zone) {}
  // Calls `then` once the customers view may know customer `customer_id`: after `token` (a
  // request's min_consistency_token) is reached, and, when the customer is still unknown then
  // (created a moment ago without a token), after the view has what the customers topic holds
  // now. `then` decides with what the view holds; `fail` gets a bad token or a timeout.
  void AfterCustomerKnown(const std::string& token, const std::string& customer_id, absl::AnyInvocable<void()> then,
                          absl::AnyInvocable<void(absl::Status)> fail);
  // The creates once their customer may be known (the request is validated).
  void CreateOpportunityNow(const Caller& c, const v1::CreateOpportunityRequest& req, const std::string& customer_id,
                            Callback<v1::Opportunity> done);
  void CreateContractNow(const Caller& c, const v1::CreateContractRequest& req, const std::string& customer_id,
                         Callback<v1::Contract> done);
  // How often AcceptQuote takes its lease again when the quote was revised meanwhile (each
  // revision names another contract draft) before it answers ABORTED.
  static constexpr int kAcceptQuoteAttempts = 3;
  // The contract `quote` is accepted into: the one it names once accepted, else the draft its
  // current version derives.
  static std::string ContractOfQuote(const QuoteState& quote);
  // AcceptQuote under a lease on `contract_id` and the quote: reads the quote again there and
  // drafts the contract from that read; when the quote names another contract by then, takes
  // the lease again for that one, at most `attempts` times in all.
  void AcceptQuoteLeased(const Caller& c, const v1::AcceptQuoteRequest& req, const Target& target,
                         const std::string& contract_id, int attempts, Callback<v1::AcceptQuoteResponse> done);
  // A settings command expecting version `etag` (as ParseEtag reads it).
  void WriteSettings(const Caller& caller, const std::string& request_id, int64_t etag,
                     absl::AnyInvocable<SettingsDecision(const OpportunitySettings&)> decide,
                     Callback<v1::SalesSettings> done);
  // Customer ids whose reactions a customers record may call for.
  void ReactTo(const std::vector<eventlog::Record>& records);
  absl::Status ReconcileAll();

  eventlog::Log* log_;
  projection::ProjectionDb* db_;
  const Options options_;
  std::unique_ptr<projection::AggregateWriter> writer_;
  // Every command's write path, over writer_ (declared after it).
  kernel::AggregateStore store_{writer_.get()};
  std::unique_ptr<projection::Follower> follower_;
  projection::DayNumbers numbers_;
};

}  // namespace crm::opportunities

#endif  // CRM_SERVICES_OPPORTUNITIES_OPPORTUNITY_ENGINE_H_
