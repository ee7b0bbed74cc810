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

// After a failed write (a full disk) RocksDB refuses writes until it is resumed. The caller
// keeps `*needs_resume` (false at first) for its database; this asks RocksDB to resume when
// the previous write failed, so writes work again once there is space, without a restart.
// OK when writes may go ahead (*needs_resume is then false); RESOURCE_EXHAUSTED while RocksDB
// is still recovering, else RocksDB's error named with `what`: nothing was written.
absl::Status ResumeIfNeeded(rocksdb::DB& db, bool* needs_resume, absl::string_view what);

// ResumeIfNeeded, then writes `batch`. A refusal before the write keeps its code (nothing was
// written). A failed write is UNAVAILABLE, whatever RocksDB's reason (the message keeps it,
// e.g. the full disk): the WAL may hold all of the batch, and RocksDB replays it after a
// crash, so whether it was written is unknown until it is read back.
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
