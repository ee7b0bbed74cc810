#include "services/customers/customer_projections.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/envelope.h"
#include "libs/projection/day_numbers.h"
#include "libs/projection/fold.h"
#include "libs/projection/aggregate_writer.h"
#include "libs/projection/rows.h"
#include "services/customers/customer_list.h"

namespace crm::customers {

using common::v1::EventEnvelope;
using projection::FromRocks;

namespace rows {

std::string State(absl::string_view id) { return absl::StrCat("a/", id); }
std::string PhonePrefix(absl::string_view p) { return absl::StrCat("p/", p, "/"); }
std::string EmailPrefix(absl::string_view e) { return absl::StrCat("e/", e, "/"); }
std::string Phone(absl::string_view p, absl::string_view id) { return absl::StrCat(PhonePrefix(p), id); }
std::string Email(absl::string_view e, absl::string_view id) { return absl::StrCat(EmailPrefix(e), id); }
std::string Owner(absl::string_view o, absl::string_view id) { return absl::StrCat("o/", o, "/", id); }
std::string FollowUpPrefix(absl::string_view id) { return absl::StrCat("f/", id, "/"); }
std::string Claims(absl::string_view user, absl::string_view day) { return absl::StrCat("q/", user, "/", day); }
std::string Lead(absl::string_view id) { return absl::StrCat(kLeadPrefix, id); }
std::string RuleTagPrefix(absl::string_view rule) { return absl::StrCat("g/", rule, "/"); }
std::string RuleTag(absl::string_view rule, absl::string_view id) { return absl::StrCat(RuleTagPrefix(rule), id); }
std::string CompanyNamePrefix(absl::string_view n) { return absl::StrCat("c/", n, "/"); }
std::string CompanyName(absl::string_view n, absl::string_view id) { return absl::StrCat(CompanyNamePrefix(n), id); }
std::string OpportunityCustomer(absl::string_view opp) { return absl::StrCat("op/", opp); }
std::string CausedBy(absl::string_view event_id) { return absl::StrCat("cz/", event_id); }
std::string PendingMerge(absl::string_view survivor, absl::string_view merged) {
  return absl::StrCat(kPendingSteps, "merge/", survivor, "/", merged);
}
std::string PendingUnmerge(absl::string_view survivor, absl::string_view merged) {
  return absl::StrCat(kPendingSteps, "unmerge/", survivor, "/", merged);
}
std::string PendingConversion(absl::string_view lead) { return absl::StrCat(kPendingSteps, "convert/", lead); }

}  // namespace rows

std::string CompanyNameKey(const CustomerState& s) {
  if (s.profile().kind() != v1::CUSTOMER_KIND_COMPANY) return "";
  return NormalizeCompanyName(s.profile().display_name());
}

absl::StatusOr<PendingStep> ParsePendingStep(absl::string_view raw) {
  PendingStep p;
  const size_t nl = raw.find('\n');
  if (nl == absl::string_view::npos || !absl::SimpleAtoi(raw.substr(0, nl), &p.count) ||
      !p.first.ParseFromArray(raw.data() + nl + 1, static_cast<int>(raw.size() - nl - 1))) {
    return absl::DataLossError("undecodable pending step row");
  }
  return p;
}

absl::StatusOr<absl::optional<PendingStep>> ReadPendingStep(rocksdb::DB* db, const std::string& key) {
  std::string raw;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), key, &raw);
  if (s.IsNotFound()) return absl::optional<PendingStep>();
  CRM_RETURN_IF_ERROR(FromRocks(s, "read pending step"));
  CRM_ASSIGN_OR_RETURN(PendingStep p, ParsePendingStep(raw));
  if (p.count <= 0) return absl::optional<PendingStep>();
  return absl::optional<PendingStep>(std::move(p));
}

