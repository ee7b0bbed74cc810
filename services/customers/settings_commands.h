#ifndef CRM_SERVICES_CUSTOMERS_SETTINGS_COMMANDS_H_
#define CRM_SERVICES_CUSTOMERS_SETTINGS_COMMANDS_H_

#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "crm/customers/v1/customers_service.pb.h"
#include "libs/common/caller.h"
#include "libs/kernel/aggregate_store.h"
#include "services/customers/customer.h"

namespace crm::customers {

// The settings commands of the customers service, each one command on the settings singleton
// through the service's AggregateStore (docs/architecture.md §3). Each answers with what the
// effective settings hold after it; only an admin may change them (DecideSettings:
// PERMISSION_DENIED, INVALID_ARGUMENT naming the field). Thread-safe; `done` runs on the log
// writer's thread, or on the caller's when nothing is appended.
class SettingsCommands {
 public:
  template <typename T>
  using Callback = absl::AnyInvocable<void(absl::StatusOr<T>)>;

  // `store` must outlive the commands.
  explicit SettingsCommands(kernel::AggregateStore* store) : store_(store) {}

  void UpdatePoolPolicy(const Caller& caller, const v1::UpdatePoolPolicyRequest& req, Callback<v1::PoolPolicy> done);
  void SetIndustries(const Caller& caller, const v1::SetIndustriesRequest& req,
                     Callback<v1::ListIndustriesResponse> done);
  void SetChannelCost(const Caller& caller, const v1::SetChannelCostRequest& req, Callback<v1::ChannelCost> done);
  // Behaviour tag rules; the scheduler applies them (CustomerEngine::RunScheduler).
  void SetTagRules(const Caller& caller, const v1::SetTagRulesRequest& req, Callback<v1::ListTagRulesResponse> done);

 private:
  // Runs a settings command through the store; `done` gets the effective settings after it.
  void Execute(const Caller& caller,
               absl::AnyInvocable<absl::StatusOr<std::vector<SettingsEvent>>(const CustomerSettings&)> decide,
               Callback<CustomerSettings> done);

  kernel::AggregateStore* const store_;
};

}  // namespace crm::customers

#endif  // CRM_SERVICES_CUSTOMERS_SETTINGS_COMMANDS_H_
