// The tasks engine alone on an embedded log: reading and deleting a rule as AutomationService's
// GetRule and DeleteRule do, cancelling a task, and the events each leaves; the work each write
// costs on the kernel's write path and what it answers.
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_testing.h"
#include "libs/common/caller_testing.h"
#include "libs/eventlog/log_testing.h"
#include "libs/testing/engine_harness.h"
#include "services/tasks/task_engine.h"

namespace crm::tasks {
namespace {

using crm::testing::Call;
using crm::testing::FieldOf;

using crm::testing::kAdmin;
using crm::testing::kRep;
using crm::testing::kRep2;
using crm::testing::Service;

class RuleEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // 2026-03-02 09:00 in UTC+8.
    auto h = crm::testing::EngineHarness::Create({.name = "rule-engine", .start = absl::FromUnixSeconds(1772413200)});
    ASSERT_TRUE(h.ok()) << h.status();
    h_ = *std::move(h);
    const absl::Status s = h_->Open(Service::kTasks);
    ASSERT_TRUE(s.ok()) << s;
  }
  TaskEngine* engine() const { return h_->tasks(); }
  eventlog::Log& log() const { return h_->log(); }
  ManualClock& clock() const { return h_->clock(); }

  absl::StatusOr<v1::Rule> Get(const Caller& c, const std::string& name) {
    v1::GetRuleRequest req;
    req.set_name(name);
    return engine()->GetRule(c, req, absl::Now() + absl::Seconds(5));
  }
  std::vector<v1::Rule> List(bool show_deleted) {
    v1::ListRulesRequest req;
    req.set_show_deleted(show_deleted);
    auto got = engine()->ListRules(kAdmin, req, absl::Now() + absl::Seconds(5));
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? std::vector<v1::Rule>(got->rules().begin(), got->rules().end()) : std::vector<v1::Rule>();
  }

  // The work of the write path since `before`.
  kernel::StoreCounters Since(const kernel::StoreCounters& before) const {
    const kernel::StoreCounters now = engine()->WriteCounters();
    // A cached state counts as the one read of its command; the projection's reads and folds
    // count too (it takes the store's fold).
    return {.state_reads = now.all_states() - before.all_states(),
            .request_lookups = now.request_lookups - before.request_lookups,
            .folds = now.all_folds() - before.all_folds(),
            .seals = now.seals - before.seals,
            .appends = now.appends - before.appends};
  }
  // Runs `fn` as Call does; `*work` is what the write path did meanwhile.
  template <typename Req, typename Resp>
  absl::StatusOr<Resp> Counted(
      void (TaskEngine::*fn)(const Caller&, const Req&, absl::AnyInvocable<void(absl::StatusOr<Resp>)>),
      const Caller& c, const Req& req, kernel::StoreCounters* work) {
    const kernel::StoreCounters before = engine()->WriteCounters();
    absl::StatusOr<Resp> out = Call(engine(), fn, c, req);
    *work = Since(before);
    return out;
  }
  // The task as GetTask reads it back from the projection once `reply`'s token is applied,
  // beside `reply` without its token: the two must be equal.
  void ExpectRowEquals(const v1::Task& reply) {
    v1::GetTaskRequest get;
    get.set_name(reply.name());
    get.set_min_consistency_token(reply.consistency_token());
    auto row = engine()->GetTask(kAdmin, get, absl::Now() + absl::Seconds(5));
    ASSERT_TRUE(row.ok()) << row.status();
    v1::Task answered = reply;
    answered.clear_consistency_token();
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(answered, *row))
        << "reply " << answered.DebugString() << "\nrow " << row->DebugString();
  }
  void ExpectRowEquals(const v1::Rule& reply) {
    v1::GetRuleRequest get;
    get.set_name(reply.name());
    get.set_min_consistency_token(reply.consistency_token());
    auto row = engine()->GetRule(kAdmin, get, absl::Now() + absl::Seconds(5));
    ASSERT_TRUE(row.ok()) << row.status();
    v1::Rule answered = reply;
    answered.clear_consistency_token();
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(answered, *row))
        << "reply " << answered.DebugString() << "\nrow " << row->DebugString();
  }

  std::unique_ptr<crm::testing::EngineHarness> h_;
};

MATCHER_P5(Work, reads, lookups, folds, seals, appends, "") {
  *result_listener << "reads " << arg.state_reads << ", lookups " << arg.request_lookups << ", folds " << arg.folds
                   << ", seals " << arg.seals << ", appends " << arg.appends;
  return arg.state_reads == reads && arg.request_lookups == lookups && arg.folds == folds && arg.seals == seals &&
         arg.appends == appends;
}

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
  EXPECT_EQ(FieldOf(engine()->GetRule(kRep, bad_token, absl::Now() + absl::Seconds(5)).status()),
            "min_consistency_token");
}

