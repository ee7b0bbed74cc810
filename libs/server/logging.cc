#include "libs/server/logging.h"

#include <grpc/support/log.h>

#include <cstdio>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/stubs/logging.h"
#include "libs/eventlog/rocks_status.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace crm::server {
namespace {

// One code point of UTF-8 text: its value and length in bytes. A byte that does not start a
// well-formed sequence (overlong forms and surrogates included) is kInvalid, length 1.
struct CodePoint {
  char32_t c;
  size_t len;
};
constexpr char32_t kInvalid = 0xFFFFFFFF;

CodePoint Decode(absl::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return {b0, 1};
  size_t n;
  char32_t c, min;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2, c = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3, c = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4, c = b0 & 0x07, min = 0x10000;
  } else {
    return {kInvalid, 1};
  }
  if (s.size() - i < n) return {kInvalid, 1};
  for (size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return {kInvalid, 1};
    c = (c << 6) | (b & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return {kInvalid, 1};
  return {c, n};
}

// 0-9 for ASCII and full-width digits, else -1.
int DigitValue(char32_t c) {
  if (c >= '0' && c <= '9') return static_cast<int>(c - '0');
  if (c >= 0xFF10 && c <= 0xFF19) return static_cast<int>(c - 0xFF10);
  return -1;
}

// What people put between the groups of a phone number: spaces (ASCII, no-break, the
// typographic ones, ideographic), hyphens and dashes, dots (ASCII and full-width).
bool IsPhoneSeparator(char32_t c) {
  return c == ' ' || c == '-' || c == '.' || c == 0xA0 || (c >= 0x2000 && c <= 0x200B) ||
         (c >= 0x2010 && c <= 0x2015) || c == 0x2212 || c == 0x3000 || c == 0xFF0D || c == 0xFF0E;
}

// Spaces and punctuation outside ASCII (Latin-1, general punctuation, CJK symbols, full-width
// and small forms): they end a local part or a domain label, other non-ASCII letters do not.
bool IsUnicodeSpaceOrPunct(char32_t c) {
  return (c >= 0x80 && c <= 0xBF) || (c >= 0x2000 && c <= 0x206F) || (c >= 0x3000 && c <= 0x303F) ||
         (c >= 0xFE30 && c <= 0xFE6F) || (c >= 0xFF01 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20) ||
         (c >= 0xFF3B && c <= 0xFF40) || (c >= 0xFF5B && c <= 0xFF65) || c == 0xFEFF;
}

bool IsAsciiAlnum(char32_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool IsNonAsciiLetter(char32_t c) { return c >= 0x80 && c != kInvalid && !IsUnicodeSpaceOrPunct(c); }

// RFC 5322 atext and dots, without '/' (a path before an address is not part of it), plus
// Unicode letters (RFC 6531).
bool IsLocalChar(char32_t c) {
  if (IsAsciiAlnum(c) || IsNonAsciiLetter(c)) return true;
  switch (c) {
    case '.': case '_': case '%': case '+': case '-': case '\'': case '!': case '#': case '$':
    case '&': case '*': case '=': case '?': case '^': case '`': case '{': case '|': case '}': case '~':
      return true;
    default:
      return false;
  }
}

bool IsLabelChar(char32_t c) { return IsAsciiAlnum(c) || c == '-' || IsNonAsciiLetter(c); }
bool IsAtSign(char32_t c) { return c == '@' || c == 0xFF20; }
// IDNA treats the ideographic, full-width and half-width full stops as dots.
bool IsDomainDot(char32_t c) { return c == '.' || c == 0x3002 || c == 0xFF0E || c == 0xFF61; }

// The end of the domain that starts at `i` (just after an at sign): two or more labels, the
// last (the top-level domain) of two or more characters and not all digits; the longest such
// run of labels, so that "a@b.com.x" ends after "com". 0 when there is none. Reads only label
// characters and dots, so it never crosses another at sign: the whole pass stays linear.
size_t DomainEnd(absl::string_view s, size_t i) {
  size_t labels = 0, end = 0;
  while (i < s.size()) {
    size_t chars = 0;
    bool all_digits = true;
    size_t j = i;
    while (j < s.size()) {
      const CodePoint cp = Decode(s, j);
      if (!IsLabelChar(cp.c)) break;
      all_digits = all_digits && cp.c >= '0' && cp.c <= '9';
      ++chars;
      j += cp.len;
    }
    if (chars == 0) break;  // a dot that ends a sentence, not a label
    if (++labels >= 2 && chars >= 2 && !all_digits) end = j;
    if (j >= s.size()) break;
    const CodePoint dot = Decode(s, j);
    if (!IsDomainDot(dot.c)) break;
    i = j + dot.len;
  }
  return end;
}

std::string MaskEmails(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t copied = 0;     // s[0, copied) is in `out`
  size_t run_start = 0;  // where the run of local-part characters that reaches `i` began
  size_t i = 0;
  while (i < s.size()) {
    if (const auto b = static_cast<unsigned char>(s[i]); b < 0x80 && b != '@') {  // the common case
      ++i;
      if (!IsLocalChar(b)) run_start = i;
      continue;
    }
    const CodePoint cp = Decode(s, i);
    if (IsAtSign(cp.c) && run_start < i) {
      if (const size_t end = DomainEnd(s, i + cp.len); end != 0) {
        out.append(s.data() + copied, run_start - copied);
        out.append(s.data() + run_start, Decode(s, run_start).len);
        out.append("***");
        out.append(s.data() + i, end - i);
        copied = i = run_start = end;
        continue;
      }
    }
    i += cp.len;
    if (!IsLocalChar(cp.c)) run_start = i;
  }
  out.append(s.data() + copied, s.size() - copied);
  return out;
}

// Reads `count` digits at `*i`, appending their values as ASCII to `digits`.
bool ReadDigits(absl::string_view s, size_t* i, int count, std::string* digits) {
  for (int k = 0; k < count; ++k) {
    if (*i >= s.size()) return false;
    const CodePoint cp = Decode(s, *i);
    const int d = DigitValue(cp.c);
    if (d < 0) return false;
    digits->push_back(static_cast<char>('0' + d));
    *i += cp.len;
  }
  return true;
}

void SkipSeparator(absl::string_view s, size_t* i) {
  if (*i < s.size()) {
    const CodePoint cp = Decode(s, *i);
    if (IsPhoneSeparator(cp.c)) *i += cp.len;
  }
}

// A mobile number 1xx xxxx xxxx at `i` (one optional separator after the 3rd and the 7th
// digit) not followed by another digit: its end, and its 11 digits in `digits`.
std::optional<size_t> MobileAt(absl::string_view s, size_t i, std::string* digits) {
  digits->clear();
  if (!ReadDigits(s, &i, 3, digits) || (*digits)[0] != '1') return std::nullopt;
  SkipSeparator(s, &i);
  if (!ReadDigits(s, &i, 4, digits)) return std::nullopt;
  SkipSeparator(s, &i);
  if (!ReadDigits(s, &i, 4, digits)) return std::nullopt;
  if (i < s.size() && DigitValue(Decode(s, i).c) >= 0) return std::nullopt;
  return i;
}

// A mobile number at `i`, with or without a leading +86 / 86 (ASCII or full-width) and one
// separator after it. Reads at most 20 code points: the whole pass stays linear.
std::optional<size_t> PhoneAt(absl::string_view s, size_t i, std::string* digits) {
  size_t j = i;
  CodePoint cp = Decode(s, j);
  if (cp.c == '+' || cp.c == 0xFF0B) j += cp.len;
  if (j < s.size() && DigitValue(Decode(s, j).c) == 8) {
    size_t k = j + Decode(s, j).len;
    if (k < s.size() && DigitValue(Decode(s, k).c) == 6) {
      k += Decode(s, k).len;
      SkipSeparator(s, &k);
      if (auto end = MobileAt(s, k, digits)) return end;
    }
  }
  if (j != i) return std::nullopt;  // a '+' starts no number without 86
  return MobileAt(s, i, digits);
}

std::string MaskPhones(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::string digits;
  bool after_digit = false;
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    // A number starts with 1, 8 (of 86) or +, or with a full-width form (0xEF...).
    if (!after_digit && (b == '1' || b == '8' || b == '+' || b == 0xEF)) {
      if (std::optional<size_t> end = PhoneAt(s, i, &digits)) {
        absl::StrAppend(&out, digits.substr(0, 3), "****", digits.substr(7));
        i = *end;
        after_digit = true;
        continue;
      }
    }
    if (b < 0x80) {
      out.push_back(static_cast<char>(b));
      after_digit = b >= '0' && b <= '9';
      ++i;
      continue;
    }
    const CodePoint cp = Decode(s, i);
    out.append(s.data() + i, cp.len);
    after_digit = DigitValue(cp.c) >= 0;
    i += cp.len;
  }
  return out;
}

std::string& LoggerName() {
  static std::string* name = new std::string("crm");
  return *name;
}

// gRPC's log lines (gpr_log), which would otherwise go to stderr as plain text.
void GrpcLog(gpr_log_func_args* args) {
  const std::string msg = absl::StrCat("grpc: ", args->message, " (", args->file, ":", args->line, ")");
  switch (args->severity) {
    case GPR_LOG_SEVERITY_DEBUG: spdlog::debug("{}", JsonEscape(MaskPii(msg))); break;
    case GPR_LOG_SEVERITY_INFO: LogInfo(msg); break;
    case GPR_LOG_SEVERITY_ERROR: LogError(msg); break;
  }
}

// Protobuf's (a string field with invalid UTF-8 in a request, for one).
void ProtobufLog(google::protobuf::LogLevel level, const char* file, int line, const std::string& message) {
  const std::string msg = absl::StrCat("protobuf: ", message, " (", file, ":", line, ")");
  switch (level) {
    case google::protobuf::LOGLEVEL_INFO: LogInfo(msg); break;
    case google::protobuf::LOGLEVEL_WARNING: LogWarn(msg); break;
    default: LogError(msg); break;
  }
}

}  // namespace

std::string JsonEscape(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const CodePoint cp = Decode(s, i);
    switch (cp.c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case kInvalid: out += "\xEF\xBF\xBD"; break;
      default:
        if (cp.c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp.c));
          out += buf;
        } else {
          out.append(s.data() + i, cp.len);
        }
    }
    i += cp.len;
  }
  return out;
}

