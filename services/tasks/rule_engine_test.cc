// The tasks engine alone on an embedded log: reading and deleting a rule as AutomationService's
// GetRule and DeleteRule do, cancelling a task, and the events each leaves.
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_testing.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/eventlog/log_testing.h"
#include "services/tasks/task_engine.h"
#include "libs/common/temp_dir_testing.h"

namespace crm::tasks {
namespace {

using crm::testing::Call;
using crm::testing::FieldOf;

const Caller kRep{"u1", "rep", "east"};
const Caller kAdmin{"a1", "admin", ""};

class RuleEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = NewTestDir("rule-engine");
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    log_ = *eventlog::OpenEmbeddedLog({.path = dir_ + "/log"});
    int64_t rebuilt = 0;
    auto db = projection::OpenProjections(*log_, TaskEngine::Spec({.clock = &clock_}), dir_ + "/tasks", &rebuilt);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    auto e = TaskEngine::Open(log_.get(), db_.get(), {.clock = &clock_});
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = *std::move(e);
  }
  void TearDown() override {
    engine_.reset();
    db_.reset();
    log_.reset();
    std::filesystem::remove_all(dir_);
  }
  absl::StatusOr<v1::Rule> Get(const Caller& c, const std::string& name) {
    v1::GetRuleRequest req;
    req.set_name(name);
    return engine_->GetRule(c, req, absl::Now() + absl::Seconds(5));
  }
  std::vector<v1::Rule> List(bool show_deleted) {
    v1::ListRulesRequest req;
    req.set_show_deleted(show_deleted);
    auto got = engine_->ListRules(kAdmin, req, absl::Now() + absl::Seconds(5));
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? std::vector<v1::Rule>(got->rules().begin(), got->rules().end()) : std::vector<v1::Rule>();
  }

  std::string dir_;
  ManualClock clock_{absl::FromUnixSeconds(1772413200)};  // 2026-03-02 09:00 in UTC+8
  std::unique_ptr<eventlog::Log> log_;
  std::unique_ptr<projection::ProjectionDb> db_;
  std::unique_ptr<TaskEngine> engine_;
};

TEST_F(RuleEngineTest, GetRuleReadsARuleByNameForEveryRole) {
  auto rules = List(false);
  ASSERT_FALSE(rules.empty()) << "the default rules are seeded at open";
  const v1::Rule& first = rules[0];
  for (const Caller& who : {kRep, kAdmin}) {
    auto got = Get(who, first.name());
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->name(), first.name());
    EXPECT_EQ(got->default_key(), first.default_key());
    EXPECT_EQ(got->definition().SerializeAsString(), first.definition().SerializeAsString());
    EXPECT_EQ(got->etag(), "1");
    EXPECT_FALSE(got->deleted());
  }
  EXPECT_EQ(FieldOf(Get(kRep, "tasks/x").status()), "name");
  EXPECT_EQ(FieldOf(Get(kRep, "").status()), "name");
  EXPECT_EQ(Get(kRep, "rules/0190a0a0-0000-7000-8000-000000000000").status().code(), absl::StatusCode::kNotFound);
  v1::GetRuleRequest bad_token;
  bad_token.set_name(first.name());
  bad_token.set_min_consistency_token("not-a-token");
  EXPECT_EQ(FieldOf(engine_->GetRule(kRep, bad_token, absl::Now() + absl::Seconds(5)).status()),
            "min_consistency_token");
}

