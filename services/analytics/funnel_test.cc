// The funnel read model over the events of real customers and opportunities engines on an
// embedded log under a manual clock: hand-computed figures, and as_of equal to the report
// computed on the log cut at that moment.
#include "services/analytics/funnel.h"

#include <unistd.h>

#include <filesystem>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_testing.h"
#include "libs/common/caller_testing.h"
#include "libs/eventlog/envelope.h"
#include "libs/projection/aggregate_writer.h"
#include "libs/projection/rebuild.h"
#include "services/analytics/analytics_engine.h"
#include "services/analytics/analytics_testing.h"
#include "libs/testing/engine_harness.h"
#include "services/customers/customer_engine.h"
#include "services/opportunities/opportunity_engine.h"

namespace crm::analytics {
namespace {

using crm::testing::Call;
namespace ov1 = crm::opportunities::v1;

using crm::testing::kAdmin;
using crm::testing::kManager;
using crm::testing::kRep;
using crm::testing::kRep2;
using crm::testing::Service;
constexpr char kOpportunitiesTopic[] = "crm.opportunities.events.v1";

absl::Time At(int day, int hour) {
  return absl::FromCivil(absl::CivilHour(2026, 3, day, hour), absl::FixedTimeZone(8 * 3600));
}

// Every figure of a report, for comparing two.
std::string Describe(const FunnelReport& r) {
  std::string out = absl::StrFormat("opps %d won %d lost %d rate %.4f\n", r.opportunities, r.won, r.lost,
                                    r.win_rate_percent);
  for (const auto& s : r.stages) {
    absl::StrAppendFormat(&out, "%s %s %s reached %d amount %d conv %.4f stay %s ended %d\n", s.stage_id, s.stage_name,
                          s.kind, s.reached, s.amount_minor, s.conversion_percent, absl::FormatDuration(s.average_stay),
                          s.stays_ended);
  }
  return out;
}

class FunnelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto h = crm::testing::EngineHarness::Create({.name = "funnel", .start = At(1, 9)});
    ASSERT_TRUE(h.ok()) << h.status();
    h_ = *std::move(h);
    for (Service s : {Service::kCustomers, Service::kOpportunities}) {
      const absl::Status opened = h_->Open(s);
      ASSERT_TRUE(opened.ok()) << opened;
    }
  }
  customers::CustomerEngine* customers() const { return h_->customers(); }
  opportunities::OpportunityEngine* opportunities() const { return h_->opportunities(); }
  ManualClock& clock() const { return h_->clock(); }

  // The analytics rows built from the opportunities topic, only what was recorded by `cut`.
  std::unique_ptr<projection::ProjectionDb> Build(absl::Time cut) {
    return testing::BuildCut(h_->log(), kOpportunitiesTopic, &ApplyOpportunitiesRecord, cut,
                             absl::StrCat(h_->dir(), "/analytics-", builds_++));
  }

  // Runs `steps` in time order, each at its moment on the manual clock.
  void Play(std::vector<std::pair<absl::Time, std::function<void()>>> steps) {
    std::stable_sort(steps.begin(), steps.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [at, fn] : steps) {
      clock().Set(at);
      fn();
    }
  }

  std::string customer_;
  std::map<char, std::string> opp_;  // A, B, C, D -> opportunities/{id}
  static inline int builds_ = 0;
  std::unique_ptr<crm::testing::EngineHarness> h_;
};

