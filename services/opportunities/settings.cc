#include "services/opportunities/settings.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "libs/common/grpc_status.h"
#include "libs/common/money.h"
#include "services/opportunities/opportunity.h"

namespace crm::opportunities {

std::vector<v1::Pipeline> EffectivePipelines(const OpportunitySettings& s) {
  if (s.pipelines().empty()) return {DefaultPipeline()};
  return {s.pipelines().begin(), s.pipelines().end()};
}

absl::StatusOr<v1::Pipeline> PipelineById(const OpportunitySettings& s, const std::string& id) {
  const std::vector<v1::Pipeline> all = EffectivePipelines(s);
  if (id.empty()) return all.front();
  for (const auto& p : all) {
    if (p.id() == id) return p;
  }
  return absl::NotFoundError(absl::StrCat("pipeline '", id, "' not found"));
}

SettingsDecision Decide(const OpportunitySettings& s, const Caller& caller, const SetPipelines& cmd) {
  if (cmd.pipelines.empty()) return InvalidFieldError("pipelines", "needs at least one pipeline");
  if (cmd.pipelines.size() > 20) return InvalidFieldError("pipelines", "has more than 20 pipelines");
  std::set<std::string> ids;
  for (size_t i = 0; i < cmd.pipelines.size(); ++i) {
    const std::string field = absl::StrCat("pipelines[", i, "]");
    if (auto st = ValidatePipeline(cmd.pipelines[i], field); !st.ok()) return st;
    if (!ids.insert(cmd.pipelines[i].id()).second) {
      return InvalidFieldError(field + ".id", absl::StrCat("'", cmd.pipelines[i].id(), "' is used twice"));
    }
  }
  for (const auto& old : EffectivePipelines(s)) {
    auto it = std::find_if(cmd.pipelines.begin(), cmd.pipelines.end(),
                           [&](const v1::Pipeline& p) { return p.id() == old.id(); });
    if (it == cmd.pipelines.end()) {
      return InvalidFieldError("pipelines", absl::StrCat("pipeline '", old.id(), "' is in force and cannot be removed"));
    }
    for (const auto& stage : old.stages()) {
      if (FindStage(*it, stage.id()) == nullptr) {
        return InvalidFieldError("pipelines", absl::StrCat("stage '", stage.id(), "' of pipeline '", old.id(),
                                                           "' is in force and cannot be removed"));
      }
    }
  }
  v1::PipelinesSet e;
  for (const auto& p : cmd.pipelines) *e.add_pipelines() = p;
  if (s.pipelines().size() == e.pipelines().size() &&
      std::equal(s.pipelines().begin(), s.pipelines().end(), e.pipelines().begin(),
                 [](const v1::Pipeline& a, const v1::Pipeline& b) { return a.SerializeAsString() == b.SerializeAsString(); })) {
    return std::vector<SettingsEvent>{};
  }
  return std::vector<SettingsEvent>{std::move(e)};
}

SettingsDecision Decide(const OpportunitySettings& s, const Caller& caller, const SetContractPolicy& cmd) {
  if (cmd.approval_threshold_minor < 0) return InvalidFieldError("approval_threshold_minor", "must not be negative");
  // A contract amount is at most kMaxAmountMinor: that threshold already means "never".
  if (auto st = money::CheckAmount(cmd.approval_threshold_minor, "approval_threshold_minor"); !st.ok()) return st;
  if (s.approval_threshold_set() && s.approval_threshold_minor() == cmd.approval_threshold_minor) {
    return std::vector<SettingsEvent>{};
  }
  v1::ContractPolicySet e;
  e.set_approval_threshold_minor(cmd.approval_threshold_minor);
  return std::vector<SettingsEvent>{std::move(e)};
}

void Apply(OpportunitySettings& s, const SettingsEvent& event, int64_t version, absl::Time, const std::string&) {
  if (const auto* p = std::get_if<v1::PipelinesSet>(&event)) {
    *s.mutable_pipelines() = p->pipelines();
  } else if (const auto* c = std::get_if<v1::ContractPolicySet>(&event)) {
    s.set_approval_threshold_minor(c->approval_threshold_minor());
    s.set_approval_threshold_set(true);
  }
  s.set_version(version);
}

}  // namespace crm::opportunities
