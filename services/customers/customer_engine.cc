#include "services/customers/customer_engine.h"

#include <algorithm>
#include <filesystem>

#include "absl/base/internal/endian.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/grpc_status.h"
#include "libs/common/ids.h"
#include "libs/common/sha256.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/envelope.h"

namespace crm::customers {
namespace {

using eventlog::EventEnvelope;
using google::protobuf::util::TimeUtil;
using projection::FromRocks;

constexpr char kSource[] = "/crm/customers";
constexpr char kAggregate[] = "customer";

// Projection rows (all in the service's ProjectionDb):
//   a/<id>                  CustomerState
//   p/<normalised phone>    id of the live customer holding it (dedupe index)
//   e/<normalised email>    id likewise
//   o/<owner>/<id>          "" (by owner)
//   n/<yyyymmdd>            last sequence number used that day
//   h/<id>/<be64 version>   EventEnvelope (history, time travel)
//   r/<correlation id>      id (request_id idempotency)
std::string StateKey(absl::string_view id) { return absl::StrCat("a/", id); }
std::string PhoneKey(absl::string_view p) { return absl::StrCat("p/", p); }
std::string EmailKey(absl::string_view e) { return absl::StrCat("e/", e); }
std::string OwnerKey(absl::string_view o, absl::string_view id) { return absl::StrCat("o/", o, "/", id); }
std::string RequestKey(absl::string_view r) { return absl::StrCat("r/", r); }
std::string HistoryPrefix(absl::string_view id) { return absl::StrCat("h/", id, "/"); }
std::string HistoryKey(absl::string_view id, int64_t v) {
  std::string k = HistoryPrefix(id);
  char buf[8];
  absl::big_endian::Store64(buf, static_cast<uint64_t>(v));
  k.append(buf, 8);
  return k;
}

absl::StatusOr<CustomerEvent> Unpack(const EventEnvelope& e) {
  const std::string& t = e.event_type();
  auto unpack = [&](auto msg) -> absl::StatusOr<CustomerEvent> {
    if (!e.payload().UnpackTo(&msg)) return absl::DataLossError(absl::StrCat("bad payload of ", t));
    return CustomerEvent(std::move(msg));
  };
  if (t == v1::CustomerCreated::descriptor()->full_name()) return unpack(v1::CustomerCreated());
  if (t == v1::CustomerUpdated::descriptor()->full_name()) return unpack(v1::CustomerUpdated());
  if (t == v1::CustomerDeleted::descriptor()->full_name()) return unpack(v1::CustomerDeleted());
  if (t == v1::CustomerUndeleted::descriptor()->full_name()) return unpack(v1::CustomerUndeleted());
  return absl::DataLossError(absl::StrCat("unknown customer event type ", t));
}

const google::protobuf::Message& Payload(const CustomerEvent& e) {
  return std::visit([](const auto& m) -> const google::protobuf::Message& { return m; }, e);
}

absl::StatusOr<int64_t> ParseEtag(const std::string& etag, absl::string_view field) {
  if (etag.empty()) return 0;
  int64_t v = 0;
  if (!absl::SimpleAtoi(etag, &v) || v < 1) return InvalidFieldError(field, "is not an etag this service issued");
  return v;
}

absl::StatusOr<std::string> ParseName(const std::string& name, absl::string_view field) {
  if (!absl::StartsWith(name, "customers/")) {
    return InvalidFieldError(field, "must look like customers/{id}");
  }
  std::string id = name.substr(10);
  if (!IsCanonicalUuid(id)) return InvalidFieldError(field, "has an id that is not a UUID");
  return id;
}

absl::Status CheckRequestId(const std::string& rid, absl::string_view field = "request_id") {
  if (rid.size() > 128) return InvalidFieldError(field, "is longer than 128 characters");
  for (char c : rid) {
    if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f) {
      return InvalidFieldError(field, "must be printable ASCII without spaces");
    }
  }
  return absl::OkStatus();
}

// The editable fields of an API customer, as the domain's profile.
v1::CustomerProfile ProfileOf(const v1::Customer& c) {
  v1::CustomerProfile p;
  p.set_kind(c.kind());
  p.set_display_name(c.display_name());
  p.set_phone(c.phone());
  p.set_email(c.email());
  p.set_lifecycle_status(c.lifecycle_status());
  *p.mutable_tags() = c.tags();
  p.set_owner_id(c.owner_id());
  p.set_team_id(c.team_id());
  p.set_source(c.source());
  p.set_industry(c.industry());
  p.set_address(c.address());
  p.set_notes(c.notes());
  return p;
}

// Uses "days" in the configured zone as yyyymmdd.
std::string Day(absl::Time t, absl::TimeZone zone) { return absl::FormatTime("%Y%m%d", t, zone); }

}  // namespace

