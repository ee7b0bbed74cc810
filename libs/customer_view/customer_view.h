#ifndef CRM_LIBS_CUSTOMER_VIEW_CUSTOMER_VIEW_H_
#define CRM_LIBS_CUSTOMER_VIEW_CUSTOMER_VIEW_H_

// A service's view of the customers topic (docs/architecture.md §1: other services react to customers): per
// customer its owner and team, and whether it is in the recycle bin, purged or merged. Kept by
// a projection::Follower of the customers topic in the service's own projection; read to
// check references. Depends on the customers' event schemas only, never on their code.
//   cr/<id>   CustomerRef
//   cw/<id>   "" while the customer is in the recycle bin, purged or merged (a service
//             reconciles what refers to them at start)
#include <string>

#include "absl/status/statusor.h"
#include "crm/common/v1/envelope.pb.h"
#include "libs/projection/projection_db.h"
#include "libs/topics/topics.h"

namespace crm {

inline constexpr char kWatchedCustomers[] = "cw/";

// A customer as the view knows it.
struct CustomerView {
  bool exists = false;
  bool deleted = false;
  std::string merged_into;  // the survivor's id when merged
  std::string owner_id, team_id;
  bool purged = false;
  // The customers event that last changed deleted / merged_into (the reactions' cause).
  std::string cause_event_id;
};

// The CustomerRef row of customer `id`.
std::string CustomerRefRow(absl::string_view id);

// Folds one customer-aggregate event of the customers topic into the rows above; events of
// other aggregates and those that change none of these facts are ignored, as are events
// applied already. DATA_LOSS when the payload does not match its type.
absl::Status ApplyCustomerEvent(projection::ProjectionDb& db, const common::v1::EventEnvelope& e,
                                projection::Batch& batch);

// What the rows say about customer `id`; exists is false when it is unknown or purged
// (purged then says which).
absl::StatusOr<CustomerView> ReadCustomerView(rocksdb::DB* db, const std::string& id);

// Follows merged_into from `id` to the customer that holds its records now (at most 16 hops);
// `id` itself when it was never merged.
absl::StatusOr<std::string> SurvivorOf(rocksdb::DB* db, const std::string& id);

}  // namespace crm

#endif  // CRM_LIBS_CUSTOMER_VIEW_CUSTOMER_VIEW_H_
