#ifndef CRM_SERVICES_CUSTOMERS_ENGINE_UTIL_H_
#define CRM_SERVICES_CUSTOMERS_ENGINE_UTIL_H_

// What the customers engine's command files share beyond libs/common/request.h. Internal to
// services/customers.
#include <string>
#include <vector>

#include "libs/common/request.h"
#include "libs/kernel/aggregate_store.h"
#include "libs/topics/contracts.h"
#include "services/customers/customer.h"
#include "services/customers/customer_projections.h"
#include "services/customers/lead.h"

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

// The topic's aggregates as the write kernel (libs/kernel) sees them. Apply is the fold
// ApplyCustomersRecord uses too, so a reply equals the row the projection commits.
struct CustomerKind {
  static constexpr const char* kType = topics::customers::kCustomer.type;
  static std::string Row(absl::string_view id) { return rows::State(id); }
  static bool Visible(const Caller& caller, const CustomerState& s) { return CanSee(caller, s); }
  static void Apply(CustomerState& s, const CustomerEvent& e, int64_t version, absl::Time at, const std::string& actor) {
    customers::Apply(s, e, version, at, actor);
  }
};

struct LeadKind {
  static constexpr const char* kType = topics::customers::kLead.type;
  static std::string Row(absl::string_view id) { return rows::Lead(id); }
  static bool Visible(const Caller& caller, const LeadState& s) { return CanSee(caller, s); }
  static void Apply(LeadState& s, const LeadEvent& e, int64_t version, absl::Time at, const std::string& actor) {
    customers::Apply(s, e, version, at, actor);
  }
};

// The settings singleton (id kSettingsId): every caller may read it; the API checks who may set it.
struct SettingsKind {
  static constexpr const char* kType = topics::customers::kSettings.type;
  static std::string Row(absl::string_view) { return rows::kSettings; }
  static bool Visible(const Caller&, const CustomerSettings&) { return true; }
  static void Apply(CustomerSettings& s, const SettingsEvent& e, int64_t version, absl::Time, const std::string&) {
    ApplySettings(s, e, version);
  }
};

// The unique keys a customer holds in state `s`: its normalised phone and email while live
// (the p/ and e/ index rows), answered as DUPLICATE_PHONE / DUPLICATE_EMAIL when taken.
inline std::vector<kernel::UniqueKey> CustomerKeys(const CustomerState& s) {
  std::vector<kernel::UniqueKey> keys;
  if (!IsLive(s)) return keys;
  if (!s.normalized_phone().empty()) {
    keys.push_back({rows::PhonePrefix(s.normalized_phone()), "DUPLICATE_PHONE", "customer.phone", "phone",
                    topics::customers::kCustomer.collection});
  }
  if (!s.normalized_email().empty()) {
    keys.push_back({rows::EmailPrefix(s.normalized_email()), "DUPLICATE_EMAIL", "customer.email", "email",
                    topics::customers::kCustomer.collection});
  }
  return keys;
}

}  // namespace crm::customers::internal

#endif  // CRM_SERVICES_CUSTOMERS_ENGINE_UTIL_H_
