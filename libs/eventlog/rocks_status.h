#ifndef CRM_LIBS_EVENTLOG_ROCKS_STATUS_H_
#define CRM_LIBS_EVENTLOG_ROCKS_STATUS_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rocksdb/db.h"
#include "rocksdb/status.h"

namespace crm::eventlog {

// The one place RocksDB errors become absl::Status: UNAVAILABLE for I/O errors and full
// disks (retry once space or the device is back), DATA_LOSS for corruption, INTERNAL else.
// `what` says which operation failed.
absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what);

// RocksDB's own log: warnings and errors go to `sink` (the process's log), the rest is
// dropped. Not a LOG file in the data folder: a full disk breaks that file, and Debian's
// RocksDB asserts on the next line written to it. Default sink: stderr.
void SetRocksLogSink(void (*sink)(absl::string_view line));

// Writes `batch`. After a failed write (a full disk) RocksDB refuses writes until it is
// resumed, so the caller keeps `*needs_resume` (false at first) for its database and this
// asks RocksDB to resume before writing whenever the previous write failed: writes work again
// once there is space, without a restart. RESOURCE_EXHAUSTED while RocksDB is still
// recovering; else the write's status, named with `what`.
absl::Status WriteResuming(rocksdb::DB& db, const rocksdb::WriteOptions& options, rocksdb::WriteBatch* batch,
                           bool* needs_resume, absl::string_view what);

// Writes the memtables of a store opened by OpenRocks (not a follower) to table files before
// it closes, so that the next open has no WAL to replay: after a clean stop crmd serves again
// without reading its recent writes back in. A failure (a full disk) is only logged by
// RocksDB; the WAL still holds those writes and the next open replays it.
void FlushBeforeClose(rocksdb::DB* db);

// Opens the database at `path` as its owner, or, with a `follower_dir`, as a read-only
// secondary instance beside the owner (its own files in follower_dir; TryCatchUpWithPrimary
// moves it on). `what` names it in errors.
absl::StatusOr<std::unique_ptr<rocksdb::DB>> OpenRocks(rocksdb::Options options, const std::string& path,
                                                       const std::string& follower_dir, absl::string_view what);

}  // namespace crm::eventlog

#endif  // CRM_LIBS_EVENTLOG_ROCKS_STATUS_H_
