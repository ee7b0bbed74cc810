// The tasks engine end to end on an embedded log, beside real customers and opportunities
// engines whose topics it follows, under a manual clock: given/when/then.
#include "services/tasks/task_engine.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "libs/common/list_page_testing.h"
#include "libs/common/status_testing.h"
#include "libs/common/wait_testing.h"
#include "libs/common/proto_time.h"
#include "libs/common/request.h"
#include "libs/common/caller_testing.h"
#include "libs/eventlog/envelope.h"
#include "libs/projection/rebuild.h"
#include "services/customers/customer_engine.h"
#include "services/opportunities/opportunity_engine.h"
#include "services/tickets/domain_testing.h"
#include "services/tickets/ticket_engine.h"
#include "libs/testing/engine_harness.h"

namespace crm::tasks {
namespace {

using crm::testing::AbortedInfo;
using crm::testing::Call;
using crm::testing::FieldOf;

using crm::testing::kAdmin;
using crm::testing::kManager;
using crm::testing::kRep;
using crm::testing::kRep2;
using crm::testing::Service;
// 2026-03-02 09:00 in UTC+8.
const absl::Time kStart = absl::FromUnixSeconds(1772413200);

class TaskEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto h = crm::testing::EngineHarness::Create({.name = "task-engine", .start = kStart});
    ASSERT_TRUE(h.ok()) << h.status();
    h_ = *std::move(h);
    for (Service s : {Service::kCustomers, Service::kOpportunities}) {
      const absl::Status opened = h_->Open(s);
      ASSERT_TRUE(opened.ok()) << opened;
    }
    OpenTasks();
  }
  void CloseTasks() { h_->Close(Service::kTasks); }
  void OpenTasks(const std::string& proj = "") {
    const absl::Status s = h_->Open(Service::kTasks, proj);
    ASSERT_TRUE(s.ok()) << s;
  }
  TaskEngine* engine() const { return h_->tasks(); }
  customers::CustomerEngine* customers() const { return h_->customers(); }
  opportunities::OpportunityEngine* opportunities() const { return h_->opportunities(); }
  projection::ProjectionDb* db() const { return h_->db(Service::kTasks); }
  eventlog::Log& log() const { return h_->log(); }
  ManualClock& clock() const { return h_->clock(); }

  v1::Task NewTask(const Caller& c, absl::Duration due_in, std::vector<int32_t> offsets = {},
                   const std::string& related = "") {
    v1::CreateTaskRequest req;
    req.mutable_task()->set_title("打电话给客户");
    *req.mutable_task()->mutable_due_time() = ToProto(kStart + due_in);
    for (int32_t o : offsets) req.mutable_task()->add_reminder_offsets_minutes(o);
    req.mutable_task()->set_related(related);
    auto t = Call(engine(), &TaskEngine::CreateTask, c, req);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : v1::Task();
  }
  std::vector<v1::Task> List(const Caller& c, v1::TaskView view, const std::string& filter = "") {
    v1::ListTasksRequest req;
    req.set_view(view);
    req.set_filter(filter);
    req.set_page_size(1000);
    auto got = engine()->ListTasks(c, req, absl::Now() + absl::Seconds(5));
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? std::vector<v1::Task>(got->tasks().begin(), got->tasks().end()) : std::vector<v1::Task>();
  }
  // Tasks a rule made about `related`, waiting (up to 10 s) for at least `n`: automation runs
  // after the follower commits.
  std::vector<v1::Task> RuleTasks(const std::string& related, size_t n = 1) {
    std::vector<v1::Task> out;
    EXPECT_TRUE(crm::testing::WaitUntil(
        absl::StrCat(n, " tasks of rules about ", related), absl::Seconds(10),
        [&] {
          out.clear();
          for (auto& t : List(kAdmin, v1::TASK_VIEW_UNSPECIFIED, absl::StrCat("related = \"", related, "\""))) {
            if (t.has_origin()) out.push_back(t);
          }
          return out.size() >= n;
        },
        [&] { return absl::StrCat(out.size(), " tasks"); }));
    return out;
  }
  std::vector<v1::ResourceEvent> Events(const std::string& parent) {
    v1::ListEventsRequest req;
    req.set_parent(parent);
    req.set_page_size(1000);
    auto got = engine()->ListEvents(kAdmin, req, absl::Now() + absl::Seconds(5));
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? std::vector<v1::ResourceEvent>(got->events().begin(), got->events().end())
                    : std::vector<v1::ResourceEvent>();
  }
  // Waits (up to 10 s) until this service's followers applied the writes `token` (another
  // service's answer) names, then writes what automation decided on them: afterwards
  // whatever the rules do about those writes is done, so that "nothing happened" is a fact
  // and not a guess about how long a follower takes.
  void CaughtUpWith(const std::string& token) {
    const absl::Status s = projection::WaitForToken(*db(), token, "token", absl::Now() + absl::Seconds(10));
    ASSERT_TRUE(s.ok()) << "the tasks service did not catch up with " << token << ": " << s;
    auto written = engine()->ProcessPending();
    ASSERT_TRUE(written.ok()) << written.status();
  }
  int64_t TopicEnd() {
    auto ends = log().EndOffsets(kTopic);
    int64_t n = 0;
    for (int64_t e : *ends) n += e;
    return n;
  }

