#include "services/tickets/workflow.h"

#include "gtest/gtest.h"
#include "libs/common/grpc_status.h"

namespace crm::tickets {
namespace {

std::string FieldOf(const absl::Status& s) {
  auto bad = GetBadRequest(s);
  return bad && bad->field_violations_size() ? bad->field_violations(0).field() : "";
}

v1::FormSchema Form() {
  v1::FormSchema s;
  auto* f = s.add_fields();
  f->set_key("resolution");
  f->set_label("处理结果");
  f->set_type(v1::FIELD_TYPE_LONG_TEXT);
  return s;
}

// 新建 → 处理中 ⇄ 待客户反馈 → 已解决 → 已关闭 (managers close), 已解决 → 处理中 (reopen).
v1::Workflow Flow() {
  v1::Workflow w;
  auto state = [&](const char* id, const char* name, bool final = false, bool pauses = false) {
    auto* s = w.add_states();
    s->set_id(id);
    s->set_name(name);
    s->set_final(final);
    s->set_pauses_sla(pauses);
  };
  state("new", "新建");
  state("in_progress", "处理中");
  state("waiting", "待客户反馈", false, true);
  state("resolved", "已解决");
  state("closed", "已关闭", true);
  auto move = [&](const char* id, const char* from, const char* to, std::vector<std::string> roles = {},
                  std::vector<std::string> fields = {}) {
    auto* t = w.add_transitions();
    t->set_id(id);
    t->set_name(id);
    t->set_from(from);
    t->set_to(to);
    for (auto& r : roles) t->add_roles(r);
    for (auto& f : fields) t->add_required_fields(f);
  };
  move("start", "new", "in_progress");
  move("ask", "in_progress", "waiting");
  move("answered", "waiting", "in_progress");
  move("resolve", "in_progress", "resolved", {}, {"resolution"});
  move("reopen", "resolved", "in_progress");
  move("close", "resolved", "closed", {"manager", "admin"});
  w.set_initial_state("new");
  return w;
}

TEST(WorkflowTest, TheServiceFlowIsValid) { EXPECT_TRUE(ValidateWorkflow(Flow(), Form(), "workflow").ok()); }

TEST(WorkflowTest, MistakesNameTheirPart) {
  v1::Workflow w = Flow();
  w.set_initial_state("closed");
  EXPECT_EQ(FieldOf(ValidateWorkflow(w, Form(), "workflow")), "workflow.initial_state");
  w = Flow();
  w.mutable_transitions(0)->set_to("nowhere");
  EXPECT_EQ(FieldOf(ValidateWorkflow(w, Form(), "workflow")), "workflow.transitions[0].to");
  w = Flow();
  w.mutable_transitions(3)->add_required_fields("root_cause");
  EXPECT_EQ(FieldOf(ValidateWorkflow(w, Form(), "workflow")), "workflow.transitions[3].required_fields");
  w = Flow();
  w.mutable_transitions(5)->add_roles("boss");
  EXPECT_EQ(FieldOf(ValidateWorkflow(w, Form(), "workflow")), "workflow.transitions[5].roles");
  w = Flow();
  w.mutable_transitions()->RemoveLast();  // nothing reaches 已关闭
  EXPECT_EQ(FieldOf(ValidateWorkflow(w, Form(), "workflow")), "workflow.states[4]");
  w = Flow();
  w.mutable_states(4)->set_final(false);
  EXPECT_EQ(FieldOf(ValidateWorkflow(w, Form(), "workflow")), "workflow.states");
}

TEST(WorkflowTest, TransitionsOnlyAlongTheFlow) {
  const v1::Workflow flow = Flow();  // the transition returned points into it
  auto t = CheckTransition(flow, "new", "resolve", "rep", {});
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(t.status()), "transition");
  EXPECT_NE(t.status().message().find("start"), absl::string_view::npos);  // says what would do
  t = CheckTransition(flow, "new", "start", "rep", {});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ((*t)->to(), "in_progress");
}

TEST(WorkflowTest, GuardsCheckRolesAndRequiredFields) {
  EXPECT_EQ(CheckTransition(Flow(), "resolved", "close", "rep", {}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(CheckTransition(Flow(), "resolved", "close", "manager", {}).ok());
  auto t = CheckTransition(Flow(), "in_progress", "resolve", "rep", {});
  EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(FieldOf(t.status()), "values.resolution");
  FormValues v;
  v["resolution"].set_text("更换屏幕");
  EXPECT_TRUE(CheckTransition(Flow(), "in_progress", "resolve", "rep", v).ok());
}

}  // namespace
}  // namespace crm::tickets
