#include "libs/common/token.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace crm {
namespace {

const std::string kKey(40, 'k');
const absl::Time kNow = absl::FromUnixSeconds(1767225600);

Claims Rep() { return {"u1", "rep", "east", kNow + absl::Hours(1)}; }

TEST(TokenTest, MintedTokenVerifies) {
  auto token = MintToken(kKey, Rep());
  ASSERT_TRUE(token.ok()) << token.status();
  auto claims = VerifyToken(kKey, *token, kNow);
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->sub, "u1");
  EXPECT_EQ(claims->role, "rep");
  EXPECT_EQ(claims->team, "east");
  EXPECT_EQ(claims->exp, kNow + absl::Hours(1));
}

TEST(TokenTest, RejectsExpired) {
  auto token = *MintToken(kKey, Rep());
  auto s = VerifyToken(kKey, token, kNow + absl::Hours(2)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(s.message().find("expired"), absl::string_view::npos);
}

TEST(TokenTest, RejectsOtherKeyAndTampering) {
  auto token = *MintToken(kKey, Rep());
  EXPECT_EQ(VerifyToken(std::string(40, 'x'), token, kNow).status().code(),
            absl::StatusCode::kUnauthenticated);
  // Swap the payload for one claiming admin, keep the signature.
  auto admin = *MintToken(std::string(40, 'x'), {"u1", "admin", "", kNow + absl::Hours(1)});
  const std::string forged = token.substr(0, token.find('.')) + admin.substr(admin.find('.'),
      admin.rfind('.') - admin.find('.')) + token.substr(token.rfind('.'));
  EXPECT_EQ(VerifyToken(kKey, forged, kNow).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_FALSE(VerifyToken(kKey, "abc", kNow).ok());
  EXPECT_FALSE(VerifyToken(kKey, "", kNow).ok());
}

TEST(TokenTest, RejectsAlgNone) {
  // {"alg":"none"} . {"sub":"u","role":"admin","exp":9999999999} . (empty)
  const std::string none =
      "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1Iiwicm9sZSI6ImFkbWluIiwiZXhwIjo5OTk5OTk5OTk5fQ.";
  EXPECT_EQ(VerifyToken(kKey, none, kNow).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(TokenTest, MintRejectsBadInput) {
  EXPECT_FALSE(MintToken("short", Rep()).ok());
  Claims c = Rep();
  c.role = "boss";
  EXPECT_EQ(MintToken(kKey, c).status().code(), absl::StatusCode::kInvalidArgument);
  c = Rep();
  c.sub = "";
  EXPECT_FALSE(MintToken(kKey, c).ok());
}

TEST(TokenTest, LoadSigningKeyCreatesOnceThenReads) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/key-", getpid());
  std::remove(path.c_str());
  EXPECT_EQ(LoadSigningKey(path, false).status().code(), absl::StatusCode::kNotFound);
  auto k1 = LoadSigningKey(path, true);
  ASSERT_TRUE(k1.ok()) << k1.status();
  EXPECT_EQ(k1->size(), 64u);
  auto k2 = LoadSigningKey(path, true);
  ASSERT_TRUE(k2.ok());
  EXPECT_EQ(*k1, *k2);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace crm
