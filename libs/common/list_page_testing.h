#ifndef CRM_LIBS_COMMON_LIST_PAGE_TESTING_H_
#define CRM_LIBS_COMMON_LIST_PAGE_TESTING_H_

// Paging through a List RPC in tests (tests only).
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace crm::testing {

// Calls `list` page after page until it gives no token, and returns the names `names` reads
// off each page. Checks that the first page's total_size is `first_total` (when >= 0) and
// that no page after the first is empty (a page that ends the list has no token).
template <typename Req, typename Resp>
std::vector<std::string> PageThrough(Req req, const std::function<absl::StatusOr<Resp>(const Req&)>& list,
                                     const std::function<std::vector<std::string>(const Resp&)>& names,
                                     int64_t first_total) {
  std::vector<std::string> out;
  for (int page = 0; page < 1000; ++page) {
    absl::StatusOr<Resp> r = list(req);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) break;
    const std::vector<std::string> got = names(*r);
    if (page == 0 && first_total >= 0) {
      EXPECT_EQ(r->total_size(), first_total) << req.ShortDebugString();
    }
    if (page > 0) {
      EXPECT_FALSE(got.empty()) << req.ShortDebugString();
    }
    out.insert(out.end(), got.begin(), got.end());
    if (r->next_page_token().empty()) break;
    req.set_page_token(r->next_page_token());
  }
  return out;
}

}  // namespace crm::testing

#endif  // CRM_LIBS_COMMON_LIST_PAGE_TESTING_H_
