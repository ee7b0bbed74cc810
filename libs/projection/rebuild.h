#ifndef CRM_LIBS_PROJECTION_REBUILD_H_
#define CRM_LIBS_PROJECTION_REBUILD_H_

// Building a service's projections afresh from the log, opening them (rebuilding when another
// version of the projection code built them), and comparing two copies by checksum.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/eventlog/log.h"
#include "libs/projection/projection_db.h"
#include "libs/topics/topics.h"

namespace crm::projection {

// One topic a service's projections are built from.
struct Source {
  std::string topic;
  // The service's own topic (created with `partitions` when missing) or another service's
  // (skipped while it does not exist).
  bool owned = true;
  int32_t partitions = topics::kPartitions;
  // The projection function, given the database it writes.
  std::function<ProjectionDb::ApplyFn(ProjectionDb*)> apply;
};

// A source whose projection function is a plain fold of one record into `db`'s batch.
using RecordFold = absl::Status (*)(ProjectionDb& db, const eventlog::Record& record, Batch& batch);
Source FoldSource(std::string topic, bool owned, int32_t partitions, RecordFold fold);

// What a service's projections are: the version of the code that folds events into rows
// (bump it with any change to the rows: OpenProjections then rebuilds) and its sources.
struct ProjectionSpec {
  int64_t version = 0;
  std::vector<Source> sources;
  // The sources' topics, in order.
  std::vector<std::string> Topics() const;
};

// Builds the projections afresh from offset 0 of every source into `path` (which must not
// exist), WAL off, flushed at the end. Returns the number of records applied.
absl::StatusOr<int64_t> Rebuild(eventlog::Log& log, const ProjectionSpec& spec, const std::string& path);

// Rebuilds beside `live_path` and swaps the new copy in; nothing may have `live_path` open.
absl::StatusOr<int64_t> RebuildAndSwap(eventlog::Log& log, const ProjectionSpec& spec, const std::string& live_path);

// Opens the projections at `path`, creating the owned topics. When another spec.version built
// them, rebuilds beside the live copy and swaps (*rebuilt: the records applied, else 0). The
// projections take clients' tokens for the spec's topics (ProjectionDb::AcceptTokens).
// DATA_LOSS, before any rebuild, when they applied records the log no longer holds
// (CheckpointsPastLogEnd): the log lost acknowledged events that the projections would serve.
// RebuildAndSwap first (crmd --accept-log-truncation) builds them from the log as it is.
absl::StatusOr<std::unique_ptr<ProjectionDb>> OpenProjections(eventlog::Log& log, const ProjectionSpec& spec,
                                                              const std::string& path, int64_t* rebuilt);

// The checkpoints among `checkpoints` (ProjectionDb::Checkpoints) that lie past the end of
// their partition in `log`, or in a topic or partition it does not have: one line each
// naming the topic, partition and both offsets; empty when there are none. Read the
// checkpoints before the log's ends when the log is being written meanwhile, or a record
// appended between the two reads looks lost. UNAVAILABLE when the ends cannot be read.
absl::StatusOr<std::vector<std::string>> CheckpointsPastLogEnd(
    eventlog::Log& log, const std::map<std::pair<std::string, int32_t>, int64_t>& checkpoints);

// Order-independent checksum of every projection row, checkpoints excluded ("equals a fresh
// rebuild"): "<rows>:<hex>".
absl::StatusOr<std::string> Checksum(ProjectionDb& db);

// Checksum of the rows of each key prefix (the key up to and including its first '/', the
// whole key when it has none), keyed by prefix: when two databases' checksums differ, says which
// rows do. Computed as Checksum is, so the digests of all prefixes XOR to Checksum's.
absl::StatusOr<std::map<std::string, std::string>> PrefixChecksums(ProjectionDb& db);

// Records of `topic` in the log that `db` has not applied yet (the projection lag).
absl::StatusOr<int64_t> LagRecords(eventlog::Log& log, ProjectionDb& db, const std::string& topic);

// A request's min_consistency_token: blocks until `db` reached it (WaitForToken) or calls
// `done` once it has (AfterToken, see ProjectionDb::NotifyWhenReached). The token is checked
// first (TokenGate::Check: INVALID_ARGUMENT or FAILED_PRECONDITION naming `field`, at once);
// FAILED_PRECONDITION for any non-empty token when `db` takes none (ProjectionDb::AcceptTokens);
// DEADLINE_EXCEEDED at `deadline`, which the caller bounds.
absl::Status WaitForToken(ProjectionDb& db, const std::string& token, absl::string_view field, absl::Time deadline);
void AfterToken(ProjectionDb& db, const std::string& token, absl::string_view field, absl::Time deadline,
                absl::AnyInvocable<void(absl::Status)> done);

// Calls `done` once `db` has applied everything `topics` hold now (their end offsets at the
// call): a record another service wrote a moment ago, without a consistency token, is then
// in the projection. UNAVAILABLE when the end offsets cannot be read; DEADLINE_EXCEEDED at
// `deadline`. `done` runs as ProjectionDb::NotifyWhenReached says and must not block.
void AfterCaughtUp(eventlog::Log& log, ProjectionDb& db, const std::vector<std::string>& topics, absl::Time deadline,
                   absl::AnyInvocable<void(absl::Status)> done);

}  // namespace crm::projection

#endif  // CRM_LIBS_PROJECTION_REBUILD_H_
