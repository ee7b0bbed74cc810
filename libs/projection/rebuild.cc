#include "libs/projection/rebuild.h"

#include <filesystem>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "libs/common/grpc_status.h"
#include "libs/common/sha256.h"
#include "libs/common/status_macros.h"

namespace crm::projection {

absl::StatusOr<int64_t> Rebuild(eventlog::Log& log, const ProjectionSpec& spec, const std::string& path) {
  if (std::filesystem::exists(path)) {
    return absl::FailedPreconditionError(absl::StrCat(path, " exists; rebuild writes a fresh copy"));
  }
  // A small memtable and 4096-record batches measured fastest (crm-bench --workload rebuild,
  // 200k events: 16 MiB ~57k/s against 64 MiB ~49k/s and 256 MiB ~40k/s): skiplist inserts
  // into a large memtable miss the cache.
  CRM_ASSIGN_OR_RETURN(auto db, ProjectionDb::Open({.path = path, .wal = false, .write_buffer_size = 16 << 20}));
  int64_t n = 0;
  for (const Source& source : spec.sources) {
    if (!source.owned) {
      absl::StatusOr<int32_t> partitions = log.PartitionCount(source.topic);
      if (absl::IsNotFound(partitions.status())) continue;
      CRM_RETURN_IF_ERROR(partitions.status());
    }
    CRM_ASSIGN_OR_RETURN(int64_t applied, db->CatchUp(log, source.topic, source.apply(db.get()), 4096));
    n += applied;
  }
  CRM_RETURN_IF_ERROR(db->Flush());
  CRM_RETURN_IF_ERROR(db->SetVersion(spec.version));
  return n;
}

absl::StatusOr<int64_t> RebuildAndSwap(eventlog::Log& log, const ProjectionSpec& spec, const std::string& live_path) {
  const std::string next = live_path + ".rebuild";
  const std::string old = live_path + ".old";
  std::error_code ec;
  std::filesystem::remove_all(next, ec);
  std::filesystem::remove_all(old, ec);
  for (const Source& source : spec.sources) {
    if (source.owned) CRM_RETURN_IF_ERROR(log.CreateTopic(source.topic, source.partitions));
  }
  CRM_ASSIGN_OR_RETURN(int64_t n, Rebuild(log, spec, next));
  // Two renames: a crash between them leaves .old and the rebuilt copy; the next start
  // without live_path simply catches up from the log into a fresh copy.
  if (std::filesystem::exists(live_path)) std::filesystem::rename(live_path, old, ec);
  if (ec) return absl::InternalError(absl::StrCat("rename ", live_path, ": ", ec.message()));
  std::filesystem::rename(next, live_path, ec);
  if (ec) return absl::InternalError(absl::StrCat("rename ", next, ": ", ec.message()));
  std::filesystem::remove_all(old, ec);
  return n;
}

namespace {

std::unique_ptr<ProjectionDb> AcceptTokens(eventlog::Log& log, const ProjectionSpec& spec,
                                           std::unique_ptr<ProjectionDb> db) {
  db->AcceptTokens(&log, spec.Topics());
  return db;
}

}  // namespace

std::vector<std::string> ProjectionSpec::Topics() const {
  std::vector<std::string> topics;
  for (const Source& source : sources) topics.push_back(source.topic);
  return topics;
}

absl::StatusOr<std::unique_ptr<ProjectionDb>> OpenProjections(eventlog::Log& log, const ProjectionSpec& spec,
                                                              const std::string& path, int64_t* rebuilt) {
  *rebuilt = 0;
  for (const Source& source : spec.sources) {
    if (source.owned) CRM_RETURN_IF_ERROR(log.CreateTopic(source.topic, source.partitions));
  }
  {
    CRM_ASSIGN_OR_RETURN(auto db, ProjectionDb::Open({.path = path}));
    CRM_ASSIGN_OR_RETURN(std::vector<std::string> past, CheckpointsPastLogEnd(log, db->Checkpoints()));
    if (!past.empty()) {
      return absl::DataLossError(absl::StrCat(
          "the projections at ", path, " hold events the log no longer has (", past.front(),
          past.size() > 1 ? absl::StrCat("; ", past.size() - 1, " more partitions") : "",
          "): the log lost acknowledged writes. Restore the data folder from a backup, or accept the loss and "
          "rebuild the projections from the log as it is (crmd --accept-log-truncation)"));
    }
    if (db->stored_version() == spec.version) return AcceptTokens(log, spec, std::move(db));
    if (db->stored_version() == 0 && db->empty()) {
      CRM_RETURN_IF_ERROR(db->SetVersion(spec.version));
      return AcceptTokens(log, spec, std::move(db));
    }
  }
  CRM_ASSIGN_OR_RETURN(*rebuilt, RebuildAndSwap(log, spec, path));
  CRM_ASSIGN_OR_RETURN(auto db, ProjectionDb::Open({.path = path}));
  return AcceptTokens(log, spec, std::move(db));
}

Source FoldSource(std::string topic, bool owned, int32_t partitions, RecordFold fold) {
  return {.topic = std::move(topic), .owned = owned, .partitions = owned ? partitions : 0,
          .apply = [fold](ProjectionDb* db) -> ProjectionDb::ApplyFn {
            return [db, fold](const eventlog::Record& r, Batch& b) { return fold(*db, r, b); };
          }};
}

absl::StatusOr<std::vector<std::string>> CheckpointsPastLogEnd(
    eventlog::Log& log, const std::map<std::pair<std::string, int32_t>, int64_t>& checkpoints) {
  std::vector<std::string> out;
  std::map<std::string, std::vector<int64_t>> ends;  // by topic; empty: no such topic
  for (const auto& [where, next] : checkpoints) {
    const auto& [topic, partition] = where;
    if (next <= 0) continue;
    auto it = ends.find(topic);
    if (it == ends.end()) {
      absl::StatusOr<std::vector<int64_t>> e = log.EndOffsets(topic);
      if (!e.ok() && !absl::IsNotFound(e.status())) return e.status();
      it = ends.emplace(topic, e.ok() ? *std::move(e) : std::vector<int64_t>()).first;
    }
    const int64_t end =
        partition >= 0 && partition < static_cast<int32_t>(it->second.size()) ? it->second[partition] : 0;
    if (next > end) {
      out.push_back(absl::StrCat(topic, " partition ", partition, ": applied up to offset ", next - 1,
                                 ", the log ends at offset ", end));
    }
  }
  return out;
}

namespace {

// Calls fn(key, SHA-256 of the row) for every projection row (checkpoints, under "\0", excluded).
template <typename Fn>
absl::Status ForEachRowDigest(ProjectionDb& db, Fn fn) {
  std::unique_ptr<rocksdb::Iterator> it(db.db()->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(rocksdb::Slice("\x01", 1)); it->Valid(); it->Next()) {
    const uint32_t klen = static_cast<uint32_t>(it->key().size());
    const absl::string_view key(it->key().data(), it->key().size());
    fn(key, Sha256({absl::string_view(reinterpret_cast<const char*>(&klen), sizeof klen), key,
                    absl::string_view(it->value().data(), it->value().size())}));
  }
  return FromRocks(it->status(), "checksum");
}

// A running XOR of row digests and their count, printed as "<rows>:<hex>".
struct DigestSum {
  std::string acc = std::string(32, '\0');
  int64_t rows = 0;
  void Add(absl::string_view d) {
    for (size_t i = 0; i < acc.size(); ++i) acc[i] ^= d[i];
    ++rows;
  }
  std::string ToString() const { return absl::StrCat(rows, ":", absl::BytesToHexString(acc)); }
};

}  // namespace

absl::StatusOr<std::string> Checksum(ProjectionDb& db) {
  // XOR of SHA-256(key, value) over projection rows: order-free, so two databases with the same
  // rows agree however they were written.
  DigestSum all;
  CRM_RETURN_IF_ERROR(ForEachRowDigest(db, [&](absl::string_view, const std::string& d) { all.Add(d); }));
  return all.ToString();
}

absl::StatusOr<std::map<std::string, std::string>> PrefixChecksums(ProjectionDb& db) {
  std::map<std::string, DigestSum, std::less<>> sums;
  CRM_RETURN_IF_ERROR(ForEachRowDigest(db, [&](absl::string_view key, const std::string& d) {
    const size_t slash = key.find('/');
    const absl::string_view prefix = slash == absl::string_view::npos ? key : key.substr(0, slash + 1);
    auto it = sums.find(prefix);
    if (it == sums.end()) it = sums.emplace(std::string(prefix), DigestSum()).first;
    it->second.Add(d);
  }));
  std::map<std::string, std::string> out;
  for (const auto& [prefix, sum] : sums) out[prefix] = sum.ToString();
  return out;
}

absl::StatusOr<int64_t> LagRecords(eventlog::Log& log, ProjectionDb& db, const std::string& topic) {
  CRM_ASSIGN_OR_RETURN(std::vector<int64_t> ends, log.EndOffsets(topic));
  int64_t lag = 0;
  for (int32_t p = 0; p < static_cast<int32_t>(ends.size()); ++p) lag += ends[p] - db.NextOffset(topic, p);
  return lag;
}

namespace {

// A client's token as `db` may wait on it (see TokenGate::Check); fails closed when `db` takes
// no tokens.
absl::StatusOr<ConsistencyToken> CheckClientToken(ProjectionDb& db, const std::string& token, absl::string_view field) {
  if (token.empty()) return ConsistencyToken();
  if (db.token_gate() == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(field, ": this server does not take consistency tokens"));
  }
  return db.token_gate()->Check(token, field);
}

}  // namespace

