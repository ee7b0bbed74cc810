#ifndef CRM_LIBS_COMMON_TEXT_H_
#define CRM_LIBS_COMMON_TEXT_H_

// Text as Chinese users type it: UTF-8 checks, lengths in characters, full-width folding.
#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace crm {

// Whether `s` is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF);
// *bad (when not null) gets the offset of the first bad byte.
bool IsValidUtf8(absl::string_view s, size_t* bad = nullptr);
// Characters, not bytes (for length limits on Chinese text). `s` must be valid UTF-8.
size_t Utf8Length(absl::string_view s);
// Folds full-width ASCII (U+FF01..U+FF5E) and the ideographic space to ASCII.
std::string FoldFullWidth(absl::string_view in);
// INVALID_ARGUMENT naming `field` unless `v` is valid UTF-8 of at most `max` characters (and
// not blank when `required`).
absl::Status CheckText(absl::string_view v, absl::string_view field, size_t max, bool required);

}  // namespace crm

#endif  // CRM_LIBS_COMMON_TEXT_H_