absl::StatusOr<std::unique_ptr<CustomerEngine>> CustomerEngine::Open(eventlog::Log* log,
                                                                     projection::ProjectionDb* db,
                                                                     Options options) {
  if (options.clock == nullptr) return absl::InvalidArgumentError("CustomerEngine needs a clock");
  CRM_RETURN_IF_ERROR(log->CreateTopic(options.topic, options.partitions));
  std::unique_ptr<CustomerEngine> e(new CustomerEngine(log, db, std::move(options)));
  // Catch up before taking writes (DESIGN §3): the projections must know every version.
  CRM_RETURN_IF_ERROR(db->CatchUp(*log, e->options_.topic,
                                  [db](const eventlog::Record& r, projection::Batch& b) {
                                    return ApplyRecord(*db, r, b);
                                  })
                          .status());
  CRM_ASSIGN_OR_RETURN(e->writer_, log->OpenWriter(e->options_.topic));
  // A writer that took over may have written past what CatchUp saw before OpenWriter fenced
  // the previous one: read again now that nobody else writes.
  CRM_RETURN_IF_ERROR(db->CatchUp(*log, e->options_.topic,
                                  [db](const eventlog::Record& r, projection::Batch& b) {
                                    return ApplyRecord(*db, r, b);
                                  })
                          .status());
  return e;
}

CustomerEngine::~CustomerEngine() { writer_.reset(); }

absl::Status CustomerEngine::ApplyRecord(projection::ProjectionDb& db, const eventlog::Record& r,
                                         projection::Batch& b) {
  CRM_ASSIGN_OR_RETURN(EventEnvelope env, eventlog::DecodeEnvelope(r.value));
  CustomerState state;
  std::string raw;
  absl::Status got = db.Get(b, StateKey(env.aggregate_id()), &raw);
  if (got.ok()) {
    if (!state.ParseFromString(raw)) return absl::DataLossError("undecodable customer state");
  } else if (!absl::IsNotFound(got)) {
    return got;
  }
  if (env.aggregate_version() <= state.version()) return absl::OkStatus();  // seen already
  if (env.aggregate_version() != state.version() + 1) {
    return absl::DataLossError(absl::StrCat("customer ", env.aggregate_id(), " jumps from version ",
                                            state.version(), " to ", env.aggregate_version()));
  }
  CRM_RETURN_IF_ERROR(eventlog::VerifyEnvelope(env, state.last_hash()));
  CRM_ASSIGN_OR_RETURN(CustomerEvent event, Unpack(env));

  const CustomerState before = state;
  state.set_id(env.aggregate_id());
  Apply(state, event, env.aggregate_version(),
        absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(env.occurred_at())), env.actor().user_id());
  state.set_last_hash(env.hash());

  // Indexes: drop what the old state held, add what the new one holds.
  const bool was_live = before.version() > 0 && !before.deleted();
  const bool is_live = !state.deleted();
  if (was_live && !before.normalized_phone().empty()) b.Delete(PhoneKey(before.normalized_phone()));
  if (was_live && !before.normalized_email().empty()) b.Delete(EmailKey(before.normalized_email()));
  if (before.version() > 0) b.Delete(OwnerKey(before.profile().owner_id(), state.id()));
  if (is_live && !state.normalized_phone().empty()) b.Put(PhoneKey(state.normalized_phone()), state.id());
  if (is_live && !state.normalized_email().empty()) b.Put(EmailKey(state.normalized_email()), state.id());
  b.Put(OwnerKey(state.profile().owner_id(), state.id()), "");
  if (before.version() == 0) {
    const std::string& number = state.customer_number();
    if (number.size() > 9) {
      const std::string day = number.substr(1, 8);
      int64_t seq = 0, last = 0;
      std::string cur;
      if (absl::SimpleAtoi(number.substr(9), &seq)) {
        if (db.Get(b, absl::StrCat("n/", day), &cur).ok()) absl::SimpleAtoi(cur, &last);
        if (seq > last) b.Put(absl::StrCat("n/", day), std::to_string(seq));
      }
    }
  }
  if (!env.correlation_id().empty()) b.Put(RequestKey(env.correlation_id()), state.id());
  b.Put(HistoryKey(state.id(), state.version()), r.value);
  b.Put(StateKey(state.id()), state.SerializeAsString());
  return absl::OkStatus();
}

void CustomerEngine::Serialize(const std::string& id, absl::AnyInvocable<void()> fn) {
  {
    absl::MutexLock l(&mu_);
    auto [it, fresh] = queues_.try_emplace(id);
    if (!fresh) {
      it->second.push_back(std::move(fn));
      return;
    }
  }
  fn();
}

void CustomerEngine::Release(const std::string& id) {
  absl::AnyInvocable<void()> next;
  {
    absl::MutexLock l(&mu_);
    auto it = queues_.find(id);
    if (it == queues_.end()) return;
    if (it->second.empty()) {
      queues_.erase(it);
      return;
    }
    next = std::move(it->second.front());
    it->second.pop_front();
  }
  next();
}

