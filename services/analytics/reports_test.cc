// The channels, team, customer value, churn and receivables reports over the events of real
// customers, opportunities and tasks engines on an embedded log under a manual clock: figures
// computed by hand from a seeded month, and as_of equal to the report over the log cut there.
#include "services/analytics/reports.h"

#include <unistd.h>

#include <filesystem>
#include <functional>
#include <limits>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_testing.h"
#include "libs/common/caller_testing.h"
#include "libs/projection/rebuild.h"
#include "services/analytics/analytics_engine.h"
#include "services/analytics/analytics_testing.h"
#include "libs/testing/engine_harness.h"
#include "services/analytics/receivables.h"
#include "services/customers/customer_engine.h"
#include "services/opportunities/opportunity_engine.h"
#include "services/tasks/task_engine.h"
#include "libs/common/temp_dir_testing.h"

namespace crm::analytics {
namespace {

using crm::testing::Call;
using crm::testing::FieldOf;
namespace cv1 = crm::customers::v1;
namespace ov1 = crm::opportunities::v1;
namespace tv1 = crm::tasks::v1;
using customers::CustomerCommands;
using customers::CustomerEngine;
using customers::LeadCommands;
using customers::SettingsCommands;
using opportunities::OpportunityEngine;
using tasks::TaskEngine;

using crm::testing::kAdmin;
using crm::testing::kRep;
using crm::testing::kRep2;
using crm::testing::Service;

absl::Time At(int month, int day, int hour) {
  return absl::FromCivil(absl::CivilHour(2026, month, day, hour), ReportZone());
}

class ReportsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto h = crm::testing::EngineHarness::Create({.name = "reports", .start = At(3, 1, 9)});
    ASSERT_TRUE(h.ok()) << h.status();
    h_ = *std::move(h);
    for (Service s : {Service::kCustomers, Service::kOpportunities, Service::kTasks}) {
      const absl::Status opened = h_->Open(s);
      ASSERT_TRUE(opened.ok()) << opened;
    }
  }
  CustomerEngine* customers() const { return h_->customers(); }
  OpportunityEngine* opportunities() const { return h_->opportunities(); }
  TaskEngine* tasks() const { return h_->tasks(); }
  ManualClock& clock() const { return h_->clock(); }

  // The analytics rows of every topic, only what was recorded by `cut`.
  std::unique_ptr<projection::ProjectionDb> Build(absl::Time cut) {
    static int builds = 0;
    return testing::BuildCut(h_->log(), h_->Spec(Service::kAnalytics), cut,
                             absl::StrCat(h_->dir(), "/analytics-", builds++));
  }

  std::unique_ptr<crm::testing::EngineHarness> h_;
};

