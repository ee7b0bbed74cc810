#ifndef CRM_LIBS_EVENTLOG_EMBEDDED_LOG_H_
#define CRM_LIBS_EVENTLOG_EMBEDDED_LOG_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/eventlog/log.h"

namespace crm::eventlog {

struct EmbeddedLogOptions {
  // Folder of the RocksDB database that holds the log. Required.
  std::string path;
  // fsync the WAL before an append is acknowledged. Only tests of non-durability turn it off.
  // Default: true.
  bool sync = true;
  // Upper bound of one group commit (appends that share one WriteBatch and one fsync).
  // Default: 4 MiB.
  size_t max_group_bytes = 4 << 20;
  // Most appends waiting for the committer, over all writers: one more is refused at once with
  // RESOURCE_EXHAUSTED (retryable; nothing written), so a burst the disk cannot keep up with
  // does not grow memory without bound. Default: 16384, 32 times a service's in-flight
  // request bound (RuntimeOptions::max_inflight, libs/server/runtime.h).
  size_t max_queued_appends = 16384;
  // How long closing a writer (destroying it) waits for its taken appends to be written and
  // answered; those still waiting then are answered UNAVAILABLE, so every callback runs
  // exactly once before the writer is gone. Default: 10 s.
  absl::Duration close_timeout = absl::Seconds(10);
  // Read-only beside the process that owns the log (crmctl tail, lag and verify against a
  // running crmd): a RocksDB secondary instance whose own files go in this folder, which
  // catches up with the owner every `follow_interval`. Writers and new topics are refused.
  // Default: empty (the log's owner).
  std::string follower_dir;
  absl::Duration follow_interval = absl::Milliseconds(100);
  // Open past a damaged write-ahead log by dropping every write from its first damaged record
  // on (RocksDB's point-in-time recovery), acknowledged ones included. Only for an operator who
  // accepted that loss (crmd --accept-log-truncation); `on_truncation` then gets one line
  // naming the file, the offset and what was dropped, for the audit trail. Without it the log
  // refuses to open (DATA_LOSS naming the file and offset). An incomplete last record, a
  // write torn by a crash and never acknowledged, is dropped either way.
  // Default: false.
  bool accept_truncation = false;
  std::function<void(const std::string& line)> on_truncation;
};

// The embedded backend (docs/architecture.md §2): an append-only log in RocksDB with Kafka's topic /
// partition / offset model. Appends queue to one committer thread that writes everything
// queued as one WriteBatch with one fsync (group commit), then acknowledges in order.
// A second process opening the same path fails (RocksDB's LOCK file), unless it opens it as a
// read-only follower (follower_dir). DATA_LOSS when the log's files are damaged (see
// accept_truncation), UNAVAILABLE when they cannot be read.
absl::StatusOr<std::unique_ptr<Log>> OpenEmbeddedLog(const EmbeddedLogOptions& options);

}  // namespace crm::eventlog

#endif  // CRM_LIBS_EVENTLOG_EMBEDDED_LOG_H_
