#include "services/integration/ledger.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/eventlog/rocks_status.h"
#include "rocksdb/write_batch.h"

namespace crm::integration {

absl::StatusOr<std::unique_ptr<rocksdb::DB>> OpenStore(const std::string& dir) {
  rocksdb::Options o;
  o.create_if_missing = true;
  return eventlog::OpenRocks(o, dir, "", "store");
}

std::map<std::string, int64_t> LoadNumbers(rocksdb::DB& db) {
  std::map<std::string, int64_t> rows;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    int64_t v = 0;
    if (absl::SimpleAtoi(it->value().ToString(), &v)) rows[it->key().ToString()] = v;
  }
  return rows;
}

absl::Status StoreRows(rocksdb::DB& db, const std::map<std::string, int64_t>& rows,
                       const std::map<std::string, std::string>& texts) {
  rocksdb::WriteBatch batch;
  for (const auto& [k, v] : rows) batch.Put(k, absl::StrCat(v));
  for (const auto& [k, v] : texts) batch.Put(k, v);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return eventlog::FromRocks(db.Write(wo, &batch), "store positions");
}

absl::StatusOr<ReadBack> ReadBackWritten(eventlog::Log& log, const std::string& topic, int32_t partitions,
                                         std::map<int32_t, int64_t> ends) {
  std::vector<eventlog::Position> from;
  for (int32_t p = 0; p < partitions; ++p) from.push_back({p, ends.contains(p) ? ends[p] : 0});
  absl::StatusOr<std::vector<eventlog::Record>> written = eventlog::ReadToEnd(log, topic, from);
  if (!written.ok()) return written.status();
  ReadBack back;
  back.ends = std::move(ends);
  for (const eventlog::Record& r : *written) {
    for (const eventlog::Header& h : r.headers) {
      if (h.key != kPositionHeader) continue;
      if (std::optional<SourcePosition> pos = ParsePosition(h.value)) back.originals.push_back(*std::move(pos));
    }
    back.ends[r.partition] = std::max(back.ends[r.partition], r.offset + 1);
  }
  return back;
}

absl::Status WaitPastLastRecord(eventlog::Log& log, const std::string& topic, int32_t partition, absl::Mutex& mu,
                                const std::function<int64_t()>& next, absl::Time deadline) {
  int64_t from = 0;
  {
    absl::MutexLock l(&mu);
    from = next();
  }
  absl::StatusOr<std::vector<eventlog::Record>> rest =
      eventlog::ReadToEnd(log, topic, {{partition, from}}, std::max(deadline - absl::Now(), absl::Milliseconds(1)));
  if (!rest.ok()) return rest.status();
  if (rest->empty()) return absl::OkStatus();
  const int64_t want = rest->back().offset + 1;
  auto reached = [&] { return next() >= want; };
  absl::MutexLock l(&mu);
  if (!mu.AwaitWithDeadline(absl::Condition(&reached), deadline)) {
    return absl::DeadlineExceededError(absl::StrCat(topic, "/", partition, " not handled up to offset ", want - 1));
  }
  return absl::OkStatus();
}

}  // namespace crm::integration
