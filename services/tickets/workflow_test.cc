#include "services/tickets/workflow.h"

#include "gtest/gtest.h"
#include "libs/common/status_testing.h"
#include "services/tickets/domain_testing.h"

namespace crm::tickets {
namespace {

using crm::testing::FieldOf;

using testing::ResolutionForm;
using testing::ServiceFlow;

TEST(WorkflowTest, TheServiceFlowIsValid) {
  EXPECT_TRUE(ValidateWorkflow(ServiceFlow(), ResolutionForm(), "workflow").ok());
}

TEST(WorkflowTest, MistakesNameTheirPart) {
  v1::Workflow w = ServiceFlow();
  w.set_initial_state("closed");
  EXPECT_EQ(FieldOf(ValidateWorkflow(w, ResolutionForm(), "workflow")), "workflow.initial_state");
  w = ServiceFlow();
  w.mutable_transitions(0)->set_to("nowhere");
  EXPECT_EQ(FieldOf(ValidateWorkflow(w, ResolutionForm(), "workflow")), "workflow.transitions[0].to");
  w = ServiceFlow();
  w.mutable_transitions(3)->add_required_fields("root_cause");
  EXPECT_EQ(FieldOf(ValidateWorkflow(w, ResolutionForm(), "workflow")), "workflow.transitions[3].required_fields");
  w = ServiceFlow();
  w.mutable_transitions(5)->add_roles("boss");
  EXPECT_EQ(FieldOf(ValidateWorkflow(w, ResolutionForm(), "workflow")), "workflow.transitions[5].roles");
  w = ServiceFlow();
  w.mutable_transitions()->RemoveLast();  // nothing reaches 已关闭
  EXPECT_EQ(FieldOf(ValidateWorkflow(w, ResolutionForm(), "workflow")), "workflow.states[4]");
  w = ServiceFlow();
  w.mutable_states(4)->set_final(false);
  EXPECT_EQ(FieldOf(ValidateWorkflow(w, ResolutionForm(), "workflow")), "workflow.states");
}

TEST(WorkflowTest, TransitionsOnlyAlongTheFlow) {
  const v1::Workflow flow = ServiceFlow();  // the transition returned points into it
  auto t = CheckTransition(flow, "new", "resolve", "rep", {});
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(t.status()), "transition");
  EXPECT_NE(t.status().message().find("start"), absl::string_view::npos);  // says what would do
  t = CheckTransition(flow, "new", "start", "rep", {});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ((*t)->to(), "in_progress");
}

TEST(WorkflowTest, GuardsCheckRolesAndRequiredFields) {
  EXPECT_EQ(CheckTransition(ServiceFlow(), "resolved", "close", "rep", {}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(CheckTransition(ServiceFlow(), "resolved", "close", "manager", {}).ok());
  auto t = CheckTransition(ServiceFlow(), "in_progress", "resolve", "rep", {});
  EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(FieldOf(t.status()), "values.resolution");
  FormValues v;
  v["resolution"].set_text("更换屏幕");
  EXPECT_TRUE(CheckTransition(ServiceFlow(), "in_progress", "resolve", "rep", v).ok());
}

}  // namespace
}  // namespace crm::tickets
