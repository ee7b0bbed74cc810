#ifndef CRM_LIBS_COMMON_TOKEN_H_
#define CRM_LIBS_COMMON_TOKEN_H_

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace crm {

// What a bearer token says about its holder.
struct Claims {
  std::string sub;   // user id
  std::string role;  // rep, manager, admin or service
  std::string team;  // may be empty for admin and service
  absl::Time exp;    // expiry
};

// True for the four roles of DESIGN §5.
bool IsKnownRole(absl::string_view role);

// Returns a compact JWS (JWT) signed with HMAC-SHA256 under `key`. INVALID_ARGUMENT when
// the key is shorter than 32 bytes, sub is empty or the role is unknown.
absl::StatusOr<std::string> MintToken(absl::string_view key, const Claims& claims);

// Verifies signature, algorithm (only HS256), expiry against `now` and the claims' shape.
// Every failure is UNAUTHENTICATED with a message that says which check failed.
absl::StatusOr<Claims> VerifyToken(absl::string_view key, absl::string_view token, absl::Time now);

// Reads a signing key from `path` (trailing whitespace dropped); creates the file with a
// random 64-hex-character key and mode 0600 when it does not exist and `create` is true.
absl::StatusOr<std::string> LoadSigningKey(const std::string& path, bool create);

}  // namespace crm

#endif  // CRM_LIBS_COMMON_TOKEN_H_
