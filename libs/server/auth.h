#ifndef CRM_LIBS_SERVER_AUTH_H_
#define CRM_LIBS_SERVER_AUTH_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/server_context.h"
#include "libs/common/clock.h"
#include "libs/common/token.h"

namespace crm::server {

// Checks the `authorization: Bearer <token>` metadata of a call (docs/architecture.md §5). Thread-safe.
class Authenticator {
 public:
  // `key` is the HS256 signing key; `clock` decides expiry and must outlive this object;
  // `policy` bounds token lifetimes (crmd's --max-token-lifetime).
  Authenticator(std::string key, const Clock* clock, TokenPolicy policy = {})
      : key_(std::move(key)), clock_(clock), policy_(policy) {}

  // UNAUTHENTICATED when the header is missing, not a bearer token, or the token fails
  // VerifyToken under the policy. A token that passed is remembered, byte for byte, until it expires or the
  // memory holds kMaxRemembered tokens: a client sends the same token on every call, and its
  // HMAC and JSON cost about 3% of a durable create's CPU. Expiry is checked on every call.
  absl::StatusOr<Claims> Authenticate(const grpc::ServerContextBase& ctx) const;
  absl::StatusOr<Claims> AuthenticateHeader(absl::string_view authorization) const;

  static constexpr size_t kMaxRemembered = 4096;

 private:
  const std::string key_;
  const Clock* clock_;
  const TokenPolicy policy_;
  mutable absl::Mutex mu_;
  mutable absl::flat_hash_map<std::string, Claims> verified_ ABSL_GUARDED_BY(mu_);
};

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_AUTH_H_