TEST_F(ReportsTest, EveryReportMatchesHandComputedFiguresAndAsOfEqualsTheLogCut) {
  // ---- The seeded month (March 2026, UTC+8) ----
  auto cost = [&](cv1::SourceChannel ch, const char* month, int64_t amount) {
    cv1::SetChannelCostRequest req;
    req.mutable_cost()->set_source_channel(ch);
    req.mutable_cost()->set_month(month);
    req.mutable_cost()->set_amount_minor(amount);
    auto c = Call(&customers()->settings(), &SettingsCommands::SetChannelCost, kAdmin, req);
    ASSERT_TRUE(c.ok()) << c.status();
  };
  cost(cv1::SOURCE_CHANNEL_WEBSITE, "2026-03", 90000);
  cost(cv1::SOURCE_CHANNEL_EXHIBITION, "2026-03", 50000);
  cost(cv1::SOURCE_CHANNEL_WEBSITE, "2026-04", 7777);  // outside the range
  {
    cv1::SetChannelCostRequest bad;
    bad.mutable_cost()->set_source_channel(cv1::SOURCE_CHANNEL_WEBSITE);
    bad.mutable_cost()->set_month("2026-3");
    EXPECT_EQ(FieldOf(Call(&customers()->settings(), &SettingsCommands::SetChannelCost, kAdmin, bad).status()), "cost.month");
  }
  auto lead = [&](const Caller& who, int day, cv1::SourceChannel ch, const char* phone) {
    clock().Set(At(3, day, 9));
    cv1::CreateLeadRequest req;
    req.mutable_lead()->set_contact_name("王经理");
    req.mutable_lead()->set_company(absl::StrCat("线索公司", phone));
    req.mutable_lead()->set_phone(phone);
    req.mutable_lead()->set_source_channel(ch);
    req.mutable_lead()->set_region("广东/深圳");
    req.mutable_lead()->set_industry("manufacturing");
    req.mutable_lead()->set_owner_id(who.user_id);
    auto l = Call(&customers()->leads(), &LeadCommands::CreateLead, who, req);
    EXPECT_TRUE(l.ok()) << l.status();
    return l.ok() ? l->name() : "";
  };
  const std::string l1 = lead(kRep, 2, cv1::SOURCE_CHANNEL_WEBSITE, "13800000001");
  lead(kRep, 2, cv1::SOURCE_CHANNEL_WEBSITE, "13800000002");
  lead(kRep2, 3, cv1::SOURCE_CHANNEL_EXHIBITION, "13800000003");

  clock().Set(At(3, 4, 9));
  cv1::ConvertLeadRequest conv;
  conv.set_name(l1);
  auto converted = Call(customers(), &CustomerEngine::ConvertLead, kRep, conv);
  ASSERT_TRUE(converted.ok()) << converted.status();
  const cv1::Customer c1 = converted->customer();
  ASSERT_EQ(c1.source_channel(), cv1::SOURCE_CHANNEL_WEBSITE);
  ASSERT_EQ(c1.region(), "广东/深圳");

  clock().Set(At(3, 4, 10));
  cv1::CreateCustomerRequest cr;
  cr.mutable_customer()->set_display_name("上海客户有限公司");
  cr.mutable_customer()->set_phone("13900000002");
  cr.mutable_customer()->set_source_channel(cv1::SOURCE_CHANNEL_REFERRAL);
  cr.mutable_customer()->set_region("上海");
  auto c2 = Call(&customers()->customer_commands(), &CustomerCommands::Create, kRep2, cr);
  ASSERT_TRUE(c2.ok()) << c2.status();

  auto follow_up = [&](const Caller& who, const std::string& customer, int day) {
    clock().Set(At(3, day, 15));
    cv1::CreateFollowUpRequest req;
    req.set_parent(customer);
    req.mutable_follow_up()->set_summary("电话沟通需求");
    req.mutable_follow_up()->set_channel(cv1::FOLLOW_UP_CHANNEL_PHONE);
    auto f = Call(&customers()->customer_commands(), &CustomerCommands::CreateFollowUp, who, req);
    ASSERT_TRUE(f.ok()) << f.status();
  };
  follow_up(kRep, c1.name(), 5);
  follow_up(kRep, c1.name(), 6);
  follow_up(kRep2, c2->name(), 5);

  auto opportunity = [&](const Caller& who, const cv1::Customer& c, int day, int64_t amount) {
    clock().Set(At(3, day, 9));
    ov1::CreateOpportunityRequest req;
    req.mutable_opportunity()->set_customer(c.name());
    req.mutable_opportunity()->set_title("年度采购");
    req.mutable_opportunity()->mutable_amount()->set_amount_minor(amount);
    req.set_min_consistency_token(c.consistency_token());
    auto o = Call(opportunities(), &OpportunityEngine::CreateOpportunity, who, req);
    EXPECT_TRUE(o.ok()) << o.status();
    return o.ok() ? o->name() : "";
  };
  const std::string o1 = opportunity(kRep, c1, 6, 100000);
  const std::string o2 = opportunity(kRep2, *c2, 6, 50000);
  clock().Set(At(3, 8, 9));
  ov1::WinOpportunityRequest win;
  win.set_name(o1);
  win.set_reason("价格合适");
  ASSERT_TRUE(Call(opportunities(), &OpportunityEngine::Win, kRep, win).ok());
  clock().Set(At(3, 9, 9));
  ov1::LoseOpportunityRequest lose;
  lose.set_name(o2);
  lose.set_reason("价格");
  ASSERT_TRUE(Call(opportunities(), &OpportunityEngine::Lose, kRep2, lose).ok());

  clock().Set(At(3, 10, 9));
  ov1::CreateContractRequest cc;
  cc.mutable_contract()->set_customer(c1.name());
  cc.mutable_contract()->set_title("年度服务合同");
  cc.mutable_contract()->mutable_amount()->set_amount_minor(100000);
  cc.mutable_contract()->set_start_date("2026-03-01");
  cc.mutable_contract()->set_end_date("2026-12-31");
  auto contract = Call(opportunities(), &OpportunityEngine::CreateContract, kRep, cc);
  ASSERT_TRUE(contract.ok()) << contract.status();
  ov1::SubmitContractRequest submit;
  submit.set_name(contract->name());
  auto submitted = Call(opportunities(), &OpportunityEngine::SubmitContract, kRep, submit);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  if (submitted->status() == ov1::CONTRACT_STATUS_PENDING_APPROVAL) {
    ov1::ApproveContractRequest approve;
    approve.set_name(contract->name());
    ASSERT_TRUE(Call(opportunities(), &OpportunityEngine::ApproveContract, kAdmin, approve).ok());
  }
  ov1::SetPaymentPlanRequest plan;
  plan.set_name(contract->name());
  auto* i1 = plan.add_instalments();
  i1->set_due_date("2026-03-20");
  i1->set_amount_minor(60000);
  auto* i2 = plan.add_instalments();
  i2->set_due_date("2026-04-20");
  i2->set_amount_minor(40000);
  ASSERT_TRUE(Call(opportunities(), &OpportunityEngine::SetPaymentPlan, kRep, plan).ok());
  auto pay = [&](int day, int64_t amount) {
    clock().Set(At(3, day, 10));
    ov1::RecordPaymentRequest req;
    req.set_name(contract->name());
    req.mutable_payment()->set_amount_minor(amount);
    *req.mutable_payment()->mutable_paid_at() = ToProto(At(3, day, 10));
    req.mutable_payment()->set_method("银行转账");
    auto k = Call(opportunities(), &OpportunityEngine::RecordPayment, kRep, req);
    EXPECT_TRUE(k.ok()) << k.status();
    return k.ok() ? k->payments(k->payments_size() - 1).payment_id() : "";
  };
  pay(12, 30000);
  const std::string p2 = pay(15, 20000);
  const absl::Time before_correction = At(3, 15, 12);
  clock().Set(At(3, 16, 10));
  ov1::CorrectPaymentRequest correct;
  correct.set_name(contract->name());
  correct.set_payment_id(p2);
  correct.set_amount_minor(25000);
  *correct.mutable_paid_at() = ToProto(At(3, 14, 10));
  correct.set_reason("银行回单金额");
  auto corrected = Call(opportunities(), &OpportunityEngine::CorrectPayment, kAdmin, correct);
  ASSERT_TRUE(corrected.ok()) << corrected.status();
  const std::string p3 = pay(17, 10000);
  clock().Set(At(3, 18, 10));
  ov1::VoidPaymentRequest voided;
  voided.set_name(contract->name());
  voided.set_payment_id(p3);
  voided.set_reason("退票");
  ASSERT_TRUE(Call(opportunities(), &OpportunityEngine::VoidPayment, kAdmin, voided).ok());

  auto task = [&](const Caller& who, int day) {
    clock().Set(At(3, day, 9));
    tv1::CreateTaskRequest req;
    req.mutable_task()->set_title("回访");
    *req.mutable_task()->mutable_due_time() = ToProto(At(3, day + 2, 18));
    auto t = Call(tasks(), &TaskEngine::CreateTask, who, req);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? t->name() : "";
  };
  const std::string t1 = task(kRep, 18), t2 = task(kRep2, 18);
  clock().Set(At(3, 19, 9));
  tv1::CompleteTaskRequest done;
  done.set_name(t1);
  ASSERT_TRUE(Call(tasks(), &TaskEngine::CompleteTask, kRep, done).ok());
  done.set_name(t2);
  ASSERT_TRUE(Call(tasks(), &TaskEngine::CompleteTask, kRep2, done).ok());
  clock().Set(At(3, 19, 11));
  tv1::ReopenTaskRequest reopen;
  reopen.set_name(t2);
  reopen.set_reason("客户未接通");
  ASSERT_TRUE(Call(tasks(), &TaskEngine::ReopenTask, kRep2, reopen).ok());

  clock().Set(At(3, 20, 9));
  cv1::UpdateCustomerRequest lost;
  lost.mutable_customer()->set_name(c2->name());
  lost.mutable_customer()->set_lifecycle_status(cv1::LIFECYCLE_STATUS_LOST);
  lost.mutable_customer()->set_churn_reason("价格太高");
  lost.mutable_update_mask()->add_paths("lifecycle_status");
  lost.mutable_update_mask()->add_paths("churn_reason");
  auto updated = Call(&customers()->customer_commands(), &CustomerCommands::Update, kRep2, lost);
  ASSERT_TRUE(updated.ok()) << updated.status();
  clock().Set(At(3, 25, 9));
  // The tasks scheduler reports the open tasks past due: the reopened one (due the 20th) and
  // any the default rules made for the leads and the deals.
  auto overdue = tasks()->RunScheduler(clock().Now());
  ASSERT_TRUE(overdue.ok()) << overdue.status();
  ASSERT_GE(overdue->overdue, 1);

  // ---- The reports now, computed by hand ----
  auto now = Build(absl::InfiniteFuture());
  ReportQuery q{.from = At(3, 1, 0), .to = At(4, 1, 0), .as_of = clock().Now(), .group_by = Period::kMonth};

  auto channels = Channels(now->db(), q);
  ASSERT_TRUE(channels.ok()) << channels.status();
  ASSERT_EQ(channels->channels.size(), 3u);
  const ChannelRow& exhibition = channels->channels[0];
  EXPECT_EQ(exhibition.channel, "EXHIBITION");
  EXPECT_EQ(exhibition.leads, 1);
  EXPECT_EQ(exhibition.leads_converted, 0);
  EXPECT_EQ(exhibition.cost_minor, 50000);
  EXPECT_EQ(exhibition.cost_per_lead_minor, 50000);
  EXPECT_EQ(exhibition.cost_per_customer_minor, 0);
  const ChannelRow& referral = channels->channels[1];
  EXPECT_EQ(referral.channel, "REFERRAL");
  EXPECT_EQ(referral.customers, 1);
  EXPECT_EQ(referral.customers_won, 0);
  EXPECT_EQ(referral.deals_won, 0);
  const ChannelRow& website = channels->channels[2];
  EXPECT_EQ(website.channel, "WEBSITE");
  EXPECT_EQ(website.leads, 2);
  EXPECT_EQ(website.leads_converted, 1);
  EXPECT_DOUBLE_EQ(website.lead_conversion_percent, 50);
  EXPECT_EQ(website.customers, 1);
  EXPECT_EQ(website.customers_won, 1);
  EXPECT_DOUBLE_EQ(website.deal_conversion_percent, 100);
  EXPECT_EQ(website.deals_won, 1);
  EXPECT_EQ(website.won_amount_minor, 100000);
  EXPECT_EQ(website.cost_minor, 90000);  // April's 7777 is outside the range
  EXPECT_EQ(website.cost_per_lead_minor, 45000);
  EXPECT_EQ(website.cost_per_customer_minor, 90000);

  auto team = Team(now->db(), q);
  ASSERT_TRUE(team.ok()) << team.status();
  std::map<std::string, RepRow> reps;
  for (const RepRow& r : team->reps) reps[r.owner_id] = r;
  ASSERT_TRUE(reps.count("u1") && reps.count("u2"));
  const RepRow& u1 = reps["u1"];
  EXPECT_EQ(u1.follow_ups, 2);
  EXPECT_EQ(u1.tasks_done, 1);
  EXPECT_EQ(u1.deals_won, 1);
  EXPECT_EQ(u1.deals_lost, 0);
  EXPECT_DOUBLE_EQ(u1.win_rate_percent, 100);
  EXPECT_EQ(u1.won_amount_minor, 100000);
  EXPECT_EQ(u1.collected_minor, 55000);  // 30000 + 25000 corrected; the voided 10000 gone
  const RepRow& u2 = reps["u2"];
  EXPECT_EQ(u2.follow_ups, 1);
  EXPECT_EQ(u2.tasks_done, 0);  // done, then reopened
  EXPECT_EQ(u2.deals_lost, 1);
  EXPECT_DOUBLE_EQ(u2.win_rate_percent, 0);
  EXPECT_EQ(team->total.follow_ups, 3);
  EXPECT_GE(u2.tasks_overdue, 1);  // the reopened task
  EXPECT_EQ(team->total.tasks_overdue, overdue->overdue);
  EXPECT_EQ(team->total.deals_won + team->total.deals_lost, 2);
  EXPECT_DOUBLE_EQ(team->total.win_rate_percent, 50);
  EXPECT_EQ(team->total.collected_minor, 55000);
  ASSERT_EQ(team->periods.size(), 1u);
  EXPECT_EQ(team->periods[0].collected_minor, 55000);
  EXPECT_EQ(team->periods[0].tasks_done, 1);
  // One rep's scope.
  ReportQuery own = q;
  own.owner_id = "u2";
  auto team_u2 = Team(now->db(), own);
  ASSERT_TRUE(team_u2.ok());
  ASSERT_EQ(team_u2->reps.size(), 1u);
  EXPECT_EQ(team_u2->reps[0].owner_id, "u2");
  EXPECT_EQ(team_u2->total.collected_minor, 0);

  auto value = CustomerValue(now->db(), q, 20);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(value->customers, 2);
  EXPECT_EQ(value->paying_customers, 1);
  EXPECT_EQ(value->collected_minor, 55000);
  ASSERT_EQ(value->by_region.size(), 2u);
  EXPECT_EQ(value->by_region[0].key, "广东/深圳");
  EXPECT_EQ(value->by_region[0].collected_minor, 55000);
  EXPECT_EQ(value->by_region[1].key, "上海");
  EXPECT_EQ(value->by_region[1].paying_customers, 0);
  ASSERT_EQ(value->high_value.size(), 1u);
  const ValueCustomer& top = value->high_value[0];
  EXPECT_EQ(absl::StrCat("customers/", top.customer_id), c1.name());
  EXPECT_EQ(top.monetary_minor, 55000);
  EXPECT_EQ(top.frequency, 2);
  // The last payment standing was paid on the 14th at 10:00 (corrected from the 15th; the
  // 17th's was voided): to the 25th at 09:00 is 10 days 23 hours.
  EXPECT_EQ(top.recency_days, 10);
  EXPECT_EQ(top.r_score, 5);
  EXPECT_EQ(top.segment, "重要价值客户");

  auto churn = Churn(now->db(), q);
  ASSERT_TRUE(churn.ok()) << churn.status();
  EXPECT_EQ(churn->churned, 1);
  EXPECT_EQ(churn->new_customers, 2);
  ASSERT_EQ(churn->by_reason.size(), 1u);
  EXPECT_EQ(churn->by_reason[0].reason, "价格太高");

  ReceivablesQuery rq{.from = At(3, 1, 0), .to = At(5, 1, 0), .as_of = clock().Now()};
  auto recv = Receivables(now->db(), rq);
  ASSERT_TRUE(recv.ok()) << recv.status();
  ASSERT_EQ(recv->buckets.size(), 2u);
  EXPECT_EQ(recv->buckets[0].planned_minor, 60000);
  EXPECT_EQ(recv->buckets[0].collected_minor, 55000);
  EXPECT_EQ(recv->buckets[0].payments, 2);
  EXPECT_EQ(recv->buckets[1].planned_minor, 40000);
  EXPECT_EQ(recv->buckets[1].collected_minor, 0);
  EXPECT_EQ(recv->planned_minor, 100000);
  EXPECT_DOUBLE_EQ(recv->collection_percent, 55);

  // ---- As known before the correction: the payment of the 15th still stood at 20000 ----
  ReceivablesQuery then = rq;
  then.as_of = before_correction;
  auto recv_then = Receivables(now->db(), then);
  ASSERT_TRUE(recv_then.ok());
  EXPECT_EQ(recv_then->collected_minor, 50000);

  // ---- as_of equals the report over the log cut there, for every report ----
  for (absl::Time cut : {At(3, 4, 9) + absl::Seconds(1), At(3, 9, 12), before_correction, At(3, 19, 10),
                         At(3, 20, 12)}) {
    SCOPED_TRACE(absl::FormatTime(cut));
    auto past = Build(cut);
    ReportQuery live = q, cut_q = q;
    live.as_of = cut;
    cut_q.as_of = absl::InfiniteFuture();
    EXPECT_TRUE(*Channels(now->db(), live) == *Channels(past->db(), cut_q));
    EXPECT_TRUE(*Team(now->db(), live) == *Team(past->db(), cut_q));
    EXPECT_TRUE(*Churn(now->db(), live) == *Churn(past->db(), cut_q));
    ReceivablesQuery rl = rq, rc = rq;
    rl.as_of = cut;
    rc.as_of = absl::InfiniteFuture();
    EXPECT_TRUE(*Receivables(now->db(), rl) == *Receivables(past->db(), rc));
    // Recency runs to as_of: the cut's report is asked as of the same moment.
    cut_q.as_of = cut;
    EXPECT_TRUE(*CustomerValue(now->db(), live, 20) == *CustomerValue(past->db(), cut_q, 20));
  }
}

