#ifndef CRM_LIBS_PROJECTION_INDEX_WALK_H_
#define CRM_LIBS_PROJECTION_INDEX_WALK_H_

// Walks ordered index rows of one or more prefixes in step, for List RPCs that page by
// position (libs/common/list_page.h). Each row's key is a prefix then a position (such as an
// 8-byte time key and an id); positions order the same under every prefix, so the walk is a
// merge, and a record under two of the prefixes comes once.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/common/list_page.h"
#include "rocksdb/db.h"

namespace crm::projection {

struct IndexWalk {
  std::vector<std::string> prefixes;
  bool descending = false;
  // Positions below `lower` or from `upper` on are outside the walk ("" : no bound). A bound
  // shorter than a position compares with its start: an 8-byte time key bounds time keys.
  std::string lower, upper;
  // Start after this position (exclusive; "" : from the first in the walk's direction).
  std::string after;
  // Index rows read at most.
  int64_t budget = kListScanBudget;
};

// Calls `visit` with each position and its row's value in order until it returns false, the
// budget is spent or the rows end. WalkEnd says which, and the last position read.
absl::StatusOr<WalkEnd> WalkIndexes(
    rocksdb::DB* db, const rocksdb::ReadOptions& ro, const IndexWalk& walk,
    absl::FunctionRef<absl::StatusOr<bool>(absl::string_view position, absl::string_view value)> visit);

}  // namespace crm::projection

#endif  // CRM_LIBS_PROJECTION_INDEX_WALK_H_
