#include "services/opportunities/opportunity_engine.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "libs/common/await.h"
#include "crm/customers/v1/customers_events.pb.h"
#include "google/protobuf/util/json_util.h"
#include "libs/common/completions.h"
#include "libs/common/grpc_status.h"
#include "libs/common/proto_time.h"
#include "libs/common/request.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/envelope.h"
#include "libs/kernel/target_command.h"
#include "libs/projection/history.h"
#include "libs/server/logging.h"
#include "libs/topics/events.h"
#include "services/opportunities/engine_kinds.h"

namespace crm::opportunities {

using common::v1::EventEnvelope;
using projection::FromRocks;

namespace {

constexpr char kSource[] = "/crm/opportunities";
const Caller kScheduler{"scheduler", "service", ""};
// Who the reactions to the customers topic write as.
const Caller kReactor{"customers-reactor", "service", ""};

}  // namespace

absl::StatusOr<std::unique_ptr<OpportunityEngine>> OpportunityEngine::Open(eventlog::Log* log,
                                                                           projection::ProjectionDb* db,
                                                                           Options options) {
  if (options.clock == nullptr) return absl::InvalidArgumentError("OpportunityEngine needs a clock");
  const Options& o = options;
  // The same folds a rebuild uses: sources[0] is this topic, sources[1] the customers topic.
  const projection::ProjectionSpec spec = Spec(o);
  CRM_ASSIGN_OR_RETURN(std::unique_ptr<projection::AggregateWriter> writer,
                       projection::AggregateWriter::Open(
                           log, db,
                           {.topic = o.topic, .partitions = o.partitions, .source = kSource, .tenant = o.tenant,
                            .clock = o.clock, .observe_append = o.observe_append},
                           spec.sources[0].apply(db)));
  // The writer comes first: the engine's store is made over it.
  std::unique_ptr<OpportunityEngine> e(new OpportunityEngine(log, db, std::move(options), std::move(writer)));
  projection::Follower::Options fo;
  fo.topic = spec.sources[1].topic;
  OpportunityEngine* raw = e.get();
  fo.after_commit = [raw](const std::vector<eventlog::Record>& records) { raw->ReactTo(records); };
  CRM_ASSIGN_OR_RETURN(e->follower_, projection::Follower::Start(log, db, std::move(fo), spec.sources[1].apply(db)));
  CRM_RETURN_IF_ERROR(e->ReconcileAll());
  return e;
}

OpportunityEngine::~OpportunityEngine() {
  follower_.reset();  // no reaction may start once the writer is gone
  writer_.reset();
}

projection::ProjectionSpec OpportunityEngine::Spec(const Options& o) {
  projection::ProjectionSpec spec;
  spec.version = kProjectionVersion;
  spec.sources.push_back(projection::FoldSource(o.topic, true, o.partitions, &ApplyOpportunitiesRecord));
  spec.sources.push_back(projection::FoldSource(o.customers_topic, false, 0, &ApplyCustomerRecord));
  return spec;
}

absl::StatusOr<std::unique_ptr<projection::ProjectionDb>> OpportunityEngine::OpenProjections(
    eventlog::Log& log, const std::string& path, const Options& options, int64_t* rebuilt) {
  return projection::OpenProjections(log, Spec(options), path, rebuilt);
}

template <typename State>
absl::StatusOr<State> OpportunityEngine::LoadVisible(const Caller& caller, const std::string& id,
                                                     absl::string_view name) {
  CRM_ASSIGN_OR_RETURN(auto state, ReadState<State>(db_->db(), rocksdb::ReadOptions(), Kind<State>::Row(id)));
  if (!state.has_value()) return absl::NotFoundError(absl::StrCat(name, " not found"));
  if (!CanSee(caller, *state)) {
    return absl::PermissionDeniedError(absl::StrCat(name, " belongs to another owner or team"));
  }
  return *std::move(state);
}

namespace {

// The store's command for aggregate `target.id`, expecting the version of its etag.
template <typename State, typename Event>
kernel::Command<State, Event> CommandOf(const Caller& caller, const OpportunityEngine::Versioned& target,
                                        const std::string& request_id,
                                        OpportunityEngine::DecideFn<State, Event> decide,
                                        OpportunityEngine::Cause cause) {
  return kernel::TargetCommand<State, Event>(
      caller, {.id = target.id, .etag = target.etag, .request_id = request_id, .etag_field = target.etag_field},
      std::move(decide), std::move(cause));
}

}  // namespace

template <typename State, typename Event>
void OpportunityEngine::Execute(const Caller& caller, const Versioned& target, const std::string& request_id,
                                DecideFn<State, Event> decide, Callback<Written<State>> done, Cause cause) {
  store_.Execute<Kind<State>>(CommandOf<State, Event>(caller, target, request_id, std::move(decide), std::move(cause)),
                              std::move(done));
}

template <typename State, typename Event>
void OpportunityEngine::ExecuteHeld(kernel::Lease lease, const Caller& caller, const Versioned& target,
                                    const std::string& request_id, DecideFn<State, Event> decide,
                                    Callback<Written<State>> done, Cause cause) {
  store_.ExecuteHeld<Kind<State>>(
      std::move(lease), CommandOf<State, Event>(caller, target, request_id, std::move(decide), std::move(cause)),
      std::move(done));
}

template void OpportunityEngine::Execute<OpportunityState, OpportunityEvent>(
    const Caller&, const Versioned&, const std::string&, DecideFn<OpportunityState, OpportunityEvent>,
    Callback<Written<OpportunityState>>, Cause);
template void OpportunityEngine::ExecuteHeld<OpportunityState, OpportunityEvent>(
    kernel::Lease, const Caller&, const Versioned&, const std::string&, DecideFn<OpportunityState, OpportunityEvent>,
    Callback<Written<OpportunityState>>, Cause);
template void OpportunityEngine::Execute<QuoteState, QuoteEvent>(const Caller&, const Versioned&, const std::string&,
                                                                 DecideFn<QuoteState, QuoteEvent>,
                                                                 Callback<Written<QuoteState>>, Cause);
template void OpportunityEngine::ExecuteHeld<QuoteState, QuoteEvent>(kernel::Lease, const Caller&, const Versioned&, const std::string&,
                                                                     DecideFn<QuoteState, QuoteEvent>,
                                                                     Callback<Written<QuoteState>>, Cause);
template void OpportunityEngine::Execute<ContractState, ContractEvent>(const Caller&, const Versioned&, const std::string&,
                                                                       DecideFn<ContractState, ContractEvent>,
                                                                       Callback<Written<ContractState>>, Cause);
template void OpportunityEngine::ExecuteHeld<ContractState, ContractEvent>(kernel::Lease, const Caller&, const Versioned&, const std::string&,
                                                                           DecideFn<ContractState, ContractEvent>,
                                                                           Callback<Written<ContractState>>, Cause);
template void OpportunityEngine::Execute<OpportunitySettings, SettingsEvent>(
    const Caller&, const Versioned&, const std::string&, DecideFn<OpportunitySettings, SettingsEvent>,
    Callback<Written<OpportunitySettings>>, Cause);
template void OpportunityEngine::ExecuteHeld<OpportunitySettings, SettingsEvent>(
    kernel::Lease, const Caller&, const Versioned&, const std::string&, DecideFn<OpportunitySettings, SettingsEvent>,
    Callback<Written<OpportunitySettings>>, Cause);

template absl::StatusOr<OpportunityState> OpportunityEngine::LoadVisible<OpportunityState>(const Caller&,
                                                                                          const std::string&,
                                                                                          absl::string_view);
template absl::StatusOr<QuoteState> OpportunityEngine::LoadVisible<QuoteState>(const Caller&, const std::string&,
                                                                              absl::string_view);
template absl::StatusOr<ContractState> OpportunityEngine::LoadVisible<ContractState>(const Caller&, const std::string&,
                                                                                    absl::string_view);

absl::StatusOr<std::string> OpportunityEngine::AllocateContractNumber() {
  return numbers_.Next(options_.clock->Now());
}

void OpportunityEngine::AfterCustomerKnown(const std::string& token, const std::string& customer_id,
                                           absl::AnyInvocable<void()> then,
                                           absl::AnyInvocable<void(absl::Status)> fail) {
  struct Next {
    absl::AnyInvocable<void()> then;
    absl::AnyInvocable<void(absl::Status)> fail;
  };
  auto next = std::make_shared<Next>(Next{std::move(then), std::move(fail)});
  auto known = [this, customer_id, next]() {
    auto view = ReadCustomerView(db_->db(), customer_id);
    if (view.ok() && view->exists) return next->then();
    // Perhaps created a moment ago: look again once the view has what the topic holds now.
    projection::AfterCaughtUp(*log_, *db_, {options_.customers_topic}, absl::Now() + absl::Seconds(10),
                              [next](absl::Status s) {
                                if (!s.ok()) return next->fail(s);
                                next->then();
                              });
  };
  if (token.empty()) return known();
  // Wait (without a thread) until the customers view has the caller's customer write.
  AfterToken(token, "min_consistency_token", absl::Now() + absl::Seconds(10),
             [known, next](absl::Status ready) mutable {
               if (!ready.ok()) return next->fail(ready);
               known();
             });
}

void OpportunityEngine::AfterToken(const std::string& token, absl::string_view field, absl::Time deadline,
                                   absl::AnyInvocable<void(absl::Status)> done) {
  projection::AfterToken(*db_, token, field, deadline, std::move(done));
}

absl::Status OpportunityEngine::WaitToken(const std::string& token, absl::string_view field, absl::Time deadline) {
  return projection::WaitForToken(*db_, token, field, deadline);
}

// ---- Settings ----

v1::SalesSettings OpportunityEngine::ToApi(const OpportunitySettings& s) const {
  v1::SalesSettings out;
  for (const auto& p : EffectivePipelines(s)) *out.add_pipelines() = p;
  out.set_approval_threshold_minor(ApprovalThreshold(s));
  out.set_etag(std::to_string(s.version()));
  return out;
}

absl::StatusOr<v1::SalesSettings> OpportunityEngine::GetSettings(const Caller&, const v1::GetSalesSettingsRequest& req,
                                                                 absl::Time deadline) {
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  CRM_ASSIGN_OR_RETURN(OpportunitySettings s, ReadSettings(db_->db()));
  return ToApi(s);
}

void OpportunityEngine::WriteSettings(const Caller& caller, const std::string& request_id, int64_t etag,
                                      absl::AnyInvocable<SettingsDecision(const OpportunitySettings&)> decide,
                                      Callback<v1::SalesSettings> done) {
  if (absl::Status s = CheckRequestId(request_id); !s.ok()) return done(s);
  Execute<OpportunitySettings, SettingsEvent>(
      caller, Versioned(Target{kSettingsId, etag}, "etag"), request_id,
      [decide = std::move(decide)](const OpportunitySettings* s) mutable {
        // No row yet: the defaults, as ReadSettings has them.
        return decide(s != nullptr ? *s : OpportunitySettings());
      },
      Reply<OpportunitySettings, v1::SalesSettings>(this, std::move(done)));
}

void OpportunityEngine::SetPipelines(const Caller& c, const v1::SetPipelinesRequest& req,
                                     Callback<v1::SalesSettings> done) {
  auto etag = ParseEtag(req.etag(), "etag");
  if (!etag.ok()) return done(etag.status());
  SetPipelinesCmd cmd{{req.pipelines().begin(), req.pipelines().end()}};
  WriteSettings(c, req.request_id(), *etag, [c, cmd](const OpportunitySettings& s) { return Decide(s, c, cmd); },
                std::move(done));
}

void OpportunityEngine::SetContractPolicy(const Caller& c, const v1::SetContractPolicyRequest& req,
                                          Callback<v1::SalesSettings> done) {
  auto etag = ParseEtag(req.etag(), "etag");
  if (!etag.ok()) return done(etag.status());
  SetContractPolicyCmd cmd{req.approval_threshold_minor()};
  WriteSettings(c, req.request_id(), *etag, [c, cmd](const OpportunitySettings& s) { return Decide(s, c, cmd); },
                std::move(done));
}

// ---- History ----

absl::StatusOr<v1::ListEventsResponse> OpportunityEngine::ListEvents(const Caller& caller,
                                                                     const v1::ListEventsRequest& req,
                                                                     absl::Time deadline) {
  const std::string collection = req.parent().substr(0, req.parent().find('/'));
  CRM_ASSIGN_OR_RETURN(int32_t page_size, PageSize(req.page_size(), "page_size"));
  CRM_ASSIGN_OR_RETURN(int64_t offset, ParsePageToken(req.page_token(), req.parent()));
  std::string id;
  int64_t version = 0;
  if (collection == "opportunities" || collection == "quotes" || collection == "contracts") {
    CRM_ASSIGN_OR_RETURN(id, ParseName(req.parent(), "parent", collection));
  } else {
    return InvalidFieldError("parent", "must be opportunities/{id}, quotes/{id} or contracts/{id}");
  }
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  if (collection == "opportunities") {
    CRM_ASSIGN_OR_RETURN(auto s, LoadVisible<OpportunityState>(caller, id, req.parent()));
    version = s.version();
  } else if (collection == "quotes") {
    CRM_ASSIGN_OR_RETURN(auto s, LoadVisible<QuoteState>(caller, id, req.parent()));
    version = s.version();
  } else {
    CRM_ASSIGN_OR_RETURN(auto s, LoadVisible<ContractState>(caller, id, req.parent()));
    version = s.version();
  }
  return projection::EventsPage<v1::ListEventsResponse>(db_->db(), id, version, offset, page_size, req.parent());
}

// ---- Scheduler ----

absl::StatusOr<OpportunityEngine::SchedulerRun> OpportunityEngine::RunScheduler(absl::Time now) {
  SchedulerRun run;
  CRM_ASSIGN_OR_RETURN(OpportunitySettings settings, ReadSettings(db_->db()));
  // Candidates first (reading the indexes while writing would see our own changes): per stage
  // with a timeout, the opportunities idle in it at least that long. Stages without one are
  // never read.
  std::map<std::string, int32_t> timeouts;  // stage id -> shortest timeout among pipelines
  for (const auto& p : EffectivePipelines(settings)) {
    for (const auto& st : p.stages()) {
      if (st.timeout_days() <= 0) continue;
      auto [it, fresh] = timeouts.emplace(st.id(), st.timeout_days());
      if (!fresh) it->second = std::min(it->second, st.timeout_days());
    }
  }
  std::vector<std::string> idle;
  for (const auto& [stage, days] : timeouts) {
    std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions()));
    const std::string prefix = rows::IdlePrefix(stage);
    const std::string end = absl::StrCat(prefix, projection::TimeKey(now - absl::Hours(24) * days));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix) && it->key().compare(end) <= 0; it->Next()) {
      idle.push_back(it->key().ToString().substr(prefix.size() + 8));
    }
    CRM_RETURN_IF_ERROR(FromRocks(it->status(), "scan idle opportunities"));
  }
  const std::string today = absl::FormatTime("%Y-%m-%d", now, options_.zone);
  const std::string horizon = absl::FormatTime(
      "%Y-%m-%d", now + absl::Hours(24) * (kRenewalNoticeDays[0] + 1), options_.zone);
  std::set<std::string> contracts;
  for (const auto& [prefix, until] : {std::pair<std::string, std::string>{rows::kEndPrefix, horizon},
                                      std::pair<std::string, std::string>{rows::kDuePrefix, today}}) {
    std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      const std::string key = it->key().ToString();
      if (key.substr(prefix.size(), 10) > until) break;
      contracts.insert(key.substr(prefix.size() + 11));
    }
    CRM_RETURN_IF_ERROR(FromRocks(it->status(), "scan contract dates"));
  }

  // The decisions and callbacks may run after the wait gave up: they own what they read and
  // reach `run` only through the batch (Completions::Handle).
  Completions batch(static_cast<int>(idle.size() + contracts.size()));
  auto shared_settings = std::make_shared<const OpportunitySettings>(std::move(settings));
  Cause cause{.source = common::v1::ACTOR_SOURCE_SYSTEM};
  for (const std::string& id : idle) {
    Execute<OpportunityState, OpportunityEvent>(
        kScheduler, id, "",
        [shared_settings, now](const OpportunityState* s) -> Decision {
          if (s == nullptr) return std::vector<OpportunityEvent>{};
          auto pipeline = PipelineById(*shared_settings, s->pipeline_id());
          if (!pipeline.ok()) return std::vector<OpportunityEvent>{};
          return Decide(s, kScheduler, CheckStageTimeout{now, *pipeline});
        },
        [h = batch.handle()](absl::StatusOr<Written<OpportunityState>> w) {
          h.Done(w.status(), w.ok() && !w->token.empty());
        },
        cause);
  }
  for (const std::string& id : contracts) {
    Execute<ContractState, ContractEvent>(
        kScheduler, id, "",
        // Counted as the decisions are made.
        [today, h = batch.handle(), &run](const ContractState* s) -> ContractDecision {
          auto events = Decide(s, kScheduler, CheckContractDates{today});
          if (!events.ok()) return events;
          h.Record([&] {
            for (const auto& e : *events) {
              if (std::holds_alternative<v1::ContractRenewalDue>(e)) ++run.renewal_notices;
              if (std::holds_alternative<v1::ContractExpired>(e)) ++run.expired;
              if (std::holds_alternative<v1::InstalmentOverdue>(e)) ++run.overdue_instalments;
            }
          });
          return events;
        },
        [h = batch.handle()](absl::StatusOr<Written<ContractState>> w) { h.Done(w.status()); }, cause);
  }
  CRM_RETURN_IF_ERROR(batch.Wait(absl::Now() + options_.batch_timeout));
  run.stage_timeouts = batch.written();  // only the opportunities count as written
  return run;
}

