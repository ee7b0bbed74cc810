#ifndef CRM_LIBS_EVENTLOG_WAL_CHECK_H_
#define CRM_LIBS_EVENTLOG_WAL_CHECK_H_

// Reading a RocksDB write-ahead log file on its own, to say where it is damaged: RocksDB's
// own refusal ("Corruption: checksum mismatch") names neither the file nor the place.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace crm::eventlog {

// Where one WAL file is damaged.
struct WalDamage {
  std::string file;      // the WAL file's path
  int64_t offset = 0;    // byte offset of the first record that fails its check
  int64_t size = 0;      // the file's size: size - offset bytes would be lost past it
  std::string reason;    // "checksum mismatch", "record length past its block", ...
};

// Checks every record of the WAL file at `path` (RocksDB's log format: 32 KiB blocks of
// records, each with a masked CRC32C over its type and payload). An incomplete last record
// (a write torn by a crash, never acknowledged) is not damage. Returns the first damaged
// record, nullopt-like (an empty `file`) when the file is whole; NOT_FOUND / UNAVAILABLE when
// it cannot be read.
absl::StatusOr<WalDamage> CheckWalFile(const std::string& path);

// CheckWalFile for every "*.log" file directly in the RocksDB folder `dir`, oldest first.
// Returns the damaged ones (empty: none).
absl::StatusOr<std::vector<WalDamage>> CheckWalFiles(const std::string& dir);

// One line naming the file, the offset and what lies past it, for errors and audit lines.
std::string DescribeWalDamage(const WalDamage& d);

}  // namespace crm::eventlog

#endif  // CRM_LIBS_EVENTLOG_WAL_CHECK_H_
