#include "libs/projection/projection_db.h"

#include <algorithm>

#include "absl/base/internal/endian.h"
#include "rocksdb/cache.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "rocksdb/write_buffer_manager.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"

namespace crm::projection {
namespace {

// Checkpoint rows: "\x00ckpt/" topic "/" be32(partition) -> be64(next offset). The leading NUL
// keeps them apart from any projection's keys, which start with a printable prefix.
const std::string kCheckpointPrefix = std::string("\0ckpt/", 6);

std::string CheckpointKey(const std::string& topic, int32_t partition) {
  std::string k = absl::StrCat(kCheckpointPrefix, topic, "/");
  char buf[4];
  absl::big_endian::Store32(buf, static_cast<uint32_t>(partition));
  k.append(buf, 4);
  return k;
}

// The version of the projection code that built the database (see stored_version()).
const std::string kVersionKey = std::string("\0meta/version", 13);

}  // namespace


std::string EncodeToken(const ConsistencyToken& token) {
  std::string out;
  absl::WebSafeBase64Escape(token.SerializeAsString(), &out);
  return out;
}

absl::StatusOr<ConsistencyToken> DecodeToken(const std::string& s) {
  ConsistencyToken t;
  if (s.empty()) return t;
  std::string raw;
  if (!absl::WebSafeBase64Unescape(s, &raw) || !t.ParseFromString(raw)) {
    return absl::InvalidArgumentError("not a consistency token");
  }
  for (const auto& p : t.positions()) {
    if (p.topic().empty() || p.partition() < 0 || p.offset() < 0) {
      return absl::InvalidArgumentError("not a consistency token");
    }
  }
  return t;
}

absl::StatusOr<std::unique_ptr<ProjectionDb>> ProjectionDb::Open(const Options& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("projection path is empty");
  rocksdb::Options ro;
  ro.create_if_missing = true;
  ro.IncreaseParallelism(2);
  ro.compression = rocksdb::kLZ4Compression;
  ro.write_buffer_size = options.write_buffer_size;
  // One memtable budget for every projection store of the process. A catch-up fills one
  // store's memtable after another, and each kept its 64 MiB until a flush (crmd's first
  // start at 1M customers peaked at 329 MiB); past the budget RocksDB flushes the largest.
  static const auto* const kMemtables = new std::shared_ptr<rocksdb::WriteBufferManager>(
      std::make_shared<rocksdb::WriteBufferManager>(kMemtableBudget));
  ro.write_buffer_manager = *kMemtables;
  // No fallocate: RocksDB reserves 1.1 × the memtable size ahead for every WAL and table file
  // (measured: 75 MiB on disk for a 1.5-2.8 MiB WAL, per store). On a nearly full disk those
  // reservations took the space the other stores needed, and after space returned the retried
  // flushes reserved it again and failed (the disk-full test hung at shutdown under load).
  // Projection writes are not synced, so the reservation buys them nothing. The log keeps it:
  // its WAL is fsynced on every group commit.
  ro.allow_fallocate = false;
  // Applies look up keys that mostly do not exist yet (a new customer's state, a free phone):
  // bloom filters in the SSTs and the memtable answer those misses without a search.
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.whole_key_filtering = true;
  // One block cache for every projection store too: each store's own default of 8 MiB filled
  // during a catch-up, and crmd's first start at 1M customers peaked at 300.2 MiB (two runs)
  // against 288-290 MiB with one shared 24 MiB cache, which also started no slower.
  static const auto* const kBlocks = new std::shared_ptr<rocksdb::Cache>(rocksdb::NewLRUCache(kBlockCacheBudget));
  table.block_cache = *kBlocks;
  ro.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  ro.memtable_whole_key_filtering = true;
  ro.memtable_prefix_bloom_size_ratio = 0.05;
  // Rows are keyed "<table tag>/..." (a/ state, h/ history, o/ owner, ...), and within a tag
  // mostly by time-ordered ids, so one apply's rows land next to the previous apply's rows of
  // the same tag. The memtable keeps the last insert position per two-byte tag and starts the
  // skiplist search there (memtable inserts were about 10% of a durable create's CPU; with the
  // hint crm-bench create at 64 clients ran 1-18% faster in four alternating pairs).
  ro.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(2));
  CRM_ASSIGN_OR_RETURN(std::unique_ptr<rocksdb::DB> rocks, eventlog::OpenRocks(ro, options.path, options.follower_dir,
                                                                             "projections"));
  std::unique_ptr<ProjectionDb> db(new ProjectionDb(options, std::move(rocks)));
  CRM_RETURN_IF_ERROR(db->LoadCheckpoints());
  return db;
}

