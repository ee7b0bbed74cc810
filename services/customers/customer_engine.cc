#include "services/customers/customer_engine.h"

#include <algorithm>
#include <set>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/completions.h"
#include "libs/common/grpc_status.h"
#include "libs/common/ids.h"
#include "libs/common/sha256.h"
#include "libs/common/status_macros.h"
#include "libs/server/logging.h"
#include "libs/eventlog/envelope.h"
#include "libs/kernel/target_command.h"
#include "libs/projection/rebuild.h"
#include "services/customers/customer_list.h"
#include "services/customers/customer_projections.h"
#include "services/customers/engine_util.h"

namespace crm::customers {
namespace {

using namespace internal;  // NOLINT: the engine's own helpers

using common::v1::EventEnvelope;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::util::TimeUtil;
using projection::FromRocks;

constexpr char kSource[] = "/crm/customers";


int32_t ReturnDays(const v1::PoolPolicy& p, const std::string& team) {
  auto it = p.team_return_after_days().find(team);
  return it != p.team_return_after_days().end() ? it->second : p.return_after_days();
}

int32_t ClaimLimit(const v1::PoolPolicy& p, const std::string& user) {
  auto it = p.user_daily_claim_limit().find(user);
  return it != p.user_daily_claim_limit().end() ? it->second : p.daily_claim_limit();
}

}  // namespace

absl::StatusOr<std::unique_ptr<CustomerEngine>> CustomerEngine::Open(eventlog::Log* log,
                                                                     projection::ProjectionDb* db,
                                                                     Options options) {
  if (options.clock == nullptr) return absl::InvalidArgumentError("CustomerEngine needs a clock");
  std::unique_ptr<CustomerEngine> e(new CustomerEngine(db, std::move(options)));
  const Options& o = e->options_;
  CRM_ASSIGN_OR_RETURN(
      e->writer_,
      projection::AggregateWriter::Open(
          log, db,
          {.topic = o.topic, .partitions = o.partitions, .source = kSource, .tenant = o.tenant,
           .clock = o.clock, .observe_append = o.observe_append},
          [db](const eventlog::Record& r, projection::Batch& b) { return ApplyCustomersRecord(*db, r, b); }));
  e->store_ = std::make_unique<kernel::AggregateStore>(e->writer_.get());
  e->settings_ = std::make_unique<SettingsCommands>(e->store_.get());
  e->leads_ = std::make_unique<LeadCommands>(e->store_.get(), db, &e->queries_, o.clock);
  // Commands interrupted between their two writes complete before anything else writes; a
  // step the log refuses now stays pending for the scheduler's passes.
  CRM_RETURN_IF_ERROR(e->CompletePendingSteps(absl::Now() + o.pending_steps_budget).status());
  projection::Follower::Options fo;
  fo.topic = o.opportunities_topic;
  CustomerEngine* raw = e.get();
  fo.after_commit = [raw](const std::vector<eventlog::Record>&) {
    if (auto n = raw->ReconcileWins(); !n.ok()) {
      server::LogWarn(absl::StrCat("customers: won opportunities: ", n.status().ToString()));
    }
  };
  CRM_ASSIGN_OR_RETURN(e->opportunities_,
                       projection::Follower::Start(log, db, std::move(fo),
                                                   [db](const eventlog::Record& r, projection::Batch& b) {
                                                     return ApplyOpportunitiesRecordForCustomers(*db, r, b);
                                                   }));
  CRM_RETURN_IF_ERROR(e->ReconcileWins().status());
  projection::Follower::Options to;
  to.topic = o.tasks_topic;
  to.after_commit = [raw](const std::vector<eventlog::Record>&) {
    if (auto n = raw->ReconcileTaskNotes(); !n.ok()) {
      server::LogWarn(absl::StrCat("customers: task notes: ", n.status().ToString()));
    }
  };
  CRM_ASSIGN_OR_RETURN(e->tasks_, projection::Follower::Start(log, db, std::move(to),
                                                              [db](const eventlog::Record& r, projection::Batch& b) {
                                                                return ApplyTasksRecordForCustomers(*db, r, b);
                                                              }));
  CRM_RETURN_IF_ERROR(e->ReconcileTaskNotes().status());
  return e;
}

CustomerEngine::~CustomerEngine() {
  tasks_.reset();
  opportunities_.reset();  // no reaction may start once the writer is gone
  writer_.reset();         // before store_: the writer may still settle appends through it
}

absl::StatusOr<std::string> CustomerEngine::AllocateNumber() { return numbers_.Next(options_.clock->Now()); }

kernel::Command<CustomerState, CustomerEvent> CustomerEngine::CustomerCommand(
    const Caller& caller, common::v1::ActorSource source, const Target& target, DecideFn decide,
    const std::string& correlation, const std::string& shares_keys_with, bool fresh_id) {
  auto cmd = kernel::TargetCommand<CustomerState, CustomerEvent>(caller, target, std::move(decide));
  cmd.cause.source = source;
  cmd.cause.correlation_id = correlation;
  // Reserved from the state the command leaves: an update's new phone/email, an undelete's old
  // ones (another customer may hold them by now), none for a deletion.
  cmd.reserve_keys = &CustomerKeys;
  cmd.shares_keys_with = shares_keys_with;
  cmd.fresh_id = fresh_id;
  return cmd;
}

void CustomerEngine::Execute(const Caller& caller, common::v1::ActorSource source, const Target& target,
                             DecideFn decide, Callback<Written> done, const std::string& correlation, bool fresh_id) {
  store_->Execute<CustomerKind>(CustomerCommand(caller, source, target, std::move(decide), correlation, "", fresh_id),
                                std::move(done));
}

void CustomerEngine::ExecuteCustomer(const Caller& caller, const Target& target, DecideFn decide, Done done,
                                     bool fresh_id) {
  Execute(
      caller, common::v1::ACTOR_SOURCE_API, target, std::move(decide),
      [this, done = std::move(done)](absl::StatusOr<Written> w) mutable {
        if (!w.ok()) return done(w.status());
        v1::Customer c = queries_.ToApi(w->state);
        c.set_consistency_token(w->token);
        done(std::move(c));
      },
      "", fresh_id);
}


template <typename Command>
CustomerEngine::DecideFn CustomerEngine::Plain(const Caller& caller, Command cmd) {
  return [caller, cmd = std::move(cmd)](const CustomerState* cur) -> absl::StatusOr<Decided> {
    CRM_ASSIGN_OR_RETURN(auto events, Decide(cur, caller, cmd));
    Decided d;
    d.events = std::move(events);
    return d;
  };
}

void CustomerEngine::Create(const Caller& caller, const v1::CreateCustomerRequest& req, Done done) {
  if (absl::Status s = CheckRequestId(req.request_id()); !s.ok()) return done(s);
  if (!req.has_customer()) return done(InvalidFieldError("customer", "is required"));
  if (!req.request_id().empty()) {
    auto ids = ReadHolders(db_->db(), rows::RequestPrefix(req.request_id()));
    if (!ids.ok()) return done(ids.status());
    for (const auto& id : *ids) {
      auto s = ReadCustomer(db_->db(), rocksdb::ReadOptions(), id);
      if (!s.ok()) return done(s.status());
      if (s->has_value() && CanSee(caller, **s)) return done(queries_.ToApi(**s));
    }
    if (!ids->empty()) return done(InvalidFieldError("request_id", "was already used for another resource"));
  }
  const v1::Customer& c = req.customer();
  if (!c.name().empty()) return done(InvalidFieldError("customer.name", "is assigned by the service"));
  if (c.contacts_size() > 0) return done(InvalidFieldError("customer.contacts", "are added with AddContact"));
  auto settings = ReadSettings(db_->db());
  if (!settings.ok()) return done(settings.status());
  CreateCustomer cmd;
  CopySameNamed(c, &cmd.profile);
  cmd.settings = EffectiveSettings(*settings);
  auto number = AllocateNumber();
  if (!number.ok()) return done(number.status());
  cmd.customer_number = *number;
  ExecuteCustomer(caller, {.id = NewUuidV7(options_.clock->Now()), .request_id = req.request_id()},
                  Plain(caller, std::move(cmd)), std::move(done), /*fresh_id=*/true);
}

void CustomerEngine::Update(const Caller& caller, const v1::UpdateCustomerRequest& req, Done done) {
  auto target = ParseTarget(req.request_id(), req.customer().name(), "customer.name", req.customer().etag(), "customer.etag");
  if (!target.ok()) return done(target.status());
  auto settings = ReadSettings(db_->db());
  if (!settings.ok()) return done(settings.status());
  UpdateCustomer cmd;
  cmd.settings = EffectiveSettings(*settings);
  CopySameNamed(req.customer(), &cmd.profile);
  for (const auto& path : req.update_mask().paths()) cmd.paths.push_back(path);
  if (cmd.paths.empty()) cmd.paths = SetFields(cmd.profile, EditableFields());
  ExecuteCustomer(caller, *target, Plain(caller, std::move(cmd)), std::move(done));
}

void CustomerEngine::Delete(const Caller& caller, const v1::DeleteCustomerRequest& req, Done done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag");
  if (!target.ok()) return done(target.status());
  ExecuteCustomer(caller, *target, Plain(caller, DeleteCustomer{req.reason()}), std::move(done));
}

void CustomerEngine::Undelete(const Caller& caller, const v1::UndeleteCustomerRequest& req, Done done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag");
  if (!target.ok()) return done(target.status());
  ExecuteCustomer(caller, *target, Plain(caller, UndeleteCustomer{}), std::move(done));
}

void CustomerEngine::AddContact(const Caller& caller, const v1::AddContactRequest& req, Done done) {
  auto target = ParseTarget(req.request_id(), req.parent(), "parent", req.etag(), "etag");
  if (!target.ok()) return done(target.status());
  const std::string& id = target->id;
  if (!req.has_contact()) return done(InvalidFieldError("contact", "is required"));
  if (!req.contact().id().empty()) return done(InvalidFieldError("contact.id", "is assigned by the service"));
  customers::AddContact cmd;
  cmd.contact = req.contact();
  cmd.contact.set_id(req.request_id().empty() ? NewUuidV7(options_.clock->Now())
                                              : DerivedId(id, req.request_id()));
  ExecuteCustomer(caller, *target, Plain(caller, std::move(cmd)), std::move(done));
}

void CustomerEngine::UpdateContact(const Caller& caller, const v1::UpdateContactRequest& req, Done done) {
  auto target = ParseTarget(req.request_id(), req.parent(), "parent", req.etag(), "etag");
  if (!target.ok()) return done(target.status());
  if (req.contact().id().empty()) return done(InvalidFieldError("contact.id", "is required"));
  customers::UpdateContact cmd;
  cmd.contact = req.contact();
  for (const auto& p : req.update_mask().paths()) cmd.paths.push_back(p);
  if (cmd.paths.empty()) cmd.paths = SetFields(cmd.contact, ContactFields());
  ExecuteCustomer(caller, *target, Plain(caller, std::move(cmd)), std::move(done));
}

void CustomerEngine::RemoveContact(const Caller& caller, const v1::RemoveContactRequest& req, Done done) {
  auto target = ParseTarget(req.request_id(), req.parent(), "parent", req.etag(), "etag");
  if (!target.ok()) return done(target.status());
  if (req.contact_id().empty()) return done(InvalidFieldError("contact_id", "is required"));
  ExecuteCustomer(caller, *target, Plain(caller, customers::RemoveContact{req.contact_id()}), std::move(done));
}

namespace {

absl::StatusOr<v1::FollowUp> FindFollowUp(rocksdb::DB* db, const std::string& id, const std::string& fid) {
  const std::string prefix = rows::FollowUpPrefix(id);
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (!it->key().ends_with(fid)) continue;
    v1::FollowUp f;
    if (!f.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError("undecodable follow-up");
    }
    return f;
  }
  CRM_RETURN_IF_ERROR(FromRocks(it->status(), "read follow-ups"));
  return absl::NotFoundError(absl::StrCat("follow-up ", fid, " not found"));
}

}  // namespace

