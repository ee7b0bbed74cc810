// CustomerEngine's behaviour tag rules: admin settings, preview, and the scheduler's pass.
#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "libs/common/grpc_status.h"
#include "libs/common/money.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/envelope.h"
#include "libs/projection/aggregate_writer.h"
#include "services/customers/customer_engine.h"
#include "services/customers/customer_projections.h"
#include "services/customers/engine_util.h"

namespace crm::customers {

using namespace internal;  // NOLINT: the engine's own helpers
using projection::FromRocks;

absl::Status CustomerEngine::RunTagRules(absl::Time now, const CustomerSettings& settings, SchedulerRun* run) {
  CRM_ASSIGN_OR_RETURN(auto tagged, queries_.TaggedByRule());
  std::vector<std::pair<std::string, DecideFn>> tag, untag;
  auto job = [&](const v1::TagRule& rule, bool meets, int64_t measure) {
    return [rule, meets, measure](const CustomerState* cur) -> absl::StatusOr<Decided> {
      Decided d;
      CRM_ASSIGN_OR_RETURN(d.events, Decide(cur, kScheduler, ApplyRuleTag{rule, meets, measure}));
      return d;
    };
  };
  std::set<std::string> enabled;
  std::vector<CustomerQueries::RuleWindow> windows;
  for (const v1::TagRule& rule : settings.tag_rules()) {
    if (!rule.enabled()) continue;
    enabled.insert(rule.id());
    windows.push_back({rule, rule.window_days() > 0 ? now - absl::Hours(24) * rule.window_days() : absl::InfinitePast()});
  }
  int64_t scanned = 0;
  CRM_ASSIGN_OR_RETURN(auto measures, queries_.EvaluateTagRules(windows, now, &scanned));
  for (size_t i = 0; i < windows.size(); ++i) {
    const v1::TagRule& rule = windows[i].rule;
    const auto& measure = measures[i];
    const std::set<std::string>& has = tagged[rule.id()];
    for (const auto& [id, m] : measure) {
      if (m >= rule.threshold() && !has.count(id)) tag.emplace_back(id, job(rule, true, m));
    }
    for (const auto& id : has) {
      auto it = measure.find(id);
      const int64_t m = it == measure.end() ? 0 : it->second;
      if (m < rule.threshold()) untag.emplace_back(id, job(rule, false, m));
    }
  }
  // Rules switched off or removed take their tags back.
  for (const auto& [rule_id, ids] : tagged) {
    if (enabled.count(rule_id)) continue;
    v1::TagRule gone;
    gone.set_id(rule_id);
    for (const auto& id : ids) untag.emplace_back(id, job(gone, false, 0));
  }
  CRM_RETURN_IF_ERROR(RunBatch(std::move(tag), &run->tagged));
  return RunBatch(std::move(untag), &run->untagged);
}

}  // namespace crm::customers
