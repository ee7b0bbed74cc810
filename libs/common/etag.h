#ifndef CRM_LIBS_COMMON_ETAG_H_
#define CRM_LIBS_COMMON_ETAG_H_

// Optimistic concurrency (docs/architecture.md §3): a request's etag is the aggregate version it expects.
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace crm {

// The expected version of the etag "0": nothing written yet. Reads of a resource that exists
// before its first write (the sales settings, the pool policy) answer with etag "0", and a
// client passing it back must get the test-and-set it asked for, not a refusal.
inline constexpr int64_t kEtagNothingWritten = -1;

// ABORTED (ErrorInfo ETAG_MISMATCH with current_etag, and `field` when given) unless
// `expected` is 0 (any version), `current`, or kEtagNothingWritten while `current` is 0;
// `what` names the aggregate in the message ("customer", "lead").
absl::Status CheckEtag(int64_t current, int64_t expected, absl::string_view what, absl::string_view field = "");

}  // namespace crm

#endif  // CRM_LIBS_COMMON_ETAG_H_
