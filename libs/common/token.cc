#include "libs/common/token.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <limits>
#include <optional>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace crm {
namespace {

std::string Base64Url(absl::string_view in) {
  std::string out;
  absl::WebSafeBase64Escape(in, &out);  // no padding
  return out;
}

std::string HmacSha256(absl::string_view key, absl::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

absl::Status Unauthenticated(absl::string_view why) {
  return absl::UnauthenticatedError(absl::StrCat("invalid token: ", why));
}

// A NumericDate claim (seconds since the epoch) as a time: nullopt when `j` is no integer or
// is beyond int64 (nlohmann reads 2^64-1 as an unsigned integer).
std::optional<absl::Time> NumericDate(const nlohmann::json& j) {
  if (j.is_number_unsigned()) {
    const uint64_t u = j.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return absl::FromUnixSeconds(static_cast<int64_t>(u));
  }
  if (j.is_number_integer()) return absl::FromUnixSeconds(j.get<int64_t>());
  return std::nullopt;
}

}  // namespace

bool IsKnownRole(absl::string_view role) {
  return role == "rep" || role == "manager" || role == "admin" || role == "service";
}

absl::StatusOr<absl::Duration> ParseMaxTokenLifetime(absl::string_view text) {
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d <= absl::ZeroDuration() || d > absl::Hours(366 * 24)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not a token lifetime: a duration above 0 and at most 8784h, e.g. 24h or 90m"));
  }
  return d;
}

absl::StatusOr<std::string> MintToken(absl::string_view key, const Claims& claims) {
  if (key.size() < 32) return absl::InvalidArgumentError("signing key is shorter than 32 bytes");
  if (claims.sub.empty()) return absl::InvalidArgumentError("sub is empty");
  if (!IsKnownRole(claims.role)) {
    return absl::InvalidArgumentError(
        absl::StrCat("role '", claims.role, "' is not one of rep, manager, admin, service"));
  }
  if (claims.iat != absl::InfinitePast() && claims.exp <= claims.iat) {
    return absl::InvalidArgumentError("exp is not after iat");
  }
  nlohmann::json payload = {{"sub", claims.sub},
                            {"role", claims.role},
                            {"team", claims.team},
                            {"exp", absl::ToUnixSeconds(claims.exp)}};
  if (claims.iat != absl::InfinitePast()) payload["iat"] = absl::ToUnixSeconds(claims.iat);
  if (claims.nbf != absl::InfinitePast()) payload["nbf"] = absl::ToUnixSeconds(claims.nbf);
  const std::string signing_input =
      absl::StrCat(Base64Url(R"({"alg":"HS256","typ":"JWT"})"), ".", Base64Url(payload.dump()));
  return absl::StrCat(signing_input, ".", Base64Url(HmacSha256(key, signing_input)));
}

absl::StatusOr<Claims> VerifyToken(absl::string_view key, absl::string_view token, absl::Time now,
                                   const TokenPolicy& policy) {
  std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3) return Unauthenticated("not a JWS compact token");
  const std::string signing_input = absl::StrCat(parts[0], ".", parts[1]);
  std::string sig;
  if (!absl::WebSafeBase64Unescape(parts[2], &sig)) return Unauthenticated("bad signature encoding");
  const std::string expected = HmacSha256(key, signing_input);
  if (sig.size() != expected.size() || CRYPTO_memcmp(sig.data(), expected.data(), sig.size()) != 0) {
    return Unauthenticated("bad signature");
  }
  std::string header_json, payload_json;
  if (!absl::WebSafeBase64Unescape(parts[0], &header_json) ||
      !absl::WebSafeBase64Unescape(parts[1], &payload_json)) {
    return Unauthenticated("bad encoding");
  }
  nlohmann::json header = nlohmann::json::parse(header_json, nullptr, /*allow_exceptions=*/false);
  nlohmann::json payload = nlohmann::json::parse(payload_json, nullptr, false);
  if (!header.is_object() || !payload.is_object()) return Unauthenticated("bad JSON");
  if (header.value("alg", "") != "HS256") return Unauthenticated("algorithm is not HS256");
  Claims c;
  if (!payload.contains("sub") || !payload["sub"].is_string() || !payload.contains("role") ||
      !payload["role"].is_string() || !payload.contains("exp")) {
    return Unauthenticated("missing sub, role or exp");
  }
  c.sub = payload["sub"].get<std::string>();
  c.role = payload["role"].get<std::string>();
  if (payload.contains("team") && payload["team"].is_string()) c.team = payload["team"];
  if (c.sub.empty()) return Unauthenticated("empty sub");
  if (!IsKnownRole(c.role)) return Unauthenticated("unknown role");
  for (auto [name, field] : {std::pair{"exp", &c.exp}, std::pair{"iat", &c.iat}, std::pair{"nbf", &c.nbf}}) {
    if (!payload.contains(name)) continue;
    std::optional<absl::Time> t = NumericDate(payload[name]);
    if (!t.has_value()) return Unauthenticated(absl::StrCat(name, " is not an integer number of seconds"));
    *field = *t;
  }
  if (now >= c.exp) return Unauthenticated("expired");
  const absl::Time latest_start = now + policy.clock_skew;
  if (c.iat > latest_start) return Unauthenticated("iat is in the future");
  if (c.nbf > latest_start) return Unauthenticated("not valid yet (nbf is in the future)");
  const absl::Duration lifetime = c.iat != absl::InfinitePast() ? c.exp - c.iat : c.exp - now;
  const absl::Duration allowed =
      c.iat != absl::InfinitePast() ? policy.max_lifetime : policy.max_lifetime + policy.clock_skew;
  if (lifetime > allowed) {
    return Unauthenticated(absl::StrCat("lifetime exceeds the maximum of ", absl::FormatDuration(policy.max_lifetime),
                                        " (exp too far after ", c.iat != absl::InfinitePast() ? "iat)" : "now)"));
  }
  return c;
}

absl::StatusOr<std::string> LoadSigningKey(const std::string& path, bool create) {
  std::ifstream in(path);
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    std::string key(absl::StripAsciiWhitespace(ss.str()));
    if (key.size() < 32) {
      return absl::FailedPreconditionError(
          absl::StrCat("signing key in ", path, " is shorter than 32 bytes"));
    }
    return key;
  }
  if (!create) return absl::NotFoundError(absl::StrCat("no signing key at ", path));
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return absl::InternalError("RAND_bytes failed");
  const std::string key = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<char*>(raw), sizeof raw));
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot create ", path));
  const std::string line = key + "\n";
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return absl::InternalError(absl::StrCat("cannot write ", path));
  return key;
}

}  // namespace crm