absl::Status CustomerEngine::Reserve(const std::string& id, const std::string& phone,
                                     const std::string& email, const std::string& request_id,
                                     Reservation* out) {
  absl::MutexLock l(&mu_);
  std::vector<std::pair<std::string, std::string>> wanted;  // key, what it is
  if (!phone.empty()) wanted.push_back({PhoneKey(phone), "phone"});
  if (!email.empty()) wanted.push_back({EmailKey(email), "email"});
  for (const auto& [key, what] : wanted) {
    std::string holder;
    auto it = reserved_.find(key);
    if (it != reserved_.end()) {
      holder = it->second;
    } else {
      rocksdb::Status s = db_->db()->Get(rocksdb::ReadOptions(), key, &holder);
      if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "read dedupe index");
    }
    if (!holder.empty() && holder != id) {
      const std::string field = what == "phone" ? "customer.phone" : "customer.email";
      return WithErrorInfo(
          absl::AlreadyExistsError(absl::StrCat("customers/", holder, " already has this ", what)),
          what == "phone" ? "DUPLICATE_PHONE" : "DUPLICATE_EMAIL",
          {{"existing", absl::StrCat("customers/", holder)}, {"field", field}});
    }
  }
  if (!request_id.empty()) {
    if (reserved_.contains(RequestKey(request_id))) {
      return absl::AbortedError("a request with this request_id is in progress; retry");
    }
    wanted.push_back({RequestKey(request_id), "request"});
  }
  for (const auto& [key, what] : wanted) {
    if (reserved_.contains(key)) continue;  // the same customer re-reserving its own key
    reserved_[key] = id;
    out->keys.push_back(key);
  }
  return absl::OkStatus();
}

void CustomerEngine::Unreserve(const Reservation& r) {
  absl::MutexLock l(&mu_);
  for (const auto& k : r.keys) reserved_.erase(k);
}

absl::StatusOr<absl::optional<CustomerState>> CustomerEngine::Load(const std::string& id) {
  std::string raw;
  rocksdb::Status s = db_->db()->Get(rocksdb::ReadOptions(), StateKey(id), &raw);
  if (s.IsNotFound()) return absl::optional<CustomerState>();
  CRM_RETURN_IF_ERROR(FromRocks(s, "read customer"));
  CustomerState state;
  if (!state.ParseFromString(raw)) return absl::DataLossError("undecodable customer state");
  return absl::optional<CustomerState>(std::move(state));
}

absl::StatusOr<std::string> CustomerEngine::AllocateNumber() {
  const std::string day = Day(options_.clock->Now(), options_.zone);
  absl::MutexLock l(&mu_);
  auto it = number_seq_.find(day);
  if (it == number_seq_.end()) {
    std::string cur;
    int64_t last = 0;
    rocksdb::Status s = db_->db()->Get(rocksdb::ReadOptions(), absl::StrCat("n/", day), &cur);
    if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "read customer number sequence");
    if (s.ok()) absl::SimpleAtoi(cur, &last);
    it = number_seq_.emplace(day, last).first;
  }
  // A failed append leaves a hole in the day's numbers; numbers are unique, not gapless.
  return absl::StrFormat("C%s%04d", day, ++it->second);
}

void CustomerEngine::Create(const Caller& caller, const v1::CreateCustomerRequest& req, Done done) {
  if (absl::Status s = CheckRequestId(req.request_id()); !s.ok()) return done(s);
  if (!req.has_customer()) return done(InvalidFieldError("customer", "is required"));
  if (!req.request_id().empty()) {
    std::string id;
    if (db_->db()->Get(rocksdb::ReadOptions(), RequestKey(req.request_id()), &id).ok()) {
      auto s = Load(id);
      if (!s.ok()) return done(s.status());
      if (s->has_value()) return done(ToApi(**s));
    }
  }
  CreateCustomer cmd;
  const v1::Customer& c = req.customer();
  if (!c.name().empty()) return done(InvalidFieldError("customer.name", "is assigned by the service"));
  cmd.profile = ProfileOf(c);
  auto number = AllocateNumber();
  if (!number.ok()) return done(number.status());
  cmd.customer_number = *number;
  auto events = Decide(nullptr, caller, cmd);
  if (!events.ok()) return done(events.status());
  const auto& created = std::get<v1::CustomerCreated>(events->front());
  const std::string id = NewUuidV7(options_.clock->Now());
  Reservation res;
  if (absl::Status s = Reserve(id, created.normalized_phone(), created.normalized_email(),
                               req.request_id(), &res);
      !s.ok()) {
    return done(s);
  }
  Write(caller, id, nullptr, *std::move(events), req.request_id(), std::move(res), std::move(done));
}

