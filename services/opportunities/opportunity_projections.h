#ifndef CRM_SERVICES_OPPORTUNITIES_OPPORTUNITY_PROJECTIONS_H_
#define CRM_SERVICES_OPPORTUNITIES_OPPORTUNITY_PROJECTIONS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "crm/common/v1/envelope.pb.h"
#include "libs/eventlog/log.h"
#include "libs/projection/projection_db.h"
#include "libs/projection/rows.h"
#include "libs/topics/contracts.h"
#include "services/opportunities/contract.h"
#include "services/opportunities/opportunity.h"
#include "services/opportunities/quote.h"
#include "services/opportunities/settings.h"

namespace crm::opportunities {

// The topic's aggregates (types, collections) are topics::opportunities's (libs/topics).
inline constexpr char kSettingsId[] = "settings";
// Contract numbers are HT<yyyymmdd><seq> (projection::DayNumbers).
inline constexpr char kContractNumberPrefix[] = "HT";

// Projection rows of the opportunities topic (in the service's ProjectionDb, beside the
// customers view of customer_refs.h). Dates in keys are yyyy-MM-dd, times TimeKey.
//   o/<id>                        OpportunityState
//   q/<id>                        QuoteState
//   k/<id>                        ContractState
//   s/settings                    OpportunitySettings
//   h/<id>/<be64 version>         EventEnvelope of any aggregate (history, time travel)
//   r/<request id>/<id>           "" per aggregate a request changed
//   oc/<customer>/<id>            "" per opportunity of a customer
//   oo/<owner>/<id>               "" per opportunity of an owner
//   od/<id>                       "" per opportunity flagged customer_deleted
//   ot/<stage>/<time>/<id>        "" per open opportunity whose stay has not timed out, by
//                                 stage and the time it is idle since (stage timeouts)
//   qo/<opportunity>/<id>         "" per quote of an opportunity
//   kc/<customer>/<id>            "" per contract of a customer
//   ke/<end date>/<id>            "" per active contract, by end date (renewal, expiry)
//   kp/<due date>/<id>            "" per active or expired contract with an instalment due
//                                 then, not paid and not yet reported overdue (earliest)
//   rv/<customer>/<id>            receivable of a signed contract, decimal minor units
//   n/<yyyymmdd>                  last contract number sequence used that day (DayNumbers)
namespace rows {
std::string Opportunity(absl::string_view id);
std::string Quote(absl::string_view id);
std::string Contract(absl::string_view id);
inline constexpr char kSettings[] = "s/settings";
std::string ByCustomerPrefix(absl::string_view customer);
std::string ByOwnerPrefix(absl::string_view owner);
inline constexpr char kFlaggedPrefix[] = "od/";
std::string IdlePrefix(absl::string_view stage);
std::string QuotesOfPrefix(absl::string_view opportunity);
std::string ContractsOfPrefix(absl::string_view customer);
inline constexpr char kEndPrefix[] = "ke/";
inline constexpr char kDuePrefix[] = "kp/";
std::string ReceivablesPrefix(absl::string_view customer);
}  // namespace rows

absl::StatusOr<OpportunityEvent> UnpackOpportunityEvent(const common::v1::EventEnvelope& e);
absl::StatusOr<QuoteEvent> UnpackQuoteEvent(const common::v1::EventEnvelope& e);
absl::StatusOr<ContractEvent> UnpackContractEvent(const common::v1::EventEnvelope& e);
absl::StatusOr<SettingsEvent> UnpackSettingsEvent(const common::v1::EventEnvelope& e);

// Folds one record of the opportunities topic into the rows above. DATA_LOSS on a version
// gap, a broken hash chain or an unknown event; records already applied are skipped.
absl::Status ApplyOpportunitiesRecord(projection::ProjectionDb& db, const eventlog::Record& record,
                                      projection::Batch& batch);

// Committed rows (nullopt when absent); settings are empty when never set.
template <typename State>
absl::StatusOr<absl::optional<State>> ReadState(rocksdb::DB* db, const rocksdb::ReadOptions& ro, const std::string& key) {
  State s;
  auto found = projection::ReadRow(db, ro, key, &s);
  if (!found.ok()) return found.status();
  if (!*found) return absl::optional<State>();
  return absl::optional<State>(std::move(s));
}
absl::StatusOr<OpportunitySettings> ReadSettings(rocksdb::DB* db);

}  // namespace crm::opportunities

#endif  // CRM_SERVICES_OPPORTUNITIES_OPPORTUNITY_PROJECTIONS_H_
