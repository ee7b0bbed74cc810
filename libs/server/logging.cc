#include "libs/server/logging.h"

#include <regex>

#include "libs/eventlog/rocks_status.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace crm::server {
std::string JsonEscape(absl::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  return out;
}


std::string MaskPii(absl::string_view text) {
  static const std::regex kPhone(R"((^|[^0-9])(?:\+?86[ -]?)?(1[0-9]{2})[ -]?[0-9]{4}[ -]?([0-9]{4})(?![0-9]))");
  static const std::regex kEmail(R"(([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,}))");
  std::string s(text);
  s = std::regex_replace(s, kEmail, "$1***@$2");
  s = std::regex_replace(s, kPhone, "$1$2****$3");
  return s;
}

void InitJsonLogging(const std::string& name) {
  auto logger = spdlog::stdout_logger_mt(name);
  // The message is escaped and masked by the Log* helpers before it gets here.
  logger->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","logger":"%n","msg":"%v"})",
                      spdlog::pattern_time_type::utc);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  eventlog::SetRocksLogSink(&LogWarn);
}

void LogInfo(absl::string_view msg) { spdlog::info("{}", JsonEscape(MaskPii(msg))); }
void LogWarn(absl::string_view msg) { spdlog::warn("{}", JsonEscape(MaskPii(msg))); }
void LogError(absl::string_view msg) { spdlog::error("{}", JsonEscape(MaskPii(msg))); }

}  // namespace crm::server
