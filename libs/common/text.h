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
// What a text field may hold besides printable characters.
enum class TextKind {
  kLine,       // names, titles, ids, tags, labels: nothing else
  kMultiLine,  // free text (notes, descriptions, comments): also line breaks (\n, \r\n) and tabs
};

// Why `s` is not text of `kind`, for an error message ("contains the control character U+0007
// at position 3"; positions in characters, from 1), or "" when it is. Never text: invalid
// UTF-8, the C0 controls U+0000..U+001F (but for what kMultiLine allows), DEL and the C1
// controls U+007F..U+009F, and the bidirectional embeddings, overrides and isolates
// U+202A..U+202E and U+2066..U+2069, which make a reader see other text than is stored.
std::string TextProblem(absl::string_view s, TextKind kind);

// INVALID_ARGUMENT naming `field` unless `v` is text of `kind` (TextProblem) of at most `max`
// characters (and not blank when `required`).
absl::Status CheckText(absl::string_view v, absl::string_view field, size_t max, bool required,
                       TextKind kind = TextKind::kLine);

}  // namespace crm

#endif  // CRM_LIBS_COMMON_TEXT_H_