void CustomerEngine::CreateFollowUp(const Caller& caller, const v1::CreateFollowUpRequest& req,
                                    Callback<v1::FollowUp> done) {
  if (absl::Status s = CheckRequestId(req.request_id()); !s.ok()) return done(s);
  auto id = ParseName(req.parent(), "parent");
  if (!id.ok()) return done(id.status());
  if (!req.has_follow_up()) return done(InvalidFieldError("follow_up", "is required"));
  const v1::FollowUp& in = req.follow_up();
  if (!in.name().empty()) return done(InvalidFieldError("follow_up.name", "is assigned by the service"));
  const absl::Time now = options_.clock->Now();
  RecordFollowUp cmd;
  cmd.now = now;
  auto when = OptionalClientTime(in.has_follow_up_time(), in.follow_up_time(), "follow_up.follow_up_time", now);
  if (!when.ok()) return done(when.status());
  cmd.when = *when;
  if (in.has_next_follow_up_time()) {
    if (auto next = ClientTime(in.next_follow_up_time(), "follow_up.next_follow_up_time"); !next.ok()) {
      return done(next.status());
    }
  }
  auto& e = cmd.follow_up;
  e.set_follow_up_id(req.request_id().empty() ? NewUuidV7(now) : DerivedId(*id, req.request_id()));
  e.set_channel(in.channel());
  e.set_summary(in.summary());
  e.set_feedback(in.feedback());
  e.set_next_step(in.next_step());
  if (in.has_next_follow_up_time()) *e.mutable_next_follow_up_time() = in.next_follow_up_time();
  e.set_contact_id(in.contact_id());
  const std::string fid = e.follow_up_id();
  Execute(caller, common::v1::ACTOR_SOURCE_API, {.id = *id, .request_id = req.request_id()},
          [caller, cmd = std::move(cmd)](const CustomerState* cur) -> absl::StatusOr<Decided> {
            CRM_ASSIGN_OR_RETURN(auto events, Decide(cur, caller, cmd));
            Decided d;
            d.events = std::move(events);
            d.occurred_at = cmd.when;
            return d;
          },
          [this, id = *id, fid, done = std::move(done)](absl::StatusOr<Written> w) mutable {
            if (!w.ok()) return done(w.status());
            auto f = FindFollowUp(db_->db(), id, fid);
            if (f.ok()) f->set_consistency_token(w->token);
            done(std::move(f));
          });
}