namespace {

using projection::ReadRow;

// Adds `delta` to the pending step at `key` (see PendingStep); a first step (`first` set)
// also records its envelope, with `payload` (may be null) as what the second step needs.
absl::Status CountStep(projection::ProjectionDb& db, projection::Batch& b, const std::string& key, int delta,
                       const EventEnvelope* first = nullptr, const google::protobuf::Message* payload = nullptr) {
  std::string raw;
  absl::Status found = db.Get(b, key, &raw);
  if (!found.ok() && !absl::IsNotFound(found)) return found;
  PendingStep p;
  if (found.ok()) {
    CRM_ASSIGN_OR_RETURN(p, ParsePendingStep(raw));
  }
  p.count += delta;
  if (p.count == 0) {
    b.Delete(key);
    return absl::OkStatus();
  }
  if (first != nullptr) {
    p.first = *first;
    p.first.clear_payload();
    p.first.clear_prev_hash();
    p.first.clear_hash();
    if (payload != nullptr) p.first.mutable_payload()->PackFrom(*payload);
  }
  b.Put(key, absl::StrCat(p.count, "\n", projection::DeterministicBytes(p.first)));
  return absl::OkStatus();
}

// The pm/ rows a customer event moves (process_managers.cc completes what they hold).
absl::Status CountCustomerSteps(projection::ProjectionDb& db, projection::Batch& b, const EventEnvelope& env,
                                const CustomerEvent& event) {
  const std::string& id = env.aggregate_id();
  if (const auto* e = std::get_if<v1::CustomersMerged>(&event)) {
    return CountStep(db, b, rows::PendingMerge(id, e->merged_id()), +1, &env);
  }
  if (const auto* e = std::get_if<v1::CustomerMergedInto>(&event)) {
    return CountStep(db, b, rows::PendingMerge(e->survivor_id(), id), -1);
  }
  if (const auto* e = std::get_if<v1::CustomerUnmerged>(&event)) {
    return CountStep(db, b, rows::PendingUnmerge(e->survivor_id(), id), +1, &env);
  }
  if (const auto* e = std::get_if<v1::CustomerMergeUndone>(&event)) {
    return CountStep(db, b, rows::PendingUnmerge(id, e->merged_id()), -1);
  }
  if (const auto* e = std::get_if<v1::CustomerCreated>(&event); e != nullptr && e->has_lead_conversion()) {
    // Logs written before lead_conversion existed have none: no step for them (their
    // LeadConverted has no causation_id either, see ApplyLeadRecord).
    return CountStep(db, b, rows::PendingConversion(e->lead_id()), +1, &env, &e->lead_conversion());
  }
  return absl::OkStatus();
}

// The folds the write kernel uses too (CustomerKind, LeadKind in engine_util.h), through
// projection::FoldSealed.
void FoldCustomerEvent(CustomerState& s, const CustomerEvent& e, const EventEnvelope& env) {
  projection::FoldSealed<CustomerState, CustomerEvent>(s, e, env, &Apply);
}
void FoldLeadEvent(LeadState& s, const LeadEvent& e, const EventEnvelope& env) {
  projection::FoldSealed<LeadState, LeadEvent>(s, e, env, &Apply);
}

absl::Status ApplySettingsRecord(projection::ProjectionDb& db, const eventlog::Record& r, const EventEnvelope& env,
                                 projection::Batch& b) {
  projection::FoldedEvent<CustomerSettings, SettingsEvent> folded;
  CRM_ASSIGN_OR_RETURN(bool next, folded.Fold(
                                      db, r, env, b, rows::kSettings, &UnpackSettingsEvent,
                                      [](CustomerSettings& s, const SettingsEvent& ev, const EventEnvelope& sealed) {
                                        ApplySettings(s, ev, sealed.aggregate_version());
                                        s.set_last_hash(sealed.hash());
                                      },
                                      [](const CustomerSettings&) {}));
  if (!next) return absl::OkStatus();
  b.Put(rows::kSettings, projection::DeterministicBytes(folded.state()));
  return absl::OkStatus();
}

absl::Status ApplyLeadRecord(projection::ProjectionDb& db, const eventlog::Record& r, const EventEnvelope& env,
                             projection::Batch& b) {
  projection::FoldedEvent<LeadState, LeadEvent> folded;
  LeadState before;
  CRM_ASSIGN_OR_RETURN(bool next, folded.Fold(db, r, env, b, rows::Lead(env.aggregate_id()), &UnpackLeadEvent,
                                              FoldLeadEvent, [&](const LeadState& s) { before = s; }));
  if (!next) return absl::OkStatus();
  const LeadState& lead = folded.state();
  const LeadEvent& ev = folded.event();
  CRM_RETURN_IF_ERROR(UpdateLeadCounts(db, b, before, lead));
  if (std::holds_alternative<v1::LeadConverted>(ev) && !env.causation_id().empty()) {
    // The second step of a conversion that created its customer (caused by that CustomerCreated).
    CRM_RETURN_IF_ERROR(CountStep(db, b, rows::PendingConversion(lead.id()), -1));
  }
  b.Put(rows::History(lead.id(), lead.version()), r.value);
  if (!env.correlation_id().empty()) b.Put(rows::Request(env.correlation_id(), lead.id()), "");
  b.Put(rows::Lead(lead.id()), projection::DeterministicBytes(lead));
  return absl::OkStatus();
}

void IncrementCounter(projection::ProjectionDb& db, projection::Batch& b, const std::string& key) {
  std::string cur;
  int64_t n = 0;
  if (db.Get(b, key, &cur).ok()) absl::SimpleAtoi(cur, &n);
  b.Put(key, std::to_string(n + 1));
}

v1::FollowUp FollowUpRow(const CustomerState& s, const v1::FollowUpRecorded& e, const EventEnvelope& env) {
  v1::FollowUp f;
  f.set_name(absl::StrCat("customers/", s.id(), "/followUps/", e.follow_up_id()));
  f.set_channel(e.channel());
  f.set_summary(e.summary());
  f.set_feedback(e.feedback());
  f.set_next_step(e.next_step());
  if (e.has_next_follow_up_time()) *f.mutable_next_follow_up_time() = e.next_follow_up_time();
  *f.mutable_follow_up_time() = env.occurred_at();
  f.set_contact_id(e.contact_id());
  f.set_created_by(env.actor().user_id());
  *f.mutable_create_time() = env.recorded_at();
  return f;
}

}  // namespace

