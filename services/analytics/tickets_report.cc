#include "services/analytics/tickets_report.h"

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "crm/analytics/v1/analytics_rows.pb.h"
#include "crm/tickets/v1/tickets_events.pb.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/envelope.h"
#include "libs/projection/aggregate_writer.h"
#include "libs/projection/rows.h"

namespace crm::analytics {
namespace {

namespace kv1 = crm::tickets::v1;

constexpr char kOpened[] = "ticket_opened";
constexpr char kClosed[] = "ticket_closed";
constexpr char kBreached[] = "sla_breached";

std::string FactPrefix(absl::string_view kind) { return absl::StrCat("af/", kind, "/"); }

}  // namespace

absl::Status ApplyTicketsRecord(projection::ProjectionDb& db, const eventlog::Record& record,
                                projection::Batch& batch) {
  CRM_ASSIGN_OR_RETURN(common::v1::EventEnvelope e, eventlog::DecodeEnvelope(record.value));
  if (e.aggregate_type() != "ticket") return absl::OkStatus();
  const std::string key = absl::StrCat("at/", e.aggregate_id());
  v1::TicketFact t;
  CRM_RETURN_IF_ERROR(projection::ReadRow(db, batch, key, &t).status());
  if (e.aggregate_version() <= t.version()) return absl::OkStatus();  // applied already
  auto fact = [&](const char* kind, const std::string& label) {
    v1::PointFact f;
    f.set_kind(kind);
    f.set_subject_id(e.aggregate_id());
    *f.mutable_occurred_at() = e.occurred_at();
    *f.mutable_recorded_at() = e.recorded_at();
    f.set_owner_id(t.assignee_id());
    f.set_team_id(t.team_id());
    f.set_label(label);
    batch.Put(absl::StrCat(FactPrefix(kind), projection::TimeKey(projection::OccurredAt(e)), e.event_id()),
              projection::DeterministicBytes(f));
  };
  const std::string& type = e.event_type();
  if (type == kv1::TicketCreated::descriptor()->full_name()) {
    CRM_ASSIGN_OR_RETURN(auto c, eventlog::PayloadAs<kv1::TicketCreated>(e));
    t.set_type_id(c.type_id());
    t.set_assignee_id(c.assignee_id());
    t.set_team_id(c.team_id());
    fact(kOpened, t.type_id());
  } else if (type == kv1::TicketAssigned::descriptor()->full_name()) {
    CRM_ASSIGN_OR_RETURN(auto a, eventlog::PayloadAs<kv1::TicketAssigned>(e));
    t.set_assignee_id(a.assignee_id());
    t.set_team_id(a.team_id());
  } else if (type == kv1::TicketTransitioned::descriptor()->full_name()) {
    CRM_ASSIGN_OR_RETURN(auto m, eventlog::PayloadAs<kv1::TicketTransitioned>(e));
    if (m.to_final()) fact(kClosed, t.type_id());
  } else if (type == kv1::SlaBreached::descriptor()->full_name()) {
    CRM_ASSIGN_OR_RETURN(auto b, eventlog::PayloadAs<kv1::SlaBreached>(e));
    fact(kBreached, b.clock() == kv1::SLA_CLOCK_KIND_FIRST_RESPONSE ? "FIRST_RESPONSE" : "RESOLUTION");
  }
  t.set_version(e.aggregate_version());
  batch.Put(key, projection::DeterministicBytes(t));
  return absl::OkStatus();
}

absl::Time PeriodStart(absl::Time t, Period p, absl::TimeZone zone) {
  const absl::CivilDay day = absl::ToCivilDay(t, zone);
  switch (p) {
    case Period::kDay: return absl::FromCivil(day, zone);
    case Period::kWeek: return absl::FromCivil(absl::PrevWeekday(day + 1, absl::Weekday::monday), zone);
    case Period::kMonth: return absl::FromCivil(absl::CivilMonth(day), zone);
  }
  return absl::FromCivil(day, zone);
}

namespace {

absl::Time NextPeriod(absl::Time start, Period p, absl::TimeZone zone) {
  const absl::CivilDay day = absl::ToCivilDay(start, zone);
  switch (p) {
    case Period::kDay: return absl::FromCivil(day + 1, zone);
    case Period::kWeek: return absl::FromCivil(day + 7, zone);
    case Period::kMonth: return absl::FromCivil(absl::CivilMonth(day) + 1, zone);
  }
  return absl::FromCivil(day + 1, zone);
}

// The facts of `kind` that happened in [from, to) and were recorded by as_of, and whose
// owner, team and label the query allows (label: the ticket type for opened and closed).
absl::Status Scan(rocksdb::DB* db, const std::string& kind, const TicketsQuery& q,
                  absl::FunctionRef<void(const v1::PointFact&)> fn) {
  const std::string prefix = FactPrefix(kind);
  const std::string end = absl::StrCat(prefix, projection::TimeKey(q.to));
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(absl::StrCat(prefix, projection::TimeKey(q.from))); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    if (it->key().compare(end) >= 0) break;
    v1::PointFact f;
    if (!f.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat("undecodable row ", it->key().ToString()));
    }
    if (FromProto(f.recorded_at()) > q.as_of) continue;
    if (!q.owner_id.empty() && f.owner_id() != q.owner_id) continue;
    if (!q.team_id.empty() && f.team_id() != q.team_id) continue;
    fn(f);
  }
  return projection::FromRocks(it->status(), "scan facts");
}

}  // namespace