  customers::v1::Customer Customer(const Caller& c, const std::string& name, const std::string& phone) {
    customers::v1::CreateCustomerRequest req;
    req.mutable_customer()->set_display_name(name);
    req.mutable_customer()->set_phone(phone);
    auto created = Call(&customers()->customer_commands(), &customers::CustomerCommands::Create, c, req);
    EXPECT_TRUE(created.ok()) << created.status();
    return *created;
  }
  opportunities::v1::Opportunity Opportunity(const Caller& c, const customers::v1::Customer& cu) {
    opportunities::v1::CreateOpportunityRequest req;
    req.mutable_opportunity()->set_customer(cu.name());
    req.mutable_opportunity()->set_title("智能仓储系统");
    req.mutable_opportunity()->mutable_amount()->set_amount_minor(50000000);
    req.mutable_opportunity()->set_expected_close_date("2026-06-30");
    req.set_min_consistency_token(cu.consistency_token());
    auto o = Call(opportunities(), &opportunities::OpportunityEngine::CreateOpportunity, c, req);
    EXPECT_TRUE(o.ok()) << o.status();
    return *o;
  }

  std::unique_ptr<crm::testing::EngineHarness> h_;
};

TEST_F(TaskEngineTest, TaskCenterViewsAndCountsFollowTheClock) {
  NewTask(kRep, absl::Hours(-1 + 0));  // due 08:00 today: overdue
  NewTask(kRep, absl::Hours(5));       // 14:00 today
  NewTask(kRep, absl::Hours(48));      // planned
  NewTask(kRep2, absl::Hours(5));      // a colleague's
  EXPECT_EQ(List(kRep, v1::TASK_VIEW_OVERDUE).size(), 1u);
  EXPECT_EQ(List(kRep, v1::TASK_VIEW_TODAY).size(), 1u);
  EXPECT_EQ(List(kRep, v1::TASK_VIEW_PLANNED).size(), 1u);
  EXPECT_EQ(List(kRep, v1::TASK_VIEW_OPEN).size(), 3u);
  EXPECT_EQ(List(kManager, v1::TASK_VIEW_OPEN).size(), 4u);
  EXPECT_EQ(List(kManager, v1::TASK_VIEW_TODAY, "assignee_id = \"u2\"").size(), 1u);
  v1::CountTasksRequest creq;
  auto counts = engine()->CountTasks(kRep, creq, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(counts->overdue(), 1);
  EXPECT_EQ(counts->today(), 1);
  EXPECT_EQ(counts->planned(), 1);
  creq.set_team_id("east");
  EXPECT_EQ(engine()->CountTasks(kRep, creq, absl::Now() + absl::Seconds(5)).status().code(),
            absl::StatusCode::kPermissionDenied);
  counts = engine()->CountTasks(kManager, creq, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->today(), 2);
  // Six hours later the 14:00 task is overdue too.
  clock().Advance(absl::Hours(6));
  EXPECT_EQ(List(kRep, v1::TASK_VIEW_OVERDUE).size(), 2u);
  EXPECT_TRUE(List(kRep, v1::TASK_VIEW_OVERDUE)[1].overdue());
}

TEST_F(TaskEngineTest, PagesWalkTheIndexesInDueOrderForEveryViewAndRole) {
  std::vector<std::string> names;
  for (int i = 0; i < 18; ++i) {
    // Due times from yesterday to next week, some equal; kRep's, kRep2's and the east reps' queue.
    const absl::Duration due = absl::Hours((i * 7) % 40 - 12);
    if (i % 3 == 2) {
      v1::CreateTaskRequest req;
      req.mutable_task()->set_title("队列任务");
      *req.mutable_task()->mutable_due_time() = ToProto(kStart + due);
      req.mutable_task()->set_assignee_role("rep");
      req.mutable_task()->set_team_id("east");
      auto t = Call(engine(), &TaskEngine::CreateTask, kManager, req);
      ASSERT_TRUE(t.ok()) << t.status();
      names.push_back(t->name());
    } else {
      names.push_back(NewTask(i % 3 ? kRep2 : kRep, due).name());
    }
  }
  for (int i = 0; i < 18; i += 5) {
    v1::CompleteTaskRequest done;
    done.set_name(names[i]);
    ASSERT_TRUE(Call(engine(), &TaskEngine::CompleteTask, kAdmin, done).ok());
  }
  clock().Advance(absl::Hours(1));
  const absl::Time now = clock().Now();
  const absl::Time day_end = absl::FromCivil(absl::CivilDay(absl::ToCivilDay(now, absl::FixedTimeZone(8 * 3600))) + 1,
                                             absl::FixedTimeZone(8 * 3600));
  for (v1::TaskView view : {v1::TASK_VIEW_UNSPECIFIED, v1::TASK_VIEW_OVERDUE, v1::TASK_VIEW_TODAY,
                            v1::TASK_VIEW_PLANNED, v1::TASK_VIEW_OPEN}) {
    for (const Caller& who : {kAdmin, kManager, kRep, kRep2}) {
      std::vector<std::pair<std::string, std::string>> want;  // (due key, id), name
      for (const auto& n : names) {
        v1::GetTaskRequest g;
        g.set_name(n);
        auto t = engine()->GetTask(who, g, absl::Now() + absl::Seconds(5));
        if (!t.ok()) continue;
        const absl::Time due = FromProto(t->due_time());
        const bool open = t->status() == v1::TASK_STATUS_OPEN;
        const bool in = view == v1::TASK_VIEW_UNSPECIFIED || (open && (view == v1::TASK_VIEW_OPEN ||
                                                                       (view == v1::TASK_VIEW_OVERDUE && due < now) ||
                                                                       (view == v1::TASK_VIEW_TODAY && due >= now && due < day_end) ||
                                                                       (view == v1::TASK_VIEW_PLANNED && due >= day_end)));
        // A rep lists their own and their queue's tasks; GetTask also shows them others they may see.
        const bool listed = who.role != "rep" || view == v1::TASK_VIEW_UNSPECIFIED || t->assignee_id() == who.user_id ||
                            (t->assignee_id().empty() && t->team_id() == who.team && t->assignee_role() == who.role);
        if (in && listed) want.push_back({absl::StrCat(projection::TimeKey(due), t->name()), n});
      }
      std::sort(want.begin(), want.end());
      std::vector<std::string> want_names;
      for (auto& w : want) want_names.push_back(w.second);
      for (int size : {1, 3, 1000}) {
        v1::ListTasksRequest req;
        req.set_view(view);
        req.set_page_size(size);
        const std::vector<std::string> got = crm::testing::PageThrough<v1::ListTasksRequest, v1::ListTasksResponse>(
            req, [&](const v1::ListTasksRequest& r) { return engine()->ListTasks(who, r, absl::Now() + absl::Seconds(5)); },
            [](const v1::ListTasksResponse& r) {
              std::vector<std::string> n;
              for (const auto& t : r.tasks()) n.push_back(t.name());
              return n;
            },
            static_cast<int64_t>(want.size()));
        EXPECT_EQ(got, want_names) << who.user_id << " view " << view << " size " << size;
      }
    }
  }
  // A token of one view is refused by another.
  v1::ListTasksRequest req;
  req.set_page_size(1);
  auto first = engine()->ListTasks(kAdmin, req, absl::Now() + absl::Seconds(5));
  ASSERT_FALSE(first->next_page_token().empty());
  req.set_page_token(first->next_page_token());
  req.set_view(v1::TASK_VIEW_OPEN);
  EXPECT_EQ(FieldOf(engine()->ListTasks(kAdmin, req, absl::Now() + absl::Seconds(5)).status()), "page_token");
}

TEST_F(TaskEngineTest, RepsSeeAndChangeOnlyTheirTasks) {
  v1::Task t = NewTask(kRep, absl::Hours(5));
  v1::GetTaskRequest get;
  get.set_name(t.name());
  EXPECT_EQ(engine()->GetTask(kRep2, get, absl::Now() + absl::Seconds(5)).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(engine()->GetTask(kManager, get, absl::Now() + absl::Seconds(5)).ok());
  v1::CompleteTaskRequest done;
  done.set_name(t.name());
  EXPECT_EQ(Call(engine(), &TaskEngine::CompleteTask, kRep2, done).status().code(),
            absl::StatusCode::kPermissionDenied);
  v1::CreateTaskRequest bad;
  bad.mutable_task()->set_title("x");
  *bad.mutable_task()->mutable_due_time() = ToProto(kStart + absl::Minutes(30));
  EXPECT_EQ(FieldOf(Call(engine(), &TaskEngine::CreateTask, kRep, bad).status()), "task.due_time");
}

TEST_F(TaskEngineTest, SchedulerEmitsEachReminderAndTheOverdueNoticeOnce) {
  v1::Task t = NewTask(kRep, absl::Hours(24), {60, 24 * 60 + 60});  // the second is before creation
  auto run = engine()->RunScheduler(clock().Now());
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->reminders, 0);
  clock().Advance(absl::Hours(23));
  run = engine()->RunScheduler(clock().Now());
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->reminders, 1);
  EXPECT_EQ(engine()->RunScheduler(clock().Now())->reminders, 0);  // once
  clock().Advance(absl::Hours(2));
  run = engine()->RunScheduler(clock().Now());
  EXPECT_EQ(run->overdue, 1);
  EXPECT_EQ(engine()->RunScheduler(clock().Now())->overdue, 0);
  auto events = Events(t.name());
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1].event_type(), "crm.tasks.v1.ReminderDue");
  // occurred_at is when the reminder fell due, not when the scheduler ran.
  EXPECT_EQ(FromProto(events[1].occurred_at()), kStart + absl::Hours(23));
  EXPECT_EQ(events[2].event_type(), "crm.tasks.v1.TaskOverdue");
  EXPECT_EQ(FromProto(events[2].occurred_at()), kStart + absl::Hours(24));
  EXPECT_NE(events[1].payload_json().find("CHANNEL_IN_APP"), std::string::npos);
}

