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
  // When it was issued and from when it is good; absl::InfinitePast() when the token does not
  // say (MintToken then writes no such claim).
  absl::Time iat = absl::InfinitePast();
  absl::Time nbf = absl::InfinitePast();
};

// The longest lifetime a server accepts unless configured otherwise (crmd and the service
// binaries' --max-token-lifetime), and the longest `crmctl token` mints by default.
inline constexpr absl::Duration kDefaultMaxTokenLifetime = absl::Hours(24);

// A maximum token lifetime as operators write it ("24h", "168h", "90m"): INVALID_ARGUMENT
// unless it is a duration above zero and at most 366 days (a bound, not a lifetime anyone
// should use: a leaked token is good until it expires).
absl::StatusOr<absl::Duration> ParseMaxTokenLifetime(absl::string_view text);

// What VerifyToken accepts beyond a valid signature and shape.
struct TokenPolicy {
  // Longest lifetime of a token: exp - iat, and for a token without iat, exp - now. Bounds how
  // long a leaked token is good for. Default: kDefaultMaxTokenLifetime (24 hours).
  absl::Duration max_lifetime = kDefaultMaxTokenLifetime;
  // How far the issuer's clock may run ahead of ours: an iat or nbf up to this far in the
  // future is accepted, and exp - now may exceed max_lifetime by as much. Default: 1 minute.
  absl::Duration clock_skew = absl::Minutes(1);
};

// True for the four roles of docs/architecture.md §5.
bool IsKnownRole(absl::string_view role);

// Returns a compact JWS (JWT) signed with HMAC-SHA256 under `key`, with iat and nbf when the
// claims have them. INVALID_ARGUMENT when the key is shorter than 32 bytes, sub is empty, the
// role is unknown or exp is not after iat.
absl::StatusOr<std::string> MintToken(absl::string_view key, const Claims& claims);

// Verifies signature, algorithm (only HS256) and the claims' shape (sub, role and an integer
// exp required; iat and nbf integers when present), then the times against `now` and
// `policy`: refused when expired, when the lifetime exceeds policy.max_lifetime, or when iat
// or nbf lies more than policy.clock_skew in the future. Every failure is UNAUTHENTICATED
// with a message that says which check failed.
absl::StatusOr<Claims> VerifyToken(absl::string_view key, absl::string_view token, absl::Time now,
                                   const TokenPolicy& policy = {});

// Reads a signing key from `path` (trailing whitespace dropped); creates the file with a
// random 64-hex-character key and mode 0600 when it does not exist and `create` is true.
absl::StatusOr<std::string> LoadSigningKey(const std::string& path, bool create);

}  // namespace crm

#endif  // CRM_LIBS_COMMON_TOKEN_H_
