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

}  // namespace
}  // namespace crm::server