TEST_F(TaskEngineTest, NewLeadRuleAsksItsOwnerToCallWithin24Hours) {
  customers::v1::CreateLeadRequest req;
  req.mutable_lead()->set_contact_name("王经理");
  req.mutable_lead()->set_company("深圳某科技");
  req.mutable_lead()->set_phone("13800138000");
  auto lead = Call(&customers()->leads(), &customers::LeadCommands::CreateLead, kRep, req);
  ASSERT_TRUE(lead.ok()) << lead.status();
  auto tasks = RuleTasks(lead->name());
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].assignee_id(), "u1");
  EXPECT_EQ(tasks[0].team_id(), "east");
  EXPECT_EQ(tasks[0].title(), "联系新线索：深圳某科技");
  EXPECT_EQ(FromProto(tasks[0].due_time()), kStart + absl::Hours(24));
  EXPECT_EQ(tasks[0].origin().cause_event_type(), "crm.customers.v1.LeadCreated");
  auto events = Events(tasks[0].name());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].actor().source(), common::v1::ACTOR_SOURCE_AUTOMATION);
  EXPECT_EQ(events[0].causation_id(), tasks[0].origin().cause_event_id());
}

TEST_F(TaskEngineTest, OpportunityRulesFollowStagesAndWins) {
  auto cu = Customer(kRep, "华为", "13900139000");
  auto opp = Opportunity(kRep, cu);
  opportunities::v1::MoveOpportunityStageRequest move;
  move.set_name(opp.name());
  move.set_stage_id("proposal");
  ASSERT_TRUE(Call(opportunities(), &opportunities::OpportunityEngine::MoveStage, kRep, move).ok());
  auto tasks = RuleTasks(opp.name());
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].title(), "跟进方案报价：智能仓储系统");
  EXPECT_EQ(FromProto(tasks[0].due_time()), kStart + absl::Hours(72));
  opportunities::v1::WinOpportunityRequest win;
  win.set_name(opp.name());
  ASSERT_TRUE(Call(opportunities(), &opportunities::OpportunityEngine::Win, kRep, win).ok());
  tasks = RuleTasks(opp.name(), 2);
  ASSERT_EQ(tasks.size(), 2u);
  EXPECT_EQ(tasks[1].title(), "成交回访：智能仓储系统");
  EXPECT_EQ(FromProto(tasks[1].due_time()), kStart + absl::Hours(15 * 24));
  EXPECT_EQ(tasks[1].assignee_id(), "u1");
}