// Facts as events recorded before amounts were bounded could have made them: two deals and two
// payments of 2^63 - 1 each. Their sums used to wrap (to -2); now the report is OUT_OF_RANGE
// naming the figure.
TEST(ReportSumsTest, SumsPastSixtyFourBitsAreOutOfRangeNeverWrapped) {
  const std::string dir = NewTestDir("report-sums");
  std::filesystem::remove_all(dir);
  auto db = *projection::ProjectionDb::Open({.path = dir});
  projection::Batch batch;
  for (int i = 0; i < 2; ++i) {
    common::v1::EventEnvelope e;
    e.set_event_id(absl::StrCat("e", i));
    *e.mutable_recorded_at() = ToProto(At(3, 2, 10));
    for (const char* kind : {"deal_won", "payment"}) {
      v1::PointFact f = MakeFact(kind, absl::StrCat("s", i), At(3, 2, 10), e);
      f.set_owner_id("u1");
      f.set_label("CNY");
      f.set_amount_minor(std::numeric_limits<int64_t>::max());
      PutFact(batch, f, e);
    }
  }
  ASSERT_TRUE(db->Commit(batch, "test", 0, 1).ok());
  const ReportQuery q{.from = At(3, 1, 0), .to = At(4, 1, 0), .group_by = Period::kMonth};
  auto team = Team(db->db(), q);
  EXPECT_EQ(team.status().code(), absl::StatusCode::kOutOfRange) << team.status();
  EXPECT_EQ(FieldOf(team.status()), "won_amount_minor");
  auto channels = Channels(db->db(), q);
  EXPECT_EQ(FieldOf(channels.status()), "channels.won_amount_minor");
  auto receivables = Receivables(db->db(), {.from = q.from, .to = q.to, .group_by = Period::kMonth});
  EXPECT_EQ(FieldOf(receivables.status()), "periods.collected_minor");
  db.reset();
  std::filesystem::remove_all(dir);
}

