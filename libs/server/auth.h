#ifndef CRM_LIBS_SERVER_AUTH_H_
#define CRM_LIBS_SERVER_AUTH_H_

#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/server_context.h"
#include "libs/common/clock.h"
#include "libs/common/token.h"

namespace crm::server {

// Checks the `authorization: Bearer <token>` metadata of a call (DESIGN §5). Thread-safe.
class Authenticator {
 public:
  // `key` is the HS256 signing key; `clock` decides expiry and must outlive this object.
  Authenticator(std::string key, const Clock* clock) : key_(std::move(key)), clock_(clock) {}

  // UNAUTHENTICATED when the header is missing, not a bearer token, or the token fails
  // VerifyToken.
  absl::StatusOr<Claims> Authenticate(const grpc::ServerContextBase& ctx) const;
  absl::StatusOr<Claims> AuthenticateHeader(absl::string_view authorization) const;

 private:
  const std::string key_;
  const Clock* clock_;
};

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_AUTH_H_