TEST_F(TaskEngineTest, LostCustomersAndPlannedFollowUpsMakeTasks) {
  auto cu = Customer(kRep, "阿里", "13700137000");
  customers::v1::CreateFollowUpRequest fu;
  fu.set_parent(cu.name());
  fu.mutable_follow_up()->set_summary("电话沟通");
  fu.mutable_follow_up()->set_channel(customers::v1::FOLLOW_UP_CHANNEL_PHONE);
  *fu.mutable_follow_up()->mutable_next_follow_up_time() = ToProto(kStart + absl::Hours(50) + absl::Minutes(30));
  ASSERT_TRUE(Call(&customers()->customer_commands(), &customers::CustomerCommands::CreateFollowUp, kRep, fu).ok());
  auto tasks = RuleTasks(cu.name());
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(FromProto(tasks[0].due_time()), kStart + absl::Hours(51));  // to the hour
  customers::v1::UpdateCustomerRequest up;
  up.mutable_customer()->set_name(cu.name());
  up.mutable_customer()->set_lifecycle_status(customers::v1::LIFECYCLE_STATUS_LOST);
  up.mutable_customer()->set_churn_reason("选择了竞品");
  up.mutable_update_mask()->add_paths("lifecycle_status");
  up.mutable_update_mask()->add_paths("churn_reason");
  auto updated = Call(&customers()->customer_commands(), &customers::CustomerCommands::Update, kRep, up);
  ASSERT_TRUE(updated.ok()) << updated.status();
  tasks = RuleTasks(cu.name(), 2);
  ASSERT_EQ(tasks.size(), 2u);
  EXPECT_EQ(tasks[0].title(), "流失客户关怀：阿里");  // due in 2 days, before the planned follow-up
  EXPECT_EQ(tasks[1].title(), "按计划跟进：阿里");
}