template <typename Command>
void CustomerEngine::Execute(const Caller& caller, const std::string& id, Command cmd,
                             const std::string& request_id, Done done) {
  Serialize(id, [this, caller, cmd = std::move(cmd), id, request_id, done = std::move(done)]() mutable {
    auto fail = [&](absl::Status s) {
      Release(id);
      done(std::move(s));
    };
    auto state = Load(id);
    if (!state.ok()) return fail(state.status());
    const CustomerState* cur = state->has_value() ? &**state : nullptr;
    if (!request_id.empty()) {
      // A repeat of a request already applied answers with the customer, not a second change.
      std::string done_for;
      if (db_->db()->Get(rocksdb::ReadOptions(), RequestKey(request_id), &done_for).ok()) {
        if (done_for != id) {
          return fail(InvalidFieldError("request_id", "was already used for another customer"));
        }
        if (cur != nullptr && CanSee(caller, *cur)) {
          Release(id);
          return done(ToApi(*cur));
        }
      }
    }
    auto events = Decide(cur, caller, cmd);
    if (!events.ok()) return fail(events.status());
    if (events->empty()) {  // nothing changed: nothing to record
      Release(id);
      return done(ToApi(*cur));
    }
    // Reserve the dedupe keys the customer holds afterwards: an update's new phone/email, an
    // undelete's old ones (another customer may hold them by now), none for a deletion.
    CustomerState next = cur ? *cur : CustomerState();
    for (const CustomerEvent& e : *events) {
      Apply(next, e, next.version() + 1, options_.clock->Now(), caller.user_id);
    }
    const bool live = !next.deleted();
    Reservation res;
    if (absl::Status s = Reserve(id, live ? next.normalized_phone() : "",
                                 live ? next.normalized_email() : "", request_id, &res);
        !s.ok()) {
      return fail(s);
    }
    Write(caller, id, cur, *std::move(events), request_id, std::move(res), std::move(done));
  });
}

void CustomerEngine::Update(const Caller& caller, const v1::UpdateCustomerRequest& req, Done done) {
  if (absl::Status s = CheckRequestId(req.request_id()); !s.ok()) return done(s);
  auto id = ParseName(req.customer().name(), "customer.name");
  if (!id.ok()) return done(id.status());
  auto etag = ParseEtag(req.customer().etag(), "customer.etag");
  if (!etag.ok()) return done(etag.status());
  UpdateCustomer cmd;
  cmd.expected_version = *etag;
  cmd.profile = ProfileOf(req.customer());
  for (const auto& path : req.update_mask().paths()) cmd.paths.push_back(path);
  if (cmd.paths.empty()) {
    // AIP-134: no mask means every field the request set.
    for (const auto& f : EditableFields()) {
      const auto* fd = v1::CustomerProfile::descriptor()->FindFieldByName(f);
      const auto* r = v1::CustomerProfile::GetReflection();
      if (fd->is_repeated() ? r->FieldSize(cmd.profile, fd) > 0 : r->HasField(cmd.profile, fd)) {
        cmd.paths.push_back(f);
      }
    }
  }
  Execute(caller, *id, std::move(cmd), req.request_id(), std::move(done));
}

void CustomerEngine::Delete(const Caller& caller, const v1::DeleteCustomerRequest& req, Done done) {
  if (absl::Status s = CheckRequestId(req.request_id()); !s.ok()) return done(s);
  auto id = ParseName(req.name(), "name");
  if (!id.ok()) return done(id.status());
  auto etag = ParseEtag(req.etag(), "etag");
  if (!etag.ok()) return done(etag.status());
  Execute(caller, *id, DeleteCustomer{req.reason(), *etag}, req.request_id(), std::move(done));
}

void CustomerEngine::Undelete(const Caller& caller, const v1::UndeleteCustomerRequest& req, Done done) {
  if (absl::Status s = CheckRequestId(req.request_id()); !s.ok()) return done(s);
  auto id = ParseName(req.name(), "name");
  if (!id.ok()) return done(id.status());
  auto etag = ParseEtag(req.etag(), "etag");
  if (!etag.ok()) return done(etag.status());
  Execute(caller, *id, UndeleteCustomer{*etag}, req.request_id(), std::move(done));
}

