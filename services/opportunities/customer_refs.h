#ifndef CRM_SERVICES_OPPORTUNITIES_CUSTOMER_REFS_H_
#define CRM_SERVICES_OPPORTUNITIES_CUSTOMER_REFS_H_

// The opportunities service's view of the customers topic (DESIGN §1: opportunities react to
// customers): per customer its owner and team, and whether it is in the recycle bin, purged
// or merged. Kept by a projection::Follower; read by the engine to check references. Depends
// on the customers' event schemas only, never on their code.
#include <string>

#include "absl/status/statusor.h"
#include "libs/eventlog/log.h"
#include "libs/projection/projection_db.h"
#include "services/opportunities/opportunity.h"

namespace crm::opportunities {

inline constexpr char kCustomersTopic[] = "crm.customers.events.v1";
// "cw/<id>": the customers in the recycle bin, purged or merged, whose opportunities the
// engine reconciles at start (a reaction a crash interrupted is completed then).
inline constexpr char kWatchedCustomers[] = "cw/";

// "lc/<lead id>": LeadConversionRef of a lead converted with an opportunity requested whose
// opportunity does not exist yet; the opportunities projection drops it when it does.
inline constexpr char kPendingConversions[] = "lc/";
// The id of the opportunity a lead conversion asks for (one per lead: exactly once).
std::string ConversionOpportunityId(const std::string& lead_id);

// Folds one record of the customers topic into the "cr/<id>" rows (and "cw/<id>", "lc/<id>"). Leads, settings and the
// events that change none of these facts are ignored. DATA_LOSS for a record that is not an
// envelope or whose payload does not match its type.
absl::Status ApplyCustomerRecord(projection::ProjectionDb& db, const eventlog::Record& record,
                                 projection::Batch& batch);

// What the rows say about customer `id`; exists is false when it is unknown or purged
// (purged then says which).
absl::StatusOr<CustomerView> ReadCustomerView(rocksdb::DB* db, const std::string& id);

}  // namespace crm::opportunities

#endif  // CRM_SERVICES_OPPORTUNITIES_CUSTOMER_REFS_H_
