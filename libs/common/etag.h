#ifndef CRM_LIBS_COMMON_ETAG_H_
#define CRM_LIBS_COMMON_ETAG_H_

// Optimistic concurrency (DESIGN §3): a request's etag is the aggregate version it expects.
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace crm {

// ABORTED (ErrorInfo ETAG_MISMATCH with current_etag, and `field` when given) unless
// `expected` is 0 or `current`; `what` names the aggregate in the message ("customer", "lead").
absl::Status CheckEtag(int64_t current, int64_t expected, absl::string_view what, absl::string_view field = "");

}  // namespace crm

#endif  // CRM_LIBS_COMMON_ETAG_H_
