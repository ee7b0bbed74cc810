#ifndef CRM_LIBS_COMMON_IDS_H_
#define CRM_LIBS_COMMON_IDS_H_

#include <string>
#include "absl/strings/string_view.h"

#include "absl/time/time.h"

namespace crm {

// Returns a new RFC 9562 UUIDv7 ("0190f1c4-...") whose first 48 bits are `now` in Unix
// milliseconds, so ids sort by creation time; the remaining 74 bits are random. Thread-safe.
std::string NewUuidV7(absl::Time now);

// True when `s` is a UUID in canonical lower-case 8-4-4-4-12 form.
bool IsCanonicalUuid(absl::string_view s);

// The Unix-millisecond timestamp encoded in a UUIDv7 (undefined for other versions).
int64_t UuidV7Millis(absl::string_view uuid);

}  // namespace crm

#endif  // CRM_LIBS_COMMON_IDS_H_