ProjectionDb::~ProjectionDb() {
  std::list<Waiter> left;
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    left.swap(waiters_);
  }
  if (timer_.joinable()) timer_.join();
  for (Waiter& w : left) w.done(absl::CancelledError("projections are closing"));
  if (options_.follower_dir.empty()) eventlog::FlushBeforeClose(db_.get());
}

bool ProjectionDb::ReachedLocked(const ConsistencyToken& token) const {
  for (const auto& p : token.positions()) {
    auto it = next_.find({p.topic(), p.partition()});
    if (it == next_.end() || it->second <= p.offset()) return false;
  }
  return true;
}

void ProjectionDb::NotifyWhenReached(const ConsistencyToken& token, absl::Time deadline,
                                     absl::AnyInvocable<void(absl::Status)> done) {
  bool reached;
  {
    absl::MutexLock l(&mu_);
    reached = ReachedLocked(token);
    if (!reached && absl::Now() < deadline && !stopping_) {
      waiters_.push_back({token, deadline, std::move(done)});
      if (!timer_.joinable()) timer_ = std::thread([this] { TimerLoop(); });
      // The timer sleeps until the earliest deadline it saw; an earlier one must wake it.
      if (deadline < timer_until_) timer_wake_ = true;
      return;
    }
  }
  done(reached ? absl::OkStatus()
               : absl::DeadlineExceededError("projections did not reach min_consistency_token in time"));
}

void ProjectionDb::TimerLoop() {
  for (;;) {
    std::list<Waiter> expired;
    {
      absl::MutexLock l(&mu_);
      if (stopping_) return;
      absl::Time next = absl::InfiniteFuture();
      for (const Waiter& w : waiters_) next = std::min(next, w.deadline);
      timer_until_ = next;
      timer_wake_ = false;
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || timer_wake_; };
      mu_.AwaitWithDeadline(absl::Condition(&woken), next);
      if (stopping_) return;
      const absl::Time now = absl::Now();
      for (auto it = waiters_.begin(); it != waiters_.end();) {
        if (it->deadline <= now) {
          expired.splice(expired.end(), waiters_, it++);
        } else {
          ++it;
        }
      }
    }
    for (Waiter& w : expired) {
      w.done(absl::DeadlineExceededError("projections did not reach min_consistency_token in time"));
    }
  }
}

absl::Status ProjectionDb::LoadCheckpoints() {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  absl::MutexLock l(&mu_);
  for (it->Seek(kCheckpointPrefix); it->Valid() && it->key().starts_with(kCheckpointPrefix);
       it->Next()) {
    const std::string k = it->key().ToString();
    if (k.size() < kCheckpointPrefix.size() + 5 || it->value().size() != 8) {
      return absl::DataLossError("malformed checkpoint row");
    }
    const std::string topic = k.substr(kCheckpointPrefix.size(), k.size() - kCheckpointPrefix.size() - 5);
    const int32_t partition = static_cast<int32_t>(absl::big_endian::Load32(k.data() + k.size() - 4));
    next_[{topic, partition}] = static_cast<int64_t>(absl::big_endian::Load64(it->value().data()));
  }
  return FromRocks(it->status(), "load checkpoints");
}

