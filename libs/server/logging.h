#ifndef CRM_LIBS_SERVER_LOGGING_H_
#define CRM_LIBS_SERVER_LOGGING_H_

#include <string>

#include "absl/strings/string_view.h"

namespace crm::server {

// `s` as the inside of a JSON string: quotes, backslashes and control characters escaped, and
// every byte that is not part of well-formed UTF-8 replaced by U+FFFD, so that a log line
// stays valid JSON whatever a client sent.
std::string JsonEscape(absl::string_view s);

// Masks personal data before it reaches a log, in time linear in the length of `text` and
// constant stack (no regular expressions: a 1 MB line costs a few milliseconds).
// - Mainland mobile numbers keep their first 3 and last 4 digits and lose any +86/86 prefix:
//   13812345678, +86 138 1234 5678, 138-1234-5678, 138.1234.5678 and their full-width forms
//   (１３８１２３４５６７８, with full-width or ideographic separators) all become 138****5678.
//   Digits run into the number on either side (a longer number) are not a phone number.
// - E-mail addresses keep the first character of the local part and the domain:
//   zhang.san@example.com becomes z***@example.com. Local parts and domains may be Unicode
//   (用户@例子.中国 becomes 用***@例子.中国) or punycode (xn--…); a full-width ＠ and the
//   ideographic full stop count as @ and dot.
std::string MaskPii(absl::string_view text);

// Makes spdlog's default logger write one JSON object per line to stdout:
// {"time":"...","level":"info","logger":"crmd","msg":"..."}; messages go through MaskPii.
// gRPC's and protobuf's own log output (a malformed request, for one) and RocksDB's errors
// are routed into it too, so that every line a server prints is JSON. Call once, early in
// main.
void InitJsonLogging(const std::string& name);

// One log line in InitJsonLogging's form, ending in a newline, with `msg` masked and escaped:
// for the one line a process writes when it cannot start.
std::string JsonLogLine(absl::string_view level, absl::string_view msg);

// Logs `msg` at info/warn/error as JSON with PII masked.
void LogInfo(absl::string_view msg);
void LogWarn(absl::string_view msg);
void LogError(absl::string_view msg);

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_LOGGING_H_
