// The customers service's settings commands (public pool policy, industries, channel costs,
// behaviour tag rules): one aggregate, the settings singleton.
#include "services/customers/settings_commands.h"

#include <vector>

#include "libs/common/grpc_status.h"
#include "services/customers/engine_util.h"

namespace crm::customers {

using namespace internal;  // NOLINT: the service's own helpers

void SettingsCommands::Execute(
    const Caller& caller,
    absl::AnyInvocable<absl::StatusOr<std::vector<SettingsEvent>>(const CustomerSettings&)> decide,
    Callback<CustomerSettings> done) {
  kernel::Command<CustomerSettings, SettingsEvent> cmd;
  cmd.caller = caller;
  cmd.id = kSettingsId;
  cmd.decide = [decide = std::move(decide)](const CustomerSettings* cur) mutable {
    return decide(cur != nullptr ? *cur : CustomerSettings());
  };
  store_->Execute<SettingsKind>(std::move(cmd),
                                [done = std::move(done)](absl::StatusOr<kernel::Written<CustomerSettings>> w) mutable {
                                  if (!w.ok()) return done(w.status());
                                  done(EffectiveSettings(w->state));
                                });
}

void SettingsCommands::UpdatePoolPolicy(const Caller& caller, const v1::UpdatePoolPolicyRequest& req,
                                      Callback<v1::PoolPolicy> done) {
  if (!req.has_policy()) return done(InvalidFieldError("policy", "is required"));
  Execute(
      caller, [caller, policy = req.policy()](const CustomerSettings& s) { return DecideSettings(s, caller, policy); },
      [done = std::move(done)](absl::StatusOr<CustomerSettings> s) mutable {
        if (!s.ok()) return done(s.status());
        done(s->pool_policy());
      });
}

void SettingsCommands::SetIndustries(const Caller& caller, const v1::SetIndustriesRequest& req,
                                   Callback<v1::ListIndustriesResponse> done) {
  std::vector<v1::Industry> list(req.industries().begin(), req.industries().end());
  Execute(
      caller, [caller, list = std::move(list)](const CustomerSettings& s) { return DecideSettings(s, caller, list); },
      [done = std::move(done)](absl::StatusOr<CustomerSettings> s) mutable {
        if (!s.ok()) return done(s.status());
        v1::ListIndustriesResponse resp;
        *resp.mutable_industries() = s->industries();
        done(std::move(resp));
      });
}

void SettingsCommands::SetChannelCost(const Caller& caller, const v1::SetChannelCostRequest& req,
                                    Callback<v1::ChannelCost> done) {
  Execute(
      caller, [caller, cost = req.cost()](const CustomerSettings& s) { return DecideSettings(s, caller, cost); },
      [done = std::move(done), cost = req.cost()](absl::StatusOr<CustomerSettings> s) mutable {
        if (!s.ok()) return done(s.status());
        v1::ChannelCost out = cost;
        out.set_amount_minor(0);
        for (const auto& c : s->channel_costs()) {
          if (c.source_channel() == cost.source_channel() && c.month() == cost.month()) out = c;
        }
        done(std::move(out));
      });
}

void SettingsCommands::SetTagRules(const Caller& caller, const v1::SetTagRulesRequest& req,
                                 Callback<v1::ListTagRulesResponse> done) {
  std::vector<v1::TagRule> rules(req.rules().begin(), req.rules().end());
  Execute(
      caller, [caller, rules = std::move(rules)](const CustomerSettings& s) { return DecideSettings(s, caller, rules); },
      [done = std::move(done)](absl::StatusOr<CustomerSettings> s) mutable {
        if (!s.ok()) return done(s.status());
        v1::ListTagRulesResponse resp;
        *resp.mutable_rules() = s->tag_rules();
        done(std::move(resp));
      });
}

}  // namespace crm::customers