TEST_F(RuleEngineTest, DeleteRuleWritesRuleDeletedOnceAndTheRuleLeavesTheList) {
  const auto before = List(false);
  ASSERT_FALSE(before.empty());
  const v1::Rule target = before.back();
  const std::string id = target.name().substr(std::string("rules/").size());

  v1::DeleteRuleRequest del;
  del.set_name("bogus");
  EXPECT_EQ(FieldOf(Call(engine(), &TaskEngine::DeleteRule, kAdmin, del).status()), "name");
  del.set_name("rules/0190a0a0-0000-7000-8000-000000000000");
  EXPECT_EQ(Call(engine(), &TaskEngine::DeleteRule, kAdmin, del).status().code(), absl::StatusCode::kNotFound);
  del.set_name(target.name());
  del.set_etag("7");
  EXPECT_EQ(Call(engine(), &TaskEngine::DeleteRule, kAdmin, del).status().code(), absl::StatusCode::kAborted);
  del.set_etag("x");
  EXPECT_EQ(FieldOf(Call(engine(), &TaskEngine::DeleteRule, kAdmin, del).status()), "etag");
  del.set_etag(target.etag());
  del.set_request_id("delete-rule-1");
  auto deleted = Call(engine(), &TaskEngine::DeleteRule, kAdmin, del);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_TRUE(deleted->deleted());
  EXPECT_EQ(deleted->etag(), "2");
  // A retry with the same request id answers the same and writes nothing
  auto again = Call(engine(), &TaskEngine::DeleteRule, kAdmin, del);
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
  EXPECT_EQ(Call(engine(), &TaskEngine::UpdateRule, kAdmin, up).status().code(), absl::StatusCode::kNotFound);

  auto types = eventlog::testing::EventTypesOf(log(), kTopic, id);
  ASSERT_TRUE(types.ok()) << types.status();
  EXPECT_EQ(*types, (std::vector<std::string>{"crm.tasks.v1.RuleCreated", "crm.tasks.v1.RuleDeleted"}));
}

TEST_F(RuleEngineTest, CancelTaskClosesAnOpenTaskOnceAndOnlyForThoseWhoMayChangeIt) {
  v1::CreateTaskRequest create;
  create.mutable_task()->set_title("回访客户");
  *create.mutable_task()->mutable_due_time() = ToProto(clock().Now() + absl::Hours(24));
  auto task = Call(engine(), &TaskEngine::CreateTask, kRep, create);
  ASSERT_TRUE(task.ok()) << task.status();
  const std::string id = task->name().substr(std::string("tasks/").size());

  v1::CancelTaskRequest cancel;
  cancel.set_name(task->name());
  EXPECT_EQ(Call(engine(), &TaskEngine::CancelTask, kRep2, cancel).status().code(),
            absl::StatusCode::kPermissionDenied);
  cancel.set_name("tasks/0190a0a0-0000-7000-8000-000000000000");
  EXPECT_EQ(Call(engine(), &TaskEngine::CancelTask, kRep, cancel).status().code(), absl::StatusCode::kNotFound);
  cancel.set_name("rules/x");
  EXPECT_EQ(FieldOf(Call(engine(), &TaskEngine::CancelTask, kRep, cancel).status()), "name");
  cancel.set_name(task->name());
  auto cancelled = Call(engine(), &TaskEngine::CancelTask, kRep, cancel);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->status(), v1::TASK_STATUS_CANCELLED);
  v1::CompleteTaskRequest complete;
  complete.set_name(task->name());
  EXPECT_EQ(Call(engine(), &TaskEngine::CompleteTask, kRep, complete).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto types = eventlog::testing::EventTypesOf(log(), kTopic, id);
  ASSERT_TRUE(types.ok()) << types.status();
  EXPECT_EQ(*types, (std::vector<std::string>{"crm.tasks.v1.TaskCreated", "crm.tasks.v1.TaskCancelled"}));
}

TEST_F(RuleEngineTest, TaskWritesReadOnceFoldAndSealPerEventAppendOnceAndAnswerTheRow) {
  v1::CreateTaskRequest create;
  create.set_request_id("count-create");
  create.mutable_task()->set_title("回访客户");
  *create.mutable_task()->mutable_due_time() = ToProto(clock().Now() + absl::Hours(24));
  create.mutable_task()->add_reminder_offsets_minutes(60);
  kernel::StoreCounters work;
  auto created = Counted(&TaskEngine::CreateTask, kRep, create, &work);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_THAT(work, Work(1, 1, 1, 1, 1));
  EXPECT_EQ(created->etag(), "1");
  ExpectRowEquals(*created);

  v1::UpdateTaskRequest update;
  update.set_request_id("count-update");
  update.mutable_task()->set_name(created->name());
  update.mutable_task()->set_title("回访客户并确认交付");
  update.mutable_update_mask()->add_paths("title");
  update.set_etag(created->etag());
  auto updated = Counted(&TaskEngine::UpdateTask, kRep, update, &work);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_THAT(work, Work(1, 1, 1, 1, 1));
  EXPECT_EQ(updated->etag(), "2");
  ExpectRowEquals(*updated);

  // Repeats decide nothing and append nothing: the state as the first attempts left it.
  auto again = Counted(&TaskEngine::UpdateTask, kRep, update, &work);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_THAT(work, Work(1, 1, 0, 0, 0));
  EXPECT_EQ(again->etag(), "2");
  EXPECT_EQ(again->title(), "回访客户并确认交付");
  auto created_again = Counted(&TaskEngine::CreateTask, kRep, create, &work);
  ASSERT_TRUE(created_again.ok()) << created_again.status();
  EXPECT_THAT(work, Work(1, 1, 0, 0, 0));
  EXPECT_EQ(created_again->name(), created->name());
  EXPECT_EQ(created_again->etag(), "2");

  // The scheduler writes through the same path, without a request id.
  clock().Advance(absl::Hours(23));
  const kernel::StoreCounters before = engine()->WriteCounters();
  auto run = engine()->RunScheduler(clock().Now());
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->reminders, 1);
  EXPECT_THAT(Since(before), Work(1, 0, 1, 1, 1));

  const std::string id = created->name().substr(std::string("tasks/").size());
  auto types = eventlog::testing::EventTypesOf(log(), kTopic, id);
  ASSERT_TRUE(types.ok()) << types.status();
  EXPECT_EQ(*types, (std::vector<std::string>{"crm.tasks.v1.TaskCreated", "crm.tasks.v1.TaskUpdated",
                                              "crm.tasks.v1.ReminderDue"}));
}

