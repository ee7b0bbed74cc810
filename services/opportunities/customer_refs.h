#ifndef CRM_SERVICES_OPPORTUNITIES_CUSTOMER_REFS_H_
#define CRM_SERVICES_OPPORTUNITIES_CUSTOMER_REFS_H_

// The opportunities service's view of the customers topic (docs/architecture.md §1: opportunities react to
// customers): the shared customer view (libs/customer_view) and the lead conversions that ask
// for an opportunity. Kept by a projection::Follower. Depends on the customers' event schemas
// only, never on their code.
#include <string>

#include "absl/status/statusor.h"
#include "libs/customer_view/customer_view.h"
#include "libs/eventlog/log.h"
#include "libs/projection/projection_db.h"
#include "services/opportunities/opportunity.h"

namespace crm::opportunities {


// "lc/<lead id>": LeadConversionRef of a lead converted with an opportunity requested whose
// opportunity does not exist yet; the opportunities projection drops it when it does.
inline constexpr char kPendingConversions[] = "lc/";
// The id of the opportunity a lead conversion asks for (one per lead: exactly once).
std::string ConversionOpportunityId(const std::string& lead_id);

// Folds one record of the customers topic into the customer view's rows and the "lc/<id>"
// rows. Settings and the events that change none of these facts are ignored. DATA_LOSS for a record that is not an
// envelope or whose payload does not match its type.
absl::Status ApplyCustomerRecord(projection::ProjectionDb& db, const eventlog::Record& record,
                                 projection::Batch& batch);

}  // namespace crm::opportunities

#endif  // CRM_SERVICES_OPPORTUNITIES_CUSTOMER_REFS_H_
