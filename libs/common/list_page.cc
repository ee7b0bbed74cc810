#include "libs/common/list_page.h"

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/common/grpc_status.h"

namespace crm {

std::string Page::Token(const WalkEnd& end, absl::string_view fingerprint) const {
  if (beyond_ > 0) return PositionToken(last_taken_, fingerprint);
  // The budget ran out before the page filled: go on from the last row read.
  if (!end.reached_end) return PositionToken(end.last_position, fingerprint);
  return "";
}

int32_t Page::Total(const WalkEnd& end) const {
  if (counted_.has_value()) return static_cast<int32_t>(*counted_);
  if (count_on_ && end.reached_end) return static_cast<int32_t>(taken_ + beyond_);
  return -1;
}

std::string PositionToken(absl::string_view position, absl::string_view fingerprint) {
  std::string out;
  absl::WebSafeBase64Escape(absl::StrCat("p", fingerprint.size(), ":", fingerprint, position), &out);
  return out;
}

absl::StatusOr<std::string> ParsePositionToken(const std::string& token, absl::string_view fingerprint) {
  if (token.empty()) return std::string();
  std::string raw;
  size_t n = 0;
  const bool decoded = absl::WebSafeBase64Unescape(token, &raw);
  const size_t colon = raw.find(':');
  if (!decoded || raw.empty() || raw[0] != 'p' || colon == std::string::npos ||
      !absl::SimpleAtoi(absl::string_view(raw).substr(1, colon - 1), &n) || n > raw.size() - colon - 1) {
    return InvalidFieldError("page_token", "is not a page token");
  }
  if (absl::string_view(raw).substr(colon + 1, n) != fingerprint) {
    return InvalidFieldError("page_token", "belongs to a query with other filter, order_by or show_deleted");
  }
  return raw.substr(colon + 1 + n);
}

}  // namespace crm