void CustomerEngine::Write(const Caller& caller, const std::string& id, const CustomerState* state,
                           std::vector<CustomerEvent> events, const std::string& request_id,
                           Reservation res, Done done) {
  const absl::Time now = options_.clock->Now();
  const auto ts = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(now));
  const std::string correlation = request_id.empty() ? NewUuidV7(now) : request_id;
  std::string prev = state ? state->last_hash() : "";
  int64_t version = state ? state->version() : 0;
  std::vector<eventlog::Message> msgs;
  for (const CustomerEvent& ev : events) {
    EventEnvelope env;
    env.set_event_id(NewUuidV7(now));
    env.set_event_type(Payload(ev).GetDescriptor()->full_name());
    env.set_aggregate_type(kAggregate);
    env.set_aggregate_id(id);
    env.set_aggregate_version(++version);
    *env.mutable_occurred_at() = ts;
    *env.mutable_recorded_at() = ts;
    env.mutable_actor()->set_user_id(caller.user_id);
    env.mutable_actor()->set_role(caller.role);
    env.mutable_actor()->set_team_id(caller.team);
    env.mutable_actor()->set_source(common::v1::ACTOR_SOURCE_API);
    env.set_correlation_id(correlation);
    env.set_tenant_id(options_.tenant);
    env.mutable_payload()->PackFrom(Payload(ev));
    eventlog::SealEnvelope(env, prev);
    prev = env.hash();
    msgs.push_back(eventlog::ToMessage(env, kSource));
  }
  std::vector<std::string> values;
  for (const auto& m : msgs) values.push_back(m.value);
  const absl::Time started = absl::Now();
  writer_->Append(id, std::move(msgs), [this, id, values = std::move(values), res = std::move(res),
                                        done = std::move(done), started](
                                           absl::StatusOr<eventlog::Appended> appended) mutable {
    if (options_.observe_append) options_.observe_append(absl::Now() - started);
    // Runs on the writer's thread in log order, so checkpoints only move forward.
    absl::StatusOr<v1::Customer> reply =
        appended.ok() ? ApplyOwnWrite(id, *appended, values)
                      : absl::StatusOr<v1::Customer>(appended.status());
    Unreserve(res);
    Release(id);
    done(std::move(reply));
  });
}

absl::StatusOr<v1::Customer> CustomerEngine::ApplyOwnWrite(const std::string& id,
                                                           const eventlog::Appended& appended,
                                                           const std::vector<std::string>& values) {
  projection::Batch batch;
  for (size_t i = 0; i < values.size(); ++i) {
    eventlog::Record r;
    r.topic = options_.topic;
    r.partition = appended.partition;
    r.offset = appended.offsets[i];
    r.value = values[i];
    CRM_RETURN_IF_ERROR(ApplyRecord(*db_, r, batch));
  }
  // The events are durable in the log whatever happens here; a failed projection write is
  // repaired by the catch-up at the next start.
  CRM_RETURN_IF_ERROR(db_->Commit(batch, options_.topic, appended.partition,
                                  appended.offsets.back() + 1));
  CRM_ASSIGN_OR_RETURN(auto state, Load(id));
  if (!state.has_value()) return absl::InternalError("customer vanished after its write");
  v1::Customer c = ToApi(*state);
  common::v1::ConsistencyToken token;
  auto* pos = token.add_positions();
  pos->set_topic(options_.topic);
  pos->set_partition(appended.partition);
  pos->set_offset(appended.offsets.back());
  c.set_consistency_token(projection::EncodeToken(token));
  return c;
}

v1::Customer CustomerEngine::ToApi(const CustomerState& s) const {
  v1::Customer c;
  c.set_name(absl::StrCat("customers/", s.id()));
  c.set_customer_number(s.customer_number());
  const auto& p = s.profile();
  c.set_kind(p.kind());
  c.set_display_name(p.display_name());
  c.set_phone(p.phone());
  c.set_email(p.email());
  c.set_lifecycle_status(p.lifecycle_status());
  *c.mutable_tags() = p.tags();
  c.set_owner_id(p.owner_id());
  c.set_team_id(p.team_id());
  c.set_source(p.source());
  c.set_industry(p.industry());
  c.set_address(p.address());
  c.set_notes(p.notes());
  *c.mutable_create_time() = s.create_time();
  *c.mutable_update_time() = s.update_time();
  if (s.deleted()) *c.mutable_delete_time() = s.delete_time();
  c.set_deleted(s.deleted());
  c.set_etag(std::to_string(s.version()));
  c.set_created_by(s.created_by());
  return c;
}

}  // namespace crm::customers

