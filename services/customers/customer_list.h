#ifndef CRM_SERVICES_CUSTOMERS_CUSTOMER_LIST_H_
#define CRM_SERVICES_CUSTOMERS_CUSTOMER_LIST_H_

// ListCustomers and ExportCustomers without reading every customer: one index per sort
// order, walked from a position, and counts of listed customers by (owner, team, pool,
// deleted) for total_size.
//
// Rows (in the customers ProjectionDb; "listed" = created, not purged, not merged away):
//   k/<f>/<sort key>\0\1<id>   ListEntry of a listed customer, for each order f:
//                              c create_time, u update_time, d display_name, n customer_number.
//                              \0 in a sort key is written \0\xff, so rows sort by key, then id.
//   kn/<ListEntry>             number of listed customers with that entry (decimal)
//
// A page token holds the position (the row key after "k/<f>/") of the last row the page
// read, so the next page seeks there: the cost of a page does not grow with its number.

#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "libs/common/caller.h"
#include "libs/common/list_page.h"
#include "libs/common/request.h"
#include "libs/projection/projection_db.h"
#include "rocksdb/db.h"
#include "services/customers/customer.h"
#include "services/customers/lead.h"

namespace crm::customers {

// What the index rows hold beside the position: enough to decide visibility and the
// owner, team, pool and recycle-bin terms without reading the customer.
struct ListEntry {
  std::string owner, team;
  bool deleted = false;
  bool in_pool = false;

  std::string Encode() const;
  static bool Decode(absl::string_view raw, ListEntry* out);
  bool operator==(const ListEntry& o) const {
    return owner == o.owner && team == o.team && deleted == o.deleted && in_pool == o.in_pool;
  }
};

// Count rows under `prefix` keyed by ListEntry: customers' kn/, leads' ln/.
absl::Status AddListCount(projection::ProjectionDb& db, projection::Batch& batch, absl::string_view prefix,
                          const ListEntry& e, int64_t delta);
// The count rows under `prefix`, summed in one pass: those whose entry `admit` accepts, and all.
struct ListCounts {
  int64_t admitted = 0;
  int64_t all = 0;
};
absl::StatusOr<ListCounts> SumListCounts(rocksdb::DB* db, const rocksdb::ReadOptions& ro, absl::string_view prefix,
                                         absl::FunctionRef<bool(const ListEntry&)> admit);

// A conjunction of `field = "value"` and `tags:"value"` terms (a subset of AIP-160).
struct CustomerFilter {
  std::string owner_id, team_id, tag, industry;
  int lifecycle_status = -1, cooperation_status = -1, source_channel = -1;
  int in_pool = -1;  // -1: either, 0: not in the pool, 1: in the pool
  // Whether every term is one ListEntry answers (so the counts answer total_size).
  bool EntryTermsOnly() const;
};

struct ListQuery {
  CustomerFilter filter;
  OrderBy order;
  bool show_deleted = false;
};

// INVALID_ARGUMENT naming "filter" or "order_by".
absl::StatusOr<ListQuery> ParseListQuery(const std::string& filter, const std::string& order_by, bool show_deleted);

// Keeps the k/ and kn/ rows in step with a customer going from `before` to `after`.
absl::Status UpdateListRows(projection::ProjectionDb& db, projection::Batch& batch, const CustomerState& before,
                            const CustomerState& after);


// Visits, in the query's order and after `after` (a position; empty: from the start), the
// listed customers `caller` sees that pass the query, until `visit` returns false, `budget`
// index rows were read or the rows end. `wanted` is about how many visits the caller needs:
// for a query naming one owner (or the pool) the walk reads that owner's customers and sorts
// them instead when that costs less than walking the index to `wanted` of them, and they
// are at most kNarrowLimit.
inline constexpr int64_t kNarrowLimit = 20000;
absl::StatusOr<WalkEnd> WalkCustomers(
    rocksdb::DB* db, const rocksdb::ReadOptions& ro, const Caller& caller, const ListQuery& query,
    absl::string_view after, int64_t wanted, int64_t budget,
    absl::FunctionRef<absl::StatusOr<bool>(CustomerState&& state, absl::string_view position)> visit);

// The number of listed customers `caller` sees that pass the query, from the kn/ rows;
// nullopt when the filter has terms the counts do not know (tags, industry, statuses).
absl::StatusOr<absl::optional<int64_t>> CountCustomers(rocksdb::DB* db, const rocksdb::ReadOptions& ro,
                                                       const Caller& caller, const ListQuery& query);


// Leads: ListLeads walks the l/<id> rows backwards (ids are UUIDv7: newest first), and
//   ln/<ListEntry>   number of leads with that owner, team and in_pool (as Lead.in_pool:
//                    unowned and open or qualified)
inline constexpr char kLeadCountPrefix[] = "ln/";
ListEntry LeadEntry(const LeadState& s);
absl::Status UpdateLeadCounts(projection::ProjectionDb& db, projection::Batch& batch, const LeadState& before,
                              const LeadState& after);


}  // namespace crm::customers

#endif  // CRM_SERVICES_CUSTOMERS_CUSTOMER_LIST_H_
