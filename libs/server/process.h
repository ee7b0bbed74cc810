#ifndef CRM_LIBS_SERVER_PROCESS_H_
#define CRM_LIBS_SERVER_PROCESS_H_

#include <string>

#include "absl/status/statusor.h"

namespace crm::server {

// The token signing key of a server process: $CRM_SIGNING_KEY when set, else the file at
// `key_file`, created with a random key when missing and `create` is true.
absl::StatusOr<std::string> LoadProcessSigningKey(const std::string& key_file, bool create);

// Prints `message` to stderr as one line and exits with status 2 (bad configuration).
[[noreturn]] void ExitWithError(const std::string& message);

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_PROCESS_H_
