#ifndef CRM_SERVICES_CUSTOMERS_CUSTOMER_ENGINE_H_
#define CRM_SERVICES_CUSTOMERS_CUSTOMER_ENGINE_H_

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/optional.h"
#include "crm/customers/v1/customers_service.pb.h"
#include "libs/common/clock.h"
#include "libs/common/completions.h"
#include "libs/common/request.h"
#include "libs/eventlog/log.h"
#include "libs/kernel/aggregate_store.h"
#include "libs/projection/aggregate_writer.h"
#include "libs/projection/day_numbers.h"
#include "libs/projection/follower.h"
#include "libs/projection/projection_db.h"
#include "libs/projection/rebuild.h"
#include "services/customers/customer.h"
#include "services/customers/customer_projections.h"
#include "services/customers/customer_commands.h"
#include "services/customers/customer_queries.h"
#include "services/customers/lead_commands.h"
#include "services/customers/settings_commands.h"
#include "services/customers/lead.h"
#include "libs/topics/topics.h"

namespace crm::customers {

inline constexpr const char* kTopic = topics::kCustomers;
inline constexpr int32_t kPartitions = topics::kPartitions;
// Version of the projection code (rows and how events fold into them). Bump it with any change
// to ApplyCustomersRecord's output: OpenProjections then rebuilds beside the live copy and swaps.
// 6: ListCustomers' sort indexes; 7: lead counts; 8: the process managers' pm/ rows.
inline constexpr int64_t kProjectionVersion = 8;

// The customers service without the gRPC server around it (STYLE: userver samples): opens the
// projections, the writer and the one AggregateStore (docs/architecture.md §3), and owns the
// parts the service calls: the query side (queries()) and the command handlers of customers,
// leads and settings. The engine itself runs what spans aggregates or time: the process
// managers (merge, unmerge, lead conversion, CompletePendingSteps), the scheduler and the
// reactions to the opportunities' and tasks' topics. Thread-safe. Writes complete through a
// callback on the log writer's thread; reads are synchronous.
class CustomerEngine {
 public:
  struct Options {
    // Topic of the customers' events. Default: crm.customers.events.v1.
    std::string topic = kTopic;
    // Partitions when the topic has to be created. Default: 8.
    int32_t partitions = kPartitions;
    // "now" for occurred_at, recorded_at, customer numbers and the scheduler. Required.
    Clock* clock = nullptr;
    // Customer numbers and daily claim limits use the date in this zone. Default: UTC+8.
    absl::TimeZone zone = absl::FixedTimeZone(8 * 3600);
    // Tenant written into every envelope. Default: "default".
    std::string tenant = "default";
    // Called with the time each append took to become durable. Default: none.
    std::function<void(absl::Duration)> observe_append;
    // The opportunities topic, followed for won opportunities. Default:
    // crm.opportunities.events.v1.
    std::string opportunities_topic = topics::kOpportunities;
    // The tasks topic, followed for completed tasks' notes. Default: crm.tasks.events.v1.
    std::string tasks_topic = topics::kTasks;
    // Most pm/ rows one CompletePendingSteps pass reads, so most second steps it writes (the
    // next pass goes on after the last row read). Default: 256.
    int32_t pending_steps_per_pass = 256;
    // How long Open and each scheduler run wait for a pass of CompletePendingSteps; steps
    // still in flight then complete in the background. Default: 10 s.
    absl::Duration pending_steps_budget = absl::Seconds(10);
    // How long a scheduler pass or a reconciliation waits for its batch of commands; then it
    // answers DEADLINE_EXCEEDED (the commands still finish, the next run sees them). Default:
    // 60 s, as the other services' schedulers.
    absl::Duration batch_timeout = absl::Seconds(60);
  };

  // Creates the topic if needed, catches the projections up with the log and becomes the
  // topic's single writer. `log` and `db` must outlive the engine.
  static absl::StatusOr<std::unique_ptr<CustomerEngine>> Open(eventlog::Log* log,
                                                             projection::ProjectionDb* db,
                                                             Options options);
  ~CustomerEngine();

  template <typename T>
  using Callback = absl::AnyInvocable<void(absl::StatusOr<T>)>;

  // The parts the service calls (docs/architecture.md §3): the query side and the command
  // handlers, all over the engine's one AggregateStore and projections.
  //
  // The reads (customers, leads, settings), over the same projections.
  const CustomerQueries& queries() const { return queries_; }
  // The customer commands (create, update, delete, contacts, follow-ups, pool release and claim).
  CustomerCommands& customer_commands() { return *customers_; }
  // The settings commands (pool policy, industries, channel costs, tag rules).
  SettingsCommands& settings() { return *settings_; }
  // The lead commands but conversion (ConvertLead).
  LeadCommands& leads() { return *leads_; }

