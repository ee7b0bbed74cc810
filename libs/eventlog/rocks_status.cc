#include "libs/eventlog/rocks_status.h"

#include "absl/strings/str_cat.h"

namespace crm::eventlog {

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  const std::string msg = absl::StrCat(what, ": ", s.ToString());
  if (s.IsNoSpace() || s.IsIOError()) return absl::UnavailableError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  return absl::InternalError(msg);
}

absl::StatusOr<std::unique_ptr<rocksdb::DB>> OpenRocks(rocksdb::Options options, const std::string& path,
                                                       const std::string& follower_dir, absl::string_view what) {
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  if (follower_dir.empty()) {
    s = rocksdb::DB::Open(options, path, &raw);
  } else {
    options.create_if_missing = false;
    options.max_open_files = -1;  // a secondary instance keeps every file open
    s = rocksdb::DB::OpenAsSecondary(options, path, follower_dir, &raw);
  }
  if (absl::Status st = FromRocks(s, absl::StrCat(follower_dir.empty() ? "open " : "follow ", what, " at ", path));
      !st.ok()) {
    return st;
  }
  return std::unique_ptr<rocksdb::DB>(raw);
}

}  // namespace crm::eventlog