absl::StatusOr<TicketsReport> Tickets(rocksdb::DB* db, const TicketsQuery& q) {
  if (q.to <= q.from) return absl::InvalidArgumentError("an empty range");
  TicketsReport r;
  std::map<absl::Time, size_t> index;
  for (absl::Time s = PeriodStart(q.from, q.group_by, q.zone); s < q.to; s = NextPeriod(s, q.group_by, q.zone)) {
    index[s] = r.buckets.size();
    r.buckets.push_back({.start = s});
    if (r.buckets.size() > 10000) return absl::InvalidArgumentError("more than 10000 periods: group by a longer one");
  }
  auto bucket = [&](const v1::PointFact& f) -> TicketsBucket& {
    return r.buckets[index.at(PeriodStart(FromProto(f.occurred_at()), q.group_by, q.zone))];
  };
  // Which tickets are of the type asked: the opened facts say (any time, as of).
  std::set<std::string> of_type;
  if (!q.type_id.empty()) {
    TicketsQuery all = q;
    all.from = absl::InfinitePast();
    all.to = absl::InfiniteFuture();
    all.owner_id.clear();
    all.team_id.clear();
    CRM_RETURN_IF_ERROR(Scan(db, kOpened, all, [&](const v1::PointFact& f) {
      if (f.label() == q.type_id) of_type.insert(f.subject_id());
    }));
  }
  auto wanted = [&](const v1::PointFact& f) { return q.type_id.empty() || of_type.count(f.subject_id()) > 0; };
  CRM_RETURN_IF_ERROR(Scan(db, kOpened, q, [&](const v1::PointFact& f) {
    if (!wanted(f)) return;
    ++bucket(f).opened;
    ++r.opened;
  }));
  std::vector<std::string> closed;
  CRM_RETURN_IF_ERROR(Scan(db, kClosed, q, [&](const v1::PointFact& f) {
    if (!wanted(f)) return;
    ++bucket(f).closed;
    ++r.closed;
    closed.push_back(f.subject_id());
  }));
  CRM_RETURN_IF_ERROR(Scan(db, kBreached, q, [&](const v1::PointFact& f) {
    if (!wanted(f)) return;
    if (f.label() == "FIRST_RESPONSE") {
      ++bucket(f).first_response_breaches;
      ++r.first_response_breaches;
    } else {
      ++bucket(f).resolution_breaches;
      ++r.resolution_breaches;
    }
  }));
  // Compliance of the tickets closed in the range: breached at any time, as known as of.
  std::set<std::string> breached;
  TicketsQuery ever = q;
  ever.from = absl::InfinitePast();
  ever.to = absl::InfiniteFuture();
  ever.owner_id.clear();
  ever.team_id.clear();
  CRM_RETURN_IF_ERROR(Scan(db, kBreached, ever, [&](const v1::PointFact& f) {
    if (f.label() == "RESOLUTION") breached.insert(f.subject_id());
  }));
  if (!closed.empty()) {
    int64_t ok = 0;
    for (const auto& id : closed) ok += breached.count(id) == 0 ? 1 : 0;
    r.resolution_compliance_percent = 100.0 * static_cast<double>(ok) / static_cast<double>(closed.size());
  }
  return r;
}

}  // namespace crm::analytics
