#include "libs/server/auth.h"

#include "absl/strings/str_cat.h"
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

TEST(AuthenticatorTest, ARememberedTokenIsStillCheckedByteForByteAndForExpiry) {
  ManualClock clock;
  const std::string key(32, 'q');
  Authenticator auth(key, &clock);
  const std::string token = *MintToken(key, {"u1", "rep", "east", clock.Now() + absl::Minutes(5)});
  ASSERT_TRUE(auth.AuthenticateHeader("Bearer " + token).ok());
  ASSERT_TRUE(auth.AuthenticateHeader("Bearer " + token + " ").ok());  // the same token, remembered
  // The same claims under another key, and the genuine token with its signature changed.
  const std::string forged = *MintToken(std::string(32, 'z'), {"u1", "rep", "east", clock.Now() + absl::Minutes(5)});
  EXPECT_EQ(auth.AuthenticateHeader("Bearer " + forged).status().code(), absl::StatusCode::kUnauthenticated);
  std::string tampered = token;
  char& flipped = tampered[tampered.size() - 10];  // inside the signature, all six bits used
  flipped = flipped == 'A' ? 'B' : 'A';
  EXPECT_EQ(auth.AuthenticateHeader("Bearer " + tampered).status().code(), absl::StatusCode::kUnauthenticated);
  // More tokens than it remembers: each still verifies, and the first is checked again.
  for (size_t i = 0; i < Authenticator::kMaxRemembered + 10; ++i) {
    const std::string t = *MintToken(key, {absl::StrCat("u", i), "rep", "east", clock.Now() + absl::Minutes(5)});
    auto c = auth.AuthenticateHeader("Bearer " + t);
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_EQ(c->sub, absl::StrCat("u", i));
  }
  ASSERT_TRUE(auth.AuthenticateHeader("Bearer " + token).ok());
  clock.Advance(absl::Minutes(5));  // exactly at expiry
  EXPECT_EQ(auth.AuthenticateHeader("Bearer " + token).status().code(), absl::StatusCode::kUnauthenticated);
}

// A leaked token must not be good forever: the configured lifetime bounds every token, and
// a refused one is not remembered.
TEST(AuthenticatorTest, RefusesTokensLivingLongerThanThePolicyAllows) {
  ManualClock clock;
  const std::string key(32, 'q');
  Authenticator auth(key, &clock, {.max_lifetime = absl::Hours(1)});
  const std::string hour = *MintToken(key, {"u1", "rep", "east", clock.Now() + absl::Hours(1)});
  EXPECT_TRUE(auth.AuthenticateHeader("Bearer " + hour).ok());
  const std::string day = *MintToken(key, {"u1", "rep", "east", clock.Now() + absl::Hours(24)});
  auto s = auth.AuthenticateHeader("Bearer " + day).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(s.message().find("lifetime exceeds"), absl::string_view::npos) << s;
  const std::string forever = *MintToken(key, {"u1", "rep", "east", absl::FromUnixSeconds(int64_t{1} << 62)});
  EXPECT_EQ(auth.AuthenticateHeader("Bearer " + forever).status().code(), absl::StatusCode::kUnauthenticated);
  Claims future{"u1", "rep", "east", clock.Now() + absl::Minutes(50)};
  future.nbf = clock.Now() + absl::Minutes(10);
  const std::string later = *MintToken(key, future);
  EXPECT_EQ(auth.AuthenticateHeader("Bearer " + later).status().code(), absl::StatusCode::kUnauthenticated);
  clock.Advance(absl::Minutes(10));  // now it is good
  EXPECT_TRUE(auth.AuthenticateHeader("Bearer " + later).ok());
  // The default policy (24 h) takes the day-long token, not the one of 2^62 seconds.
  Authenticator defaults(key, &clock);
  EXPECT_TRUE(defaults.AuthenticateHeader("Bearer " + day).ok());
  EXPECT_EQ(defaults.AuthenticateHeader("Bearer " + forever).status().code(), absl::StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace crm::server