// ---- Reactions to the customers topic ----

void OpportunityEngine::ReactTo(const std::vector<eventlog::Record>& records) {
  static const std::set<std::string> kTypes = {
      topics::EventType<customers::v1::CustomerDeleted>(), topics::EventType<customers::v1::CustomerUndeleted>(),
      topics::EventType<customers::v1::CustomerPurged>(), topics::EventType<customers::v1::CustomerMergedInto>()};
  std::set<std::string> ids;
  for (const auto& r : records) {
    auto env = eventlog::DecodeEnvelope(r.value);
    if (env.ok() && kTypes.contains(env->event_type())) ids.insert(env->aggregate_id());
  }
  for (const auto& id : ids) {
    if (auto n = ReconcileCustomer(id); !n.ok()) {
      // The cw/ row stays; the next start reconciles again.
      server::LogWarn(absl::StrCat("opportunities: reacting to customers/", id, ": ", n.status().ToString()));
    }
  }
  if (auto n = ReconcileConversions(); !n.ok()) {
    server::LogWarn(absl::StrCat("opportunities: lead conversions: ", n.status().ToString()));
  }
}

absl::StatusOr<int64_t> OpportunityEngine::ReconcileConversions() {
  std::vector<v1::LeadConversionRef> pending;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(kPendingConversions); it->Valid() && it->key().starts_with(kPendingConversions); it->Next()) {
      v1::LeadConversionRef ref;
      if (!ref.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
        return absl::DataLossError("undecodable lead conversion row");
      }
      pending.push_back(std::move(ref));
    }
    CRM_RETURN_IF_ERROR(FromRocks(it->status(), "scan lead conversions"));
  }
  CRM_ASSIGN_OR_RETURN(OpportunitySettings settings, ReadSettings(db_->db()));
  CRM_ASSIGN_OR_RETURN(v1::Pipeline pipeline, PipelineById(settings, ""));
  int64_t created = 0;
  for (const auto& ref : pending) {
    CRM_ASSIGN_OR_RETURN(CustomerView customer, ReadCustomerView(db_->db(), ref.customer_id()));
    if (!customer.exists) continue;  // its CustomerCreated is in another partition, not read yet
    opportunities::CreateOpportunity cmd;
    cmd.profile.set_customer_id(ref.customer_id());
    cmd.profile.set_name(ref.name().empty() ? "线索转化商机" : ref.name());
    cmd.profile.mutable_amount()->set_amount_minor(ref.amount_minor());
    cmd.profile.mutable_amount()->set_currency(ref.currency().empty() ? "CNY" : ref.currency());
    cmd.profile.set_owner_id(ref.owner_id());
    cmd.profile.set_team_id(ref.team_id());
    cmd.profile.set_lead_id(ref.lead_id());
    cmd.pipeline = pipeline;
    cmd.customer = customer;
    // Written as the service on behalf of the converter, who owns it.
    absl::StatusOr<Written<OpportunityState>> w = AwaitCallback<absl::StatusOr<Written<OpportunityState>>>(
        [&](Callback<Written<OpportunityState>> done) {
          Execute<OpportunityState, OpportunityEvent>(
              kReactor, ConversionOpportunityId(ref.lead_id()), "",
              [cmd](const OpportunityState* s) -> Decision {
                if (s != nullptr) return std::vector<OpportunityEvent>{};
                return Decide(s, kReactor, cmd);
              },
              std::move(done),
              Cause{.source = common::v1::ACTOR_SOURCE_SYSTEM,
                    .causation_id = ref.cause_event_id(),
                    .correlation_id = absl::StrCat("lead-conversion-", ref.lead_id())});
        },
        {.what = "a lead conversion"});
    const absl::Status status = w.status();
    const bool wrote = w.ok() && !w->token.empty();
    if (!status.ok()) {
      // A customer merged or deleted since: the conversion stays pending and visible in the log.
      if (!absl::IsFailedPrecondition(status)) return status;
      continue;
    }
    if (wrote) ++created;
  }
  return created;
}

