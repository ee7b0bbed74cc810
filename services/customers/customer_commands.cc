// The customers service's customer commands: one customer each, through the service's store.
#include "services/customers/customer_commands.h"

#include "absl/strings/str_cat.h"
#include "libs/common/grpc_status.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/kernel/target_command.h"
#include "services/customers/customer_projections.h"
#include "services/customers/engine_util.h"

namespace crm::customers {

using namespace internal;  // NOLINT: the service's own helpers
using projection::FromRocks;

namespace {

int32_t ClaimLimit(const v1::PoolPolicy& p, const std::string& user) {
  auto it = p.user_daily_claim_limit().find(user);
  return it != p.user_daily_claim_limit().end() ? it->second : p.daily_claim_limit();
}

// The follow-up `fid` of customer `id`, as its projection wrote it.
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

CustomerCommands::CustomerCommands(kernel::AggregateStore* store, projection::ProjectionDb* db,
                                   const CustomerQueries* queries, Clock* clock, absl::TimeZone zone)
    : store_(store),
      db_(db),
      queries_(queries),
      clock_(clock),
      zone_(zone),
      numbers_(db, kCustomerNumberPrefix, zone) {}

absl::StatusOr<std::string> CustomerCommands::AllocateNumber() { return numbers_.Next(clock_->Now()); }

kernel::Command<CustomerState, CustomerEvent> CustomerCommands::Command(
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

void CustomerCommands::Execute(const Caller& caller, common::v1::ActorSource source, const Target& target,
                             DecideFn decide, Callback<Written> done, const std::string& correlation, bool fresh_id) {
  store_->Execute<CustomerKind>(Command(caller, source, target, std::move(decide), correlation, "", fresh_id),
                                std::move(done));
}

void CustomerCommands::ExecuteCustomer(const Caller& caller, const Target& target, DecideFn decide, Done done,
                                     bool fresh_id) {
  Execute(
      caller, common::v1::ACTOR_SOURCE_API, target, std::move(decide),
      [this, done = std::move(done)](absl::StatusOr<Written> w) mutable {
        if (!w.ok()) return done(w.status());
        v1::Customer c = queries_->ToApi(w->state);
        c.set_consistency_token(w->token);
        done(std::move(c));
      },
      "", fresh_id);
}

template <typename Cmd>
CustomerCommands::DecideFn CustomerCommands::Plain(const Caller& caller, Cmd cmd) {
  return [caller, cmd = std::move(cmd)](const CustomerState* cur) -> absl::StatusOr<Decided> {
    CRM_ASSIGN_OR_RETURN(auto events, Decide(cur, caller, cmd));
    Decided d;
    d.events = std::move(events);
    return d;
  };
}

void CustomerCommands::Create(const Caller& caller, const v1::CreateCustomerRequest& req, Done done) {
  if (absl::Status s = CheckRequestId(req.request_id()); !s.ok()) return done(s);
  if (!req.has_customer()) return done(InvalidFieldError("customer", "is required"));
  if (!req.request_id().empty()) {
    auto ids = ReadHolders(db_->db(), rows::RequestPrefix(req.request_id()));
    if (!ids.ok()) return done(ids.status());
    for (const auto& id : *ids) {
      auto s = ReadCustomer(db_->db(), rocksdb::ReadOptions(), id);
      if (!s.ok()) return done(s.status());
      if (s->has_value() && CanSee(caller, **s)) return done(queries_->ToApi(**s));
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
  ExecuteCustomer(caller, {.id = NewUuidV7(clock_->Now()), .request_id = req.request_id()},
                  Plain(caller, std::move(cmd)), std::move(done), /*fresh_id=*/true);
}

void CustomerCommands::Update(const Caller& caller, const v1::UpdateCustomerRequest& req, Done done) {
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

void CustomerCommands::Delete(const Caller& caller, const v1::DeleteCustomerRequest& req, Done done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag");
  if (!target.ok()) return done(target.status());
  ExecuteCustomer(caller, *target, Plain(caller, DeleteCustomer{req.reason()}), std::move(done));
}

void CustomerCommands::Undelete(const Caller& caller, const v1::UndeleteCustomerRequest& req, Done done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag");
  if (!target.ok()) return done(target.status());
  ExecuteCustomer(caller, *target, Plain(caller, UndeleteCustomer{}), std::move(done));
}

void CustomerCommands::AddContact(const Caller& caller, const v1::AddContactRequest& req, Done done) {
  auto target = ParseTarget(req.request_id(), req.parent(), "parent", req.etag(), "etag");
  if (!target.ok()) return done(target.status());
  const std::string& id = target->id;
  if (!req.has_contact()) return done(InvalidFieldError("contact", "is required"));
  if (!req.contact().id().empty()) return done(InvalidFieldError("contact.id", "is assigned by the service"));
  customers::AddContact cmd;
  cmd.contact = req.contact();
  cmd.contact.set_id(req.request_id().empty() ? NewUuidV7(clock_->Now())
                                              : DerivedId(id, req.request_id()));
  ExecuteCustomer(caller, *target, Plain(caller, std::move(cmd)), std::move(done));
}

void CustomerCommands::UpdateContact(const Caller& caller, const v1::UpdateContactRequest& req, Done done) {
  auto target = ParseTarget(req.request_id(), req.parent(), "parent", req.etag(), "etag");
  if (!target.ok()) return done(target.status());
  if (req.contact().id().empty()) return done(InvalidFieldError("contact.id", "is required"));
  customers::UpdateContact cmd;
  cmd.contact = req.contact();
  for (const auto& p : req.update_mask().paths()) cmd.paths.push_back(p);
  if (cmd.paths.empty()) cmd.paths = SetFields(cmd.contact, ContactFields());
  ExecuteCustomer(caller, *target, Plain(caller, std::move(cmd)), std::move(done));
}

void CustomerCommands::RemoveContact(const Caller& caller, const v1::RemoveContactRequest& req, Done done) {
  auto target = ParseTarget(req.request_id(), req.parent(), "parent", req.etag(), "etag");
  if (!target.ok()) return done(target.status());
  if (req.contact_id().empty()) return done(InvalidFieldError("contact_id", "is required"));
  ExecuteCustomer(caller, *target, Plain(caller, customers::RemoveContact{req.contact_id()}), std::move(done));
}

void CustomerCommands::CreateFollowUp(const Caller& caller, const v1::CreateFollowUpRequest& req,
                                    Callback<v1::FollowUp> done) {
  if (absl::Status s = CheckRequestId(req.request_id()); !s.ok()) return done(s);
  auto id = ParseName(req.parent(), "parent");
  if (!id.ok()) return done(id.status());
  if (!req.has_follow_up()) return done(InvalidFieldError("follow_up", "is required"));
  const v1::FollowUp& in = req.follow_up();
  if (!in.name().empty()) return done(InvalidFieldError("follow_up.name", "is assigned by the service"));
  const absl::Time now = clock_->Now();
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

void CustomerCommands::Release(const Caller& caller, const v1::ReleaseCustomerRequest& req, Done done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag");
  if (!target.ok()) return done(target.status());
  ExecuteCustomer(caller, *target, Plain(caller, ReleaseToPool{req.reason()}), std::move(done));
}

void CustomerCommands::Claim(const Caller& caller, const v1::ClaimCustomerRequest& req, Done done) {
  if (absl::Status s = CheckRequestId(req.request_id()); !s.ok()) return done(s);
  auto id = ParseName(req.name(), "name");
  if (!id.ok()) return done(id.status());
  const std::string day = Day(clock_->Now(), zone_);
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

}  // namespace crm::customers
