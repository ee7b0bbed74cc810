#include "libs/common/sha256.h"

#include <openssl/evp.h>

#include <memory>

namespace crm {

std::string Sha256(std::initializer_list<absl::string_view> parts) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  for (absl::string_view p : parts) EVP_DigestUpdate(ctx.get(), p.data(), p.size());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  return std::string(reinterpret_cast<char*>(digest), len);
}

}  // namespace crm