// Each report through the engine the gRPC service calls (the figures themselves are checked
// against the rows above): an admin gets it, a period ending before it starts names the field,
// and a rep asking for every team is refused.
template <typename Req, typename Resp>
void ExpectTheEngineGuardsTheReport(AnalyticsEngine& engine,
                                    absl::StatusOr<Resp> (AnalyticsEngine::*report)(const Caller&, const Req&,
                                                                                     absl::Time)) {
  SCOPED_TRACE(Req::descriptor()->name());
  Req req;
  *req.mutable_start_time() = ToProto(At(3, 1, 0));
  *req.mutable_end_time() = ToProto(At(4, 1, 0));
  const auto deadline = absl::Now() + absl::Seconds(5);
  EXPECT_TRUE((engine.*report)(kAdmin, req, deadline).ok());
  EXPECT_TRUE((engine.*report)(kRep, req, deadline).ok());
  Req all = req;
  all.set_scope(v1::REPORT_SCOPE_ALL);
  EXPECT_EQ((engine.*report)(kRep, all, deadline).status().code(), absl::StatusCode::kPermissionDenied);
  Req backwards = req;
  *backwards.mutable_end_time() = ToProto(At(2, 1, 0));
  EXPECT_EQ(FieldOf((engine.*report)(kAdmin, backwards, deadline).status()), "end_time");
}

