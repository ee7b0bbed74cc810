// The opportunity aggregate's rules, given/when/then, on pure Decide/Apply.
#include "services/opportunities/opportunity.h"

#include <limits>

#include "gtest/gtest.h"
#include "libs/common/caller_testing.h"
#include "libs/common/grpc_status.h"
#include "services/opportunities/domain_testing.h"

namespace crm::opportunities {
namespace {

using testing::FieldOf;
using testing::Fold;

using crm::testing::kManager;
using crm::testing::kRep;
using crm::testing::kRep2;
const absl::Time kT0 = absl::FromUnixSeconds(1767225600);  // 2026-01-01 08:00 Beijing

CreateOpportunity NewDeal(const std::string& name = "华东仓储系统") {
  CreateOpportunity cmd;
  cmd.profile.set_customer_id("c1");
  cmd.profile.set_name(name);
  cmd.profile.mutable_amount()->set_amount_minor(50000000);  // ¥500,000.00
  cmd.profile.set_expected_close_date("2026-03-31");
  cmd.pipeline = DefaultPipeline();
  cmd.customer = {.exists = true, .owner_id = "u1", .team_id = "east"};
  return cmd;
}

TEST(PipelineTest, TheDefaultPipelineIsValidAndBrokenOnesNameThePart) {
  EXPECT_TRUE(ValidatePipeline(DefaultPipeline(), "pipelines[0]").ok());
  Pipeline p = DefaultPipeline();
  p.mutable_stages(1)->set_id("initial_contact");
  EXPECT_EQ(FieldOf(ValidatePipeline(p, "pipelines[0]")), "pipelines[0].stages[1].id");
  p = DefaultPipeline();
  p.mutable_stages(2)->set_win_probability(101);
  EXPECT_EQ(FieldOf(ValidatePipeline(p, "pipelines[0]")), "pipelines[0].stages[2].win_probability");
  p = DefaultPipeline();
  p.mutable_stages()->RemoveLast();  // no lost stage
  EXPECT_EQ(FieldOf(ValidatePipeline(p, "pipelines[0]")), "pipelines[0].stages");
  p = DefaultPipeline();
  p.set_id("Bad Id");
  EXPECT_EQ(FieldOf(ValidatePipeline(p, "pipelines[0]")), "pipelines[0].id");
}

TEST(OpportunityTest, CreatedInTheFirstStageForTheCallerWithCurrencyDefaulted) {
  OpportunityState s;
  ASSERT_TRUE(Fold(s, kRep, NewDeal(), kT0).ok());
  EXPECT_EQ(s.stage_id(), "initial_contact");
  EXPECT_EQ(s.status(), v1::OPPORTUNITY_STATUS_OPEN);
  EXPECT_EQ(s.profile().owner_id(), "u1");
  EXPECT_EQ(s.profile().team_id(), "east");
  EXPECT_EQ(s.profile().amount().currency(), "CNY");
  EXPECT_EQ(s.version(), 1);
  ASSERT_EQ(s.visits_size(), 1);
}

TEST(OpportunityTest, CreateChecksTheCustomerAndEveryField) {
  OpportunityState s;
  auto cmd = NewDeal();
  cmd.customer.exists = false;
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, cmd).status()), "opportunity.customer");
  cmd = NewDeal();
  cmd.customer.deleted = true;
  EXPECT_EQ(Decide(nullptr, kRep, cmd).status().code(), absl::StatusCode::kFailedPrecondition);
  cmd = NewDeal();
  cmd.customer.merged_into = "c9";
  EXPECT_EQ(GetErrorInfo(Decide(nullptr, kRep, cmd).status())->reason(), "MERGED");
  cmd = NewDeal();
  cmd.customer.owner_id = "u2";  // another rep's customer
  EXPECT_EQ(Decide(nullptr, kRep, cmd).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Decide(nullptr, kManager, cmd).ok());  // the team's manager may
  cmd = NewDeal("");
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, cmd).status()), "opportunity.name");
  cmd = NewDeal();
  cmd.profile.mutable_amount()->set_amount_minor(-1);
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, cmd).status()), "opportunity.amount.amount_minor");
  cmd = NewDeal();
  cmd.profile.mutable_amount()->set_amount_minor(std::numeric_limits<int64_t>::max());
  EXPECT_EQ(Decide(nullptr, kRep, cmd).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, cmd).status()), "opportunity.amount.amount_minor");
  cmd = NewDeal("华东\xE2\x80\xAE仓储");
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, cmd).status()), "opportunity.name");
  cmd = NewDeal();
  cmd.profile.set_team_id("east\x07");
  EXPECT_EQ(FieldOf(Decide(nullptr, kManager, cmd).status()), "opportunity.team_id");
  cmd = NewDeal();
  cmd.profile.set_description("第一行\n第二行");
  EXPECT_TRUE(Decide(nullptr, kRep, cmd).ok());
  cmd = NewDeal();
  cmd.profile.mutable_amount()->set_currency("RMB");
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, cmd).status()), "opportunity.amount.currency");
  cmd = NewDeal();
  cmd.profile.set_expected_close_date("2026-02-30");
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, cmd).status()), "opportunity.expected_close_date");
  cmd.profile.set_expected_close_date("2026-3-31");  // yyyy-MM-dd, as contracts and quotes
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, cmd).status()), "opportunity.expected_close_date");
  cmd = NewDeal();
  cmd.stage_id = "won";
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, cmd).status()), "stage_id");
  cmd = NewDeal();
  cmd.profile.set_owner_id("u2");
  EXPECT_EQ(Decide(nullptr, kRep, cmd).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(OpportunityTest, StagesMoveForwardAndBackWithHistoryAndTimeInEachStage) {
  OpportunityState s;
  ASSERT_TRUE(Fold(s, kRep, NewDeal(), kT0).ok());
  ASSERT_TRUE(Fold(s, kRep, MoveStage{"needs_analysis", "", DefaultPipeline()}, kT0 + absl::Hours(24)).ok());
  ASSERT_TRUE(Fold(s, kRep, MoveStage{"proposal", "", DefaultPipeline()}, kT0 + absl::Hours(72)).ok());
  // Moving back is allowed and recorded as such
  auto back = Decide(&s, kRep, MoveStage{"needs_analysis", "客户需求变更", DefaultPipeline()});
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(std::get<v1::OpportunityStageChanged>(back->front()).backwards());
  for (const auto& e : *back) Apply(s, e, s.version() + 1, kT0 + absl::Hours(96), "u1");
  EXPECT_EQ(s.stage_id(), "needs_analysis");
  ASSERT_EQ(s.visits_size(), 4);
  auto times = TimeInStages(s, kT0 + absl::Hours(120));
  ASSERT_EQ(times.size(), 3u);
  EXPECT_EQ(times[0], std::make_pair(std::string("initial_contact"), absl::Hours(24)));
  EXPECT_EQ(times[1], std::make_pair(std::string("needs_analysis"), absl::Hours(48 + 24)));  // two stays
  EXPECT_EQ(times[2], std::make_pair(std::string("proposal"), absl::Hours(24)));
  // The same stage again records nothing; a closing stage is refused
  EXPECT_TRUE(Decide(&s, kRep, MoveStage{"needs_analysis", "", DefaultPipeline()})->empty());
  EXPECT_EQ(FieldOf(Decide(&s, kRep, MoveStage{"won", "", DefaultPipeline()}).status()), "stage_id");
  EXPECT_EQ(FieldOf(Decide(&s, kRep, MoveStage{"nowhere", "", DefaultPipeline()}).status()), "stage_id");
}

TEST(OpportunityTest, WinLoseAndReopen) {
  OpportunityState s;
  ASSERT_TRUE(Fold(s, kRep, NewDeal(), kT0).ok());
  ASSERT_TRUE(Fold(s, kRep, MoveStage{"negotiation", "", DefaultPipeline()}, kT0 + absl::Hours(1)).ok());
  // Losing needs a reason
  EXPECT_EQ(FieldOf(Decide(&s, kRep, Lose{"", "", DefaultPipeline()}).status()), "reason");
  ASSERT_TRUE(Fold(s, kRep, Lose{"价格太高", "", DefaultPipeline()}, kT0 + absl::Hours(2)).ok());
  EXPECT_EQ(s.status(), v1::OPPORTUNITY_STATUS_LOST);
  EXPECT_EQ(s.stage_id(), "lost");
  EXPECT_EQ(s.won_lost_reason(), "价格太高");
  // A closed opportunity does not move until reopened, and reopens where it was
  EXPECT_EQ(GetErrorInfo(Decide(&s, kRep, MoveStage{"proposal", "", DefaultPipeline()}).status())->reason(), "CLOSED");
  ASSERT_TRUE(Fold(s, kRep, Reopen{"", "客户重新询价", DefaultPipeline()}, kT0 + absl::Hours(3)).ok());
  EXPECT_EQ(s.stage_id(), "negotiation");
  EXPECT_EQ(s.status(), v1::OPPORTUNITY_STATUS_OPEN);
  EXPECT_TRUE(s.won_lost_reason().empty());
  // Won at the opportunity's amount unless another is given
  ASSERT_TRUE(Fold(s, kRep, Win{{}, "签约", DefaultPipeline()}, kT0 + absl::Hours(4)).ok());
  EXPECT_EQ(s.status(), v1::OPPORTUNITY_STATUS_WON);
  EXPECT_EQ(s.won_amount().amount_minor(), 50000000);
  EXPECT_TRUE(s.has_close_time());
  EXPECT_EQ(Decide(&s, kRep, Win{{}, "", DefaultPipeline()}).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(OpportunityTest, OnlyTheOwnerTheTeamsManagerAndAdminsSeeAndChangeIt) {
  OpportunityState s;
  ASSERT_TRUE(Fold(s, kRep, NewDeal(), kT0).ok());
  EXPECT_EQ(Decide(&s, kRep2, MoveStage{"proposal", "", DefaultPipeline()}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Decide(&s, kManager, MoveStage{"proposal", "", DefaultPipeline()}).ok());
  EXPECT_TRUE(Decide(&s, Caller{"a", "admin", ""}, MoveStage{"proposal", "", DefaultPipeline()}).ok());
  EXPECT_FALSE(Decide(&s, Caller{"m2", "manager", "west"}, MoveStage{"proposal", "", DefaultPipeline()}).ok());
}

TEST(OpportunityTest, UpdateRecordsOnlyWhatChangedAndChecksIt) {
  OpportunityState s;
  ASSERT_TRUE(Fold(s, kRep, NewDeal(), kT0).ok());
  UpdateOpportunity u;
  u.profile = s.profile();
  u.profile.mutable_amount()->set_amount_minor(60000000);
  u.paths = {"amount", "name"};
  auto events = Decide(&s, kRep, u);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  const auto& e = std::get<v1::OpportunityUpdated>(events->front());
  EXPECT_EQ(std::vector<std::string>(e.changed_fields().begin(), e.changed_fields().end()),
            std::vector<std::string>{"amount"});
  u.paths = {"stage_id"};
  EXPECT_EQ(FieldOf(Decide(&s, kRep, u).status()), "update_mask");
  u.paths = {"owner_id"};
  u.profile.set_owner_id("u2");
  EXPECT_EQ(Decide(&s, kRep, u).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Decide(&s, kManager, u).ok());
}

TEST(OpportunityTest, AStageTimesOutOncePerStayAfterItsDaysWithoutAnUpdate) {
  OpportunityState s;
  ASSERT_TRUE(Fold(s, kRep, NewDeal(), kT0).ok());
  ASSERT_TRUE(Fold(s, kRep, MoveStage{"needs_analysis", "", DefaultPipeline()}, kT0).ok());  // 5-day timeout
  const Caller sys{"scheduler", "service", ""};
  EXPECT_TRUE(Decide(&s, sys, CheckStageTimeout{kT0 + absl::Hours(24 * 5 - 1), DefaultPipeline()})->empty());
  // An update restarts the idle clock
  UpdateOpportunity u;
  u.profile = s.profile();
  u.profile.set_description("客户要求补充方案");
  u.paths = {"description"};
  ASSERT_TRUE(Fold(s, kRep, u, kT0 + absl::Hours(24 * 3)).ok());
  EXPECT_TRUE(Decide(&s, sys, CheckStageTimeout{kT0 + absl::Hours(24 * 7), DefaultPipeline()})->empty());
  ASSERT_TRUE(Fold(s, sys, CheckStageTimeout{kT0 + absl::Hours(24 * 8), DefaultPipeline()}, kT0 + absl::Hours(24 * 8)).ok());
  EXPECT_TRUE(s.visits().rbegin()->timed_out());
  EXPECT_EQ(s.version(), 4);
  // Once per stay
  EXPECT_TRUE(Decide(&s, sys, CheckStageTimeout{kT0 + absl::Hours(24 * 30), DefaultPipeline()})->empty());
  // Stages without a timeout never time out
  ASSERT_TRUE(Fold(s, kRep, MoveStage{"proposal", "", DefaultPipeline()}, kT0 + absl::Hours(24 * 9)).ok());
  EXPECT_TRUE(Decide(&s, sys, CheckStageTimeout{kT0 + absl::Hours(24 * 365), DefaultPipeline()})->empty());
}

TEST(OpportunityTest, CustomerMergesRepointAndDeletesFlag) {
  OpportunityState s;
  ASSERT_TRUE(Fold(s, kRep, NewDeal(), kT0).ok());
  const Caller sys{"customers-reactor", "service", ""};
  ASSERT_TRUE(Fold(s, sys, FollowCustomerMerge{"c9"}, kT0).ok());
  EXPECT_EQ(s.profile().customer_id(), "c9");
  EXPECT_TRUE(Decide(&s, sys, FollowCustomerMerge{"c9"})->empty());  // replays change nothing
  ASSERT_TRUE(Fold(s, sys, FlagCustomerDeleted{true}, kT0).ok());
  EXPECT_TRUE(s.customer_deleted());
  EXPECT_TRUE(Decide(&s, sys, FlagCustomerDeleted{true})->empty());
  ASSERT_TRUE(Fold(s, sys, FlagCustomerDeleted{false}, kT0).ok());
  EXPECT_FALSE(s.customer_deleted());
}

TEST(OpportunityTest, RecycleBin) {
  OpportunityState s;
  ASSERT_TRUE(Fold(s, kRep, NewDeal(), kT0).ok());
  ASSERT_TRUE(Fold(s, kRep, DeleteOpportunity{"重复录入"}, kT0).ok());
  EXPECT_TRUE(s.deleted());
  EXPECT_EQ(Decide(&s, kRep, MoveStage{"proposal", "", DefaultPipeline()}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Fold(s, kRep, UndeleteOpportunity{}, kT0).ok());
  EXPECT_FALSE(s.deleted());
  EXPECT_EQ(Decide(&s, kRep, UndeleteOpportunity{}).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace crm::opportunities