namespace crm::customers {
namespace {

// A conjunction of `field = "value"` and `tags:"value"` terms (a subset of AIP-160).
struct Filter {
  std::string owner_id, team_id, tag;
  int lifecycle_status = -1;
};

absl::StatusOr<Filter> ParseFilter(const std::string& text) {
  Filter f;
  if (absl::StripAsciiWhitespace(text).empty()) return f;
  for (absl::string_view term : absl::StrSplit(text, " AND ")) {
    term = absl::StripAsciiWhitespace(term);
    std::string field, value;
    const size_t eq = term.find('=');
    const size_t colon = term.find(':');
    if (eq != absl::string_view::npos) {
      field = std::string(absl::StripAsciiWhitespace(term.substr(0, eq)));
      value = std::string(absl::StripAsciiWhitespace(term.substr(eq + 1)));
    } else if (colon != absl::string_view::npos) {
      field = std::string(absl::StripAsciiWhitespace(term.substr(0, colon)));
      value = std::string(absl::StripAsciiWhitespace(term.substr(colon + 1)));
      if (field != "tags") return InvalidFieldError("filter", absl::StrCat("':' applies to tags only, not '", field, "'"));
    } else {
      return InvalidFieldError("filter", absl::StrCat("cannot parse '", term, "'"));
    }
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    if (value.empty()) return InvalidFieldError("filter", absl::StrCat("'", field, "' has no value"));
    if (field == "owner_id") {
      f.owner_id = value;
    } else if (field == "team_id") {
      f.team_id = value;
    } else if (field == "tags") {
      f.tag = value;
    } else if (field == "lifecycle_status") {
      v1::LifecycleStatus s;
      if (!v1::LifecycleStatus_Parse(value, &s)) {
        return InvalidFieldError("filter", absl::StrCat("'", value, "' is not a LifecycleStatus"));
      }
      f.lifecycle_status = s;
    } else {
      return InvalidFieldError("filter", absl::StrCat("cannot filter on '", field,
                                                      "' (owner_id, team_id, lifecycle_status, tags)"));
    }
  }
  return f;
}

struct Order {
  std::string field = "create_time";
  bool desc = false;
};

absl::StatusOr<Order> ParseOrder(const std::string& text) {
  Order o;
  std::vector<std::string> words = absl::StrSplit(text, ' ', absl::SkipEmpty());
  if (words.empty()) return o;
  if (words.size() > 2 || (words.size() == 2 && words[1] != "desc" && words[1] != "asc")) {
    return InvalidFieldError("order_by", "must be '<field>' or '<field> desc'");
  }
  static const std::set<std::string> kFields = {"create_time", "update_time", "display_name",
                                                "customer_number"};
  if (!kFields.contains(words[0])) {
    return InvalidFieldError("order_by", absl::StrCat("cannot order by '", words[0], "'"));
  }
  o.field = words[0];
  o.desc = words.size() == 2 && words[1] == "desc";
  return o;
}

// Page tokens carry the offset and a fingerprint of the query they belong to.
std::string PageToken(int64_t offset, const std::string& fingerprint) {
  std::string out;
  absl::WebSafeBase64Escape(absl::StrCat(offset, ":", fingerprint), &out);
  return out;
}

absl::StatusOr<int64_t> ParsePageToken(const std::string& token, const std::string& fingerprint) {
  if (token.empty()) return 0;
  std::string raw;
  int64_t offset = 0;
  if (!absl::WebSafeBase64Unescape(token, &raw)) return InvalidFieldError("page_token", "is not a page token");
  std::pair<std::string, std::string> parts = absl::StrSplit(raw, absl::MaxSplits(':', 1));
  if (!absl::SimpleAtoi(parts.first, &offset) || offset < 0) {
    return InvalidFieldError("page_token", "is not a page token");
  }
  if (parts.second != fingerprint) {
    return InvalidFieldError("page_token", "belongs to a query with other filter, order_by or show_deleted");
  }
  return offset;
}

absl::StatusOr<int32_t> PageSize(int32_t requested, absl::string_view field) {
  if (requested < 0) return InvalidFieldError(field, "must not be negative");
  if (requested == 0) return 50;
  return std::min(requested, 1000);
}

}  // namespace

void CustomerEngine::AfterToken(const std::string& token, absl::string_view field,
                                absl::Time deadline, absl::AnyInvocable<void(absl::Status)> done) {
  auto t = projection::DecodeToken(token);
  if (!t.ok()) return done(InvalidFieldError(field, t.status().message()));
  db_->NotifyWhenReached(*t, deadline, std::move(done));
}

absl::Status CustomerEngine::WaitToken(const std::string& token, absl::string_view field,
                                       absl::Time deadline) {
  auto t = projection::DecodeToken(token);
  if (!t.ok()) return InvalidFieldError(field, t.status().message());
  return db_->WaitFor(*t, deadline);
}

absl::StatusOr<v1::Customer> CustomerEngine::Get(const Caller& caller,
                                                 const v1::GetCustomerRequest& req,
                                                 absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(std::string id, ParseName(req.name(), "name"));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  CRM_ASSIGN_OR_RETURN(auto state, Load(id));
  if (!state.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  if (!CanSee(caller, *state)) {
    return absl::PermissionDeniedError("the customer belongs to another owner or team");
  }
  return ToApi(*state);
}

absl::StatusOr<v1::ListCustomersResponse> CustomerEngine::List(const Caller& caller,
                                                               const v1::ListCustomersRequest& req,
                                                               absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(int32_t page_size, PageSize(req.page_size(), "page_size"));
  CRM_ASSIGN_OR_RETURN(Filter filter, ParseFilter(req.filter()));
  CRM_ASSIGN_OR_RETURN(Order order, ParseOrder(req.order_by()));
  const std::string fingerprint =
      absl::StrCat(req.filter(), "|", req.order_by(), "|", req.show_deleted());
  CRM_ASSIGN_OR_RETURN(int64_t offset, ParsePageToken(req.page_token(), fingerprint));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));

