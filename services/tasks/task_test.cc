#include "services/tasks/task.h"

#include "gtest/gtest.h"
#include "libs/common/status_testing.h"
#include "libs/common/proto_time.h"

namespace crm::tasks {
namespace {

using crm::testing::FieldOf;

const Caller kRep{"rep1", "rep", "east"};
const Caller kRep2{"rep2", "rep", "east"};
const Caller kOtherRep{"rep9", "rep", "west"};
const Caller kManager{"mgr1", "manager", "east"};
const Caller kAdmin{"admin1", "admin", ""};
Caller kScheduler() { return {"scheduler", "service", ""}; }
const absl::Time kT0 = absl::FromUnixSeconds(1767225600);  // 2026-01-01 00:00Z

template <typename Cmd>
absl::Status Fold(TaskState& s, const Caller& c, const Cmd& cmd, absl::Time at) {
  auto events = Decide(s.version() == 0 ? nullptr : &s, c, cmd);
  if (!events.ok()) return events.status();
  for (const auto& e : *events) Apply(s, e, s.version() + 1, at, c.user_id);
  return absl::OkStatus();
}

TaskProfile Profile(absl::Time due) {
  TaskProfile p;
  p.set_title("回访客户");
  *p.mutable_due_time() = ToProto(due);
  p.add_reminder_offsets_minutes(60);
  p.add_reminder_offsets_minutes(24 * 60);
  return p;
}

TEST(TaskTest, CreateDefaultsToTheCallerAndNormalPriority) {
  TaskState s;
  ASSERT_TRUE(Fold(s, kRep, CreateTask{Profile(kT0 + absl::Hours(48))}, kT0).ok());
  EXPECT_EQ(s.profile().assignee_id(), "rep1");
  EXPECT_EQ(s.profile().team_id(), "east");
  EXPECT_EQ(s.profile().priority(), v1::TASK_PRIORITY_NORMAL);
  EXPECT_EQ(s.profile().channels(0), v1::CHANNEL_IN_APP);
  EXPECT_EQ(s.status(), v1::TASK_STATUS_OPEN);
  EXPECT_EQ(s.created_by(), "rep1");
}

TEST(TaskTest, RejectsBadFieldsNamingThem) {
  TaskProfile p = Profile(kT0 + absl::Minutes(90));
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, CreateTask{p}).status()), "task.due_time");
  p = Profile(kT0);
  p.clear_due_time();
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, CreateTask{p}).status()), "task.due_time");
  p = Profile(kT0);
  p.set_title("");
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, CreateTask{p}).status()), "task.title");
  p = Profile(kT0);
  p.set_related("accounts/1");
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, CreateTask{p}).status()), "task.related");
  p = Profile(kT0);
  p.add_reminder_offsets_minutes(60);
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, CreateTask{p}).status()), "task.reminder_offsets_minutes");
  p = Profile(kT0);
  p.add_channels(static_cast<v1::Channel>(99));
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, CreateTask{p}).status()), "task.channels");
  p = Profile(kT0);
  p.set_assignee_id("rep1");
  p.set_assignee_role("manager");
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, CreateTask{p}).status()), "task.assignee_role");
}

TEST(TaskTest, RepsAssignOnlyThemselvesOrTheirTeamsQueue) {
  TaskProfile p = Profile(kT0);
  p.set_assignee_id("rep2");
  EXPECT_EQ(Decide(nullptr, kRep, CreateTask{p}).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Decide(nullptr, kManager, CreateTask{p}).ok());
  p.set_team_id("west");
  EXPECT_EQ(Decide(nullptr, kManager, CreateTask{p}).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Decide(nullptr, kAdmin, CreateTask{p}).ok());
  p = Profile(kT0);
  p.set_assignee_role("manager");
  EXPECT_TRUE(Decide(nullptr, kRep, CreateTask{p}).ok());
}

