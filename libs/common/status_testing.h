#ifndef CRM_LIBS_COMMON_STATUS_TESTING_H_
#define CRM_LIBS_COMMON_STATUS_TESTING_H_

// What tests read back from an INVALID_ARGUMENT (tests only): the fields its
// google.rpc.BadRequest names.
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "libs/common/grpc_status.h"

namespace crm::testing {

// Every field named, in order; none for another error.
inline std::vector<std::string> FieldsOf(const absl::Status& s) {
  std::vector<std::string> out;
  if (auto bad = GetBadRequest(s)) {
    for (const auto& v : bad->field_violations()) out.push_back(v.field());
  }
  return out;
}

// The first field named, "" when none.
inline std::string FieldOf(const absl::Status& s) {
  auto fields = FieldsOf(s);
  return fields.empty() ? "" : fields[0];
}

}  // namespace crm::testing

#endif  // CRM_LIBS_COMMON_STATUS_TESTING_H_