void CustomerEngine::Release(const Caller& caller, const v1::ReleaseCustomerRequest& req, Done done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag");
  if (!target.ok()) return done(target.status());
  ExecuteCustomer(caller, *target, Plain(caller, ReleaseToPool{req.reason()}), std::move(done));
}

void CustomerEngine::Claim(const Caller& caller, const v1::ClaimCustomerRequest& req, Done done) {
  if (absl::Status s = CheckRequestId(req.request_id()); !s.ok()) return done(s);
  auto id = ParseName(req.name(), "name");
  if (!id.ok()) return done(id.status());
  const std::string day = Day(options_.clock->Now(), options_.zone);
  ExecuteCustomer(
      caller, {.id = *id, .request_id = req.request_id()},
      [this, caller, day](const CustomerState* cur) -> absl::StatusOr<Decided> {
        CRM_ASSIGN_OR_RETURN(CustomerSettings stored, ReadSettings(db_->db()));
        const int32_t limit = ClaimLimit(EffectiveSettings(stored).pool_policy(), caller.user_id);
        const std::string key = absl::StrCat(caller.user_id, "/", day);
        // The count of today's claims (committed and in flight) and taking one more happen
        // under one lock, so concurrent claims by one rep cannot pass the limit together.
        absl::MutexLock l(&claims_mu_);
        auto it = claims_today_.find(key);
        if (it == claims_today_.end()) {
          if (claims_today_.size() > 10000) claims_today_.clear();  // other days' counts
          CRM_ASSIGN_OR_RETURN(int32_t stored_claims, ReadClaims(db_->db(), caller.user_id, day));
          it = claims_today_.emplace(key, stored_claims).first;
        }
        CRM_ASSIGN_OR_RETURN(auto events, Decide(cur, caller, ClaimFromPool{day, it->second, limit}));
        Decided d;
        d.events = std::move(events);
        if (!d.events.empty()) {
          ++it->second;
          d.after = [this, key](bool written) {
            if (written) return;
            absl::MutexLock l(&claims_mu_);  // not claimed after all: give the count back
            if (auto it = claims_today_.find(key); it != claims_today_.end()) --it->second;
          };
        }
        return d;
      },
      std::move(done));
}

