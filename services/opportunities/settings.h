#ifndef CRM_SERVICES_OPPORTUNITIES_SETTINGS_H_
#define CRM_SERVICES_OPPORTUNITIES_SETTINGS_H_

// The opportunities service's settings aggregate (id "settings"): the pipelines admins define
// and the amount above which contracts need approval. Pure decisions and folds.
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crm/opportunities/v1/opportunities_events.pb.h"
#include "libs/common/caller.h"

namespace crm::opportunities {

using v1::OpportunitySettings;

using SettingsEvent = std::variant<v1::PipelinesSet, v1::ContractPolicySet>;
using SettingsDecision = absl::StatusOr<std::vector<SettingsEvent>>;

// The pipelines in force: the admins' or, until they set some, the default one.
std::vector<v1::Pipeline> EffectivePipelines(const OpportunitySettings& s);
// The pipeline `id` in force ("" is the first); NOT_FOUND otherwise.
absl::StatusOr<v1::Pipeline> PipelineById(const OpportunitySettings& s, const std::string& id);
// The approval threshold in force (0: every contract needs approval).
inline int64_t ApprovalThreshold(const OpportunitySettings& s) { return s.approval_threshold_minor(); }

// Admins (by the rpc's access option; not checked here). Each pipeline valid (ValidatePipeline), ids unique, at most 20; pipelines and
// stages in force are never removed, since opportunities record them by id (rename, reorder
// and re-weigh them instead).
struct SetPipelines {
  std::vector<v1::Pipeline> pipelines;
};
// Admins (by the rpc's access option); not negative.
struct SetContractPolicy {
  int64_t approval_threshold_minor = 0;
};

SettingsDecision Decide(const OpportunitySettings& s, const Caller& caller, const SetPipelines& cmd);
SettingsDecision Decide(const OpportunitySettings& s, const Caller& caller, const SetContractPolicy& cmd);
// Folds `e`, recorded as version `version`, into `s`. The settings keep no times or authors
// (their history has them): `at` and `actor` are there so that the settings fold like every
// aggregate (projection::FoldSealed).
void Apply(OpportunitySettings& s, const SettingsEvent& e, int64_t version, absl::Time at, const std::string& actor);

}  // namespace crm::opportunities

#endif  // CRM_SERVICES_OPPORTUNITIES_SETTINGS_H_