TEST_F(FunnelTest, StagesConversionsAndStaysFromTheLogAndAsOfEqualsTheLogCutThere) {
  customers::v1::CreateCustomerRequest cr;
  cr.mutable_customer()->set_display_name("上海星辰科技有限公司");
  cr.mutable_customer()->set_phone("13812345678");
  auto cu = Call(&customers()->customer_commands(), &customers::CustomerCommands::Create, kRep, cr);
  ASSERT_TRUE(cu.ok()) << cu.status();
  auto create = [&](char which, int64_t amount) {
    return [&, which, amount] {
      ov1::CreateOpportunityRequest req;
      req.mutable_opportunity()->set_customer(cu->name());
      req.mutable_opportunity()->set_title(absl::StrCat("商机 ", std::string(1, which)));
      req.mutable_opportunity()->mutable_amount()->set_amount_minor(amount);
      req.set_min_consistency_token(cu->consistency_token());
      auto o = Call(opportunities(), &opportunities::OpportunityEngine::CreateOpportunity, kRep, req);
      ASSERT_TRUE(o.ok()) << o.status();
      opp_[which] = o->name();
    };
  };
  auto move = [&](char which, const char* stage) {
    return [&, which, stage] {
      ov1::MoveOpportunityStageRequest req;
      req.set_name(opp_[which]);
      req.set_stage_id(stage);
      ASSERT_TRUE(Call(opportunities(), &opportunities::OpportunityEngine::MoveStage, kRep, req).ok()) << stage;
    };
  };
  auto win = [&](char which) {
    return [&, which] {
      ov1::WinOpportunityRequest req;
      req.set_name(opp_[which]);
      req.set_reason("价格合适");
      ASSERT_TRUE(Call(opportunities(), &opportunities::OpportunityEngine::Win, kRep, req).ok());
    };
  };
  auto lose = [&](char which) {
    return [&, which] {
      ov1::LoseOpportunityRequest req;
      req.set_name(opp_[which]);
      req.set_reason("预算不足");
      ASSERT_TRUE(Call(opportunities(), &opportunities::OpportunityEngine::Lose, kRep, req).ok());
    };
  };
  Play({{At(2, 9), create('A', 100000)},          {At(2, 10), move('A', "needs_analysis")},
        {At(3, 10), move('A', "proposal")},        {At(4, 10), move('A', "negotiation")},
        {At(5, 10), win('A')},                     {At(2, 11), create('B', 50000)},
        {At(3, 12), move('B', "needs_analysis")},  {At(4, 11), lose('B')},
        {At(3, 9), create('C', 20000)},            {At(4, 9), move('C', "needs_analysis")},
        {At(4, 12), move('C', "initial_contact")}, {At(10, 9), create('D', 70000)}});

  auto full = Build(absl::InfiniteFuture());
  FunnelQuery q;
  q.from = At(1, 0);
  q.to = At(8, 0);
  auto r = Funnel(full->db(), q);
  ASSERT_TRUE(r.ok()) << r.status();
  // By hand: A won, B lost in 需求分析, C back in 初步接触; D is outside the range.
  EXPECT_EQ(r->opportunities, 3);
  EXPECT_EQ(r->won, 1);
  EXPECT_EQ(r->lost, 1);
  EXPECT_EQ(r->win_rate_percent, 50);
  ASSERT_EQ(r->stages.size(), 6u) << Describe(*r);
  const std::vector<std::string> order = {"initial_contact", "needs_analysis", "proposal", "negotiation", "won", "lost"};
  const std::vector<int64_t> reached = {3, 3, 1, 1, 1, 1};
  const std::vector<int64_t> amount = {170000, 170000, 100000, 100000, 100000, 50000};
  for (size_t i = 0; i < order.size(); ++i) {
    EXPECT_EQ(r->stages[i].stage_id, order[i]);
    EXPECT_EQ(r->stages[i].reached, reached[i]) << order[i];
    EXPECT_EQ(r->stages[i].amount_minor, amount[i]) << order[i];
  }
  EXPECT_DOUBLE_EQ(r->stages[0].conversion_percent, 100);
  EXPECT_NEAR(r->stages[1].conversion_percent, 33.33, 0.01);
  EXPECT_DOUBLE_EQ(r->stages[3].conversion_percent, 100);  // negotiation → won
  // 初步接触 stays that ended: A 1 h, B 25 h, C 24 h (its second stay is still open).
  EXPECT_EQ(r->stages[0].stays_ended, 3);
  EXPECT_EQ(r->stages[0].average_stay, absl::Hours(50) / 3);
  // 需求分析: A 24 h, B 23 h (lost at 11:00), C 3 h.
  EXPECT_EQ(r->stages[1].average_stay, absl::Hours(50) / 3);

  // As of any moment, the report equals the one over the log cut there.
  for (absl::Time t : {At(2, 9), At(2, 10), At(3, 11), At(4, 10), At(4, 11), At(4, 12), At(5, 9), At(5, 10), At(11, 0)}) {
    for (absl::Duration d : {absl::ZeroDuration(), absl::Minutes(30)}) {
      q.as_of = t + d;
      auto as_of = Funnel(full->db(), q);
      auto cut = Build(t + d);
      FunnelQuery all = q;
      all.as_of = absl::InfiniteFuture();
      auto truncated = Funnel(cut->db(), all);
      ASSERT_TRUE(as_of.ok() && truncated.ok());
      EXPECT_EQ(Describe(*as_of), Describe(*truncated)) << "as of " << absl::FormatTime(t + d);
    }
  }
  // What was known on the morning of the 4th: A in 合同谈判, B and C in 需求分析, nothing closed.
  // No PipelinesSet was ever recorded: the stages are the service's default pipeline's, named.
  q.as_of = At(4, 10);
  auto then = Funnel(full->db(), q);
  EXPECT_EQ(then->won + then->lost, 0);
  ASSERT_EQ(then->stages.size(), 6u) << Describe(*then);
  EXPECT_EQ(then->stages[3].stage_name, "合同谈判");
  EXPECT_EQ(then->stages[3].reached, 1);
  EXPECT_EQ(then->stages[4].reached, 0);
  EXPECT_EQ(then->stages[1].stays_ended, 1);  // only A had left 需求分析
}

