#include "libs/common/text.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "libs/common/grpc_status.h"

namespace crm {

namespace {

// One pass over `s` (names are checked on the create path): its length in characters, and
// where and why it stops being text of `kind`; with `controls` false, only where it stops
// being UTF-8.
struct TextScan {
  enum Problem { kNone, kNotUtf8, kControl, kBidi };
  Problem problem = kNone;
  size_t chars = 0;  // characters before the problem, or in all of `s`
  uint32_t code_point = 0;
  size_t offset = 0;  // of the problem's first byte
};

TextScan Scan(absl::string_view s, TextKind kind, bool controls = true) {
  TextScan out;
  const size_t n = s.size();
  const auto at = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  for (size_t i = 0; i < n; ++out.chars) {
    const unsigned char c = at(i);
    if (c >= 0x20 && c < 0x7F) {
      ++i;
      continue;
    }
    if (c < 0x80) {
      const bool allowed = kind == TextKind::kMultiLine &&
                           (c == '\t' || c == '\n' || (c == '\r' && i + 1 < n && s[i + 1] == '\n'));
      if (!allowed && controls) return {TextScan::kControl, out.chars, c, i};
      ++i;
      continue;
    }
    int more = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      more = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      more = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      more = 3;
      cp = c & 0x07;
    } else {
      return {TextScan::kNotUtf8, out.chars, 0, i};
    }
    if (i + more >= n) return {TextScan::kNotUtf8, out.chars, 0, i};  // truncated
    for (int k = 1; k <= more; ++k) {
      if ((at(i + k) & 0xC0) != 0x80) return {TextScan::kNotUtf8, out.chars, 0, i};
      cp = (cp << 6) | (at(i + k) & 0x3F);
    }
    // Overlong forms, surrogates and beyond U+10FFFF are not UTF-8.
    if ((more == 1 && cp < 0x80) || (more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return {TextScan::kNotUtf8, out.chars, 0, i};
    }
    if (controls && cp <= 0x9F) return {TextScan::kControl, out.chars, cp, i};
    if (controls && ((cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069))) {
      return {TextScan::kBidi, out.chars, cp, i};
    }
    i += more + 1;
  }
  return out;
}

std::string Describe(const TextScan& scan) {
  const size_t position = scan.chars + 1;
  switch (scan.problem) {
    case TextScan::kNotUtf8: return absl::StrCat("is not valid UTF-8 (at character ", position, ")");
    case TextScan::kControl:
      return absl::StrFormat("contains the control character U+%04X at position %d", scan.code_point, position);
    case TextScan::kBidi:
      return absl::StrFormat("contains the bidirectional control U+%04X at position %d", scan.code_point, position);
    case TextScan::kNone: break;
  }
  return "";
}

}  // namespace

bool IsValidUtf8(absl::string_view s, size_t* bad) {
  const TextScan scan = Scan(s, TextKind::kMultiLine, /*controls=*/false);
  if (scan.problem == TextScan::kNone) return true;
  if (bad != nullptr) *bad = scan.offset;
  return false;
}

size_t Utf8Length(absl::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) >> 6) != 2;
  return n;
}

std::string FoldFullWidth(absl::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size();) {
    const auto c = static_cast<unsigned char>(in[i]);
    if (c == 0xEF && i + 2 < in.size()) {
      const auto c1 = static_cast<unsigned char>(in[i + 1]);
      const auto c2 = static_cast<unsigned char>(in[i + 2]);
      const int cp = ((c & 0x0F) << 12) | ((c1 & 0x3F) << 6) | (c2 & 0x3F);
      if (cp >= 0xFF01 && cp <= 0xFF5E) {
        out.push_back(static_cast<char>(cp - 0xFF01 + 0x21));
        i += 3;
        continue;
      }
    }
    if (c == 0xE3 && i + 2 < in.size() && static_cast<unsigned char>(in[i + 1]) == 0x80 &&
        static_cast<unsigned char>(in[i + 2]) == 0x80) {
      out.push_back(' ');
      i += 3;
      continue;
    }
    out.push_back(in[i]);
    ++i;
  }
  return out;
}

std::string TextProblem(absl::string_view s, TextKind kind) { return Describe(Scan(s, kind)); }

absl::Status CheckText(absl::string_view v, absl::string_view field, size_t max, bool required, TextKind kind) {
  if (required && absl::StripAsciiWhitespace(v).empty()) return InvalidFieldError(field, "is required");
  const TextScan scan = Scan(v, kind);
  if (scan.problem != TextScan::kNone) return InvalidFieldError(field, Describe(scan));
  if (scan.chars > max) return InvalidFieldError(field, absl::StrCat("is longer than ", max, " characters"));
  return absl::OkStatus();
}

}  // namespace crm