  // The process managers of two-aggregate commands follow.
  //
  // Converts a lead (线索转化), in lead_conversion.cc: writes the customer side (created, or an
  // existing one filled in) and then the lead's LeadConverted, holding the lead meanwhile. A created customer's CustomerCreated carries the
  // LeadConverted to write, so a crash between the two writes is completed by the process
  // manager (CompletePendingSteps) at the next Open, or by the next ConvertLead of that lead,
  // which completes it first: a repeat of the request_id then answers with the converted lead
  // and writes nothing. Filling an existing customer is not completed so: a crash after it
  // leaves an open lead that a repeat of the call converts.
  void ConvertLead(const Caller& caller, const v1::ConvertLeadRequest& req,
                   Callback<v1::ConvertLeadResponse> done);

  // Merging duplicates (查重), in merge_commands.cc. The merge writes the survivor's
  // CustomersMerged and then the merged customer's CustomerMergedInto, holding both; an unmerge
  // the merged one's CustomerUnmerged and then the survivor's CustomerMergeUndone. A crash
  // between the two leaves a visible duplicate (never hidden data) until the process manager
  // (CompletePendingSteps) writes the second step; a repeat of the call answers as a repeat.
  void MergeCustomers(const Caller& caller, const v1::MergeCustomersRequest& req,
                      Callback<v1::MergeCustomersResponse> done);
  void UnmergeCustomers(const Caller& caller, const v1::UnmergeCustomersRequest& req,
                        Callback<v1::MergeCustomersResponse> done);

  // Bulk import (批量导入), in bulk_commands.cc: one Import per ImportCustomers stream, used
  // from one thread at a time. Rows become the same commands as CreateCustomer (plus
  // AddContact) and UpdateCustomer, under the same rules and permissions, each with a request
  // id made of the caller's user id, the import_id and the row number, so that a resumed
  // import never applies a row twice and an import_id names one user's import only.
  class Import {
   public:
    // The first response's fields: import_id, the mapping in force, ignored columns, dry_run.
    const v1::ImportCustomersResponse& header() const { return header_; }
    const v1::ImportCounts& counts() const { return counts_; }
    // Applies `rows` and returns once they are durable (dry run: decided), with one result
    // per row and the running counts. INVALID_ARGUMENT for a malformed batch (too many rows,
    // row numbers not increasing); a row's own errors are FAILED results, not errors.
    absl::StatusOr<v1::ImportCustomersResponse> Apply(const google::protobuf::RepeatedPtrField<v1::ImportRow>& rows);

   private:
    friend class CustomerEngine;
    struct Row;
    Import(CustomerEngine* engine, Caller caller) : engine_(engine), caller_(std::move(caller)) {}
    // Parses the cells of `in` into out (or out->result as FAILED).
    void Parse(const v1::ImportRow& in, const CustomerSettings& settings, Row* out) const;
    // Finds what the row matches; decides and (unless dry run) writes it; fills row->result.
    // `pending` counts the row done (an asynchronous write records its result through it).
    void Run(Row* row, const CustomerSettings& settings, Completions::Handle pending);
    void Fail(Row* row, const absl::Status& status) const;

    CustomerEngine* engine_;
    const Caller caller_;
    v1::DedupePolicy policy_ = v1::DEDUPE_POLICY_SKIP;
    bool dry_run_ = false;
    std::string import_id_;
    std::vector<std::string> fields_;                 // per column: its field, "" ignored
    std::map<std::string, std::string> column_of_;   // field -> column name
    int64_t last_row_ = 0;
    // Dry run: the dedupe keys of rows that would have been created -> "row N".
    std::map<std::string, std::string> dry_keys_;
    v1::ImportCustomersResponse header_;
    v1::ImportCounts counts_;
  };
  // Checks `options` (mapping, policy, import id) against the columns; INVALID_ARGUMENT naming
  // options.* otherwise.
  absl::StatusOr<std::unique_ptr<Import>> StartImport(const Caller& caller, const v1::ImportOptions& options);

  absl::StatusOr<v1::ListIndustriesResponse> ListIndustries(const Caller& caller,
                                                            const v1::ListIndustriesRequest& req,
                                                            absl::Time deadline);

