#ifndef CRM_LIBS_PROJECTION_PROJECTION_DB_H_
#define CRM_LIBS_PROJECTION_PROJECTION_DB_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <thread>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crm/common/v1/envelope.pb.h"
#include "libs/eventlog/log.h"
#include "libs/eventlog/rocks_status.h"
#include "libs/projection/token_gate.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "absl/container/flat_hash_map.h"
#include "absl/types/optional.h"

namespace crm::projection {

using crm::common::v1::ConsistencyToken;

// The writes of one projection commit, readable before they are committed: ProjectionDb::Get
// sees the latest Put or Delete of a key in the batch. Only the last write of each key
// reaches RocksDB, in key order: a rebuild rewrites hot rows (counters, states) many times
// per batch, and sorted inserts are cheaper for the memtable. Not thread-safe.
class Batch {
 public:
  void Put(const rocksdb::Slice& key, const rocksdb::Slice& value) {
    writes_[key.ToString()] = value.ToString();
  }
  void Delete(const rocksdb::Slice& key) { writes_[key.ToString()] = absl::nullopt; }
  // Latest write of `key` in this batch: null when there is none; a pointer to nullopt when
  // the key was deleted.
  const absl::optional<std::string>* Find(const std::string& key) const {
    auto it = writes_.find(key);
    return it == writes_.end() ? nullptr : &it->second;
  }
  // Keys written (put or deleted) in this batch that start with `prefix`. O(batch size).
  std::vector<std::string> KeysWithPrefix(absl::string_view prefix) const;

  // The batch's final writes, sorted by key.
  rocksdb::WriteBatch Materialize() const;
  size_t size() const { return writes_.size(); }
  // Calls `fn(key)` for every key the batch puts or deletes, in no order.
  template <typename F>
  void ForEachKey(F&& fn) const {
    for (const auto& [key, value] : writes_) fn(key);
  }

 private:
  absl::flat_hash_map<std::string, absl::optional<std::string>> writes_;
};

// Turns log positions into the opaque string clients pass back as min_consistency_token.
std::string EncodeToken(const ConsistencyToken& token);
// INVALID_ARGUMENT when `s` is not a token this code made. An empty string is an empty token.
absl::StatusOr<ConsistencyToken> DecodeToken(const std::string& s);

// A RocksDB database holding projections of log topics and, in the same database, the log
// position each topic-partition has been applied up to. Every change goes through Commit(),
// which writes the rows and the new checkpoint in one WriteBatch, so a crash can never leave
// rows without their checkpoint or the reverse: replaying from the checkpoint is exactly once.
// Thread-safe.
class ProjectionDb {
 public:
  struct Options {
    // Folder of the database. Required.
    std::string path;
    // Write the WAL. Rebuilds turn it off and Flush() at the end. Default: true.
    bool wal = true;
    // Memtable size; rebuilds use a larger one. Default: 64 MiB.
    size_t write_buffer_size = 64 << 20;
    // Read-only beside the service that owns the projections (crmctl lag and verify against
    // a running server): a RocksDB secondary instance with its own files in this folder, at
    // the owner's state when opened. Nothing may be written through it. Default: empty.
    std::string follower_dir;
  };

  // Memtable memory shared by every projection store of a process (crmd holds five).
  static constexpr size_t kMemtableBudget = 128 << 20;
  // Block cache (data blocks read from the stores' files) shared by them the same way.
  static constexpr size_t kBlockCacheBudget = 24 << 20;

  static absl::StatusOr<std::unique_ptr<ProjectionDb>> Open(const Options& options);
  ~ProjectionDb();

  rocksdb::DB* db() { return db_.get(); }

  // Every checkpoint: (topic, partition) -> the next offset to apply.
  std::map<std::pair<std::string, int32_t>, int64_t> Checkpoints() const;
  // The offset of the next record to apply from (topic, partition); 0 when none was.
  int64_t NextOffset(const std::string& topic, int32_t partition) const;

  // Writes `batch` plus the checkpoint "(topic, partition) applied below next_offset"
  // atomically, then wakes WaitFor() callers. Checkpoints never move backwards.
  absl::Status Commit(Batch& batch, const std::string& topic, int32_t partition,
                      int64_t next_offset) {
    return Commit(batch, topic, {{partition, next_offset}});
  }
  // The same for several partitions of `topic` at once (partition -> next offset).
  absl::Status Commit(Batch& batch, const std::string& topic,
                      const std::map<int32_t, int64_t>& next_offsets);

  // Waits until every position of `token` is applied (offset < NextOffset) or `deadline`;
  // DEADLINE_EXCEEDED then.
  absl::Status WaitFor(const ConsistencyToken& token, absl::Time deadline) const;

  // The same without blocking: calls `done` with OK once `token` is reached, or with
  // DEADLINE_EXCEEDED at `deadline`. `done` runs at once when the token is reached already,
  // else on the thread whose Commit() reached it or on the deadline timer's thread, and must
  // not block. Waiters still pending at destruction get CANCELLED.
  void NotifyWhenReached(const ConsistencyToken& token, absl::Time deadline,
                         absl::AnyInvocable<void(absl::Status)> done);