std::map<std::pair<std::string, int32_t>, int64_t> ProjectionDb::Checkpoints() const {
  absl::MutexLock l(&mu_);
  return {next_.begin(), next_.end()};
}

int64_t ProjectionDb::NextOffset(const std::string& topic, int32_t partition) const {
  absl::MutexLock l(&mu_);
  return NextOffsetLocked(topic, partition);
}

int64_t ProjectionDb::NextOffsetLocked(const std::string& topic, int32_t partition) const {
  auto it = next_.find({topic, partition});
  return it == next_.end() ? 0 : it->second;
}

absl::Status ProjectionDb::Commit(Batch& batch, const std::string& topic,
                                  const std::map<int32_t, int64_t>& next_offsets) {
  std::list<Waiter> reached;
  {
    absl::MutexLock l(&mu_);
    rocksdb::WriteOptions wo;
    wo.disableWAL = !options_.wal;
    // The log is the durable copy; a crash loses at most rows that replay restores.
    wo.sync = false;
    rocksdb::WriteBatch wb = batch.Materialize();
    for (const auto& [partition, next] : next_offsets) {
      if (next <= NextOffsetLocked(topic, partition)) continue;
      char buf[8];
      absl::big_endian::Store64(buf, static_cast<uint64_t>(next));
      wb.Put(CheckpointKey(topic, partition), rocksdb::Slice(buf, 8));
    }
    const absl::Status written = eventlog::WriteResuming(*db_, wo, &wb, &needs_resume_, "commit projection");
    for (CommitObserver* o : observers_) o->Committed(batch);
    CRM_RETURN_IF_ERROR(written);
    for (const auto& [partition, next] : next_offsets) {
      int64_t& cur = next_[{topic, partition}];
      cur = std::max(cur, next);
    }
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (ReachedLocked(it->token)) {
        reached.splice(reached.end(), waiters_, it++);
      } else {
        ++it;
      }
    }
  }
  for (Waiter& w : reached) w.done(absl::OkStatus());
  return absl::OkStatus();
}

void ProjectionDb::AddCommitObserver(CommitObserver* o) {
  absl::MutexLock l(&mu_);
  observers_.push_back(o);
}

void ProjectionDb::RemoveCommitObserver(CommitObserver* o) {
  absl::MutexLock l(&mu_);
  observers_.erase(std::remove(observers_.begin(), observers_.end(), o), observers_.end());
}

absl::Status ProjectionDb::WaitFor(const ConsistencyToken& token, absl::Time deadline) const {
  absl::MutexLock l(&mu_);
  auto reached = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return ReachedLocked(token); };
  if (!mu_.AwaitWithDeadline(absl::Condition(&reached), deadline)) {
    return absl::DeadlineExceededError("projections did not reach min_consistency_token in time");
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ProjectionDb::CatchUp(eventlog::Log& log, const std::string& topic,
                                              const ApplyFn& apply, size_t batch_records,
                                              absl::Duration timeout) {
  CRM_ASSIGN_OR_RETURN(std::vector<int64_t> ends, log.EndOffsets(topic));
  std::vector<eventlog::Position> from;
  for (int32_t p = 0; p < static_cast<int32_t>(ends.size()); ++p) {
    const int64_t next = NextOffset(topic, p);
    if (next < ends[p]) from.push_back({p, next});
  }
  if (from.empty()) return 0;
  CRM_ASSIGN_OR_RETURN(auto sub, log.Subscribe(topic, from));
  std::map<int32_t, int64_t> remaining_end;
  for (const auto& p : from) remaining_end[p.partition] = ends[p.partition];
  int64_t applied = 0;
  // A deadline on silence, not on the whole catch-up: a log of millions of events takes as
  // long as it takes, a log that delivers nothing is unreachable.
  absl::Time deadline = absl::Now() + timeout;
  while (!remaining_end.empty()) {
    CRM_ASSIGN_OR_RETURN(std::vector<eventlog::Record> recs,
                         sub->Poll(batch_records, std::min(absl::Milliseconds(200), timeout)));
    if (recs.empty() && absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("catching up with ", topic, ": the log delivered nothing for ",
                                                      absl::FormatDuration(timeout), " after ", applied, " records"));
    }
    CRM_RETURN_IF_ERROR(ApplyAndCommit(topic, recs, apply));
    applied += static_cast<int64_t>(recs.size());
    if (!recs.empty()) deadline = absl::Now() + timeout;
    // Done with a partition once the reader passed its end (Kafka transaction markers count).
    for (auto it = remaining_end.begin(); it != remaining_end.end();) {
      it = sub->Position(it->first) >= it->second ? remaining_end.erase(it) : std::next(it);
    }
  }
  return applied;
}

