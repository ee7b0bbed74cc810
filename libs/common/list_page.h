#ifndef CRM_LIBS_COMMON_LIST_PAGE_H_
#define CRM_LIBS_COMMON_LIST_PAGE_H_

// Pages of a List RPC that walks an ordered index from a position, instead of reading and
// sorting every match and counting an offset: the cost of a page does not grow with its
// number. A position is the index row's key after its prefix (sort key, then id); the page
// token holds the position of the last row the page used, bound to the query.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

namespace crm {

// Index rows one page reads at most (about 0.1 s when each row's record is read). A sparse
// filter may so return a short, even empty, page with a next_page_token.
inline constexpr int64_t kListScanBudget = 20000;

// Where a walk over an index stopped.
struct WalkEnd {
  std::string last_position;  // of the last index row read; empty when none was
  bool reached_end = false;   // every row after the start was read
};

// The page a walk fills: its first page_size matches, then (on a first page without counts)
// up to kCountBeyond more to learn the total, then the token and total_size.
class Page {
 public:
  static constexpr int64_t kCountBeyond = 1000;
  // `counted`: the total from count rows, if known; `after`: the position the page starts at.
  Page(int32_t page_size, absl::optional<int64_t> counted, absl::string_view after)
      : page_size_(page_size), counted_(counted), count_on_(!counted.has_value() && after.empty()) {}

  // Whether a match at `position` goes on the page (else it is only counted).
  bool Takes(absl::string_view position) {
    if (taken_ < page_size_) {
      ++taken_;
      last_taken_ = std::string(position);
      return true;
    }
    ++beyond_;
    return false;
  }
  // Whether the walk goes on after the last match: to fill the page, then to the first match
  // past it (so the last page has no token), then while counting.
  bool More() const { return beyond_ == 0 || (count_on_ && beyond_ <= kCountBeyond); }
  // The next page's token (empty at the end) and the total_size to answer (-1: not counted).
  std::string Token(const WalkEnd& end, absl::string_view fingerprint) const;
  int32_t Total(const WalkEnd& end) const;

 private:
  const int32_t page_size_;
  const absl::optional<int64_t> counted_;
  const bool count_on_;
  int32_t taken_ = 0;
  int64_t beyond_ = 0;  // matches past the page
  std::string last_taken_;
};

// Page tokens holding a position, bound to the query's `fingerprint`.
std::string PositionToken(absl::string_view position, absl::string_view fingerprint);
// "" for an empty token; INVALID_ARGUMENT naming page_token otherwise when it is not ours.
absl::StatusOr<std::string> ParsePositionToken(const std::string& token, absl::string_view fingerprint);

}  // namespace crm

#endif  // CRM_LIBS_COMMON_LIST_PAGE_H_
