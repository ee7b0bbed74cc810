#include "libs/server/auth.h"

#include "gtest/gtest.h"

namespace crm::server {
namespace {

TEST(AuthenticatorTest, AcceptsOnlyValidBearerTokens) {
  ManualClock clock;
  const std::string key(32, 'q');
  Authenticator auth(key, &clock);
  auto token = *MintToken(key, {"u1", "manager", "east", clock.Now() + absl::Minutes(5)});
  auto ok = auth.AuthenticateHeader("Bearer " + token);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->role, "manager");
  EXPECT_EQ(auth.AuthenticateHeader(token).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.AuthenticateHeader("Bearer x.y.z").status().code(),
            absl::StatusCode::kUnauthenticated);
  clock.Advance(absl::Minutes(6));
  EXPECT_EQ(auth.AuthenticateHeader("Bearer " + token).status().code(),
            absl::StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace crm::server
