#ifndef CRM_LIBS_EVENTLOG_ROCKS_STATUS_H_
#define CRM_LIBS_EVENTLOG_ROCKS_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "rocksdb/status.h"

namespace crm::eventlog {

// The one place RocksDB errors become absl::Status: UNAVAILABLE for I/O errors and full
// disks (retry once space or the device is back), DATA_LOSS for corruption, INTERNAL else.
// `what` says which operation failed.
absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what);

}  // namespace crm::eventlog

#endif  // CRM_LIBS_EVENTLOG_ROCKS_STATUS_H_
