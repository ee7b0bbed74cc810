#ifndef CRM_SERVICES_INTEGRATION_LEDGER_H_
#define CRM_SERVICES_INTEGRATION_LEDGER_H_

// What the relay and the inbound processor share to write a topic exactly once: a small
// RocksDB store of numbers (next offsets read, end offsets written) and the read-back of the
// records written past the stored ends, each naming its original by a crm_position header.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/eventlog/log.h"
#include "rocksdb/db.h"
#include "services/integration/public_event.h"

namespace crm::integration {

// Opens (creating) the store in `dir`.
absl::StatusOr<std::unique_ptr<rocksdb::DB>> OpenStore(const std::string& dir);
// Every row whose value is a number.
std::map<std::string, int64_t> LoadNumbers(rocksdb::DB& db);
// Writes `rows` (and `texts`) in one synced batch.
absl::Status StoreRows(rocksdb::DB& db, const std::map<std::string, int64_t>& rows,
                       const std::map<std::string, std::string>& texts = {});

// The records of `topic` past `ends` (per partition; a partition not named from 0): the
// originals they name, and the new ends.
struct ReadBack {
  std::vector<SourcePosition> originals;
  std::map<int32_t, int64_t> ends;
};
absl::StatusOr<ReadBack> ReadBackWritten(eventlog::Log& log, const std::string& topic, int32_t partitions,
                                         std::map<int32_t, int64_t> ends);

// Blocks until `next()` (the next offset of (topic, partition) the caller will handle, called
// with `mu` held) is past the last record the partition holds now; DEADLINE_EXCEEDED naming
// the partition at `deadline`. Kafka's end offsets count transaction markers, so the last
// record is read rather than taken from the end.
absl::Status WaitPastLastRecord(eventlog::Log& log, const std::string& topic, int32_t partition, absl::Mutex& mu,
                                const std::function<int64_t()>& next, absl::Time deadline);

}  // namespace crm::integration

#endif  // CRM_SERVICES_INTEGRATION_LEDGER_H_
