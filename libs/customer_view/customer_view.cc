#include "libs/customer_view/customer_view.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "crm/common/v1/customer_ref.pb.h"
#include "crm/customers/v1/customers_events.pb.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/envelope.h"
#include "libs/projection/rows.h"
#include "libs/topics/contracts.h"

namespace crm {
namespace {

namespace cv1 = crm::customers::v1;
using common::v1::CustomerRef;

std::string WatchKey(absl::string_view id) { return absl::StrCat(kWatchedCustomers, id); }

// Customers whose referring records may need a reaction: in the recycle bin, purged or merged.
bool Watched(const CustomerRef& r) { return r.deleted() || r.purged() || !r.merged_into().empty(); }

bool Changed(const cv1::CustomerUpdated& u, absl::string_view field) {
  return std::find(u.changed_fields().begin(), u.changed_fields().end(), field) != u.changed_fields().end();
}

}  // namespace

std::string CustomerRefRow(absl::string_view id) { return absl::StrCat("cr/", id); }

absl::Status ApplyCustomerEvent(projection::ProjectionDb& db, const common::v1::EventEnvelope& e,
                                projection::Batch& batch) {
  if (e.aggregate_type() != topics::customers::kCustomer.type) return absl::OkStatus();
  const std::string key = CustomerRefRow(e.aggregate_id());
  std::string raw;
  if (absl::Status s = db.Get(batch, key, &raw); !s.ok() && !absl::IsNotFound(s)) return s;
  CustomerRef ref;
  if (!raw.empty() && !ref.ParseFromString(raw)) return absl::DataLossError("undecodable customer reference row");
  if (e.aggregate_version() <= ref.version()) return absl::OkStatus();  // applied already
  const CustomerRef ref_before = ref;
  bool cause = true;  // the event changes deleted / purged / merged_into
  if (eventlog::Is<cv1::CustomerCreated>(e)) {
    CRM_ASSIGN_OR_RETURN(auto c, eventlog::PayloadAs<cv1::CustomerCreated>(e));
    ref.set_owner_id(c.profile().owner_id());
    ref.set_team_id(c.profile().team_id());
    cause = false;
  } else if (eventlog::Is<cv1::CustomerUpdated>(e)) {
    CRM_ASSIGN_OR_RETURN(auto u, eventlog::PayloadAs<cv1::CustomerUpdated>(e));
    if (Changed(u, "owner_id")) ref.set_owner_id(u.profile().owner_id());
    if (Changed(u, "team_id")) ref.set_team_id(u.profile().team_id());
    cause = false;
  } else if (eventlog::Is<cv1::CustomerReturnedToPool>(e)) {
    ref.set_owner_id("");
    ref.set_in_pool(true);
    cause = false;
  } else if (eventlog::Is<cv1::CustomerClaimed>(e)) {
    CRM_ASSIGN_OR_RETURN(auto c, eventlog::PayloadAs<cv1::CustomerClaimed>(e));
    ref.set_owner_id(c.owner_id());
    if (!c.team_id().empty()) ref.set_team_id(c.team_id());
    ref.set_in_pool(false);
    cause = false;
  } else if (eventlog::Is<cv1::CustomerDeleted>(e)) {
    ref.set_deleted(true);
  } else if (eventlog::Is<cv1::CustomerUndeleted>(e)) {
    ref.set_deleted(false);
  } else if (eventlog::Is<cv1::CustomerPurged>(e)) {
    ref.set_purged(true);
  } else if (eventlog::Is<cv1::CustomerMergedInto>(e)) {
    CRM_ASSIGN_OR_RETURN(auto m, eventlog::PayloadAs<cv1::CustomerMergedInto>(e));
    ref.set_merged_into(m.survivor_id());
  } else if (eventlog::Is<cv1::CustomerUnmerged>(e)) {
    ref.clear_merged_into();
  } else {
    return absl::OkStatus();  // follow-ups, contacts, tags ...: nothing this view holds
  }
  const bool was_watched = raw.empty() ? false : Watched(ref_before);
  if (cause) ref.set_cause_event_id(e.event_id());
  ref.set_version(e.aggregate_version());
  batch.Put(key, projection::DeterministicBytes(ref));
  if (was_watched && !Watched(ref)) batch.Delete(WatchKey(e.aggregate_id()));
  if (Watched(ref)) batch.Put(WatchKey(e.aggregate_id()), "");
  return absl::OkStatus();
}

absl::StatusOr<CustomerView> ReadCustomerView(rocksdb::DB* db, const std::string& id) {
  std::string raw;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), CustomerRefRow(id), &raw);
  CustomerView v;
  if (s.IsNotFound()) return v;
  if (!s.ok()) return projection::FromRocks(s, "read customer reference");
  CustomerRef ref;
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
  return v;
}

absl::StatusOr<std::string> SurvivorOf(rocksdb::DB* db, const std::string& id) {
  std::string cur = id;
  for (int hop = 0; hop < 16; ++hop) {
    CRM_ASSIGN_OR_RETURN(CustomerView v, ReadCustomerView(db, cur));
    if (v.merged_into.empty()) return cur;
    cur = v.merged_into;
  }
  return cur;
}

}  // namespace crm