absl::StatusOr<int64_t> OpportunityEngine::ReconcileCustomer(const std::string& id) {
  CRM_ASSIGN_OR_RETURN(CustomerView view, ReadCustomerView(db_->db(), id));
  // Follow a chain of merges to the customer that holds the opportunities now.
  std::string survivor;
  CustomerView target = view;
  for (int hops = 0; hops < 16 && !target.merged_into.empty(); ++hops) {
    survivor = target.merged_into;
    CRM_ASSIGN_OR_RETURN(target, ReadCustomerView(db_->db(), survivor));
  }
  const bool deleted = target.deleted || target.purged;
  CRM_ASSIGN_OR_RETURN(std::vector<std::string> opps, projection::ReadIds(db_->db(), rows::ByCustomerPrefix(id)));
  // Contracts follow a merge too (their receivables with them); the recycle bin does not
  // touch them: a signed contract stands whatever happens to the customer record.
  std::vector<std::string> contracts;
  if (!survivor.empty()) {
    CRM_ASSIGN_OR_RETURN(contracts, projection::ReadIds(db_->db(), rows::ContractsOfPrefix(id)));
  }
  Completions batch(static_cast<int>(opps.size() + contracts.size()));
  Cause cause{.source = common::v1::ACTOR_SOURCE_SYSTEM,
              .causation_id = view.cause_event_id,
              .correlation_id = absl::StrCat("customer-reaction-", view.cause_event_id)};
  for (const auto& opp : opps) {
    Execute<OpportunityState, OpportunityEvent>(
        kReactor, opp, "",
        [survivor, deleted](const OpportunityState* s) -> Decision {
          std::vector<OpportunityEvent> out;
          if (s == nullptr) return out;
          OpportunityState next = *s;
          if (!survivor.empty()) {
            CRM_ASSIGN_OR_RETURN(out, Decide(s, kReactor, FollowCustomerMerge{survivor}));
            for (const auto& e : out) Apply(next, e, next.version() + 1, absl::UnixEpoch(), kReactor.user_id);
          }
          CRM_ASSIGN_OR_RETURN(auto flag, Decide(&next, kReactor, FlagCustomerDeleted{deleted}));
          out.insert(out.end(), flag.begin(), flag.end());
          return out;
        },
        [h = batch.handle()](absl::StatusOr<Written<OpportunityState>> w) {
          h.Done(w.status(), w.ok() && !w->token.empty());
        },
        cause);
  }
  for (const auto& contract : contracts) {
    Execute<ContractState, ContractEvent>(
        kReactor, contract, "",
        [survivor](const ContractState* s) { return Decide(s, kReactor, FollowContractCustomerMerge{survivor}); },
        [h = batch.handle()](absl::StatusOr<Written<ContractState>> w) {
          h.Done(w.status(), w.ok() && !w->token.empty());
        },
        cause);
  }
  CRM_RETURN_IF_ERROR(batch.Wait(absl::Now() + options_.batch_timeout));
  return batch.written();
}

absl::Status OpportunityEngine::ReconcileAll() {
  CRM_ASSIGN_OR_RETURN(std::vector<std::string> customers, projection::ReadIds(db_->db(), kWatchedCustomers));
  std::set<std::string> ids(customers.begin(), customers.end());
  // Flagged opportunities whose customer came back from the recycle bin.
  CRM_ASSIGN_OR_RETURN(std::vector<std::string> flagged, projection::ReadIds(db_->db(), rows::kFlaggedPrefix));
  for (const auto& opp : flagged) {
    CRM_ASSIGN_OR_RETURN(auto s, ReadState<OpportunityState>(db_->db(), rocksdb::ReadOptions(), rows::Opportunity(opp)));
    if (s.has_value()) ids.insert(s->profile().customer_id());
  }
  for (const auto& id : ids) CRM_RETURN_IF_ERROR(ReconcileCustomer(id).status());
  return ReconcileConversions().status();
}

}  // namespace crm::opportunities
