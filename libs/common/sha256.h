#ifndef CRM_LIBS_COMMON_SHA256_H_
#define CRM_LIBS_COMMON_SHA256_H_

#include <initializer_list>
#include <string>

#include "absl/strings/string_view.h"

namespace crm {

// The 32-byte SHA-256 digest of the concatenation of `parts`.
std::string Sha256(std::initializer_list<absl::string_view> parts);

}  // namespace crm

#endif  // CRM_LIBS_COMMON_SHA256_H_