absl::Status ProjectionDb::ApplyAndCommit(const std::string& topic, const std::vector<eventlog::Record>& records,
                                          const ApplyFn& apply) {
  if (records.empty()) return absl::OkStatus();
  Batch batch;
  std::map<int32_t, int64_t> next;
  absl::Status refused;
  size_t good = 0;
  for (; good < records.size(); ++good) {
    const eventlog::Record& r = records[good];
    refused = apply(r, batch);
    if (!refused.ok()) {
      refused = absl::Status(refused.code(),
                             absl::StrCat(topic, "/", r.partition, "@", r.offset, ": ", refused.message()));
      break;
    }
    next[r.partition] = r.offset + 1;
  }
  if (!refused.ok() && good > 0) {
    batch = Batch();
    for (size_t i = 0; i < good; ++i) {
      if (!apply(records[i], batch).ok()) return refused;  // not deterministic after all: commit nothing
    }
  }
  if (good > 0) CRM_RETURN_IF_ERROR(Commit(batch, topic, next));
  return refused;
}

std::vector<std::string> Batch::KeysWithPrefix(absl::string_view prefix) const {
  std::vector<std::string> out;
  for (const auto& [key, value] : writes_) {
    if (absl::StartsWith(key, prefix)) out.push_back(key);
  }
  return out;
}

absl::Status ProjectionDb::DeletePrefix(Batch& batch, const std::string& prefix) {
  for (const auto& key : batch.KeysWithPrefix(prefix)) batch.Delete(key);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    batch.Delete(it->key());
  }
  return FromRocks(it->status(), "scan for prefix deletion");
}

rocksdb::WriteBatch Batch::Materialize() const {
  std::vector<const std::pair<const std::string, absl::optional<std::string>>*> sorted;
  sorted.reserve(writes_.size());
  for (const auto& kv : writes_) sorted.push_back(&kv);
  std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
  rocksdb::WriteBatch wb;
  for (const auto* kv : sorted) {
    if (kv->second.has_value()) {
      wb.Put(kv->first, *kv->second);
    } else {
      wb.Delete(kv->first);
    }
  }
  return wb;
}

absl::Status ProjectionDb::Get(const Batch& batch, const std::string& key, std::string* value) {
  value->clear();
  if (const absl::optional<std::string>* pending = batch.Find(key)) {
    if (!pending->has_value()) return absl::NotFoundError("not found");
    *value = **pending;
    return absl::OkStatus();
  }
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), key, value);
  if (s.IsNotFound()) return absl::NotFoundError("not found");
  return FromRocks(s, "read projection");
}

int64_t ProjectionDb::stored_version() const {
  std::string v;
  int64_t out = 0;
  if (db_->Get(rocksdb::ReadOptions(), kVersionKey, &v).ok()) out = std::stoll(v);
  return out;
}

absl::Status ProjectionDb::SetVersion(int64_t version) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks(db_->Put(wo, kVersionKey, std::to_string(version)), "write projection version");
}

bool ProjectionDb::empty() const {
  absl::MutexLock l(&mu_);
  return next_.empty();
}

absl::Status ProjectionDb::Flush() {
  return FromRocks(db_->Flush(rocksdb::FlushOptions()), "flush projections");
}

}  // namespace crm::projection
