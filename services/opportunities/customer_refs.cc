#include "services/opportunities/customer_refs.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "crm/customers/v1/customers_events.pb.h"
#include "libs/common/request.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/envelope.h"

namespace crm::opportunities {
namespace {

namespace cv1 = crm::customers::v1;

std::string RefKey(absl::string_view id) { return absl::StrCat("cr/", id); }
std::string WatchKey(absl::string_view id) { return absl::StrCat(kWatchedCustomers, id); }

// Customers whose opportunities may need a reaction: in the recycle bin, purged or merged.
bool Watched(const v1::CustomerRef& r) { return r.deleted() || r.purged() || !r.merged_into().empty(); }

template <typename T>
absl::StatusOr<T> Payload(const common::v1::EventEnvelope& e) {
  T m;
  if (!e.payload().UnpackTo(&m)) {
    return absl::DataLossError(absl::StrCat("customers event ", e.event_id(), " does not hold a ", e.event_type()));
  }
  return m;
}

bool Changed(const cv1::CustomerUpdated& u, absl::string_view field) {
  return std::find(u.changed_fields().begin(), u.changed_fields().end(), field) != u.changed_fields().end();
}

}  // namespace

std::string ConversionOpportunityId(const std::string& lead_id) { return DerivedId("lead-conversions", lead_id); }

namespace {

// A conversion asking for an opportunity that does not exist yet becomes a pending row (a
// rebuild reads the opportunities topic first, so the row appears only when it is pending).
absl::Status ApplyLeadRecord(projection::ProjectionDb& db, const common::v1::EventEnvelope& e,
                             projection::Batch& batch) {
  if (e.event_type() != "crm.customers.v1.LeadConverted") return absl::OkStatus();
  CRM_ASSIGN_OR_RETURN(auto c, Payload<cv1::LeadConverted>(e));
  if (!c.opportunity_requested()) return absl::OkStatus();
  std::string unused;
  absl::Status exists = db.Get(batch, absl::StrCat("o/", ConversionOpportunityId(e.aggregate_id())), &unused);
  if (exists.ok()) return absl::OkStatus();
  if (!absl::IsNotFound(exists)) return exists;
  v1::LeadConversionRef ref;
  ref.set_lead_id(e.aggregate_id());
  ref.set_customer_id(c.customer_id());
  ref.set_name(c.opportunity_name());
  ref.set_amount_minor(c.expected_amount_minor());
  ref.set_currency(c.currency());
  ref.set_owner_id(e.actor().user_id());
  ref.set_team_id(e.actor().team_id());
  ref.set_cause_event_id(e.event_id());
  batch.Put(absl::StrCat(kPendingConversions, e.aggregate_id()), ref.SerializeAsString());
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyCustomerRecord(projection::ProjectionDb& db, const eventlog::Record& record,
                                 projection::Batch& batch) {
  CRM_ASSIGN_OR_RETURN(common::v1::EventEnvelope e, eventlog::DecodeEnvelope(record.value));
  if (e.aggregate_type() == "lead") return ApplyLeadRecord(db, e, batch);
  if (e.aggregate_type() != "customer") return absl::OkStatus();
  const std::string key = RefKey(e.aggregate_id());
  std::string raw;
  if (absl::Status s = db.Get(batch, key, &raw); !s.ok() && !absl::IsNotFound(s)) return s;
  v1::CustomerRef ref;
  if (!raw.empty() && !ref.ParseFromString(raw)) return absl::DataLossError("undecodable customer reference row");
  if (e.aggregate_version() <= ref.version()) return absl::OkStatus();  // applied already
  const v1::CustomerRef ref_before = ref;
  const std::string& type = e.event_type();
  if (type == "crm.customers.v1.CustomerCreated") {
    CRM_ASSIGN_OR_RETURN(auto c, Payload<cv1::CustomerCreated>(e));
    ref.set_owner_id(c.profile().owner_id());
    ref.set_team_id(c.profile().team_id());
  } else if (type == "crm.customers.v1.CustomerUpdated") {
    CRM_ASSIGN_OR_RETURN(auto u, Payload<cv1::CustomerUpdated>(e));
    if (Changed(u, "owner_id")) ref.set_owner_id(u.profile().owner_id());
    if (Changed(u, "team_id")) ref.set_team_id(u.profile().team_id());
  } else if (type == "crm.customers.v1.CustomerReturnedToPool") {
    ref.set_owner_id("");
    ref.set_in_pool(true);
  } else if (type == "crm.customers.v1.CustomerClaimed") {
    CRM_ASSIGN_OR_RETURN(auto c, Payload<cv1::CustomerClaimed>(e));
    ref.set_owner_id(c.owner_id());
    if (!c.team_id().empty()) ref.set_team_id(c.team_id());
    ref.set_in_pool(false);
  } else if (type == "crm.customers.v1.CustomerDeleted") {
    ref.set_deleted(true);
  } else if (type == "crm.customers.v1.CustomerUndeleted") {
    ref.set_deleted(false);
  } else if (type == "crm.customers.v1.CustomerPurged") {
    ref.set_purged(true);
  } else if (type == "crm.customers.v1.CustomerMergedInto") {
    CRM_ASSIGN_OR_RETURN(auto m, Payload<cv1::CustomerMergedInto>(e));
    ref.set_merged_into(m.survivor_id());
  } else if (type == "crm.customers.v1.CustomerUnmerged") {
    ref.clear_merged_into();
  } else {
    return absl::OkStatus();  // follow-ups, contacts, tags ...: nothing this view holds
  }
  const bool was_watched = raw.empty() ? false : Watched(ref_before);
  if (type != "crm.customers.v1.CustomerCreated" && type != "crm.customers.v1.CustomerUpdated" &&
      type != "crm.customers.v1.CustomerReturnedToPool" && type != "crm.customers.v1.CustomerClaimed") {
    ref.set_cause_event_id(e.event_id());
  }
  ref.set_version(e.aggregate_version());
  batch.Put(key, ref.SerializeAsString());
  if (was_watched && !Watched(ref)) batch.Delete(WatchKey(e.aggregate_id()));
  if (Watched(ref)) batch.Put(WatchKey(e.aggregate_id()), "");
  return absl::OkStatus();
}

absl::StatusOr<CustomerView> ReadCustomerView(rocksdb::DB* db, const std::string& id) {
  std::string raw;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), RefKey(id), &raw);
  CustomerView v;
  if (s.IsNotFound()) return v;
  if (!s.ok()) return projection::FromRocks(s, "read customer reference");
  v1::CustomerRef ref;
  if (!ref.ParseFromString(raw)) return absl::DataLossError("undecodable customer reference row");
  v.cause_event_id = ref.cause_event_id();
  if (ref.purged()) {
    v.purged = true;
    return v;
  }
  v.exists = true;
  v.deleted = ref.deleted();
  v.merged_into = ref.merged_into();
  v.owner_id = ref.owner_id();
  v.team_id = ref.team_id();
  v.cause_event_id = ref.cause_event_id();
  return v;
}

}  // namespace crm::opportunities