  // One snapshot for the whole page so concurrent writes cannot tear it.
  const rocksdb::Snapshot* snap = db_->db()->GetSnapshot();
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  std::vector<CustomerState> matches;
  auto consider = [&](const std::string& raw) -> absl::Status {
    CustomerState s;
    if (!s.ParseFromString(raw)) return absl::DataLossError("undecodable customer state");
    if (s.deleted() && !req.show_deleted()) return absl::OkStatus();
    if (!CanSee(caller, s)) return absl::OkStatus();
    const auto& p = s.profile();
    if (!filter.owner_id.empty() && p.owner_id() != filter.owner_id) return absl::OkStatus();
    if (!filter.team_id.empty() && p.team_id() != filter.team_id) return absl::OkStatus();
    if (filter.lifecycle_status >= 0 && p.lifecycle_status() != filter.lifecycle_status) return absl::OkStatus();
    if (!filter.tag.empty() && std::find(p.tags().begin(), p.tags().end(), filter.tag) == p.tags().end()) {
      return absl::OkStatus();
    }
    matches.push_back(std::move(s));
    return absl::OkStatus();
  };
  absl::Status status;
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(ro));
  if (!filter.owner_id.empty()) {
    // The owner index narrows the scan to one owner's customers.
    const std::string prefix = absl::StrCat("o/", filter.owner_id, "/");
    for (it->Seek(prefix); status.ok() && it->Valid() && it->key().starts_with(prefix); it->Next()) {
      std::string raw;
      const std::string id = it->key().ToString().substr(prefix.size());
      rocksdb::Status s = db_->db()->Get(ro, StateKey(id), &raw);
      status = s.ok() ? consider(raw) : FromRocks(s, "read customer");
    }
  } else {
    for (it->Seek("a/"); status.ok() && it->Valid() && it->key().starts_with("a/"); it->Next()) {
      status = consider(it->value().ToString());
    }
  }
  if (status.ok()) status = FromRocks(it->status(), "scan customers");
  it.reset();
  db_->db()->ReleaseSnapshot(snap);
  CRM_RETURN_IF_ERROR(status);

  auto key = [&](const CustomerState& s) -> std::string {
    if (order.field == "display_name") return s.profile().display_name();
    if (order.field == "customer_number") return s.customer_number();
    const auto& t = order.field == "update_time" ? s.update_time() : s.create_time();
    return absl::StrFormat("%020d%09d", t.seconds(), t.nanos());
  };
  std::stable_sort(matches.begin(), matches.end(), [&](const CustomerState& a, const CustomerState& b) {
    const std::string ka = key(a), kb = key(b);
    if (ka != kb) return order.desc ? ka > kb : ka < kb;
    return a.id() < b.id();
  });
  v1::ListCustomersResponse resp;
  resp.set_total_size(static_cast<int32_t>(matches.size()));
  for (int64_t i = offset; i < static_cast<int64_t>(matches.size()) && resp.customers_size() < page_size; ++i) {
    *resp.add_customers() = ToApi(matches[i]);
  }
  if (offset + resp.customers_size() < static_cast<int64_t>(matches.size())) {
    resp.set_next_page_token(PageToken(offset + resp.customers_size(), fingerprint));
  }
  return resp;
}

absl::StatusOr<v1::ListCustomerEventsResponse> CustomerEngine::History(
    const Caller& caller, const v1::ListCustomerEventsRequest& req, absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(std::string id, ParseName(req.parent(), "parent"));
  CRM_ASSIGN_OR_RETURN(int32_t page_size, PageSize(req.page_size(), "page_size"));
  CRM_ASSIGN_OR_RETURN(int64_t offset, ParsePageToken(req.page_token(), req.parent()));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  CRM_ASSIGN_OR_RETURN(auto state, Load(id));
  if (!state.has_value()) return absl::NotFoundError(absl::StrCat(req.parent(), " not found"));
  if (!CanSee(caller, *state)) {
    return absl::PermissionDeniedError("the customer belongs to another owner or team");
  }
  v1::ListCustomerEventsResponse resp;
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions()));
  const std::string prefix = HistoryPrefix(id);
  for (it->Seek(HistoryKey(id, offset + 1));
       it->Valid() && it->key().starts_with(prefix) && resp.events_size() < page_size; it->Next()) {
    CRM_ASSIGN_OR_RETURN(EventEnvelope env, eventlog::DecodeEnvelope(it->value().ToString()));
    CRM_ASSIGN_OR_RETURN(CustomerEvent ev, Unpack(env));
    auto* out = resp.add_events();
    out->set_event_id(env.event_id());
    out->set_event_type(env.event_type());
    out->set_version(env.aggregate_version());
    *out->mutable_occurred_at() = env.occurred_at();
    *out->mutable_recorded_at() = env.recorded_at();
    *out->mutable_actor() = env.actor();
    out->set_correlation_id(env.correlation_id());
    for (auto& f : ChangedFields(ev)) out->add_changed_fields(f);
    out->set_hash_hex(eventlog::HexHash(env.hash()));
  }
  CRM_RETURN_IF_ERROR(FromRocks(it->status(), "read history"));
  const int64_t last = offset + resp.events_size();
  if (last < state->version()) resp.set_next_page_token(PageToken(last, req.parent()));
  return resp;
}

