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
#include "libs/topics/contracts.h"

namespace crm::analytics {
namespace {

namespace kv1 = crm::tickets::v1;

constexpr char kOpened[] = "ticket_opened";
constexpr char kClosed[] = "ticket_closed";
constexpr char kBreached[] = "sla_breached";

}  // namespace

absl::Status ApplyTicketsRecord(projection::ProjectionDb& db, const eventlog::Record& record,
                                projection::Batch& batch) {
  CRM_ASSIGN_OR_RETURN(common::v1::EventEnvelope e, eventlog::DecodeEnvelope(record.value));
  if (e.aggregate_type() != topics::tickets::kTicket.type) return absl::OkStatus();
  const std::string key = absl::StrCat("at/", e.aggregate_id());
  v1::TicketFact t;
  CRM_RETURN_IF_ERROR(projection::ReadRow(db, batch, key, &t).status());
  if (e.aggregate_version() <= t.version()) return absl::OkStatus();  // applied already
  auto fact = [&](const char* kind, const std::string& label) {
    v1::PointFact f = MakeFact(kind, e.aggregate_id(), projection::OccurredAt(e), e);
    f.clear_count();  // as first written: these rows never cancel
    f.set_owner_id(t.assignee_id());
    f.set_team_id(t.team_id());
    f.set_label(label);
    PutFact(batch, f, e);
  };
  if (eventlog::Is<kv1::TicketCreated>(e)) {
    CRM_ASSIGN_OR_RETURN(auto c, eventlog::PayloadAs<kv1::TicketCreated>(e));
    t.set_type_id(c.type_id());
    t.set_assignee_id(c.assignee_id());
    t.set_team_id(c.team_id());
    fact(kOpened, t.type_id());
  } else if (eventlog::Is<kv1::TicketAssigned>(e)) {
    CRM_ASSIGN_OR_RETURN(auto a, eventlog::PayloadAs<kv1::TicketAssigned>(e));
    t.set_assignee_id(a.assignee_id());
    t.set_team_id(a.team_id());
  } else if (eventlog::Is<kv1::TicketTransitioned>(e)) {
    CRM_ASSIGN_OR_RETURN(auto m, eventlog::PayloadAs<kv1::TicketTransitioned>(e));
    if (m.to_final()) fact(kClosed, t.type_id());
  } else if (eventlog::Is<kv1::SlaBreached>(e)) {
    CRM_ASSIGN_OR_RETURN(auto b, eventlog::PayloadAs<kv1::SlaBreached>(e));
    fact(kBreached, b.clock() == kv1::SLA_CLOCK_KIND_FIRST_RESPONSE ? "FIRST_RESPONSE" : "RESOLUTION");
  }
  t.set_version(e.aggregate_version());
  batch.Put(key, projection::DeterministicBytes(t));
  return absl::OkStatus();
}

namespace {

FactFilter Filter(const TicketsQuery& q) {
  return {.from = q.from, .to = q.to, .as_of = q.as_of, .owner_id = q.owner_id, .team_id = q.team_id};
}

absl::Status Scan(rocksdb::DB* db, const std::string& kind, const TicketsQuery& q,
                  absl::FunctionRef<void(const v1::PointFact&)> fn) {
  return ScanFacts(db, kind, Filter(q), fn);
}

}  // namespace

absl::StatusOr<TicketsReport> Tickets(rocksdb::DB* db, const TicketsQuery& q) {
  CRM_ASSIGN_OR_RETURN(Periods periods, Periods::Make(q.from, q.to, q.group_by, q.zone));
  TicketsReport r;
  for (absl::Time s : periods.starts()) r.buckets.push_back({.start = s});
  auto bucket = [&](const v1::PointFact& f) -> TicketsBucket& {
    return r.buckets[periods.Of(FromProto(f.occurred_at()))];
  };
  // Which tickets are of the type asked: the opened facts say (any time, as of).
  std::set<std::string> of_type;
  if (!q.type_id.empty()) {
    CRM_RETURN_IF_ERROR(ScanFacts(db, kOpened, {.as_of = q.as_of}, [&](const v1::PointFact& f) {
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
  CRM_RETURN_IF_ERROR(ScanFacts(db, kBreached, {.as_of = q.as_of}, [&](const v1::PointFact& f) {
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
