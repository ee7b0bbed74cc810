#ifndef CRM_SERVICES_ANALYTICS_RECEIVABLES_H_
#define CRM_SERVICES_ANALYTICS_RECEIVABLES_H_

// Contracts' payment plans and payments (回款) as analytics keeps them, and the receivables
// report: planned against collected per period. Rows (facts.h for the shapes):
//   ak/<contract id>                          ContractFact (for folding)
//   ar/<contract id>/<recorded><event id>     PlanFact versions
//   af/payment/<paid_at><event id>[/<n>]      PointFact: subject <contract>/<payment id>,
//                                             amount, label the currency, related
//                                             the customer, owner the contract's; a correction
//                                             or voiding cancels the payment (count -1, the
//                                             amount negated at its old paid_at) and a
//                                             correction adds it anew
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crm/common/v1/envelope.pb.h"
#include "libs/projection/projection_db.h"
#include "services/analytics/facts.h"

namespace crm::analytics {

inline constexpr char kPlanPrefix[] = "ar/";

// Folds one event of a contract aggregate. Events applied already (by version) are skipped.
absl::Status ApplyContractEvent(projection::ProjectionDb& db, const common::v1::EventEnvelope& e,
                                projection::Batch& batch);

struct ReceivablesQuery {
  absl::Time from, to;  // business time: instalments due and payments paid in [from, to)
  absl::Time as_of = absl::InfiniteFuture();
  Period group_by = Period::kMonth;
  std::string owner_id, team_id;  // the contract's owner and team; empty: any
  std::string currency = "CNY";
};

struct ReceivablesBucket {
  absl::Time start;
  int64_t planned_minor = 0;    // instalments due in the period, under the plans as of
  int64_t collected_minor = 0;  // payments paid in the period, as known as of
  int64_t payments = 0;
  bool operator==(const ReceivablesBucket&) const = default;
};

struct ReceivablesReport {
  std::vector<ReceivablesBucket> buckets;
  int64_t planned_minor = 0, collected_minor = 0, payments = 0;
  // collected / planned * 100; 0 when nothing was planned.
  double collection_percent = 0;
  bool operator==(const ReceivablesReport&) const = default;
};

absl::StatusOr<ReceivablesReport> Receivables(rocksdb::DB* db, const ReceivablesQuery& q);

}  // namespace crm::analytics

#endif  // CRM_SERVICES_ANALYTICS_RECEIVABLES_H_