absl::StatusOr<CustomerEngine::SchedulerRun> CustomerEngine::RunScheduler(absl::Time now) {
  SchedulerRun run;
  CRM_ASSIGN_OR_RETURN(PendingRun pending, CompletePendingSteps(absl::Now() + options_.pending_steps_budget));
  run.completed_steps = pending.completed;
  CRM_ASSIGN_OR_RETURN(CustomerSettings stored, ReadSettings(db_->db()));
  const v1::PoolPolicy policy = EffectiveSettings(stored).pool_policy();

  // Candidates: the idle index up to the shortest positive return period of any team.
  int32_t min_days = policy.return_after_days() > 0 ? policy.return_after_days() : 0;
  for (const auto& [team, d] : policy.team_return_after_days()) {
    if (d > 0 && (min_days == 0 || d < min_days)) min_days = d;
  }
  auto scan = [&](absl::string_view prefix, absl::Time until, std::vector<std::string>* ids) -> absl::Status {
    std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions()));
    const rocksdb::Slice p(prefix.data(), prefix.size());
    for (it->Seek(p); it->Valid() && it->key().starts_with(p); it->Next()) {
      absl::string_view k(it->key().data() + prefix.size(), it->key().size() - prefix.size());
      if (k.size() < 9 || rows::TimeFromKey(k.substr(0, 8)) > until) break;
      ids->emplace_back(k.substr(8));
    }
    return FromRocks(it->status(), "scan scheduler index");
  };
  std::vector<std::string> idle, expired;
  if (min_days > 0) CRM_RETURN_IF_ERROR(scan(rows::kIdlePrefix, now - absl::Hours(24) * min_days, &idle));
  CRM_RETURN_IF_ERROR(scan(rows::kPurgePrefix, now - kRecycleBinRetention, &expired));

  std::vector<std::pair<std::string, DecideFn>> returns, purges;
  for (const std::string& id : idle) {
    returns.emplace_back(id, [now, policy](const CustomerState* cur) -> absl::StatusOr<Decided> {
      Decided d;
      if (cur == nullptr) return d;
      const int32_t days = ReturnDays(policy, cur->profile().team_id());
      CRM_ASSIGN_OR_RETURN(d.events, Decide(cur, kScheduler, ReturnIdleToPool{now, days}));
      d.occurred_at = LastActivity(*cur) + absl::Hours(24) * days;  // the due time
      return d;
    });
  }
  for (const std::string& id : expired) {
    purges.emplace_back(id, [now](const CustomerState* cur) -> absl::StatusOr<Decided> {
      Decided d;
      if (cur == nullptr) return d;
      CRM_ASSIGN_OR_RETURN(d.events, Decide(cur, kScheduler, PurgeDeleted{now}));
      d.occurred_at = FromProto(cur->delete_time()) + kRecycleBinRetention;
      return d;
    });
  }
  CRM_RETURN_IF_ERROR(RunBatch(std::move(returns), &run.returned_to_pool));
  CRM_RETURN_IF_ERROR(RunBatch(std::move(purges), &run.purged));
  CRM_RETURN_IF_ERROR(RunTagRules(now, stored, &run));
  return run;
}