  // The scheduler (docs/architecture.md §3; scheduler.cc): returns owned customers idle past their team's
  // return_after_days to the public pool and purges customers 30 days in the recycle bin, as
  // of `now`. The events carry the due time as occurred_at, so replays never read a clock.
  // Blocks until the events are durable; safe to run concurrently with commands.
  // It also applies the enabled behaviour tag rules as of `now`.
  struct SchedulerRun {
    int64_t returned_to_pool = 0;
    int64_t purged = 0;
    int64_t tagged = 0;
    int64_t untagged = 0;
    int64_t completed_steps = 0;  // CompletePendingSteps' completed
  };
  absl::StatusOr<SchedulerRun> RunScheduler(absl::Time now);

  // The process managers of the two-aggregate commands (merge, unmerge, a conversion that
  // created its customer; process_managers.cc): writes the second step of up to
  // Options::pending_steps_per_pass steps whose first step is in the log and whose second is
  // not (the pm/ rows), through the store under the command's leases, as the first step's
  // actor with source SYSTEM, its correlation id, and the first event as causation. A step
  // already completed, or superseded since, writes nothing (and stays listed until its second
  // event exists, skipped by every pass):
  //  - merge: completed when the merged customer is merged into the survivor; superseded when
  //    the survivor no longer records the merge (unmerged) or is purged, or the merged customer
  //    was purged or merged elsewhere. A merged customer in the recycle bin is still marked:
  //    the survivor already holds its data.
  //  - unmerge: completed when the survivor no longer records the merge; superseded when the
  //    merged customer was merged into the survivor again.
  //  - conversion: completed when the lead is converted (into this customer, or since into
  //    another); superseded when the lead is gone or disqualified. The customer's later fate
  //    (recycle bin, purge) does not undo the conversion.
  // The second step is not authorised again (the command was, when its first step was
  // decided), so an owner changed in between does not strand it. Runs at Open, before the
  // followers start, and at each RunScheduler; one pass at a time. Waits until `deadline` at
  // most. Errors: DATA_LOSS for an undecodable row, RocksDB's; a step that cannot be written
  // (the log refuses it, a unique key is taken) is counted in `failed`, logged, and retried by
  // the next pass.
  struct PendingRun {
    int64_t completed = 0;   // second steps written
    int64_t unchanged = 0;   // completed already or superseded: nothing written
    int64_t failed = 0;      // not written now (see `error`), retried by the next pass
    int64_t unfinished = 0;  // still in flight at `deadline`
    absl::Status error;      // the first failure
  };
  absl::StatusOr<PendingRun> CompletePendingSteps(absl::Time deadline);

  // Records the won opportunities (OpportunityWon of the opportunities topic) not yet on their
  // customers as CustomerDealWon. Runs after each poll of the opportunities topic and at Open
  // (a reaction a crash interrupted completes then). Blocks until durable.
  absl::StatusOr<int64_t> ReconcileWins();
  // Records the notes of completed tasks (TaskCompleted of the tasks topic with a note and a
  // customer) not yet on their customers as follow-ups (跟进记录) by the task's completer,
  // caused by the TaskCompleted event. Runs after each poll of the tasks topic and at Open.
  // A customer in the recycle bin gets its notes once restored. Blocks until durable.
  absl::StatusOr<int64_t> ReconcileTaskNotes();

  // Builds the projections afresh from offset 0 into `path` (which must not exist), WAL off,
  // flushed at the end. Returns the number of events applied.
  static absl::StatusOr<int64_t> Rebuild(eventlog::Log& log, const std::string& topic,
                                         const std::string& path);

  // Opens the projections at `path` for `options.topic`. When they were built by another
  // kProjectionVersion, rebuilds them from the log beside the live copy, swaps the new copy
  // in, and sets *rebuilt to the events applied (0 otherwise). Creates the topic if needed.
  static absl::StatusOr<std::unique_ptr<projection::ProjectionDb>> OpenProjections(
      eventlog::Log& log, const std::string& path, const Options& options, int64_t* rebuilt);

  // Rebuilds the projections of `topic` beside `live_path` and swaps the new copy in; the
  // service must not be running on `live_path`. Returns the number of events applied.
  static absl::StatusOr<int64_t> RebuildAndSwap(eventlog::Log& log, const std::string& topic,
                                                const std::string& live_path);

  // What the write path did since Open (libs/kernel), for tests that count a command's work.
  kernel::StoreCounters WriteCounters() const { return store_->counters(); }