TEST_F(TaskEngineTest, ContractRenewalTaskComes30DaysBeforeTheEnd) {
  auto cu = Customer(kRep, "腾讯", "13600136000");
  opportunities::v1::CreateContractRequest creq;
  creq.mutable_contract()->set_customer(cu.name());
  creq.mutable_contract()->set_title("年度服务合同");
  creq.mutable_contract()->mutable_amount()->set_amount_minor(1200000);
  creq.mutable_contract()->set_start_date("2026-03-01");
  creq.mutable_contract()->set_end_date("2026-06-30");
  creq.set_min_consistency_token(cu.consistency_token());
  auto k = Call(opportunities(), &opportunities::OpportunityEngine::CreateContract, kRep, creq);
  ASSERT_TRUE(k.ok()) << k.status();
  opportunities::v1::SubmitContractRequest sub;
  sub.set_name(k->name());
  ASSERT_TRUE(Call(opportunities(), &opportunities::OpportunityEngine::SubmitContract, kRep, sub).ok());
  opportunities::v1::ApproveContractRequest ok;
  ok.set_name(k->name());
  auto active = Call(opportunities(), &opportunities::OpportunityEngine::ApproveContract, kManager, ok);
  ASSERT_TRUE(active.ok()) << active.status();
  ASSERT_EQ(active->status(), opportunities::v1::CONTRACT_STATUS_ACTIVE);
  ASSERT_TRUE(engine()->followers()[1]->status().ok());
  CaughtUpWith(active->consistency_token());  // the scheduler reads the activation's watch
  // 2026-05-31 00:00 UTC+8 is 30 days before the end.
  const absl::Time fire = absl::FromCivil(absl::CivilDay(2026, 5, 31), absl::FixedTimeZone(8 * 3600));
  clock().Set(fire - absl::Hours(1));
  EXPECT_EQ(engine()->RunScheduler(clock().Now())->date_tasks, 0);
  clock().Set(fire + absl::Minutes(5));
  auto run = engine()->RunScheduler(clock().Now());
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->date_tasks, 1);
  EXPECT_EQ(engine()->RunScheduler(clock().Now())->date_tasks, 0);  // once per date
  auto tasks = RuleTasks(k->name());
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].title(), "合同续约：年度服务合同");
  EXPECT_EQ(tasks[0].origin().cause_date(), "2026-06-30");
  EXPECT_EQ(FromProto(tasks[0].due_time()), fire + absl::Hours(7 * 24 + 1));  // rounded up from 00:05
}

TEST_F(TaskEngineTest, ACompletionNoteBecomesAFollowUpOnTheCustomerOnce) {
  auto cu = Customer(kRep, "京东", "13200132000");
  auto opp = Opportunity(kRep, cu);
  CaughtUpWith(opp.consistency_token());  // the tasks service learns the opportunity's customer
  v1::Task t = NewTask(kRep, absl::Hours(5), {}, opp.name());
  clock().Advance(absl::Hours(1));
  v1::CompleteTaskRequest done;
  done.set_name(t.name());
  done.set_note("客户同意下周签约");
  auto completed = Call(engine(), &TaskEngine::CompleteTask, kRep, done);
  ASSERT_TRUE(completed.ok()) << completed.status();
  EXPECT_EQ(completed->status(), v1::TASK_STATUS_DONE);
  EXPECT_TRUE(Call(engine(), &TaskEngine::CompleteTask, kRep, done).ok());  // a repeat records nothing
  customers::v1::ListFollowUpsRequest lreq;
  lreq.set_parent(cu.name());
  std::vector<customers::v1::FollowUp> notes;
  for (int i = 0; i < 1000 && notes.empty(); ++i) {
    auto got = customers()->queries().ListFollowUps(kRep, lreq, absl::Now() + absl::Seconds(5));
    ASSERT_TRUE(got.ok()) << got.status();
    notes.assign(got->follow_ups().begin(), got->follow_ups().end());
    if (notes.empty()) absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].summary(), "客户同意下周签约");
  EXPECT_EQ(notes[0].created_by(), "u1");
  EXPECT_EQ(FromProto(notes[0].follow_up_time()), kStart + absl::Hours(1));
  // Restarting the customers service does not record it twice.
  ASSERT_TRUE(h_->Open(Service::kCustomers).ok());
  auto again = customers()->queries().ListFollowUps(kRep, lreq, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->follow_ups_size(), 1);
  v1::CountTasksRequest creq;
  EXPECT_EQ(engine()->CountTasks(kRep, creq, absl::Now() + absl::Seconds(5))->done_today(), 1);
}

