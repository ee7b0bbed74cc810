#ifndef CRM_SERVICES_CUSTOMERS_CUSTOMER_PROJECTIONS_H_
#define CRM_SERVICES_CUSTOMERS_CUSTOMER_PROJECTIONS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "crm/common/v1/envelope.pb.h"
#include "crm/customers/v1/customers_service.pb.h"
#include "libs/eventlog/log.h"
#include "libs/projection/projection_db.h"
#include "libs/projection/rows.h"
#include "libs/topics/contracts.h"
#include "services/customers/customer.h"
#include "services/customers/lead.h"

namespace crm::customers {

// The topic's aggregates (types, collections) are topics::customers's (libs/topics).
inline constexpr char kSettingsId[] = "settings";

// Projection rows of the customers topic (all in the service's ProjectionDb). Time keys are
// 8 bytes big-endian of the nanoseconds since the epoch with the sign bit flipped, so they
// sort by time.
//   a/<id>                          CustomerState
//   p/<normalised phone>/<id>       "" per live customer holding it (dedupe index); keyed by
//                                   holder too, so the rows a rebuild leaves do not depend on
//                                   the order it reads partitions in
//   e/<normalised email>/<id>       "" likewise
//   c/<normalised company name>/<id> "" likewise, for live company customers
//   g/<rule id>/<id>                "" per customer a behaviour rule tagged
//   o/<owner>/<id>                  "" (by owner)
//   n/<yyyymmdd>                    last customer number sequence used that day (DayNumbers)
//   h/<id>/<be64 version>           EventEnvelope (history, time travel)
//   r/<correlation id>/<id>         "" per aggregate the request changed (request_id idempotency)
//   f/<id>/<time>/<follow-up id>    v1::FollowUp
//   t/<time>/<id>                   "" for owned live customers, by last activity (pool return)
//   x/<time>/<id>                   "" for customers in the recycle bin, by deletion (purge)
//   q/<user>/<yyyymmdd>             claims from the pool that day
//   s/settings                      CustomerSettings
//   l/<id>                          LeadState (history under h/ like customers')
//   op/<opportunity id>             its customer id (from the opportunities topic)
//   ow/<OpportunityWon event id>    PendingDeal: a won opportunity not yet recorded on its customer
//   k/<order>/<key><id>, kn/<entry> ListCustomers' sort indexes and counts (customer_list.h)
//   ln/<entry>                      ListLeads' counts (customer_list.h)
//   cz/<event id>                   "" per other service's event a customer event was caused by
//   pm/merge/<survivor>/<merged>    PendingStep: a merge's CustomersMerged without its CustomerMergedInto
//   pm/unmerge/<survivor>/<merged>  PendingStep: an unmerge's CustomerUnmerged without its CustomerMergeUndone
//   pm/convert/<lead id>            PendingStep: a conversion's CustomerCreated without its LeadConverted
namespace rows {
using projection::History;
using projection::HistoryPrefix;
using projection::Request;
using projection::RequestPrefix;
using projection::TimeFromKey;
using projection::TimeKey;
std::string State(absl::string_view id);
std::string Phone(absl::string_view p, absl::string_view id);
std::string Email(absl::string_view e, absl::string_view id);
std::string PhonePrefix(absl::string_view p);
std::string EmailPrefix(absl::string_view e);
std::string Owner(absl::string_view owner, absl::string_view id);
std::string FollowUpPrefix(absl::string_view id);
inline constexpr char kIdlePrefix[] = "t/";
inline constexpr char kPurgePrefix[] = "x/";
std::string Claims(absl::string_view user, absl::string_view day);
inline constexpr char kSettings[] = "s/settings";
std::string Lead(absl::string_view id);
inline constexpr char kLeadPrefix[] = "l/";
std::string CompanyNamePrefix(absl::string_view n);
std::string RuleTagPrefix(absl::string_view rule);
std::string RuleTag(absl::string_view rule, absl::string_view id);
inline constexpr char kHistoryRoot[] = "h/";
std::string CompanyName(absl::string_view n, absl::string_view id);
std::string OpportunityCustomer(absl::string_view opp);
std::string CausedBy(absl::string_view event_id);
inline constexpr char kPendingWins[] = "ow/";
// tn/<TaskCompleted event id>: PendingFollowUp.
inline constexpr char kPendingNotes[] = "tn/";
// The process managers' rows (process_managers.cc).
inline constexpr char kPendingSteps[] = "pm/";
std::string PendingMerge(absl::string_view survivor, absl::string_view merged);
std::string PendingUnmerge(absl::string_view survivor, absl::string_view merged);
std::string PendingConversion(absl::string_view lead);
}  // namespace rows

// A pm/ row: the second step of a two-aggregate command (merge, unmerge, lead conversion) whose
// first step is in the log. The projection of a first step adds one to `count` and the
// projection of its second step takes one away, deleting the row at 0: a rebuild may read a
// second step before its first (they are on two aggregates, so maybe two partitions), and a
// count ends the same in either order. Only a positive count is pending.
struct PendingStep {
  int64_t count = 0;
  // The latest first step's envelope without payload and hashes (who, correlation, event id);
  // for a conversion, the payload is the LeadConverted to write. Empty while count <= 0 and no
  // first step was read yet.
  common::v1::EventEnvelope first;
};
absl::StatusOr<PendingStep> ParsePendingStep(absl::string_view raw);
// The pending step at `key` (a rows::Pending* key); nullopt when there is none or its count is not positive.
absl::StatusOr<absl::optional<PendingStep>> ReadPendingStep(rocksdb::DB* db, const std::string& key);

// Folds one record of the opportunities topic into the op/ and ow/ rows (the customers
// service reacts to won opportunities). Other events are ignored.
absl::Status ApplyOpportunitiesRecordForCustomers(projection::ProjectionDb& db, const eventlog::Record& record,
                                                  projection::Batch& batch);

// Folds one record of the tasks topic into the tn/ rows (the customers service records a
// completed task's note as a follow-up). Other events are ignored.
absl::Status ApplyTasksRecordForCustomers(projection::ProjectionDb& db, const eventlog::Record& record,
                                          projection::Batch& batch);

// The company-name dedupe key of a customer: empty for persons and names that normalise away.
std::string CompanyNameKey(const CustomerState& s);

// Payload of a customer or settings envelope; DATA_LOSS for an unknown type.
absl::StatusOr<CustomerEvent> UnpackCustomerEvent(const common::v1::EventEnvelope& e);
absl::StatusOr<SettingsEvent> UnpackSettingsEvent(const common::v1::EventEnvelope& e);
absl::StatusOr<LeadEvent> UnpackLeadEvent(const common::v1::EventEnvelope& e);

// Folds one record of the customers topic into the projections. DATA_LOSS on a version gap, a
// broken hash chain or an unknown event; records already applied are skipped.
absl::Status ApplyCustomersRecord(projection::ProjectionDb& db, const eventlog::Record& record,
                                  projection::Batch& batch);

// Reads a customer's state (nullopt when unknown) and the settings (defaults when unset).
absl::StatusOr<absl::optional<CustomerState>> ReadCustomer(rocksdb::DB* db, const rocksdb::ReadOptions& ro,
                                                           absl::string_view id);
absl::StatusOr<CustomerSettings> ReadSettings(rocksdb::DB* db);
absl::StatusOr<absl::optional<LeadState>> ReadLead(rocksdb::DB* db, absl::string_view id);
// The live customers holding a dedupe key (a PhonePrefix, EmailPrefix or CompanyNamePrefix), as ids.
inline absl::StatusOr<std::vector<std::string>> ReadHolders(rocksdb::DB* db, const std::string& prefix) {
  return projection::ReadIds(db, prefix);
}
// Claims `user` made on `day` (yyyymmdd).
absl::StatusOr<int32_t> ReadClaims(rocksdb::DB* db, absl::string_view user, absl::string_view day);

}  // namespace crm::customers

#endif  // CRM_SERVICES_CUSTOMERS_CUSTOMER_PROJECTIONS_H_