std::string MaskPii(absl::string_view text) {
  // Most lines hold no at sign (ASCII or full-width): one copy instead of a pass.
  const bool at = text.find('@') != absl::string_view::npos || text.find("\xEF\xBC\xA0") != absl::string_view::npos;
  return MaskPhones(at ? MaskEmails(text) : std::string(text));
}

void InitJsonLogging(const std::string& name) {
  LoggerName() = name;
  auto logger = spdlog::stdout_logger_mt(name);
  // The message is escaped and masked by the Log* helpers before it gets here.
  logger->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","logger":"%n","msg":"%v"})",
                      spdlog::pattern_time_type::utc);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  eventlog::SetRocksLogSink(&LogWarn);
  gpr_set_log_function(&GrpcLog);
  google::protobuf::SetLogHandler(&ProtobufLog);
}

std::string JsonLogLine(absl::string_view level, absl::string_view msg) {
  return absl::StrCat(R"({"time":")", absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone()),
                      R"(","level":")", JsonEscape(level), R"(","logger":")", JsonEscape(LoggerName()),
                      R"(","msg":")", JsonEscape(MaskPii(msg)), "\"}\n");
}

void LogInfo(absl::string_view msg) { spdlog::info("{}", JsonEscape(MaskPii(msg))); }
void LogWarn(absl::string_view msg) { spdlog::warn("{}", JsonEscape(MaskPii(msg))); }
void LogError(absl::string_view msg) { spdlog::error("{}", JsonEscape(MaskPii(msg))); }

}  // namespace crm::server