TEST_F(TaskEngineTest, RelatedRecordsMustExistAndBeVisible) {
  auto mine = Customer(kRep, "美的", "13100131000");  // a moment ago: the engine waits to know it
  v1::Task t = NewTask(kRep, absl::Hours(5), {}, mine.name());
  EXPECT_EQ(t.related(), mine.name());
  auto theirs = Customer(kRep2, "格力", "13100131001");
  v1::CreateTaskRequest req;
  req.mutable_task()->set_title("x");
  *req.mutable_task()->mutable_due_time() = ToProto(kStart + absl::Hours(5));
  req.mutable_task()->set_related(theirs.name());
  EXPECT_EQ(Call(engine(), &TaskEngine::CreateTask, kRep, req).status().code(),
            absl::StatusCode::kPermissionDenied);
  req.mutable_task()->set_related("customers/0190f1c4-0000-7000-8000-000000000000");
  EXPECT_EQ(FieldOf(Call(engine(), &TaskEngine::CreateTask, kRep, req).status()), "task.related");
  v1::UpdateTaskRequest up;
  up.mutable_task()->set_name(t.name());
  up.mutable_task()->set_related(theirs.name());
  up.mutable_update_mask()->add_paths("related");
  EXPECT_EQ(Call(engine(), &TaskEngine::UpdateTask, kRep, up).status().code(), absl::StatusCode::kPermissionDenied);
}

// The tickets service's SLA breach (its scheduler, under the same manual clock) becomes an
// urgent task for the ticket's assignee; tasks about tickets are checked like any record.
TEST_F(TaskEngineTest, ATicketsSlaBreachEscalatesToItsAssignee) {
  ASSERT_TRUE(h_->Open(Service::kTickets).ok());
  tickets::TicketEngine* ticketing = h_->tickets();
  tickets::v1::CreateTicketTypeRequest type;
  type.set_ticket_type_id("repair");
  *type.mutable_definition() = tickets::testing::RepairDefinition();
  ASSERT_TRUE(Call(ticketing, &tickets::TicketEngine::CreateTicketType, kAdmin, type).ok());
  tickets::v1::SetSlaPolicyRequest policy;
  policy.mutable_policy()->set_type_id("repair");
  policy.mutable_policy()->set_resolution_minutes(60);
  ASSERT_TRUE(Call(ticketing, &tickets::TicketEngine::SetSlaPolicy, kAdmin, policy).ok());
  tickets::v1::CreateTicketRequest req;
  req.mutable_ticket()->set_ticket_type("ticketTypes/repair");
  req.mutable_ticket()->set_title("笔记本无法开机");
  for (auto [k, text] : {std::pair<const char*, const char*>{"serial", "AB123456"}, {"description", "屏幕不亮，无法开机"}}) {
    (*req.mutable_ticket()->mutable_values())[k].set_text(text);
  }
  (*req.mutable_ticket()->mutable_values())["kind"].set_choice("hardware");
  auto ticket = Call(ticketing, &tickets::TicketEngine::CreateTicket, kRep, req);
  ASSERT_TRUE(ticket.ok()) << ticket.status();

  clock().Advance(absl::Hours(2));
  ASSERT_EQ(ticketing->RunScheduler(clock().Now())->breaches, 1);
  auto escalated = RuleTasks(ticket->name());
  ASSERT_EQ(escalated.size(), 1u);
  EXPECT_EQ(escalated[0].title(), "工单已超时：笔记本无法开机");
  EXPECT_EQ(escalated[0].assignee_id(), "");  // unassigned ticket: the team managers' queue
  EXPECT_EQ(escalated[0].assignee_role(), "manager");
  EXPECT_EQ(escalated[0].team_id(), "east");
  EXPECT_EQ(escalated[0].priority(), v1::TASK_PRIORITY_URGENT);
  EXPECT_EQ(escalated[0].origin().rule_id(), DerivedId("rules", "default.sla_breach_escalation"));

  // A manual task about the ticket: its creator may, another rep may not (hidden from them).
  EXPECT_EQ(NewTask(kRep, absl::Hours(5), {}, ticket->name()).related(), ticket->name());
  v1::CreateTaskRequest other;
  other.mutable_task()->set_title("x");
  *other.mutable_task()->mutable_due_time() = ToProto(kStart + absl::Hours(5));
  other.mutable_task()->set_related("tickets/0190f1c4-0000-7000-8000-000000000000");
  EXPECT_EQ(FieldOf(Call(engine(), &TaskEngine::CreateTask, kRep, other).status()), "task.related");
  h_->Close(Service::kTickets);
}