absl::Status WaitForToken(ProjectionDb& db, const std::string& token, absl::string_view field, absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(ConsistencyToken t, CheckClientToken(db, token, field));
  return db.WaitFor(t, deadline);
}

void AfterCaughtUp(eventlog::Log& log, ProjectionDb& db, const std::vector<std::string>& topics, absl::Time deadline,
                   absl::AnyInvocable<void(absl::Status)> done) {
  ConsistencyToken token;
  for (const std::string& topic : topics) {
    auto ends = log.EndOffsets(topic);
    if (absl::IsNotFound(ends.status())) continue;  // nothing written there yet
    if (!ends.ok()) return done(ends.status());
    for (int32_t p = 0; p < static_cast<int32_t>(ends->size()); ++p) {
      if ((*ends)[p] == 0) continue;
      auto* pos = token.add_positions();
      pos->set_topic(topic);
      pos->set_partition(p);
      pos->set_offset((*ends)[p] - 1);
    }
  }
  db.NotifyWhenReached(token, deadline, std::move(done));
}

void AfterToken(ProjectionDb& db, const std::string& token, absl::string_view field, absl::Time deadline,
                absl::AnyInvocable<void(absl::Status)> done) {
  absl::StatusOr<ConsistencyToken> t = CheckClientToken(db, token, field);
  if (!t.ok()) return done(t.status());
  db.NotifyWhenReached(*t, deadline, std::move(done));
}

}  // namespace crm::projection