TEST_F(RuleEngineTest, RuleWritesReadOnceFoldAndSealPerEventAppendOnceAndAnswerTheRow) {
  const auto seeded = List(false);
  ASSERT_FALSE(seeded.empty());
  v1::CreateRuleRequest create;
  create.set_request_id("count-rule");
  *create.mutable_rule()->mutable_definition() = seeded[0].definition();
  create.mutable_rule()->mutable_definition()->set_display_name("复制的规则");
  kernel::StoreCounters work;
  auto created = Counted(&TaskEngine::CreateRule, kAdmin, create, &work);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_THAT(work, Work(1, 1, 1, 1, 1));
  ExpectRowEquals(*created);

  v1::UpdateRuleRequest update;
  *update.mutable_rule() = *created;
  update.mutable_rule()->mutable_definition()->set_enabled(false);
  update.set_etag(created->etag());
  auto updated = Counted(&TaskEngine::UpdateRule, kAdmin, update, &work);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_THAT(work, Work(1, 0, 1, 1, 1));
  EXPECT_EQ(updated->etag(), "2");
  ExpectRowEquals(*updated);

  auto again = Counted(&TaskEngine::CreateRule, kAdmin, create, &work);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_THAT(work, Work(1, 1, 0, 0, 0));
  EXPECT_EQ(again->name(), created->name());
  EXPECT_EQ(again->etag(), "2");
}

// Response change of the port onto the kernel: a request id names one write, so reusing it for
// another task or rule is refused on request_id and writes nothing (it used to write).
TEST_F(RuleEngineTest, ARequestIdUsedForAnotherResourceIsRefusedAndWritesNothing) {
  v1::CreateTaskRequest create;
  create.set_request_id("shared-request");
  create.mutable_task()->set_title("回访客户");
  *create.mutable_task()->mutable_due_time() = ToProto(clock().Now() + absl::Hours(24));
  auto first = Call(engine(), &TaskEngine::CreateTask, kRep, create);
  ASSERT_TRUE(first.ok()) << first.status();
  create.set_request_id("");
  auto other = Call(engine(), &TaskEngine::CreateTask, kRep, create);
  ASSERT_TRUE(other.ok()) << other.status();
  const std::string other_id = other->name().substr(std::string("tasks/").size());

  v1::UpdateTaskRequest update;
  update.set_request_id("shared-request");
  update.mutable_task()->set_name(other->name());
  update.mutable_task()->set_title("改了别的任务");
  update.mutable_update_mask()->add_paths("title");
  auto reused = Call(engine(), &TaskEngine::UpdateTask, kRep, update);
  EXPECT_EQ(reused.status().code(), absl::StatusCode::kInvalidArgument) << reused.status();
  EXPECT_EQ(FieldOf(reused.status()), "request_id");
  v1::CancelTaskRequest cancel;
  cancel.set_request_id("shared-request");
  cancel.set_name(other->name());
  EXPECT_EQ(FieldOf(Call(engine(), &TaskEngine::CancelTask, kRep, cancel).status()), "request_id");
  // Another user's create with the same request id derives another task id: refused too.
  create.set_request_id("shared-request");
  EXPECT_EQ(FieldOf(Call(engine(), &TaskEngine::CreateTask, kRep2, create).status()), "request_id");
  v1::CreateRuleRequest rule;
  rule.set_request_id("shared-request");
  *rule.mutable_rule()->mutable_definition() = List(false)[0].definition();
  EXPECT_EQ(FieldOf(Call(engine(), &TaskEngine::CreateRule, kAdmin, rule).status()), "request_id");

  auto types = eventlog::testing::EventTypesOf(log(), kTopic, other_id);
  ASSERT_TRUE(types.ok()) << types.status();
  EXPECT_EQ(*types, (std::vector<std::string>{"crm.tasks.v1.TaskCreated"}));
  EXPECT_EQ(List(false).size(), DefaultRules().size());
}

}  // namespace
}  // namespace crm::tasks