absl::StatusOr<int64_t> CustomerEngine::Rebuild(eventlog::Log& log, const std::string& topic,
                                                const std::string& path) {
  if (std::filesystem::exists(path)) {
    return absl::FailedPreconditionError(absl::StrCat(path, " exists; rebuild writes a fresh copy"));
  }
  // A small memtable and 4096-record batches measured fastest (crm-bench --workload rebuild,
  // 200k events: 16 MiB ~57k/s against 64 MiB ~49k/s and 256 MiB ~40k/s): skiplist inserts
  // into a large memtable miss the cache.
  CRM_ASSIGN_OR_RETURN(auto db, projection::ProjectionDb::Open(
                                    {.path = path, .wal = false, .write_buffer_size = 16 << 20}));
  auto* raw = db.get();
  CRM_ASSIGN_OR_RETURN(int64_t n, raw->CatchUp(log, topic,
                                               [raw](const eventlog::Record& r, projection::Batch& b) {
                                                 return ApplyRecord(*raw, r, b);
                                               },
                                               4096));
  CRM_RETURN_IF_ERROR(raw->Flush());
  CRM_RETURN_IF_ERROR(raw->SetVersion(kProjectionVersion));
  return n;
}

absl::StatusOr<std::unique_ptr<projection::ProjectionDb>> CustomerEngine::OpenProjections(
    eventlog::Log& log, const std::string& path, const Options& options, int64_t* rebuilt) {
  *rebuilt = 0;
  CRM_RETURN_IF_ERROR(log.CreateTopic(options.topic, options.partitions));
  {
    CRM_ASSIGN_OR_RETURN(auto db, projection::ProjectionDb::Open({.path = path}));
    if (db->stored_version() == kProjectionVersion) return db;
    if (db->stored_version() == 0 && db->empty()) {
      CRM_RETURN_IF_ERROR(db->SetVersion(kProjectionVersion));
      return db;
    }
  }
  CRM_ASSIGN_OR_RETURN(*rebuilt, RebuildAndSwap(log, options.topic, path));
  return projection::ProjectionDb::Open({.path = path});
}

absl::StatusOr<int64_t> CustomerEngine::RebuildAndSwap(eventlog::Log& log, const std::string& topic,
                                                       const std::string& live_path) {
  const std::string next = live_path + ".rebuild";
  const std::string old = live_path + ".old";
  std::error_code ec;
  std::filesystem::remove_all(next, ec);
  std::filesystem::remove_all(old, ec);
  CRM_ASSIGN_OR_RETURN(int64_t n, Rebuild(log, topic, next));
  // Two renames: a crash between them leaves .old and the rebuilt copy; the next start
  // without live_path simply catches up from the log into a fresh copy.
  if (std::filesystem::exists(live_path)) std::filesystem::rename(live_path, old, ec);
  if (ec) return absl::InternalError(absl::StrCat("rename ", live_path, ": ", ec.message()));
  std::filesystem::rename(next, live_path, ec);
  if (ec) return absl::InternalError(absl::StrCat("rename ", next, ": ", ec.message()));
  std::filesystem::remove_all(old, ec);
  return n;
}

absl::StatusOr<std::string> CustomerEngine::Checksum(projection::ProjectionDb& db) {
  // XOR of SHA-256(key, value) over projection rows (checkpoints excluded): order-free, so two
  // databases with the same rows agree however they were written.
  std::string acc(32, '\0');
  std::unique_ptr<rocksdb::Iterator> it(db.db()->NewIterator(rocksdb::ReadOptions()));
  int64_t rows = 0;
  for (it->Seek("a"); it->Valid(); it->Next()) {
    const uint32_t klen = static_cast<uint32_t>(it->key().size());
    const std::string d = Sha256({absl::string_view(reinterpret_cast<const char*>(&klen), sizeof klen),
                                  absl::string_view(it->key().data(), it->key().size()),
                                  absl::string_view(it->value().data(), it->value().size())});
    for (size_t i = 0; i < acc.size(); ++i) acc[i] ^= d[i];
    ++rows;
  }
  CRM_RETURN_IF_ERROR(FromRocks(it->status(), "checksum"));
  return absl::StrCat(rows, ":", absl::BytesToHexString(acc));
}

}  // namespace crm::customers
