#include "libs/server/auth.h"

#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace crm::server {

absl::StatusOr<Claims> Authenticator::Authenticate(const grpc::ServerContextBase& ctx) const {
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) {
    return absl::UnauthenticatedError("missing authorization metadata (Bearer token)");
  }
  return AuthenticateHeader(absl::string_view(it->second.data(), it->second.size()));
}

absl::StatusOr<Claims> Authenticator::AuthenticateHeader(absl::string_view header) const {
  absl::string_view token = header;
  if (!absl::ConsumePrefix(&token, "Bearer ") && !absl::ConsumePrefix(&token, "bearer ")) {
    return absl::UnauthenticatedError("authorization is not a Bearer token");
  }
  return VerifyToken(key_, absl::StripAsciiWhitespace(token), clock_->Now());
}

}  // namespace crm::server
