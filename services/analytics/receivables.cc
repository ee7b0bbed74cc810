#include "services/analytics/receivables.h"

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "crm/analytics/v1/analytics_rows.pb.h"
#include "crm/opportunities/v1/opportunities_events.pb.h"
#include "libs/common/money.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/envelope.h"
#include "libs/projection/aggregate_writer.h"
#include "libs/projection/rows.h"

namespace crm::analytics {
namespace {

namespace ov1 = crm::opportunities::v1;
using common::v1::EventEnvelope;
using eventlog::Is;

void CopyTerms(const ov1::ContractTerms& t, const google::protobuf::RepeatedPtrField<std::string>* fields,
               v1::ContractFact* c) {
  auto changed = [fields](absl::string_view f) { return Changed(fields, f); };
  if (changed("customer_id")) c->set_customer_id(t.customer_id());
  if (changed("owner_id")) c->set_owner_id(t.owner_id());
  if (changed("team_id")) c->set_team_id(t.team_id());
  if (changed("amount")) c->set_currency(t.amount().currency().empty() ? "CNY" : t.amount().currency());
}

}  // namespace

absl::Status ApplyContractEvent(projection::ProjectionDb& db, const EventEnvelope& e, projection::Batch& b) {
  const std::string key = absl::StrCat("ak/", e.aggregate_id());
  v1::ContractFact c;
  CRM_RETURN_IF_ERROR(projection::ReadRow(db, b, key, &c).status());
  if (e.aggregate_version() <= c.version()) return absl::OkStatus();  // applied already
  // A payment fact at `paid_at`; count -1 cancels an earlier one.
  auto payment = [&](const std::string& id, int64_t amount, const google::protobuf::Timestamp& paid_at, int count,
                     int n) {
    v1::PointFact f = MakeFact("payment", absl::StrCat(e.aggregate_id(), "/", id), FromProto(paid_at), e);
    f.set_owner_id(c.owner_id());
    f.set_team_id(c.team_id());
    f.set_related_id(c.customer_id());
    f.set_label(c.currency());
    f.set_amount_minor(count * amount);
    f.set_count(count);
    PutFact(b, f, e, n);
  };
  auto find = [&](const std::string& id) -> v1::PaidFact* {
    for (auto& p : *c.mutable_payments()) {
      if (p.payment_id() == id) return &p;
    }
    return nullptr;
  };
  if (Is<ov1::ContractDrafted>(e)) {
    CRM_ASSIGN_OR_RETURN(auto d, eventlog::PayloadAs<ov1::ContractDrafted>(e));
    CopyTerms(d.terms(), nullptr, &c);
  } else if (Is<ov1::ContractUpdated>(e)) {
    CRM_ASSIGN_OR_RETURN(auto u, eventlog::PayloadAs<ov1::ContractUpdated>(e));
    CopyTerms(u.terms(), &u.changed_fields(), &c);
  } else if (Is<ov1::ContractCustomerChanged>(e)) {
    CRM_ASSIGN_OR_RETURN(auto m, eventlog::PayloadAs<ov1::ContractCustomerChanged>(e));
    c.set_customer_id(m.to_customer_id());
  } else if (Is<ov1::PaymentPlanSet>(e)) {
    CRM_ASSIGN_OR_RETURN(auto set, eventlog::PayloadAs<ov1::PaymentPlanSet>(e));
    v1::PlanFact plan;
    *plan.mutable_recorded_at() = ToProto(projection::RecordedAt(e));
    plan.set_customer_id(c.customer_id());
    plan.set_owner_id(c.owner_id());
    plan.set_team_id(c.team_id());
    plan.set_currency(c.currency());
    for (const auto& i : set.instalments()) {
      auto* p = plan.add_instalments();
      p->set_due_date(i.due_date());
      p->set_amount_minor(i.amount_minor());
    }
    b.Put(VersionKey(kPlanPrefix, e.aggregate_id(), e), projection::DeterministicBytes(plan));
  } else if (Is<ov1::PaymentRecorded>(e)) {
    CRM_ASSIGN_OR_RETURN(auto p, eventlog::PayloadAs<ov1::PaymentRecorded>(e));
    payment(p.payment_id(), p.amount_minor(), p.paid_at(), 1, 0);
    auto* paid = c.add_payments();
    paid->set_payment_id(p.payment_id());
    paid->set_amount_minor(p.amount_minor());
    *paid->mutable_paid_at() = p.paid_at();
  } else if (Is<ov1::PaymentCorrected>(e)) {
    CRM_ASSIGN_OR_RETURN(auto p, eventlog::PayloadAs<ov1::PaymentCorrected>(e));
    if (v1::PaidFact* paid = find(p.payment_id()); paid != nullptr && !paid->voided()) {
      payment(p.payment_id(), paid->amount_minor(), paid->paid_at(), -1, 1);
      payment(p.payment_id(), p.amount_minor(), p.paid_at(), 1, 2);
      paid->set_amount_minor(p.amount_minor());
      *paid->mutable_paid_at() = p.paid_at();
    }
  } else if (Is<ov1::PaymentVoided>(e)) {
    CRM_ASSIGN_OR_RETURN(auto p, eventlog::PayloadAs<ov1::PaymentVoided>(e));
    if (v1::PaidFact* paid = find(p.payment_id()); paid != nullptr && !paid->voided()) {
      payment(p.payment_id(), paid->amount_minor(), paid->paid_at(), -1, 1);
      paid->set_voided(true);
    }
  }
  c.set_version(e.aggregate_version());
  b.Put(key, projection::DeterministicBytes(c));
  return absl::OkStatus();
}

absl::StatusOr<ReceivablesReport> Receivables(rocksdb::DB* db, const ReceivablesQuery& q) {
  const absl::TimeZone zone = ReportZone();
  CRM_ASSIGN_OR_RETURN(Periods periods, Periods::Make(q.from, q.to, q.group_by, zone));
  ReceivablesReport r;
  money::Totals sums;
  for (absl::Time s : periods.starts()) r.buckets.push_back({.start = s});
  CRM_RETURN_IF_ERROR(ScanVersions<v1::PlanFact>(db, kPlanPrefix, q.as_of, [&](const std::string&, const v1::PlanFact& p) {
    if (!q.owner_id.empty() && p.owner_id() != q.owner_id) return;
    if (!q.team_id.empty() && p.team_id() != q.team_id) return;
    if (p.currency() != q.currency) return;
    for (const auto& i : p.instalments()) {
      absl::CivilDay day;
      if (!absl::ParseCivilTime(i.due_date(), &day)) continue;
      const absl::Time due = absl::FromCivil(day, zone);
      if (due < q.from || due >= q.to) continue;
      sums.Add(&r.buckets[periods.Of(due)].planned_minor, i.amount_minor(), "periods.planned_minor");
      sums.Add(&r.planned_minor, i.amount_minor(), "planned_minor");
    }
  }));
  const FactFilter filter{.from = q.from, .to = q.to, .as_of = q.as_of, .owner_id = q.owner_id, .team_id = q.team_id};
  CRM_RETURN_IF_ERROR(ScanFacts(db, "payment", filter, [&](const v1::PointFact& f) {
    if (f.label() != q.currency) return;
    ReceivablesBucket& bucket = r.buckets[periods.Of(FromProto(f.occurred_at()))];
    sums.Add(&bucket.collected_minor, f.amount_minor(), "periods.collected_minor");
    bucket.payments += f.count();
    sums.Add(&r.collected_minor, f.amount_minor(), "collected_minor");
    r.payments += f.count();
  }));
  CRM_RETURN_IF_ERROR(sums.status());
  if (r.planned_minor > 0) {
    r.collection_percent = 100.0 * static_cast<double>(r.collected_minor) / static_cast<double>(r.planned_minor);
  }
  return r;
}

}  // namespace crm::analytics
