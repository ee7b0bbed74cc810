#include "libs/common/token.h"

#include <cstdio>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/common/sha256.h"
#include "libs/common/temp_dir_testing.h"

namespace crm {
namespace {

const std::string kKey(40, 'k');
const absl::Time kNow = absl::FromUnixSeconds(1767225600);

Claims Rep() { return {"u1", "rep", "east", kNow + absl::Hours(1)}; }

// A token with `payload` as its claims, signed under `key` (HMAC-SHA256 by hand, so that the
// claims can be anything MintToken would not write).
std::string SignRaw(const std::string& key, const std::string& payload) {
  std::string header, body;
  absl::WebSafeBase64Escape(R"({"alg":"HS256","typ":"JWT"})", &header);
  absl::WebSafeBase64Escape(payload, &body);
  const std::string input = header + "." + body;
  std::string ipad(64, 0x36), opad(64, 0x5c);
  for (size_t i = 0; i < key.size(); ++i) ipad[i] ^= key[i], opad[i] ^= key[i];
  std::string mac, sig;
  mac = Sha256({opad, Sha256({ipad, input})});
  absl::WebSafeBase64Escape(mac, &sig);
  return input + "." + sig;
}

std::string Payload(absl::string_view times) {
  return absl::StrCat(R"({"sub":"u1","role":"admin","team":"",)", times, "}");
}

absl::Status Verify(absl::string_view times, const TokenPolicy& policy = {}) {
  return VerifyToken(kKey, SignRaw(kKey, Payload(times)), kNow, policy).status();
}

int64_t Now(int64_t plus_seconds = 0) { return absl::ToUnixSeconds(kNow) + plus_seconds; }

TEST(TokenTest, RefusesALifetimeBeyondTheMaximum) {
  // Without iat: exp counts from now. (The first also shows that SignRaw signs correctly.)
  EXPECT_TRUE(Verify(absl::StrCat(R"("exp":)", Now(24 * 3600))).ok());
  auto s = Verify(absl::StrCat(R"("exp":)", Now(25 * 3600)));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(s.message().find("lifetime exceeds the maximum of 24h"), absl::string_view::npos) << s;
  EXPECT_EQ(Verify(R"("exp":4611686018427387904)").code(), absl::StatusCode::kUnauthenticated);  // 2^62
  EXPECT_EQ(Verify(R"("exp":9223372036854775807)").code(), absl::StatusCode::kUnauthenticated);
  // With iat: exp counts from iat.
  EXPECT_TRUE(Verify(absl::StrCat(R"("iat":)", Now(-3600), R"(,"exp":)", Now(23 * 3600))).ok());
  s = Verify(absl::StrCat(R"("iat":)", Now(-3600), R"(,"exp":)", Now(23 * 3600 + 1)));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(s.message().find("exp too far after iat"), absl::string_view::npos) << s;
  EXPECT_EQ(Verify(absl::StrCat(R"("iat":0,"exp":)", Now(60))).code(), absl::StatusCode::kUnauthenticated);
  // A server configured for longer lifetimes takes them.
  EXPECT_TRUE(Verify(absl::StrCat(R"("exp":)", Now(7 * 24 * 3600)), {.max_lifetime = absl::Hours(7 * 24)}).ok());
}

TEST(TokenTest, RefusesExpOutsideInt64OrNotAnInteger) {
  for (const char* exp : {"18446744073709551615", "1e300", "1767229200.5", "\"1767229200\"", "null", "-1"}) {
    auto s = Verify(absl::StrCat(R"("exp":)", exp));
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << exp;
  }
  EXPECT_EQ(VerifyToken(kKey, SignRaw(kKey, R"({"sub":"u1","role":"admin"})"), kNow).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(TokenTest, RefusesIatOrNbfInTheFutureBeyondTheSkew) {
  const std::string exp = absl::StrCat(R"(,"exp":)", Now(3600));
  EXPECT_TRUE(Verify(absl::StrCat(R"("iat":)", Now(30), exp)).ok());  // within the 1 minute skew
  auto s = Verify(absl::StrCat(R"("iat":)", Now(120), exp));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(s.message().find("iat is in the future"), absl::string_view::npos) << s;
  EXPECT_TRUE(Verify(absl::StrCat(R"("nbf":)", Now(30), exp)).ok());
  s = Verify(absl::StrCat(R"("nbf":)", Now(120), exp));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(s.message().find("nbf is in the future"), absl::string_view::npos) << s;
  EXPECT_TRUE(Verify(absl::StrCat(R"("nbf":)", Now(120), exp), {.clock_skew = absl::Minutes(5)}).ok());
  EXPECT_EQ(Verify(absl::StrCat(R"("iat":"soon")", exp)).code(), absl::StatusCode::kUnauthenticated);
}

TEST(TokenTest, MintWritesIatAndNbf) {
  Claims c = Rep();
  c.iat = kNow;
  c.nbf = kNow;
  auto claims = VerifyToken(kKey, *MintToken(kKey, c), kNow);
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->iat, kNow);
  EXPECT_EQ(claims->nbf, kNow);
  c.exp = kNow;
  EXPECT_EQ(MintToken(kKey, c).status().code(), absl::StatusCode::kInvalidArgument);
}

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
  const std::string dir = NewTestDir("key");
  const std::string path = dir + "/signing.key";
  EXPECT_EQ(LoadSigningKey(path, false).status().code(), absl::StatusCode::kNotFound);
  auto k1 = LoadSigningKey(path, true);
  ASSERT_TRUE(k1.ok()) << k1.status();
  EXPECT_EQ(k1->size(), 64u);
  auto k2 = LoadSigningKey(path, true);
  ASSERT_TRUE(k2.ok());
  EXPECT_EQ(*k1, *k2);
  std::remove(path.c_str());
  std::remove(dir.c_str());
}

}  // namespace
}  // namespace crm