TEST_F(RuleEngineTest, DeleteRuleWritesRuleDeletedOnceAndTheRuleLeavesTheList) {
  const auto before = List(false);
  ASSERT_FALSE(before.empty());
  const v1::Rule target = before.back();
  const std::string id = target.name().substr(std::string("rules/").size());

  v1::DeleteRuleRequest del;
  del.set_name("bogus");
  EXPECT_EQ(FieldOf(Call(engine_.get(), &TaskEngine::DeleteRule, kAdmin, del).status()), "name");
  del.set_name("rules/0190a0a0-0000-7000-8000-000000000000");
  EXPECT_EQ(Call(engine_.get(), &TaskEngine::DeleteRule, kAdmin, del).status().code(), absl::StatusCode::kNotFound);
  del.set_name(target.name());
  del.set_etag("7");
  EXPECT_EQ(Call(engine_.get(), &TaskEngine::DeleteRule, kAdmin, del).status().code(), absl::StatusCode::kAborted);
  del.set_etag("x");
  EXPECT_EQ(FieldOf(Call(engine_.get(), &TaskEngine::DeleteRule, kAdmin, del).status()), "etag");
  del.set_etag(target.etag());
  del.set_request_id("delete-rule-1");
  auto deleted = Call(engine_.get(), &TaskEngine::DeleteRule, kAdmin, del);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_TRUE(deleted->deleted());
  EXPECT_EQ(deleted->etag(), "2");
  // A retry with the same request id answers the same and writes nothing
  auto again = Call(engine_.get(), &TaskEngine::DeleteRule, kAdmin, del);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->etag(), "2");

  // Out of the list, in the list with show_deleted (marked), and still readable by name
  EXPECT_EQ(List(false).size(), before.size() - 1);
  auto with_deleted = List(true);
  ASSERT_EQ(with_deleted.size(), before.size());
  int marked = 0;
  for (const auto& r : with_deleted) marked += r.deleted() ? 1 : 0;
  EXPECT_EQ(marked, 1);
  auto got = Get(kRep, target.name());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->deleted());

  // A deleted rule is not edited any more
  v1::UpdateRuleRequest up;
  *up.mutable_rule() = target;
  up.mutable_rule()->mutable_definition()->set_enabled(false);
  EXPECT_EQ(Call(engine_.get(), &TaskEngine::UpdateRule, kAdmin, up).status().code(), absl::StatusCode::kNotFound);

  auto types = eventlog::testing::EventTypesOf(*log_, kTopic, id);
  ASSERT_TRUE(types.ok()) << types.status();
  EXPECT_EQ(*types, (std::vector<std::string>{"crm.tasks.v1.RuleCreated", "crm.tasks.v1.RuleDeleted"}));
}

TEST_F(RuleEngineTest, CancelTaskClosesAnOpenTaskOnceAndOnlyForThoseWhoMayChangeIt) {
  v1::CreateTaskRequest create;
  create.mutable_task()->set_title("回访客户");
  *create.mutable_task()->mutable_due_time() = ToProto(clock_.Now() + absl::Hours(24));
  auto task = Call(engine_.get(), &TaskEngine::CreateTask, kRep, create);
  ASSERT_TRUE(task.ok()) << task.status();
  const std::string id = task->name().substr(std::string("tasks/").size());

  v1::CancelTaskRequest cancel;
  cancel.set_name(task->name());
  EXPECT_EQ(Call(engine_.get(), &TaskEngine::CancelTask, Caller{"u2", "rep", "east"}, cancel).status().code(),
            absl::StatusCode::kPermissionDenied);
  cancel.set_name("tasks/0190a0a0-0000-7000-8000-000000000000");
  EXPECT_EQ(Call(engine_.get(), &TaskEngine::CancelTask, kRep, cancel).status().code(), absl::StatusCode::kNotFound);
  cancel.set_name("rules/x");
  EXPECT_EQ(FieldOf(Call(engine_.get(), &TaskEngine::CancelTask, kRep, cancel).status()), "name");
  cancel.set_name(task->name());
  auto cancelled = Call(engine_.get(), &TaskEngine::CancelTask, kRep, cancel);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->status(), v1::TASK_STATUS_CANCELLED);
  v1::CompleteTaskRequest complete;
  complete.set_name(task->name());
  EXPECT_EQ(Call(engine_.get(), &TaskEngine::CompleteTask, kRep, complete).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto types = eventlog::testing::EventTypesOf(*log_, kTopic, id);
  ASSERT_TRUE(types.ok()) << types.status();
  EXPECT_EQ(*types, (std::vector<std::string>{"crm.tasks.v1.TaskCreated", "crm.tasks.v1.TaskCancelled"}));
}

}  // namespace
}  // namespace crm::tasks
