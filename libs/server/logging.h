#ifndef CRM_LIBS_SERVER_LOGGING_H_
#define CRM_LIBS_SERVER_LOGGING_H_

#include <string>

#include "absl/strings/string_view.h"

namespace crm::server {

// `s` as the inside of a JSON string: quotes, backslashes and control characters escaped.
std::string JsonEscape(absl::string_view s);

// Masks personal data before it reaches a log: mainland mobile numbers keep their first 3 and
// last 4 digits (138****5678), e-mail addresses their first character and domain
// (z***@example.com).
std::string MaskPii(absl::string_view text);

// Makes spdlog's default logger write one JSON object per line to stdout:
// {"time":"...","level":"info","logger":"crmd","msg":"..."}; messages go through MaskPii.
void InitJsonLogging(const std::string& name);

// Logs `msg` at info/warn/error as JSON with PII masked.
void LogInfo(absl::string_view msg);
void LogWarn(absl::string_view msg);
void LogError(absl::string_view msg);

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_LOGGING_H_
