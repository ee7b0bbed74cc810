#include "services/analytics/customer_facts.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "crm/analytics/v1/analytics_rows.pb.h"
#include "crm/customers/v1/customers_events.pb.h"
#include "crm/tasks/v1/tasks_events.pb.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/envelope.h"
#include "libs/projection/aggregate_writer.h"
#include "libs/projection/rows.h"
#include "libs/topics/contracts.h"
#include "services/analytics/facts.h"

namespace crm::analytics {
namespace {

namespace cv1 = crm::customers::v1;
namespace tv1 = crm::tasks::v1;
using common::v1::EventEnvelope;
using eventlog::Is;

std::string Channel(cv1::SourceChannel c) {
  std::string name = cv1::SourceChannel_Name(c);
  return name.empty() ? "UNSPECIFIED" : name.substr(sizeof("SOURCE_CHANNEL_") - 1);
}

std::string Lifecycle(cv1::LifecycleStatus s) {
  std::string name = cv1::LifecycleStatus_Name(s);
  return name.empty() ? "UNSPECIFIED" : name.substr(sizeof("LIFECYCLE_STATUS_") - 1);
}

// Copies the dimensions a profile carries; `fields` empty: all of them.
void CopyProfile(const cv1::CustomerProfile& p, const google::protobuf::RepeatedPtrField<std::string>* fields,
                 v1::CustomerDim* d) {
  auto changed = [fields](absl::string_view f) { return Changed(fields, f); };
  if (changed("display_name")) d->set_name(p.display_name());
  if (changed("region")) d->set_region(p.region());
  if (changed("industry")) d->set_industry(p.industry());
  if (changed("source_channel")) d->set_source_channel(Channel(p.source_channel()));
  if (changed("owner_id")) d->set_owner_id(p.owner_id());
  if (changed("team_id")) d->set_team_id(p.team_id());
  if (changed("lifecycle_status")) d->set_lifecycle(Lifecycle(p.lifecycle_status()));
  if (changed("churn_reason") || changed("lifecycle_status")) d->set_churn_reason(p.churn_reason());
}

absl::Status ApplyCustomer(projection::ProjectionDb& db, const EventEnvelope& e, projection::Batch& b) {
  const std::string key = absl::StrCat("acs/", e.aggregate_id());
  v1::CustomerDim d;
  CRM_RETURN_IF_ERROR(projection::ReadRow(db, b, key, &d).status());
  if (e.aggregate_version() <= d.version()) return absl::OkStatus();  // applied already
  const absl::Time at = projection::OccurredAt(e);
  const std::string before = d.lifecycle();
  auto fact = [&](absl::string_view kind) {
    v1::PointFact f = MakeFact(kind, e.aggregate_id(), at, e);
    f.set_owner_id(d.owner_id());
    f.set_team_id(d.team_id());
    return f;
  };
  bool dims = true;
  if (Is<cv1::CustomerCreated>(e)) {
    CRM_ASSIGN_OR_RETURN(auto c, eventlog::PayloadAs<cv1::CustomerCreated>(e));
    CopyProfile(c.profile(), nullptr, &d);
    *d.mutable_created_at() = ToProto(at);
    d.set_lead_id(c.lead_id());
    v1::PointFact f = fact("customer_created");
    f.set_label(d.source_channel());
    f.set_related_id(c.lead_id());
    PutFact(b, f, e);
  } else if (Is<cv1::CustomerUpdated>(e)) {
    CRM_ASSIGN_OR_RETURN(auto u, eventlog::PayloadAs<cv1::CustomerUpdated>(e));
    CopyProfile(u.profile(), &u.changed_fields(), &d);
  } else if (Is<cv1::CustomerDeleted>(e) || Is<cv1::CustomerPurged>(e)) {
    d.set_deleted(true);
  } else if (Is<cv1::CustomerUndeleted>(e)) {
    d.set_deleted(false);
  } else if (Is<cv1::CustomerReturnedToPool>(e)) {
    d.clear_owner_id();
  } else if (Is<cv1::CustomerClaimed>(e)) {
    CRM_ASSIGN_OR_RETURN(auto c, eventlog::PayloadAs<cv1::CustomerClaimed>(e));
    d.set_owner_id(c.owner_id());
    d.set_team_id(c.team_id());
  } else if (Is<cv1::CustomerMergedInto>(e)) {
    CRM_ASSIGN_OR_RETURN(auto m, eventlog::PayloadAs<cv1::CustomerMergedInto>(e));
    d.set_merged_into(m.survivor_id());
  } else if (Is<cv1::CustomerUnmerged>(e)) {
    d.clear_merged_into();
  } else if (Is<cv1::CustomersMerged>(e)) {
    // The survivor took some fields from the merged customer: copy those we keep.
    CRM_ASSIGN_OR_RETURN(auto m, eventlog::PayloadAs<cv1::CustomersMerged>(e));
    v1::CustomerDim merged;
    CRM_ASSIGN_OR_RETURN(bool found, projection::ReadRow(db, b, absl::StrCat("acs/", m.merged_id()), &merged));
    for (const auto& o : m.origins()) {
      if (!found || o.customer_id() != m.merged_id()) continue;
      if (o.field() == "region") d.set_region(merged.region());
      if (o.field() == "industry") d.set_industry(merged.industry());
      if (o.field() == "source_channel") d.set_source_channel(merged.source_channel());
    }
  } else if (Is<cv1::FollowUpRecorded>(e)) {
    dims = false;
    v1::PointFact f = MakeFact("follow_up", e.aggregate_id(), at, e);
    f.set_owner_id(e.actor().user_id());
    f.set_team_id(e.actor().team_id());
    PutFact(b, f, e);
  } else {
    dims = false;
  }
  if (d.lifecycle() == "LOST" && before != "LOST" && !before.empty()) {
    v1::PointFact f = fact("customer_churned");
    f.set_label(d.churn_reason());
    PutFact(b, f, e, 1);
  }
  d.set_version(e.aggregate_version());
  *d.mutable_recorded_at() = ToProto(projection::RecordedAt(e));
  const std::string bytes = projection::DeterministicBytes(d);
  b.Put(key, bytes);
  if (dims) b.Put(VersionKey(kCustomerDimPrefix, e.aggregate_id(), e), bytes);
  return absl::OkStatus();
}

absl::Status ApplyLead(projection::ProjectionDb& db, const EventEnvelope& e, projection::Batch& b) {
  const std::string key = absl::StrCat("al/", e.aggregate_id());
  v1::LeadFact l;
  CRM_RETURN_IF_ERROR(projection::ReadRow(db, b, key, &l).status());
  if (e.aggregate_version() <= l.version()) return absl::OkStatus();
  auto fact = [&](absl::string_view kind) {
    v1::PointFact f = MakeFact(kind, e.aggregate_id(), projection::OccurredAt(e), e);
    f.set_owner_id(l.owner_id());
    f.set_team_id(l.team_id());
    f.set_label(l.source_channel());
    return f;
  };
  if (Is<cv1::LeadCreated>(e)) {
    CRM_ASSIGN_OR_RETURN(auto c, eventlog::PayloadAs<cv1::LeadCreated>(e));
    l.set_source_channel(Channel(c.profile().source_channel()));
    l.set_owner_id(c.owner_id());
    l.set_team_id(c.team_id());
    PutFact(b, fact("lead_created"), e);
  } else if (Is<cv1::LeadAssigned>(e)) {
    CRM_ASSIGN_OR_RETURN(auto a, eventlog::PayloadAs<cv1::LeadAssigned>(e));
    l.set_owner_id(a.owner_id());
    l.set_team_id(a.team_id());
  } else if (Is<cv1::LeadReleased>(e)) {
    l.clear_owner_id();
  } else if (Is<cv1::LeadConverted>(e)) {
    CRM_ASSIGN_OR_RETURN(auto c, eventlog::PayloadAs<cv1::LeadConverted>(e));
    v1::PointFact f = fact("lead_converted");
    f.set_related_id(c.customer_id());
    PutFact(b, f, e);
  }
  l.set_version(e.aggregate_version());
  b.Put(key, projection::DeterministicBytes(l));
  return absl::OkStatus();
}

absl::Status ApplyChannelCost(const EventEnvelope& e, projection::Batch& b) {
  if (!Is<cv1::ChannelCostSet>(e)) return absl::OkStatus();
  CRM_ASSIGN_OR_RETURN(auto set, eventlog::PayloadAs<cv1::ChannelCostSet>(e));
  v1::ChannelCostFact f;
  *f.mutable_recorded_at() = ToProto(projection::RecordedAt(e));
  f.set_source_channel(Channel(set.cost().source_channel()));
  f.set_month(set.cost().month());
  f.set_amount_minor(set.cost().amount_minor());
  f.set_currency(set.cost().currency());
  b.Put(VersionKey(kChannelCostPrefix, absl::StrCat(f.source_channel(), ":", f.month()), e),
        projection::DeterministicBytes(f));
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyCustomersRecord(projection::ProjectionDb& db, const eventlog::Record& record,
                                  projection::Batch& batch) {
  CRM_ASSIGN_OR_RETURN(EventEnvelope e, eventlog::DecodeEnvelope(record.value));
  if (e.aggregate_type() == topics::customers::kCustomer.type) return ApplyCustomer(db, e, batch);
  if (e.aggregate_type() == topics::customers::kLead.type) return ApplyLead(db, e, batch);
  if (e.aggregate_type() == topics::customers::kSettings.type) return ApplyChannelCost(e, batch);
  return absl::OkStatus();
}

absl::Status ApplyTasksRecord(projection::ProjectionDb& db, const eventlog::Record& record,
                              projection::Batch& batch) {
  CRM_ASSIGN_OR_RETURN(EventEnvelope e, eventlog::DecodeEnvelope(record.value));
  if (e.aggregate_type() != topics::tasks::kTask.type) return absl::OkStatus();
  const std::string key = absl::StrCat("aw/", e.aggregate_id());
  v1::TaskFact t;
  CRM_RETURN_IF_ERROR(projection::ReadRow(db, batch, key, &t).status());
  if (e.aggregate_version() <= t.version()) return absl::OkStatus();
  auto fact = [&](absl::string_view kind) {
    v1::PointFact f = MakeFact(kind, e.aggregate_id(), projection::OccurredAt(e), e);
    f.set_owner_id(t.assignee_id().empty() ? e.actor().user_id() : t.assignee_id());
    f.set_team_id(t.team_id());
    return f;
  };
  if (Is<tv1::TaskCreated>(e)) {
    CRM_ASSIGN_OR_RETURN(auto c, eventlog::PayloadAs<tv1::TaskCreated>(e));
    t.set_assignee_id(c.profile().assignee_id());
    t.set_team_id(c.profile().team_id());
  } else if (Is<tv1::TaskUpdated>(e)) {
    CRM_ASSIGN_OR_RETURN(auto u, eventlog::PayloadAs<tv1::TaskUpdated>(e));
    for (const auto& field : u.changed_fields()) {
      if (field == "assignee_id") t.set_assignee_id(u.profile().assignee_id());
      if (field == "team_id") t.set_team_id(u.profile().team_id());
    }
  } else if (Is<tv1::TaskCompleted>(e)) {
    PutFact(batch, fact("task_done"), e);
    t.set_done(true);
  } else if (Is<tv1::TaskReopened>(e)) {
    if (t.done()) {
      v1::PointFact f = fact("task_done");
      f.set_count(-1);
      PutFact(batch, f, e);
    }
    t.set_done(false);
  } else if (Is<tv1::TaskOverdue>(e)) {
    CRM_ASSIGN_OR_RETURN(auto o, eventlog::PayloadAs<tv1::TaskOverdue>(e));
    v1::PointFact f = MakeFact("task_overdue", e.aggregate_id(), projection::OccurredAt(e), e);
    f.set_owner_id(o.assignee_id());
    f.set_team_id(o.team_id());
    PutFact(batch, f, e);
  }
  t.set_version(e.aggregate_version());
  batch.Put(key, projection::DeterministicBytes(t));
  return absl::OkStatus();
}

}  // namespace crm::analytics