TEST_F(ReportsTest, TheEngineServesEveryReportScopedAndChecked) {
  cv1::CreateCustomerRequest cr;
  cr.mutable_customer()->set_display_name("无锡太湖机电");
  cr.mutable_customer()->set_phone("13300133000");
  cr.mutable_customer()->set_source_channel(cv1::SOURCE_CHANNEL_WEBSITE);
  auto customer = Call(&customers()->customer_commands(), &CustomerCommands::Create, kRep, cr);
  ASSERT_TRUE(customer.ok()) << customer.status();
  const absl::Status opened = h_->Open(Service::kAnalytics, "live");
  ASSERT_TRUE(opened.ok()) << opened;
  AnalyticsEngine* engine = h_->analytics();

  // Once the engine has the customer's write (the gRPC runtime waits on min_consistency_token
  // the same way), the channels report counts it for its owner, not for another rep
  absl::Notification caught_up;
  engine->AfterToken(customer->consistency_token(), "min_consistency_token", absl::Now() + absl::Seconds(10),
                        [&](absl::Status s) {
                          EXPECT_TRUE(s.ok()) << s;
                          caught_up.Notify();
                        });
  caught_up.WaitForNotification();
  v1::GetChannelsReportRequest channels;
  *channels.mutable_start_time() = ToProto(At(3, 1, 0));
  *channels.mutable_end_time() = ToProto(At(4, 1, 0));
  auto website = [&](const Caller& c) -> int64_t {
    auto got = engine->GetChannelsReport(c, channels, absl::Now() + absl::Seconds(10));
    EXPECT_TRUE(got.ok()) << got.status();
    if (!got.ok()) return -1;
    for (const auto& row : got->channels()) {
      if (row.channel() == "WEBSITE") return row.customers();
    }
    return 0;
  };
  EXPECT_EQ(website(kRep), 1);
  EXPECT_EQ(website(kAdmin), 1);
  EXPECT_EQ(website(kRep2), 0);

  ExpectTheEngineGuardsTheReport(*engine, &AnalyticsEngine::GetTicketsReport);
  ExpectTheEngineGuardsTheReport(*engine, &AnalyticsEngine::GetChannelsReport);
  ExpectTheEngineGuardsTheReport(*engine, &AnalyticsEngine::GetTeamReport);
  ExpectTheEngineGuardsTheReport(*engine, &AnalyticsEngine::GetCustomerValueReport);
  ExpectTheEngineGuardsTheReport(*engine, &AnalyticsEngine::GetChurnReport);
  ExpectTheEngineGuardsTheReport(*engine, &AnalyticsEngine::GetReceivablesReport);
}

}  // namespace
}  // namespace crm::analytics
