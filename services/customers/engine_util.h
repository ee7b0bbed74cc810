#ifndef CRM_SERVICES_CUSTOMERS_ENGINE_UTIL_H_
#define CRM_SERVICES_CUSTOMERS_ENGINE_UTIL_H_

// What the customers engine's command files share beyond libs/common/request.h. Internal to
// services/customers.
#include <string>

#include "libs/common/request.h"
#include "services/customers/customer.h"

namespace crm::customers::internal {

// Who the scheduler writes as.
inline const Caller kScheduler{"scheduler", "service", ""};

// Resource names default to customers here.
inline absl::StatusOr<std::string> ParseName(const std::string& name, absl::string_view field,
                                             absl::string_view collection = "customers") {
  return ::crm::ParseName(name, field, collection);
}
inline absl::StatusOr<Target> ParseTarget(const std::string& request_id, const std::string& name,
                                          absl::string_view name_field, const std::string& etag,
                                          absl::string_view etag_field, absl::string_view collection = "customers") {
  return ::crm::ParseTarget(request_id, name, name_field, etag, etag_field, collection);
}

}  // namespace crm::customers::internal

#endif  // CRM_SERVICES_CUSTOMERS_ENGINE_UTIL_H_