  // Makes the projections answer clients' consistency tokens: a token is checked against
  // `topics` (those the projections follow) and `log`'s end before any wait (see TokenGate).
  // Without it, every client token is refused (see projection::AfterToken). Call once, before
  // serving; `log` must outlive this database.
  void AcceptTokens(eventlog::Log* log, std::vector<std::string> topics) {
    token_gate_ = std::make_unique<TokenGate>(log, std::move(topics));
  }
  // Null until AcceptTokens().
  TokenGate* token_gate() const { return token_gate_.get(); }

  using ApplyFn = std::function<absl::Status(const eventlog::Record&, Batch&)>;
  // Applies one poll's `records` of `topic` through `apply` into one batch (rows shared across
  // partitions see each other's writes) and commits it with every partition's checkpoint.
  // A record `apply` refuses is returned as the error, naming topic/partition@offset; the
  // records before it are committed first (applied again into a clean batch, since the batch
  // holds part of the refused one's writes), so the projection halts exactly at it.
  absl::Status ApplyAndCommit(const std::string& topic, const std::vector<eventlog::Record>& records,
                              const ApplyFn& apply);
  // Reads `topic` from the checkpoints up to its end offsets and applies each record through
  // `apply`, committing every `batch_records` records. Returns the number of records applied;
  // DEADLINE_EXCEEDED when the log delivers nothing for `timeout` (however long the whole
  // catch-up takes while records keep coming).
  absl::StatusOr<int64_t> CatchUp(eventlog::Log& log, const std::string& topic,
                                  const ApplyFn& apply, size_t batch_records = 2048,
                                  absl::Duration timeout = absl::Minutes(10));

  // Reads `key` as `batch` would leave it: the batch's own writes first, then the database.
  // NOT_FOUND leaves *value empty.
  absl::Status Get(const Batch& batch, const std::string& key, std::string* value);

  // Deletes in `batch` every key starting with `prefix`, committed or written in the batch.
  absl::Status DeletePrefix(Batch& batch, const std::string& prefix);

  // The version of the projection code that built this database (0: none recorded). A
  // service compares it with its own and rebuilds when they differ.
  int64_t stored_version() const;
  absl::Status SetVersion(int64_t version);
  // True when nothing was ever applied (no checkpoint).
  bool empty() const;

  // Flushes memtables to SST files (after a WAL-less rebuild).
  absl::Status Flush();

  // Told the keys of every batch Commit() writes, once the write was tried (whether or not it
  // succeeded), under Commit()'s lock: in commit order. Committed() must not block or call
  // into this database.
  class CommitObserver {
   public:
    virtual ~CommitObserver() = default;
    virtual void Committed(const Batch& batch) = 0;
  };
  // `o` must stay valid until RemoveCommitObserver(o).
  void AddCommitObserver(CommitObserver* o);
  void RemoveCommitObserver(CommitObserver* o);

  // How the aggregate events applied since the database was opened reached their state rows
  // (projection::FoldedEvent::Fold), for tests that count the work a command costs. A fold
  // taken and checked (kernel::StoreOptions::check_cached_states) counts as taken.
  struct FoldCounters {
    int64_t rows_read = 0;  // state rows read to fold an event into
    int64_t folds = 0;      // events unpacked and folded here
    int64_t taken = 0;      // events whose fold the writer handed over with the record
  };
  FoldCounters fold_counters() const {
    return {rows_read_.load(std::memory_order_relaxed), folds_.load(std::memory_order_relaxed),
            taken_.load(std::memory_order_relaxed)};
  }
  void CountFold(bool taken) {
    if (taken) {
      taken_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    rows_read_.fetch_add(1, std::memory_order_relaxed);
    folds_.fetch_add(1, std::memory_order_relaxed);
  }

 private:
  ProjectionDb(Options o, std::unique_ptr<rocksdb::DB> db) : options_(std::move(o)), db_(std::move(db)) {}
  absl::Status LoadCheckpoints();
  bool ReachedLocked(const ConsistencyToken& token) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TimerLoop();

  struct Waiter {
    ConsistencyToken token;
    absl::Time deadline;
    absl::AnyInvocable<void(absl::Status)> done;
  };
  int64_t NextOffsetLocked(const std::string& topic, int32_t partition) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::unique_ptr<TokenGate> token_gate_;
  mutable absl::Mutex mu_;
  std::map<std::pair<std::string, int32_t>, int64_t> next_ ABSL_GUARDED_BY(mu_);
  std::list<Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  std::vector<CommitObserver*> observers_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool needs_resume_ ABSL_GUARDED_BY(mu_) = false;
  // The timer thread sleeps until timer_until_ (the earliest deadline when it last looked) or
  // until timer_wake_: a waiter with an earlier deadline, the first after an empty spell.
  absl::Time timer_until_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  bool timer_wake_ ABSL_GUARDED_BY(mu_) = false;
  std::thread timer_;  // started with the first waiter
  std::atomic<int64_t> rows_read_{0};
  std::atomic<int64_t> folds_{0};
  std::atomic<int64_t> taken_{0};
};

using eventlog::FromRocks;

}  // namespace crm::projection

#endif  // CRM_LIBS_PROJECTION_PROJECTION_DB_H_