  // Order-independent checksum of every projection row (for "equals a fresh rebuild").
  static absl::StatusOr<std::string> Checksum(projection::ProjectionDb& db);
  // What the projections are built from (libs/projection/rebuild.h).
  static projection::ProjectionSpec Spec(const std::string& topic, int32_t partitions,
                                         const std::string& opportunities_topic = topics::kOpportunities,
                                         const std::string& tasks_topic = topics::kTasks);

 private:
  explicit CustomerEngine(projection::ProjectionDb* db, Options o)
      : db_(db),
        options_(std::move(o)),
        queries_(db, options_.clock, options_.zone) {}

  using Decided = CustomerCommands::Decided;
  using DecideFn = CustomerCommands::DecideFn;
  using Written = CustomerCommands::Written;
  // The customer write path the process managers, the scheduler, the reactions and the import
  // share (CustomerCommands::Command, Execute, AllocateNumber).
  kernel::Command<CustomerState, CustomerEvent> CustomerCommand(const Caller& caller, common::v1::ActorSource source,
                                                                const Target& target, DecideFn decide,
                                                                const std::string& correlation = "",
                                                                const std::string& shares_keys_with = "") {
    return customers_->Command(caller, source, target, std::move(decide), correlation, shares_keys_with);
  }
  void Execute(const Caller& caller, common::v1::ActorSource source, const Target& target, DecideFn decide,
               Callback<Written> done, const std::string& correlation = "", bool fresh_id = false) {
    customers_->Execute(caller, source, target, std::move(decide), std::move(done), correlation, fresh_id);
  }
  absl::StatusOr<std::string> AllocateNumber() { return customers_->AllocateNumber(); }
  // Merge (`merge` set) or unmerge: holds both customers and writes the two steps in order.
  void TwoStep(const Caller& caller, const std::string& survivor, const std::string& merged,
               const std::string& correlation, bool replayed, absl::optional<MergeFrom> merge,
               Callback<v1::MergeCustomersResponse> done);
  // Runs the scheduler's decisions, one per customer, and waits for them; adds the customers
  // written to *written.
  absl::Status RunBatch(std::vector<std::pair<std::string, DecideFn>> jobs, int64_t* written);
  // Evaluates the enabled tag rules as of `now` and tags/untags (into run->tagged/untagged).
  absl::Status RunTagRules(absl::Time now, const CustomerSettings& settings, SchedulerRun* run);
  // ConvertLead once the lead is held (`lease`) and checked: writes the customer side, then
  // the lead's LeadConverted under the same lease.
  using ConvertReply = absl::AnyInvocable<absl::StatusOr<v1::ConvertLeadResponse>(const LeadState&, const std::string&,
                                                                                  bool) const>;
  void ConvertHeld(const Caller& caller, kernel::Lease lease, const LeadState& lead, const Target& lead_target,
                   const std::string& target, v1::LeadConverted converted, ConvertReply reply,
                   Callback<v1::ConvertLeadResponse> done);
  // Process managers (process_managers.cc): writes the second step of the pending step at pm/
  // row `key` under a lease on the step's aggregates, as CompletePendingSteps says; `done` gets
  // whether it wrote. `source` is the envelopes' actor source.
  void CompleteStep(const std::string& key, PendingStep step, common::v1::ActorSource source, Callback<bool> done);
  // The conversion's second step under `lease` (holding the lead), also the end of an
  // uninterrupted ConvertLead (source API): `done` gets the lead after it.
  void CompleteConversion(kernel::Lease lease, const std::string& lead_id, const PendingStep& step,
                          common::v1::ActorSource source, Callback<kernel::Written<LeadState>> done);

  projection::ProjectionDb* db_;
  const Options options_;
  const CustomerQueries queries_;
  std::unique_ptr<projection::AggregateWriter> writer_;
  // The write path (docs/architecture.md §3) over writer_; set once writer_ is open.
  std::unique_ptr<kernel::AggregateStore> store_;
  std::unique_ptr<CustomerCommands> customers_;  // over store_
  std::unique_ptr<SettingsCommands> settings_;  // over store_
  std::unique_ptr<LeadCommands> leads_;         // over store_
  std::unique_ptr<projection::Follower> opportunities_;  // the won opportunities
  std::unique_ptr<projection::Follower> tasks_;          // the completed tasks' notes

  // One CompletePendingSteps pass at a time; the pm/ key the next pass starts after ("" from
  // the first), so that steps left pending (superseded) do not hide the ones after them.
  absl::Mutex pending_mu_;
  std::string pending_cursor_ ABSL_GUARDED_BY(pending_mu_);
};

}  // namespace crm::customers

#endif  // CRM_SERVICES_CUSTOMERS_CUSTOMER_ENGINE_H_
