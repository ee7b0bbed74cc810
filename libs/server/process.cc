#include "libs/server/process.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/strip.h"
#include "libs/common/token.h"

namespace crm::server {

absl::StatusOr<std::string> LoadProcessSigningKey(const std::string& key_file, bool create) {
  if (const char* env = std::getenv("CRM_SIGNING_KEY"); env != nullptr && *env != '\0') {
    std::string key(absl::StripAsciiWhitespace(env));
    if (key.size() < 32) return absl::InvalidArgumentError("CRM_SIGNING_KEY is shorter than 32 bytes");
    return key;
  }
  return LoadSigningKey(key_file, create);
}

void ExitWithError(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  std::exit(2);
}

}  // namespace crm::server
