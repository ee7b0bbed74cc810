#include "libs/common/etag.h"

#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "libs/common/grpc_status.h"

namespace crm {

absl::Status CheckEtag(int64_t current, int64_t expected, absl::string_view what, absl::string_view field) {
  if (expected == 0 || expected == current) return absl::OkStatus();
  if (expected == kEtagNothingWritten) {
    if (current == 0) return absl::OkStatus();
    expected = 0;  // as the client spelled it, for the message
  }
  std::map<std::string, std::string> meta{{"current_etag", std::to_string(current)}};
  if (!field.empty()) meta["field"] = std::string(field);
  return WithErrorInfo(absl::AbortedError(absl::StrCat("etag mismatch: ", what, " is at version ", current,
                                                       ", request has ", expected)),
                       "ETAG_MISMATCH", meta);
}

}  // namespace crm
