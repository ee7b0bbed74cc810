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
  token = absl::StripAsciiWhitespace(token);
  const absl::Time now = clock_->Now();
  {
    absl::ReaderMutexLock l(&mu_);
    auto it = verified_.find(token);
    if (it != verified_.end() && now < it->second.exp) return it->second;
  }
  absl::StatusOr<Claims> claims = VerifyToken(key_, token, now, policy_);
  absl::MutexLock l(&mu_);
  if (!claims.ok()) {
    verified_.erase(token);  // expired since it was remembered
    return claims;
  }
  if (verified_.size() >= kMaxRemembered) verified_.clear();
  verified_.insert_or_assign(std::string(token), *claims);
  return claims;
}

}  // namespace crm::server