absl::Status CustomerEngine::RunBatch(std::vector<std::pair<std::string, DecideFn>> jobs, int64_t* written) {
  Completions batch(static_cast<int>(jobs.size()));
  for (auto& [id, decide] : jobs) {
    Execute(kScheduler, common::v1::ACTOR_SOURCE_SYSTEM, {.id = id}, std::move(decide),
            [&batch](absl::StatusOr<Written> w) { batch.Done(w.status(), w.ok() && !w->token.empty()); });
  }
  absl::Status status = batch.Wait();
  *written += batch.written();
  return status;
}

projection::ProjectionSpec CustomerEngine::Spec(const std::string& topic, int32_t partitions,
                                                const std::string& opportunities_topic,
                                                const std::string& tasks_topic) {
  projection::ProjectionSpec spec;
  spec.version = kProjectionVersion;
  spec.sources.push_back(projection::FoldSource(topic, true, partitions, &ApplyCustomersRecord));
  spec.sources.push_back(projection::FoldSource(opportunities_topic, false, 0, &ApplyOpportunitiesRecordForCustomers));
  spec.sources.push_back(projection::FoldSource(tasks_topic, false, 0, &ApplyTasksRecordForCustomers));
  return spec;
}

absl::StatusOr<int64_t> CustomerEngine::Rebuild(eventlog::Log& log, const std::string& topic,
                                                const std::string& path) {
  return projection::Rebuild(log, Spec(topic, kPartitions), path);
}

absl::StatusOr<std::unique_ptr<projection::ProjectionDb>> CustomerEngine::OpenProjections(
    eventlog::Log& log, const std::string& path, const Options& options, int64_t* rebuilt) {
  return projection::OpenProjections(
      log, Spec(options.topic, options.partitions, options.opportunities_topic, options.tasks_topic), path, rebuilt);
}

absl::StatusOr<int64_t> CustomerEngine::RebuildAndSwap(eventlog::Log& log, const std::string& topic,
                                                       const std::string& live_path) {
  return projection::RebuildAndSwap(log, Spec(topic, kPartitions), live_path);
}

absl::StatusOr<std::string> CustomerEngine::Checksum(projection::ProjectionDb& db) { return projection::Checksum(db); }

}  // namespace crm::customers
