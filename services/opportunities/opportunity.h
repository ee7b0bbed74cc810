#ifndef CRM_SERVICES_OPPORTUNITIES_OPPORTUNITY_H_
#define CRM_SERVICES_OPPORTUNITIES_OPPORTUNITY_H_

// The opportunity aggregate (商机) and its pipelines (销售阶段): pure decisions and folds, no
// I/O (docs/architecture.md §3). The engine supplies what needs the projections: the customer as this
// service knows it from the customers topic, the pipelines in force, and the clock.
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "crm/opportunities/v1/opportunities_events.pb.h"
#include "libs/common/caller.h"
#include "libs/customer_view/customer_view.h"
#include "libs/topics/default_pipeline.h"

namespace crm::opportunities {

using v1::OpportunityProfile;
using v1::OpportunityState;
using v1::Pipeline;
// The pipeline in force until an admin records pipelines: the topic's, which readers share.
using topics::opportunities::DefaultPipeline;

using OpportunityEvent =
    std::variant<v1::OpportunityCreated, v1::OpportunityUpdated, v1::OpportunityStageChanged, v1::OpportunityWon,
                 v1::OpportunityLost, v1::OpportunityReopened, v1::OpportunityStageTimedOut,
                 v1::OpportunityCustomerChanged, v1::OpportunityCustomerDeletedFlag, v1::OpportunityDeleted,
                 v1::OpportunityUndeleted>;
using Decision = absl::StatusOr<std::vector<OpportunityEvent>>;

// Sets field `fd` of `to` to its value in `from` (a string or message field, as opportunity
// profiles and contract terms have); whether the value changed. For updates by field mask.
bool AssignField(const google::protobuf::Message& from, google::protobuf::Message* to,
                 const google::protobuf::FieldDescriptor* fd);

// INVALID_ARGUMENT naming "<field>.stages[i].<part>" unless the pipeline has an id and name,
// unique stage ids, at least one open stage, exactly one won and at least one lost stage, and
// probabilities 0-100 (won 100, lost 0).
absl::Status ValidatePipeline(const Pipeline& p, const std::string& field);
// The stage of `p` with `id`; null when none.
const v1::Stage* FindStage(const Pipeline& p, const std::string& id);
// The position of stage `id` in `p`; -1 when none.
int StageIndex(const Pipeline& p, const std::string& id);

// Who may see and change an opportunity: its owner, the team's manager, admins and services.
bool CanSee(const Caller& c, const OpportunityState& s);

struct CreateOpportunity {
  OpportunityProfile profile;  // customer_id, name, amount, expected_close_date, owner ...
  Pipeline pipeline;           // the pipeline in force for pipeline_id
  std::string stage_id;        // empty: the first open stage
  CustomerView customer;
};
struct UpdateOpportunity {
  OpportunityProfile profile;
  std::vector<std::string> paths;  // name, amount, expected_close_date, description, owner_id, team_id
};
// Into another open stage, forwards or back.
struct MoveStage {
  std::string stage_id;
  std::string note;
  Pipeline pipeline;
};
struct Win {
  v1::Money amount;  // unset: the opportunity's amount
  std::string reason;
  Pipeline pipeline;
};
struct Lose {
  std::string reason;    // required
  std::string stage_id;  // a lost stage; empty: the pipeline's first
  Pipeline pipeline;
};
struct Reopen {
  std::string stage_id;  // an open stage; empty: the last open stage it was in
  std::string reason;
  Pipeline pipeline;
};
struct DeleteOpportunity {
  std::string reason;
};
struct UndeleteOpportunity {
};
// The scheduler's: as of `now`, an open opportunity idle in its stage for the stage's
// timeout_days (since it entered the stage or was last updated) times out, once per stay.
struct CheckStageTimeout {
  absl::Time now;
  Pipeline pipeline;
};
// Reactions to the customers topic.
struct FollowCustomerMerge {
  std::string survivor_id;
};
struct FlagCustomerDeleted {
  bool deleted = false;
};

// Pure decisions. `state` is null when the opportunity does not exist. Errors:
// INVALID_ARGUMENT (field named), PERMISSION_DENIED, NOT_FOUND, FAILED_PRECONDITION (e.g.
// moving a closed opportunity). An empty vector: nothing to record. The etag is no part of
// the commands: the store checks it as the expected version before deciding.
Decision Decide(const OpportunityState* state, const Caller& caller, const CreateOpportunity& cmd);
Decision Decide(const OpportunityState* state, const Caller& caller, const UpdateOpportunity& cmd);
Decision Decide(const OpportunityState* state, const Caller& caller, const MoveStage& cmd);
Decision Decide(const OpportunityState* state, const Caller& caller, const Win& cmd);
Decision Decide(const OpportunityState* state, const Caller& caller, const Lose& cmd);
Decision Decide(const OpportunityState* state, const Caller& caller, const Reopen& cmd);
Decision Decide(const OpportunityState* state, const Caller& caller, const DeleteOpportunity& cmd);
Decision Decide(const OpportunityState* state, const Caller& caller, const UndeleteOpportunity& cmd);
Decision Decide(const OpportunityState* state, const Caller& caller, const CheckStageTimeout& cmd);
Decision Decide(const OpportunityState* state, const Caller& caller, const FollowCustomerMerge& cmd);
Decision Decide(const OpportunityState* state, const Caller& caller, const FlagCustomerDeleted& cmd);

// Folds one event, recorded as `version` at `at` by `actor`, into `state`.
void Apply(OpportunityState& state, const OpportunityEvent& event, int64_t version, absl::Time at,
           const std::string& actor);

// When an open opportunity has been idle in its stage since: entering it or the last change
// a person made, whichever is later.
absl::Time IdleSince(const OpportunityState& s);

// Time spent in each stage (summed over stays; the current stay counts up to `now`).
std::vector<std::pair<std::string, absl::Duration>> TimeInStages(const OpportunityState& s, absl::Time now);

}  // namespace crm::opportunities

#endif  // CRM_SERVICES_OPPORTUNITIES_OPPORTUNITY_H_
