#include "libs/common/text.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "libs/common/grpc_status.h"

namespace crm {

bool IsValidUtf8(absl::string_view s, size_t* bad) {
  size_t i = 0;
  auto fail = [&] {
    if (bad != nullptr) *bad = i;
    return false;
  };
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return fail();
    }
    if (i + n >= s.size()) return fail();  // truncated
    for (int k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return fail();
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and beyond U+10FFFF are not UTF-8.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return fail();
    }
    i += n + 1;
  }
  return true;
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

std::string TextProblem(absl::string_view s, TextKind kind) {
  size_t bad = 0;
  if (!IsValidUtf8(s, &bad)) return absl::StrCat("is not valid UTF-8 (at character ", Utf8Length(s.substr(0, bad)) + 1, ")");
  size_t position = 0;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    ++position;
    if (c >= 0x20 && c < 0x7f) {
      ++i;
      continue;
    }
    // s is valid UTF-8: the lead byte gives the length.
    const size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    const bool line_break = cp == '\n' || (cp == '\r' && i + 1 < s.size() && s[i + 1] == '\n');
    if (kind == TextKind::kMultiLine && (cp == '\t' || line_break)) {
      i += n;
      continue;
    }
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
      return absl::StrFormat("contains the control character U+%04X at position %d", cp, position);
    }
    if ((cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069)) {
      return absl::StrFormat("contains the bidirectional control U+%04X at position %d", cp, position);
    }
    i += n;
  }
  return "";
}

absl::Status CheckText(absl::string_view v, absl::string_view field, size_t max, bool required, TextKind kind) {
  if (required && absl::StripAsciiWhitespace(v).empty()) return InvalidFieldError(field, "is required");
  if (std::string problem = TextProblem(v, kind); !problem.empty()) return InvalidFieldError(field, problem);
  if (Utf8Length(v) > max) return InvalidFieldError(field, absl::StrCat("is longer than ", max, " characters"));
  return absl::OkStatus();
}

}  // namespace crm
