#include "libs/projection/day_numbers.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace crm::projection {
namespace {

std::string Row(absl::string_view day) { return absl::StrCat("n/", day); }

}  // namespace

absl::StatusOr<std::string> DayNumbers::Next(absl::Time now) {
  const std::string day = absl::FormatTime("%Y%m%d", now, zone_);
  absl::MutexLock l(&mu_);
  auto it = last_.find(day);
  if (it == last_.end()) {
    std::string cur;
    int64_t last = 0;
    rocksdb::Status s = db_->db()->Get(rocksdb::ReadOptions(), Row(day), &cur);
    if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "read the day's number sequence");
    if (s.ok()) absl::SimpleAtoi(cur, &last);
    it = last_.emplace(day, last).first;
  }
  return absl::StrFormat("%s%s%04d", prefix_, day, ++it->second);
}

void DayNumbers::Record(ProjectionDb& db, Batch& b, absl::string_view prefix, absl::string_view number) {
  const size_t head = prefix.size() + 8;
  int64_t seq = 0, last = 0;
  if (number.size() <= head || !absl::StartsWith(number, prefix) || !absl::SimpleAtoi(number.substr(head), &seq)) {
    return;
  }
  const std::string key = Row(number.substr(prefix.size(), 8));
  std::string cur;
  if (db.Get(b, key, &cur).ok()) absl::SimpleAtoi(cur, &last);
  if (seq > last) b.Put(key, std::to_string(seq));
}

}  // namespace crm::projection
