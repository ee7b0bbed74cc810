#include "libs/projection/rows.h"

#include "absl/base/internal/endian.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "libs/eventlog/envelope.h"
#include "libs/projection/aggregate_writer.h"
#include "libs/projection/history.h"

namespace crm::projection {

std::string DeterministicBytes(const google::protobuf::Message& m) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    m.SerializeToCodedStream(&coded);
  }
  return out;
}

std::string TimeKey(absl::Time t) {
  char buf[8];
  absl::big_endian::Store64(buf, static_cast<uint64_t>(absl::ToUnixNanos(t)) ^ (uint64_t{1} << 63));
  return std::string(buf, 8);
}

absl::Time TimeFromKey(absl::string_view k) {
  return absl::FromUnixNanos(static_cast<int64_t>(absl::big_endian::Load64(k.data()) ^ (uint64_t{1} << 63)));
}

std::string HistoryPrefix(absl::string_view id) { return absl::StrCat("h/", id, "/"); }
std::string History(absl::string_view id, int64_t v) {
  char buf[8];
  absl::big_endian::Store64(buf, static_cast<uint64_t>(v));
  return absl::StrCat(HistoryPrefix(id), absl::string_view(buf, 8));
}
std::string RequestPrefix(absl::string_view r) { return absl::StrCat("r/", r, "/"); }
std::string Request(absl::string_view r, absl::string_view id) { return absl::StrCat(RequestPrefix(r), id); }

absl::StatusOr<std::vector<std::string>> ReadIds(rocksdb::DB* db, const std::string& prefix,
                                                 const rocksdb::ReadOptions& ro) {
  std::vector<std::string> ids;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    // The id is the rest of the key; a longer value sharing the prefix has more after it.
    absl::string_view rest(it->key().data() + prefix.size(), it->key().size() - prefix.size());
    if (rest.size() == 36) ids.emplace_back(rest);
  }
  if (!it->status().ok()) return FromRocks(it->status(), "read index");
  return ids;
}

absl::StatusOr<int64_t> FoldHistory(rocksdb::DB* db, absl::string_view id, absl::Time until, int64_t max_version,
                                    absl::FunctionRef<absl::Status(const common::v1::EventEnvelope&)> fold) {
  int64_t n = 0;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  const std::string prefix = HistoryPrefix(id);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto env = eventlog::DecodeEnvelope(it->value().ToString());
    if (!env.ok()) return env.status();
    if (max_version > 0 && env->aggregate_version() > max_version) break;
    if (RecordedAt(*env) > until) break;
    if (absl::Status s = fold(*env); !s.ok()) return s;
    ++n;
  }
  if (!it->status().ok()) return FromRocks(it->status(), "read history");
  return n;
}

}  // namespace crm::projection

namespace crm::projection {

absl::StatusOr<bool> HasRequestRow(rocksdb::DB* db, const std::string& request_id, const std::string& id) {
  std::string unused;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), Request(request_id, id), &unused);
  if (s.ok()) return true;
  if (!s.IsNotFound()) return FromRocks(s, "read request ids");
  return false;
}

absl::StatusOr<std::vector<std::string>> RequestHolders(rocksdb::DB* db, const std::string& request_id,
                                                        size_t limit) {
  const std::string prefix = RequestPrefix(request_id);
  // The prefix ends in '/': every key under it sorts below the prefix with '0' ('/' + 1) last,
  // so the seek stops at the prefix's end instead of stepping past it (one seek per command).
  std::string end = prefix;
  end.back() = '0';
  const rocksdb::Slice upper(end);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper;
  std::vector<std::string> out;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix) && out.size() < limit; it->Next()) {
    out.emplace_back(it->key().data() + prefix.size(), it->key().size() - prefix.size());
  }
  if (!it->status().ok()) return FromRocks(it->status(), "read request ids");
  return out;
}

}  // namespace crm::projection


namespace crm::projection {

absl::StatusOr<std::vector<common::v1::EventEnvelope>> HistoryPage(rocksdb::DB* db, const std::string& id,
                                                                   int64_t after, int32_t limit) {
  std::vector<common::v1::EventEnvelope> out;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  const std::string prefix = HistoryPrefix(id);
  for (it->Seek(History(id, after + 1));
       it->Valid() && it->key().starts_with(prefix) && static_cast<int32_t>(out.size()) < limit; it->Next()) {
    auto env = eventlog::DecodeEnvelope(it->value().ToString());
    if (!env.ok()) return env.status();
    out.push_back(*std::move(env));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "read history");
  return out;
}

absl::Status ScanTimed(rocksdb::DB* db, const std::string& prefix, absl::Time from, absl::Time to,
                       std::vector<std::pair<std::string, std::string>>* out, const rocksdb::ReadOptions& ro) {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
  const std::string end = to == absl::InfiniteFuture() ? "" : absl::StrCat(prefix, TimeKey(to));
  for (it->Seek(from == absl::InfinitePast() ? prefix : absl::StrCat(prefix, TimeKey(from)));
       it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (!end.empty() && it->key().compare(end) >= 0) break;
    const absl::string_view k(it->key().data(), it->key().size());
    if (k.size() <= prefix.size() + 8) continue;
    out->push_back({std::string(k.substr(prefix.size(), 8)), std::string(k.substr(prefix.size() + 8))});
  }
  return FromRocks(it->status(), absl::StrCat("scan ", prefix));
}

}  // namespace crm::projection