absl::StatusOr<CustomerEvent> UnpackCustomerEvent(const EventEnvelope& e) {
  return projection::UnpackEvent<CustomerEvent>(e);
}

absl::StatusOr<LeadEvent> UnpackLeadEvent(const EventEnvelope& e) {
  return projection::UnpackEvent<LeadEvent>(e);
}

absl::StatusOr<SettingsEvent> UnpackSettingsEvent(const EventEnvelope& e) {
  return projection::UnpackEvent<SettingsEvent>(e);
}

absl::Status ApplyCustomersRecord(projection::ProjectionDb& db, const eventlog::Record& r,
                                  projection::Batch& b) {
  CRM_ASSIGN_OR_RETURN(EventEnvelope env, eventlog::EnvelopeOf(r));
  if (env.aggregate_type() == topics::customers::kSettings.type) return ApplySettingsRecord(db, r, env, b);
  if (env.aggregate_type() == topics::customers::kLead.type) return ApplyLeadRecord(db, r, env, b);
  if (env.aggregate_type() != topics::customers::kCustomer.type) {
    return absl::DataLossError(absl::StrCat("unknown aggregate type ", env.aggregate_type()));
  }
  const std::string& id = env.aggregate_id();
  projection::FoldedEvent<CustomerState, CustomerEvent> folded;
  CustomerState before;
  CRM_ASSIGN_OR_RETURN(bool next, folded.Fold(db, r, env, b, rows::State(id), &UnpackCustomerEvent, FoldCustomerEvent,
                                              [&](const CustomerState& s) { before = s; }));
  if (!next) return absl::OkStatus();
  const CustomerState& state = folded.state();
  const CustomerEvent& event = folded.event();
  const absl::Time at = projection::OccurredAt(env);
  CRM_RETURN_IF_ERROR(CountCustomerSteps(db, b, env, event));

  // Indexes: drop what the old state held, add what the new one holds.
  const bool existed = before.version() > 0 && !before.purged();
  const bool was_live = IsLive(before);
  const bool is_live = IsLive(state);
  if (was_live && !before.normalized_phone().empty()) b.Delete(rows::Phone(before.normalized_phone(), id));
  if (was_live && !before.normalized_email().empty()) b.Delete(rows::Email(before.normalized_email(), id));
  if (is_live && !state.normalized_phone().empty()) b.Put(rows::Phone(state.normalized_phone(), id), "");
  if (is_live && !state.normalized_email().empty()) b.Put(rows::Email(state.normalized_email(), id), "");
  const std::string old_name = was_live ? CompanyNameKey(before) : "";
  const std::string new_name = is_live ? CompanyNameKey(state) : "";
  for (const auto& t : before.rule_tags()) b.Delete(rows::RuleTag(t.rule_id(), id));
  for (const auto& t : state.rule_tags()) b.Put(rows::RuleTag(t.rule_id(), id), "");
  if (!old_name.empty()) b.Delete(rows::CompanyName(old_name, id));
  if (!new_name.empty()) b.Put(rows::CompanyName(new_name, id), "");
  CRM_RETURN_IF_ERROR(UpdateListRows(db, b, before, state));
  if (existed) b.Delete(rows::Owner(before.profile().owner_id(), id));
  if (!state.purged()) b.Put(rows::Owner(state.profile().owner_id(), id), "");
  if (IsOwnedAndLive(before)) b.Delete(absl::StrCat(rows::kIdlePrefix, rows::TimeKey(LastActivity(before)), id));
  if (IsOwnedAndLive(state)) b.Put(absl::StrCat(rows::kIdlePrefix, rows::TimeKey(LastActivity(state)), id), "");
  if (existed && before.deleted()) {
    b.Delete(absl::StrCat(rows::kPurgePrefix, rows::TimeKey(FromProto(before.delete_time())), id));
  }
  if (state.deleted() && !state.purged()) {
    b.Put(absl::StrCat(rows::kPurgePrefix, rows::TimeKey(FromProto(state.delete_time())), id), "");
  }

  if (const auto* created = std::get_if<v1::CustomerCreated>(&event)) {
    projection::DayNumbers::Record(db, b, kCustomerNumberPrefix, created->customer_number());
  } else if (const auto* claimed = std::get_if<v1::CustomerClaimed>(&event)) {
    IncrementCounter(db, b, rows::Claims(claimed->owner_id(), claimed->claim_day()));
  } else if (const auto* follow_up = std::get_if<v1::FollowUpRecorded>(&event)) {
    b.Put(absl::StrCat(rows::FollowUpPrefix(id), rows::TimeKey(at), follow_up->follow_up_id()),
          projection::DeterministicBytes(FollowUpRow(state, *follow_up, env)));
  }

  if (state.purged()) {
    // Purged: the projections keep only the tombstone (the log keeps the events).
    CRM_RETURN_IF_ERROR(db.DeletePrefix(b, rows::HistoryPrefix(id)));
    CRM_RETURN_IF_ERROR(db.DeletePrefix(b, rows::FollowUpPrefix(id)));
  } else {
    b.Put(rows::History(id, state.version()), r.value);
  }
  if (!env.correlation_id().empty()) b.Put(rows::Request(env.correlation_id(), id), "");
  if (!env.causation_id().empty()) {
    // A reaction to another service's event: that event is handled.
    b.Put(rows::CausedBy(env.causation_id()), "");
    b.Delete(absl::StrCat(rows::kPendingWins, env.causation_id()));
    b.Delete(absl::StrCat(rows::kPendingNotes, env.causation_id()));
  }
  b.Put(rows::State(id), projection::DeterministicBytes(state));
  return absl::OkStatus();
}

