#include "libs/projection/index_walk.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"
#include "libs/common/status_macros.h"
#include "libs/projection/projection_db.h"

namespace crm::projection {

absl::StatusOr<WalkEnd> WalkIndexes(
    rocksdb::DB* db, const rocksdb::ReadOptions& ro, const IndexWalk& w,
    absl::FunctionRef<absl::StatusOr<bool>(absl::string_view position, absl::string_view value)> visit) {
  const bool desc = w.descending;
  std::vector<std::unique_ptr<rocksdb::Iterator>> its;
  for (const std::string& p : w.prefixes) {
    its.emplace_back(db->NewIterator(ro));
    rocksdb::Iterator& it = *its.back();
    if (!desc) {
      const std::string& from = w.after.empty() || w.after < w.lower ? w.lower : w.after;
      it.Seek(absl::StrCat(p, from));
      if (!w.after.empty() && from == w.after && it.Valid() && it.key() == absl::StrCat(p, w.after)) it.Next();
    } else if (!w.after.empty() && (w.upper.empty() || w.after < w.upper)) {
      it.SeekForPrev(absl::StrCat(p, w.after));
      if (it.Valid() && it.key() == absl::StrCat(p, w.after)) it.Prev();
    } else if (!w.upper.empty()) {
      it.SeekForPrev(absl::StrCat(p, w.upper));  // rows at the bound are skipped below
    } else {
      // Past every row of the prefix: the prefix with its last byte raised ("ab/" -> "ab0").
      std::string past = p;
      if (!past.empty()) past.back() = static_cast<char>(past.back() + 1);
      it.SeekForPrev(past);
      if (it.Valid() && it.key() == past) it.Prev();  // a row keyed exactly so is not the prefix's
    }
  }
  // The position under iterator k, or nullopt when it left its prefix or the bounds.
  auto position = [&](size_t k) -> absl::optional<absl::string_view> {
    for (rocksdb::Iterator& it = *its[k]; it.Valid() && it.key().starts_with(w.prefixes[k]);) {
      const absl::string_view pos(it.key().data() + w.prefixes[k].size(), it.key().size() - w.prefixes[k].size());
      const bool below = !w.lower.empty() && pos.substr(0, w.lower.size()) < w.lower;
      const bool above = !w.upper.empty() && pos.substr(0, w.upper.size()) >= w.upper;
      if (!below && !above) return pos;
      if (desc ? below : above) return absl::nullopt;  // past the far bound: done
      desc ? it.Prev() : it.Next();                    // before the near bound (a SeekForPrev to upper)
    }
    return absl::nullopt;
  };
  WalkEnd end;
  std::string previous;
  for (int64_t read = 0;;) {
    int best = -1;
    absl::string_view best_pos;
    for (size_t k = 0; k < its.size(); ++k) {
      auto pos = position(k);
      if (pos.has_value() && (best < 0 || (desc ? *pos > best_pos : *pos < best_pos))) {
        best = static_cast<int>(k);
        best_pos = *pos;
      }
    }
    if (best < 0) {
      end.reached_end = true;
      break;
    }
    if (read++ >= w.budget) break;
    std::string pos(best_pos);
    if (pos == previous) {  // the same record under another prefix
      desc ? its[best]->Prev() : its[best]->Next();
      continue;
    }
    previous = pos;
    end.last_position = pos;
    const rocksdb::Slice value = its[best]->value();
    CRM_ASSIGN_OR_RETURN(bool more, visit(pos, absl::string_view(value.data(), value.size())));
    desc ? its[best]->Prev() : its[best]->Next();
    if (!more) break;
  }
  for (auto& it : its) CRM_RETURN_IF_ERROR(FromRocks(it->status(), "read an index"));
  return end;
}

}  // namespace crm::projection
