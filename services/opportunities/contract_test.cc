// The contract aggregate's rules, given/when/then.
#include "services/opportunities/contract.h"

#include "gtest/gtest.h"
#include "libs/common/grpc_status.h"
#include "services/opportunities/domain_testing.h"

namespace crm::opportunities {
namespace {


const Caller kRep{"u1", "rep", "east"};
const Caller kManager{"m1", "manager", "east"};
const Caller kOtherManager{"m2", "manager", "west"};
const Caller kAdmin{"a1", "admin", ""};
const Caller kScheduler{"scheduler", "service", ""};
const absl::Time kT0 = absl::FromUnixSeconds(1767225600);

using testing::FieldOf;

template <typename State, typename Cmd>
absl::Status FoldAt(State& s, const Caller& c, const Cmd& cmd) {
  return testing::Fold(s, c, cmd, kT0);
}

DraftContract NewContract(int64_t amount_minor = 12324980) {
  DraftContract d;
  d.terms.set_title("智能仓储系统采购合同");
  d.terms.set_customer_id("c1");
  d.terms.set_opportunity_id("o1");
  d.terms.mutable_amount()->set_amount_minor(amount_minor);
  d.terms.set_start_date("2026-01-01");
  d.terms.set_end_date("2026-12-31");
  d.customer_exists = true;
  d.customer_owner_id = "u1";
  d.customer_team_id = "east";
  return d;
}

TEST(ContractTest, DraftsAreCheckedFieldByField) {
  ContractState s;
  ASSERT_TRUE(FoldAt(s, kRep, NewContract()).ok());
  EXPECT_EQ(s.status(), v1::CONTRACT_STATUS_DRAFT);
  EXPECT_EQ(s.terms().owner_id(), "u1");
  EXPECT_EQ(s.terms().amount().currency(), "CNY");
  auto bad = [](auto mutate) {
    DraftContract d = NewContract();
    mutate(d);
    return FieldOf(Decide(nullptr, kRep, d).status());
  };
  EXPECT_EQ(bad([](DraftContract& d) { d.customer_exists = false; }), "contract.customer");
  EXPECT_EQ(bad([](DraftContract& d) { d.terms.set_title(""); }), "contract.title");
  EXPECT_EQ(bad([](DraftContract& d) { d.terms.mutable_amount()->set_amount_minor(0); }), "contract.amount.amount_minor");
  EXPECT_EQ(bad([](DraftContract& d) { d.terms.set_start_date("2026-1-1"); }), "contract.start_date");
  EXPECT_EQ(bad([](DraftContract& d) { d.terms.set_end_date("2025-12-31"); }), "contract.end_date");
  DraftContract other = NewContract();
  other.customer_owner_id = "u2";
  EXPECT_EQ(Decide(nullptr, kRep, other).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(ContractTest, AtOrBelowTheThresholdASubmittedContractIsActiveAtOnce) {
  ContractState s;
  ASSERT_TRUE(FoldAt(s, kRep, NewContract(100000000)).ok());
  ASSERT_TRUE(FoldAt(s, kRep, SubmitContract{100000000}).ok());
  EXPECT_EQ(s.status(), v1::CONTRACT_STATUS_ACTIVE);
  EXPECT_EQ(s.version(), 3);  // drafted, submitted, activated
}

TEST(ContractTest, AboveTheThresholdAManagerOfTheTeamApprovesButNeverTheSubmitter) {
  ContractState s;
  ASSERT_TRUE(FoldAt(s, kRep, NewContract(100000001)).ok());
  ASSERT_TRUE(FoldAt(s, kRep, SubmitContract{100000000}).ok());
  EXPECT_EQ(s.status(), v1::CONTRACT_STATUS_PENDING_APPROVAL);
  EXPECT_EQ(GetErrorInfo(Decide(&s, kRep, UpdateContract{s.terms(), {"title"}}).status())->reason(), "CONTRACT_STATUS");
  EXPECT_EQ(Decide(&s, kRep, ApproveContract{}).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Decide(&s, kOtherManager, ApproveContract{}).status().code(), absl::StatusCode::kPermissionDenied);
  // Rejected back to draft with a reason, changed, submitted by the manager this time
  EXPECT_EQ(FieldOf(Decide(&s, kManager, RejectContractApproval{""}).status()), "reason");
  ASSERT_TRUE(FoldAt(s, kManager, RejectContractApproval{"付款条件需修改"}).ok());
  EXPECT_EQ(s.status(), v1::CONTRACT_STATUS_DRAFT);
  ContractTerms t = s.terms();
  t.set_notes("首付 30%");
  ASSERT_TRUE(FoldAt(s, kRep, UpdateContract{t, {"notes"}}).ok());
  ASSERT_TRUE(FoldAt(s, kManager, SubmitContract{100000000}).ok());
  EXPECT_EQ(Decide(&s, kManager, ApproveContract{}).status().code(), absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(FoldAt(s, kAdmin, ApproveContract{"同意"}).ok());
  EXPECT_EQ(s.status(), v1::CONTRACT_STATUS_ACTIVE);
  EXPECT_EQ(s.approved_by(), "a1");
}

TEST(ContractTest, RenewalNoticesAt30And7DaysThenExpiry) {
  ContractState s;
  ASSERT_TRUE(FoldAt(s, kRep, NewContract()).ok());
  ASSERT_TRUE(FoldAt(s, kRep, SubmitContract{1000000000}).ok());
  EXPECT_TRUE(Decide(&s, kScheduler, CheckContractDates{"2026-11-30"})->empty());  // 31 days left
  auto due = Decide(&s, kScheduler, CheckContractDates{"2026-12-01"});
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ(std::get<v1::ContractRenewalDue>(due->front()).days_before(), 30);
  ASSERT_TRUE(FoldAt(s, kScheduler, CheckContractDates{"2026-12-01"}).ok());
  EXPECT_TRUE(Decide(&s, kScheduler, CheckContractDates{"2026-12-10"})->empty());  // once
  ASSERT_TRUE(FoldAt(s, kScheduler, CheckContractDates{"2026-12-24"}).ok());
  EXPECT_EQ(s.renewal_notices_size(), 2);
  EXPECT_TRUE(Decide(&s, kScheduler, CheckContractDates{"2026-12-31"})->empty());  // the last day still runs
  ASSERT_TRUE(FoldAt(s, kScheduler, CheckContractDates{"2027-01-01"}).ok());
  EXPECT_EQ(s.status(), v1::CONTRACT_STATUS_EXPIRED);
  EXPECT_TRUE(Decide(&s, kScheduler, CheckContractDates{"2027-06-01"})->empty());
}

TEST(ContractTest, AContractActiveLateGetsOnlyTheNearestNotice) {
  ContractState s;
  DraftContract d = NewContract();
  d.terms.set_end_date("2026-01-05");
  ASSERT_TRUE(FoldAt(s, kRep, d).ok());
  ASSERT_TRUE(FoldAt(s, kRep, SubmitContract{1000000000}).ok());
  auto due = Decide(&s, kScheduler, CheckContractDates{"2026-01-01"});
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ(std::get<v1::ContractRenewalDue>(due->front()).days_before(), 7);
  ASSERT_TRUE(FoldAt(s, kScheduler, CheckContractDates{"2026-01-01"}).ok());
  EXPECT_TRUE(Decide(&s, kScheduler, CheckContractDates{"2026-01-02"})->empty());
}

TEST(ContractTest, OnlyActiveContractsAreTerminatedWithAReason) {
  ContractState s;
  ASSERT_TRUE(FoldAt(s, kRep, NewContract()).ok());
  EXPECT_EQ(Decide(&s, kRep, TerminateContract{"客户违约"}).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(FoldAt(s, kRep, SubmitContract{1000000000}).ok());
  EXPECT_EQ(FieldOf(Decide(&s, kRep, TerminateContract{""}).status()), "reason");
  ASSERT_TRUE(FoldAt(s, kRep, TerminateContract{"客户违约"}).ok());
  EXPECT_EQ(s.status(), v1::CONTRACT_STATUS_TERMINATED);
  EXPECT_TRUE(Decide(&s, kScheduler, CheckContractDates{"2027-01-01"})->empty());
}

}  // namespace
}  // namespace crm::opportunities