// The engine over live followers: scopes by role, read-your-writes with the opportunity's
// consistency token, and bad input named.
TEST_F(FunnelTest, TheEngineScopesByRoleAndReadsItsWrites) {
  const absl::Status opened = h_->Open(Service::kAnalytics, "live");
  ASSERT_TRUE(opened.ok()) << opened;
  AnalyticsEngine* engine = h_->analytics();
  const Caller west{"m2", "manager", "west"};
  std::string token;
  for (const Caller& owner : {kRep, kRep2}) {
    customers::v1::CreateCustomerRequest cr;
    cr.mutable_customer()->set_display_name(absl::StrCat("客户", owner.user_id));
    cr.mutable_customer()->set_phone(owner.user_id == "u1" ? "13812345670" : "13812345671");
    auto cu = Call(&customers()->customer_commands(), &customers::CustomerCommands::Create, owner, cr);
    ASSERT_TRUE(cu.ok()) << cu.status();
    ov1::CreateOpportunityRequest req;
    req.mutable_opportunity()->set_customer(cu->name());
    req.mutable_opportunity()->set_title("智能仓储系统");
    req.mutable_opportunity()->mutable_amount()->set_amount_minor(10000);
    req.set_min_consistency_token(cu->consistency_token());
    auto o = Call(opportunities(), &opportunities::OpportunityEngine::CreateOpportunity, owner, req);
    ASSERT_TRUE(o.ok()) << o.status();
    token = o->consistency_token();
  }
  absl::Notification caught_up;
  engine->AfterToken(token, "min_consistency_token", absl::Now() + absl::Seconds(10),
                        [&](absl::Status s) {
                          EXPECT_TRUE(s.ok()) << s;
                          caught_up.Notify();
                        });
  caught_up.WaitForNotification();
  v1::GetFunnelReportRequest req;
  *req.mutable_start_time() = ToProto(At(1, 0));
  *req.mutable_end_time() = ToProto(At(2, 0));
  auto opps = [&](const Caller& c, v1::ReportScope scope = v1::REPORT_SCOPE_UNSPECIFIED) -> absl::StatusOr<int64_t> {
    v1::GetFunnelReportRequest r = req;
    r.set_scope(scope);
    auto got = engine->GetFunnelReport(c, r, absl::Now() + absl::Seconds(5));
    if (!got.ok()) return got.status();
    return got->opportunities();
  };
  EXPECT_EQ(*opps(kRep), 1);
  EXPECT_EQ(*opps(kManager), 2);
  EXPECT_EQ(*opps(west), 0);
  EXPECT_EQ(*opps(kAdmin), 2);
  EXPECT_EQ(opps(kRep, v1::REPORT_SCOPE_TEAM).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(opps(kManager, v1::REPORT_SCOPE_ALL).status().code(), absl::StatusCode::kPermissionDenied);
  // A manager's token without a team saw every team's figures (its team filter was empty).
  const Caller teamless{"m9", "manager", ""};
  for (auto scope : {v1::REPORT_SCOPE_UNSPECIFIED, v1::REPORT_SCOPE_TEAM, v1::REPORT_SCOPE_OWN}) {
    EXPECT_EQ(opps(teamless, scope).status().code(), absl::StatusCode::kPermissionDenied) << scope;
  }
  EXPECT_EQ(*opps(Caller{"u9", "rep", ""}), 0);  // a rep without a team: their own, none
  // As of before they were recorded: nothing.
  *req.mutable_as_of() = ToProto(At(1, 8));
  EXPECT_EQ(*opps(kAdmin), 0);
  req.clear_start_time();
  EXPECT_EQ(crm::testing::FieldOf(opps(kAdmin).status()), "start_time");
  h_->Close(Service::kAnalytics);
}

}  // namespace
}  // namespace crm::analytics