TEST(TaskTest, VisibilityFollowsAssigneeCreatorTeamAndQueue) {
  TaskState s;
  ASSERT_TRUE(Fold(s, kRep, CreateTask{Profile(kT0)}, kT0).ok());
  EXPECT_TRUE(CanSee(kRep, s));
  EXPECT_FALSE(CanSee(kRep2, s));
  EXPECT_TRUE(CanSee(kManager, s));
  EXPECT_FALSE(CanSee(Caller{"m9", "manager", "west"}, s));
  TaskState q;
  TaskProfile p = Profile(kT0);
  p.set_assignee_role("rep");
  ASSERT_TRUE(Fold(q, kManager, CreateTask{p}, kT0).ok());
  EXPECT_TRUE(CanSee(kRep2, q));
  EXPECT_FALSE(CanSee(kOtherRep, q));
  // Anyone of the queue's role may take and complete it; others may not.
  EXPECT_TRUE(Decide(&q, kRep2, CompleteTask{"done", ""}).ok());
  EXPECT_EQ(Decide(&q, kOtherRep, CompleteTask{"", ""}).status().code(), absl::StatusCode::kPermissionDenied);
}

// Tokens without a team matched the tasks of no team: a manager handed them out, and every
// rep without a team took the reps' queue of no team.
TEST(TaskTest, TokensWithoutATeamMatchNoTeam) {
  const Caller teamless_manager{"m7", "manager", ""};
  const Caller teamless_rep{"u7", "rep", ""};
  TaskProfile p = Profile(kT0);
  p.set_assignee_id("u7");
  p.set_team_id("");
  EXPECT_EQ(Decide(nullptr, teamless_manager, CreateTask{p}).status().code(), absl::StatusCode::kPermissionDenied);
  TaskState mine;
  ASSERT_TRUE(Fold(mine, kAdmin, CreateTask{p}, kT0).ok());
  EXPECT_TRUE(CanSee(teamless_rep, mine));  // their own task
  EXPECT_FALSE(CanSee(teamless_manager, mine));
  p.clear_assignee_id();
  p.set_assignee_role("rep");
  TaskState q;
  ASSERT_TRUE(Fold(q, kAdmin, CreateTask{p}, kT0).ok());
  EXPECT_FALSE(CanSee(teamless_rep, q));
  EXPECT_EQ(Decide(&q, teamless_rep, CompleteTask{"", ""}).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Decide(nullptr, teamless_rep, CreateTask{p}).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(TaskTest, UpdateRecordsOnlyChangedFieldsAndResetsRemindersOnANewDueTime) {
  TaskState s;
  ASSERT_TRUE(Fold(s, kRep, CreateTask{Profile(kT0 + absl::Hours(48))}, kT0).ok());
  ASSERT_TRUE(Fold(s, kScheduler(), FireReminder{24 * 60, kT0 + absl::Hours(24)}, kT0 + absl::Hours(24)).ok());
  ASSERT_EQ(s.reminders_sent_size(), 1);
  TaskProfile p;
  p.set_title("回访客户");  // unchanged
  *p.mutable_due_time() = ToProto(kT0 + absl::Hours(72));
  auto d = Decide(&s, kRep, UpdateTask{p, {"title", "due_time"}});
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->size(), 1u);
  const auto& u = std::get<v1::TaskUpdated>((*d)[0]);
  ASSERT_EQ(u.changed_fields_size(), 1);
  EXPECT_EQ(u.changed_fields(0), "due_time");
  Apply(s, (*d)[0], s.version() + 1, kT0 + absl::Hours(25), "rep1");
  EXPECT_EQ(s.reminders_sent_size(), 0);
  EXPECT_EQ(PendingItems(s).size(), 3u);  // two reminders and the due time again
}

TEST(TaskTest, CompletedTasksAreClosedUntilReopened) {
  TaskState s;
  ASSERT_TRUE(Fold(s, kRep, CreateTask{Profile(kT0)}, kT0).ok());
  ASSERT_TRUE(Fold(s, kRep, CompleteTask{"客户已续约", "c1"}, kT0 + absl::Hours(1)).ok());
  EXPECT_EQ(s.status(), v1::TASK_STATUS_DONE);
  EXPECT_EQ(s.completion_note(), "客户已续约");
  EXPECT_EQ(s.customer_id(), "c1");
  EXPECT_TRUE(Decide(&s, kRep, CompleteTask{}).value().empty());  // a repeat records nothing
  EXPECT_EQ(Decide(&s, kRep, CancelTask{}).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Decide(&s, kRep, UpdateTask{Profile(kT0), {"title"}}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(PendingItems(s).empty());
  ASSERT_TRUE(Fold(s, kRep, ReopenTask{"客户反悔"}, kT0 + absl::Hours(2)).ok());
  EXPECT_EQ(s.status(), v1::TASK_STATUS_OPEN);
  EXPECT_TRUE(s.completion_note().empty());
}

TEST(TaskTest, RemindersFallDueAtTheirOffsetsOnceAndStaleOnesAreSkipped) {
  TaskState s;
  // Created 10 hours before it is due: the 24-hour reminder would be in the past.
  ASSERT_TRUE(Fold(s, kRep, CreateTask{Profile(kT0 + absl::Hours(10))}, kT0).ok());
  auto items = PendingItems(s);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].offset_minutes, 60);
  EXPECT_EQ(items[0].at, kT0 + absl::Hours(9));
  EXPECT_EQ(items[1].offset_minutes, -1);
  EXPECT_TRUE(Decide(&s, kScheduler(), FireReminder{60, kT0 + absl::Hours(8)}).value().empty());  // not yet
  auto fired = Decide(&s, kScheduler(), FireReminder{60, kT0 + absl::Hours(9)});
  ASSERT_TRUE(fired.ok());
  ASSERT_EQ(fired->size(), 1u);
  const auto& r = std::get<v1::ReminderDue>((*fired)[0]);
  EXPECT_EQ(r.assignee_id(), "rep1");
  EXPECT_EQ(r.channels(0), v1::CHANNEL_IN_APP);
  Apply(s, (*fired)[0], s.version() + 1, kT0 + absl::Hours(9), "scheduler");
  EXPECT_TRUE(Decide(&s, kScheduler(), FireReminder{60, kT0 + absl::Hours(9)}).value().empty());  // once
  EXPECT_TRUE(Decide(&s, kScheduler(), ReportOverdue{kT0 + absl::Hours(9)}).value().empty());
  ASSERT_TRUE(Fold(s, kScheduler(), ReportOverdue{kT0 + absl::Hours(10)}, kT0 + absl::Hours(10)).ok());
  EXPECT_TRUE(s.overdue_reported());
  EXPECT_TRUE(PendingItems(s).empty());
}

TEST(TaskTest, AutomatedCreateIsOncePerIdAndOnlyForServices) {
  TaskState s;
  v1::Origin o;
  o.set_rule_id("r1");
  EXPECT_EQ(Decide(nullptr, kRep, CreateAutomatedTask{Profile(kT0), o}).status().code(),
            absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(Fold(s, kScheduler(), CreateAutomatedTask{Profile(kT0), o}, kT0).ok());
  EXPECT_EQ(s.origin().rule_id(), "r1");
  EXPECT_TRUE(Decide(&s, kScheduler(), CreateAutomatedTask{Profile(kT0), o}).value().empty());
}

TEST(TaskTest, DueTimesRoundUpToTheHour) {
  EXPECT_EQ(DueOnTheHour(kT0), kT0);
  EXPECT_EQ(DueOnTheHour(kT0 + absl::Seconds(1)), kT0 + absl::Hours(1));
  EXPECT_EQ(DueOnTheHour(kT0 + absl::Minutes(59)), kT0 + absl::Hours(1));
}

}  // namespace
}  // namespace crm::tasks