TEST_F(TaskEngineTest, AReminderOnlyRuleEmitsOneReminderPerCause) {
  v1::CreateRuleRequest req;
  auto* d = req.mutable_rule()->mutable_definition();
  d->set_display_name("大客户提醒经理");
  d->set_enabled(true);
  d->set_reminder_only(true);
  d->mutable_event()->set_event_type("crm.customers.v1.CustomerCreated");
  auto* a = d->mutable_action();
  a->set_title("新客户：{record_name}");
  a->set_assignee(v1::ASSIGNEE_KIND_ROLE);
  a->set_assignee_role("manager");
  a->add_channels(v1::CHANNEL_DINGTALK);
  auto rule = Call(engine(), &TaskEngine::CreateRule, kAdmin, req);
  ASSERT_TRUE(rule.ok()) << rule.status();
  clock().Advance(absl::Seconds(1));
  Customer(kRep, "小米", "13000130000");
  auto reminders = [&] {
    std::vector<v1::RuleReminderEmitted> out;
    std::vector<eventlog::Position> from;
    for (int32_t p = 0; p < kPartitions; ++p) from.push_back({p, 0});
    auto records = eventlog::ReadToEnd(log(), kTopic, from);
    EXPECT_TRUE(records.ok()) << records.status();
    if (!records.ok()) return out;
    for (const auto& r : *records) {
      auto env = eventlog::DecodeEnvelope(r.value);
      EXPECT_TRUE(env.ok()) << env.status();
      v1::RuleReminderEmitted e;
      if (env.ok() && env->event_type() == v1::RuleReminderEmitted::descriptor()->full_name() && env->payload().UnpackTo(&e)) {
        out.push_back(e);
      }
    }
    return out;
  };
  for (int i = 0; i < 500 && reminders().empty(); ++i) absl::SleepFor(absl::Milliseconds(10));
  auto got = reminders();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].reminder().title(), "新客户：小米");
  EXPECT_EQ(got[0].reminder().assignee_role(), "manager");
  EXPECT_EQ(got[0].reminder().team_id(), "east");
  EXPECT_EQ(got[0].reminder().channels(0), v1::CHANNEL_DINGTALK);
  EXPECT_EQ(got[0].origin().rule_id(), rule->name().substr(6));
  OpenTasks("tasks-rebuilt");
  EXPECT_EQ(reminders().size(), 1u);
}

TEST_F(TaskEngineTest, RulesFireOncePerCauseAcrossRestartsAndRebuilds) {
  customers::v1::CreateLeadRequest req;
  req.mutable_lead()->set_contact_name("李四");
  req.mutable_lead()->set_phone("13500135000");
  auto lead = Call(&customers()->leads(), &customers::LeadCommands::CreateLead, kRep, req);
  ASSERT_TRUE(lead.ok());
  ASSERT_EQ(RuleTasks(lead->name()).size(), 1u);
  const int64_t end = TopicEnd();
  // A restart re-reads nothing twice; a lead made while the service was down gets its task at
  // start.
  CloseTasks();
  req.mutable_lead()->set_phone("13500135001");
  auto lead2 = Call(&customers()->leads(), &customers::LeadCommands::CreateLead, kRep, req);
  ASSERT_TRUE(lead2.ok());
  OpenTasks();
  EXPECT_EQ(RuleTasks(lead2->name()).size(), 1u);
  EXPECT_EQ(TopicEnd(), end + 1);
  // A rebuild from the log makes no task again, and equals the live projections.
  OpenTasks("tasks-rebuilt");
  EXPECT_EQ(TopicEnd(), end + 1);
  EXPECT_EQ(RuleTasks(lead->name()).size(), 1u);
  auto rebuilt = h_->Checksum(Service::kTasks);
  OpenTasks("tasks");
  EXPECT_EQ(*h_->Checksum(Service::kTasks), *rebuilt);
}

TEST_F(TaskEngineTest, RedeliveredCausesMakeNoSecondTask) {
  customers::v1::CreateLeadRequest req;
  req.mutable_lead()->set_contact_name("赵六");
  req.mutable_lead()->set_phone("13400134000");
  auto lead = Call(&customers()->leads(), &customers::LeadCommands::CreateLead, kRep, req);
  ASSERT_TRUE(lead.ok());
  ASSERT_EQ(RuleTasks(lead->name()).size(), 1u);
  const int64_t end = TopicEnd();
  // Apply every customers record again as a redelivery would.
  std::vector<eventlog::Position> from;
  for (int32_t p = 0; p < static_cast<int32_t>(log().EndOffsets("crm.customers.events.v1")->size()); ++p) {
    from.push_back({p, 0});
  }
  auto records = eventlog::ReadToEnd(log(), "crm.customers.events.v1", from);
  ASSERT_TRUE(records.ok()) << records.status();
  RuleBook book;
  FollowContext ctx{&book, absl::FixedTimeZone(8 * 3600)};
  projection::Batch b;
  for (const auto& r : *records) ASSERT_TRUE(ApplyFollowedRecord(*db(), ctx, r, b).ok());
  ASSERT_TRUE(db()->Commit(b, "crm.customers.events.v1", std::map<int32_t, int64_t>{}).ok());
  auto written = engine()->ProcessPending();
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(*written, 0);
  EXPECT_EQ(TopicEnd(), end);
}