absl::StatusOr<absl::optional<CustomerState>> ReadCustomer(rocksdb::DB* db, const rocksdb::ReadOptions& ro,
                                                           absl::string_view id) {
  std::string raw;
  rocksdb::Status s = db->Get(ro, rows::State(id), &raw);
  if (s.IsNotFound()) return absl::optional<CustomerState>();
  CRM_RETURN_IF_ERROR(FromRocks(s, "read customer"));
  CustomerState state;
  if (!state.ParseFromString(raw)) return absl::DataLossError("undecodable customer state");
  return absl::optional<CustomerState>(std::move(state));
}

absl::StatusOr<CustomerSettings> ReadSettings(rocksdb::DB* db) {
  std::string raw;
  CustomerSettings s;
  rocksdb::Status st = db->Get(rocksdb::ReadOptions(), rows::kSettings, &raw);
  if (!st.IsNotFound()) {
    CRM_RETURN_IF_ERROR(FromRocks(st, "read settings"));
    if (!s.ParseFromString(raw)) return absl::DataLossError("undecodable customer settings");
  }
  return s;
}

absl::StatusOr<absl::optional<LeadState>> ReadLead(rocksdb::DB* db, absl::string_view id) {
  std::string raw;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), rows::Lead(id), &raw);
  if (s.IsNotFound()) return absl::optional<LeadState>();
  CRM_RETURN_IF_ERROR(FromRocks(s, "read lead"));
  LeadState lead;
  if (!lead.ParseFromString(raw)) return absl::DataLossError("undecodable lead state");
  return absl::optional<LeadState>(std::move(lead));
}

absl::StatusOr<int32_t> ReadClaims(rocksdb::DB* db, absl::string_view user, absl::string_view day) {
  std::string raw;
  rocksdb::Status st = db->Get(rocksdb::ReadOptions(), rows::Claims(user, day), &raw);
  if (st.IsNotFound()) return 0;
  CRM_RETURN_IF_ERROR(FromRocks(st, "read claims"));
  int32_t n = 0;
  absl::SimpleAtoi(raw, &n);
  return n;
}

}  // namespace crm::customers
