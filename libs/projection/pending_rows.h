#ifndef CRM_LIBS_PROJECTION_PENDING_ROWS_H_
#define CRM_LIBS_PROJECTION_PENDING_ROWS_H_

// Pending rows: what a projection writes, in the batch of the event that asks for it, for a
// reaction still to run (a won opportunity not yet on its customer, a merge's second step not
// yet written), and takes away in the batch of the event that completes it. A reconciler reads
// them at start and after each catch-up, so a crash between an event and its reaction is
// repaired without the client (docs/architecture.md §1, §3).
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "libs/common/status_macros.h"
#include "libs/projection/projection_db.h"
#include "rocksdb/db.h"

namespace crm::projection {

// Calls `fn(key without prefix, value)` for the rows under `prefix` in key order, from the row
// at or after `from` (a full key; empty: the first row), at most `limit` of them. Returns the
// full key of the first row not visited, empty when every row to the end of the prefix was.
// Errors: the first error of `fn` (the rows after it are not visited), RocksDB's.
inline absl::StatusOr<std::string> ScanPendingRows(
    rocksdb::DB* db, absl::string_view prefix, absl::string_view from, size_t limit,
    absl::FunctionRef<absl::Status(absl::string_view suffix, absl::string_view value)> fn) {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  const rocksdb::Slice p(prefix.data(), prefix.size());
  size_t visited = 0;
  for (it->Seek(from.empty() ? p : rocksdb::Slice(from.data(), from.size())); it->Valid() && it->key().starts_with(p);
       it->Next(), ++visited) {
    if (visited == limit) return it->key().ToString();
    CRM_RETURN_IF_ERROR(fn(absl::string_view(it->key().data() + p.size(), it->key().size() - p.size()),
                           absl::string_view(it->value().data(), it->value().size())));
  }
  CRM_RETURN_IF_ERROR(FromRocks(it->status(), absl::StrCat("scan ", prefix)));
  return std::string();
}

// Every row under `prefix`, its value parsed as `M` (a protobuf message), with its key without
// the prefix. DATA_LOSS naming `what` for a value that does not parse.
template <typename M>
absl::StatusOr<std::vector<std::pair<std::string, M>>> ReadPendingRows(rocksdb::DB* db, absl::string_view prefix,
                                                                       absl::string_view what) {
  std::vector<std::pair<std::string, M>> rows;
  CRM_RETURN_IF_ERROR(ScanPendingRows(db, prefix, "", static_cast<size_t>(-1),
                                      [&](absl::string_view suffix, absl::string_view value) -> absl::Status {
                                        M m;
                                        if (!m.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
                                          return absl::DataLossError(absl::StrCat("undecodable ", what, " row"));
                                        }
                                        rows.emplace_back(std::string(suffix), std::move(m));
                                        return absl::OkStatus();
                                      })
                          .status());
  return rows;
}

}  // namespace crm::projection

#endif  // CRM_LIBS_PROJECTION_PENDING_ROWS_H_