TEST_F(TaskEngineTest, EditedRulesApplyFromTheirEditOn) {
  v1::ListRulesRequest lreq;
  auto rules = engine()->ListRules(kAdmin, lreq, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(rules.ok());
  ASSERT_EQ(rules->rules_size(), 7);
  v1::Rule lead_rule;
  for (const auto& r : rules->rules()) {
    if (r.default_key() == "default.new_lead") lead_rule = r;
  }
  v1::UpdateRuleRequest up;
  *up.mutable_rule() = lead_rule;
  up.mutable_rule()->mutable_definition()->set_enabled(false);
  up.set_etag(lead_rule.etag());
  clock().Advance(absl::Seconds(1));
  ASSERT_TRUE(Call(engine(), &TaskEngine::UpdateRule, kAdmin, up).ok());
  clock().Advance(absl::Seconds(1));
  customers::v1::CreateLeadRequest req;
  req.mutable_lead()->set_contact_name("钱七");
  req.mutable_lead()->set_phone("13300133000");
  auto lead = Call(&customers()->leads(), &customers::LeadCommands::CreateLead, kRep, req);
  ASSERT_TRUE(lead.ok());
  CaughtUpWith(lead->consistency_token());
  EXPECT_TRUE(RuleTasks(lead->name(), 0).empty());
  // A bad rule is refused with the field named.
  v1::CreateRuleRequest bad;
  *bad.mutable_rule()->mutable_definition() = lead_rule.definition();
  bad.mutable_rule()->mutable_definition()->mutable_event()->set_event_type("crm.nope.v1.Nothing");
  EXPECT_EQ(FieldOf(Call(engine(), &TaskEngine::CreateRule, kAdmin, bad).status()),
            "rule.definition.event.event_type");
}

// The etag is the command's expected version, checked by the store before Decide: a stale one
// writes nothing and names the request field it came from.
TEST_F(TaskEngineTest, AStaleEtagWritesNothingAndNamesItsField) {
  const v1::Task task = NewTask(kRep, absl::Hours(2));
  v1::UpdateTaskRequest up;
  up.mutable_task()->set_name(task.name());
  up.mutable_task()->set_title("改期");
  up.set_etag("2");
  EXPECT_EQ(AbortedInfo(Call(engine(), &TaskEngine::UpdateTask, kRep, up).status()), "ETAG_MISMATCH etag");
  v1::CompleteTaskRequest complete;
  complete.set_name(task.name());
  complete.set_etag("0");  // "nothing written yet": it has been
  EXPECT_EQ(AbortedInfo(Call(engine(), &TaskEngine::CompleteTask, kRep, complete).status()), "ETAG_MISMATCH etag");
  v1::CancelTaskRequest cancel;
  cancel.set_name(task.name());
  cancel.set_etag("3");
  EXPECT_EQ(AbortedInfo(Call(engine(), &TaskEngine::CancelTask, kRep, cancel).status()), "ETAG_MISMATCH etag");
  v1::ReopenTaskRequest reopen;
  reopen.set_name(task.name());
  reopen.set_etag("4");
  EXPECT_EQ(AbortedInfo(Call(engine(), &TaskEngine::ReopenTask, kRep, reopen).status()), "ETAG_MISMATCH etag");
  EXPECT_EQ(Events(task.name()).size(), 1u) << "nothing written";

  v1::ListRulesRequest lreq;
  auto rules = engine()->ListRules(kAdmin, lreq, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(rules.ok() && rules->rules_size() > 0);
  const v1::Rule rule = rules->rules(0);
  v1::UpdateRuleRequest rup;
  *rup.mutable_rule() = rule;
  rup.mutable_rule()->mutable_definition()->set_enabled(!rule.definition().enabled());
  rup.set_etag(absl::StrCat(std::stoi(rule.etag()) + 1));
  EXPECT_EQ(AbortedInfo(Call(engine(), &TaskEngine::UpdateRule, kAdmin, rup).status()), "ETAG_MISMATCH etag");
  v1::DeleteRuleRequest del;
  del.set_name(rule.name());
  del.set_etag(absl::StrCat(std::stoi(rule.etag()) + 1));
  EXPECT_EQ(AbortedInfo(Call(engine(), &TaskEngine::DeleteRule, kAdmin, del).status()), "ETAG_MISMATCH etag");
  EXPECT_EQ(Events(rule.name()).size(), std::stoul(rule.etag())) << "nothing written";
}

}  // namespace
}  // namespace crm::tasks
