// The contract aggregate's rules, given/when/then.
#include "services/opportunities/contract.h"

#include <limits>

#include "gtest/gtest.h"
#include "libs/common/caller_testing.h"
#include "libs/common/grpc_status.h"
#include "libs/common/money.h"
#include "libs/common/proto_time.h"
#include "services/opportunities/domain_testing.h"

namespace crm::opportunities {
namespace {


using crm::testing::kAdmin;
using crm::testing::kManager;
using crm::testing::kRep;
const Caller kOtherManager{"m2", "manager", "west"};
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
  EXPECT_EQ(bad([](DraftContract& d) { d.terms.mutable_amount()->set_amount_minor(money::kMaxAmountMinor + 1); }),
            "contract.amount.amount_minor");
  EXPECT_EQ(bad([](DraftContract& d) { d.terms.set_owner_id("u\xE2\x80\xAE1"); }), "contract.owner_id");
  EXPECT_EQ(bad([](DraftContract& d) { d.terms.set_title("合同\n第二行"); }), "contract.title");
  EXPECT_EQ(bad([](DraftContract& d) { d.terms.set_start_date("1754-01-01"); }), "contract.start_date");
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

// The approver check compared an empty team with an empty team; visibility refused a manager
// without a team first, and both now go through the shared rule (ManagesTeam, SeesRecord).
TEST(ContractTest, AManagerWithoutATeamApprovesNothing) {
  const Caller teamless_rep{"u7", "rep", ""};
  const Caller teamless_manager{"m7", "manager", ""};
  DraftContract d = NewContract(100000001);
  d.customer_owner_id = "u7";
  d.customer_team_id = "";
  ContractState s;
  ASSERT_TRUE(FoldAt(s, teamless_rep, d).ok());
  ASSERT_TRUE(FoldAt(s, teamless_rep, SubmitContract{100000000}).ok());
  ASSERT_EQ(s.status(), v1::CONTRACT_STATUS_PENDING_APPROVAL);
  EXPECT_EQ(s.terms().team_id(), "");
  EXPECT_EQ(Decide(&s, teamless_manager, ApproveContract{}).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Decide(&s, teamless_manager, RejectContractApproval{"不行"}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Decide(&s, kAdmin, ApproveContract{}).ok());
}

// Dates an older version stored before the range was checked (years before 1970 or from 2200)
// must not stop the scheduler on that contract for ever.
TEST(ContractTest, TheSchedulerReadsDatesAnOlderVersionStored) {
  ContractState s;
  ASSERT_TRUE(FoldAt(s, kRep, NewContract()).ok());
  ASSERT_TRUE(FoldAt(s, kRep, SubmitContract{1000000000}).ok());
  ASSERT_EQ(s.status(), v1::CONTRACT_STATUS_ACTIVE);
  s.mutable_terms()->set_end_date("2999-12-31");
  auto later = Decide(&s, kScheduler, CheckContractDates{"2026-03-03"});
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_TRUE(later->empty());
  s.mutable_terms()->set_end_date("1969-12-31");
  auto expired = Decide(&s, kScheduler, CheckContractDates{"2026-03-03"});
  ASSERT_TRUE(expired.ok()) << expired.status();
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_TRUE(std::holds_alternative<v1::ContractExpired>(expired->front()));
  // Today is what the scheduler's own clock says: still checked strictly.
  EXPECT_EQ(Decide(&s, kScheduler, CheckContractDates{"2300-01-01"}).status().code(),
            absl::StatusCode::kInvalidArgument);
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

// An active contract of 123,249.80 with a plan of 30% / 40% / 30%.
ContractState ActiveWithPlan() {
  ContractState s;
  EXPECT_TRUE(FoldAt(s, kRep, NewContract(12324980)).ok());
  EXPECT_TRUE(FoldAt(s, kRep, SubmitContract{1000000000}).ok());
  SetPaymentPlan plan;
  for (auto [due, amount] : {std::pair{"2026-09-30", 3697494}, {"2026-03-31", 3697494}, {"2026-06-30", 4929992}}) {
    v1::Instalment i;
    i.set_due_date(due);
    i.set_amount_minor(amount);
    plan.instalments.push_back(i);
  }
  EXPECT_TRUE(FoldAt(s, kRep, plan).ok());
  return s;
}

RecordPayment Paid(const std::string& id, int64_t amount, absl::Time paid_at) {
  RecordPayment r;
  r.payment.set_payment_id(id);
  r.payment.set_amount_minor(amount);
  *r.payment.mutable_paid_at() = ToProto(paid_at);
  r.payment.set_method("银行转账");
  r.now = kT0 + absl::Hours(24 * 200);
  return r;
}

TEST(PaymentTest, APlanIsOrderedByDueDateAndCannotExceedTheContract) {
  ContractState draft;
  ASSERT_TRUE(FoldAt(draft, kRep, NewContract()).ok());
  EXPECT_EQ(Decide(&draft, kRep, SetPaymentPlan{}).status().code(), absl::StatusCode::kFailedPrecondition);
  ContractState s = ActiveWithPlan();
  ASSERT_EQ(s.plan_size(), 3);
  EXPECT_EQ(s.plan(0).due_date(), "2026-03-31");
  EXPECT_EQ(s.plan(0).number(), 1);
  EXPECT_EQ(s.plan(2).due_date(), "2026-09-30");
  SetPaymentPlan over;
  v1::Instalment i;
  i.set_due_date("2026-05-01");
  i.set_amount_minor(12324981);
  over.instalments.push_back(i);
  EXPECT_EQ(FieldOf(Decide(&s, kRep, over).status()), "plan.instalments");
  over.instalments[0].set_amount_minor(0);
  EXPECT_EQ(FieldOf(Decide(&s, kRep, over).status()), "plan.instalments[0].amount_minor");
  // An instalment past the maximum used to wrap the plan's sum below the contract amount.
  over.instalments[0].set_amount_minor(1);
  over.instalments.push_back(over.instalments[0]);
  over.instalments[1].set_amount_minor(std::numeric_limits<int64_t>::max());
  absl::Status wrapped = Decide(&s, kRep, over).status();
  EXPECT_EQ(wrapped.code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(FieldOf(wrapped), "plan.instalments[1].amount_minor");
  over.instalments.pop_back();
  over.instalments[0].set_due_date("2026-02-30");
  EXPECT_EQ(FieldOf(Decide(&s, kRep, over).status()), "plan.instalments[0].due_date");
  EXPECT_EQ(Decide(&s, kOtherManager, over).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(PaymentTest, PaymentsFillInstalmentsInDueDateOrderAndOverdueIsReportedOnce) {
  ContractState s = ActiveWithPlan();
  const absl::Time march = absl::FromCivil(absl::CivilDay(2026, 3, 20), absl::UTCTimeZone());
  ASSERT_TRUE(FoldAt(s, kRep, Paid("p1", 3000000, march)).ok());
  EXPECT_EQ(s.collected_minor(), 3000000);
  EXPECT_EQ(Receivable(s), 9324980);
  EXPECT_EQ(s.plan(0).paid_minor(), 3000000);
  // Instalment 1 (36,974.94 due 2026-03-31) is 6,974.94 short on 2026-04-01
  EXPECT_TRUE(Decide(&s, kScheduler, CheckContractDates{"2026-03-31"})->empty());
  auto due = Decide(&s, kScheduler, CheckContractDates{"2026-04-01"});
  ASSERT_EQ(due->size(), 1u);
  const auto& overdue = std::get<v1::InstalmentOverdue>(due->front());
  EXPECT_EQ(overdue.number(), 1);
  EXPECT_EQ(overdue.outstanding_minor(), 697494);
  ASSERT_TRUE(FoldAt(s, kScheduler, CheckContractDates{"2026-04-01"}).ok());
  EXPECT_TRUE(Decide(&s, kScheduler, CheckContractDates{"2026-04-02"})->empty());  // once
  // A payment covering the rest of 1 and part of 2: 2 is not overdue when paid in full
  ASSERT_TRUE(FoldAt(s, kRep, Paid("p2", 697494 + 4929992, march + absl::Hours(24 * 30))).ok());
  EXPECT_EQ(s.plan(0).paid_minor(), 3697494);
  EXPECT_EQ(s.plan(1).paid_minor(), 4929992);
  EXPECT_TRUE(Decide(&s, kScheduler, CheckContractDates{"2026-07-01"})->empty());
}

TEST(PaymentTest, PaymentsAreCheckedFieldByFieldAndNeverPassTheContractAmount) {
  ContractState s = ActiveWithPlan();
  const absl::Time t = kT0 + absl::Hours(24);
  EXPECT_EQ(FieldOf(Decide(&s, kRep, Paid("p1", 0, t)).status()), "payment.amount_minor");
  EXPECT_EQ(FieldOf(Decide(&s, kRep, Paid("p1", 12324981, t)).status()), "payment.amount_minor");
  // Past the maximum: OUT_OF_RANGE, and never wrapped below the contract amount.
  ASSERT_TRUE(FoldAt(s, kRep, Paid("p0", 10, t)).ok());
  absl::Status huge = Decide(&s, kRep, Paid("p1", std::numeric_limits<int64_t>::max(), t)).status();
  EXPECT_EQ(huge.code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(FieldOf(huge), "payment.amount_minor");
  // Year 10000 wrapped to 1816 and passed "not in the future".
  RecordPayment far = Paid("p1", 100, t);
  far.payment.mutable_paid_at()->set_seconds(253402300800);
  EXPECT_EQ(FieldOf(Decide(&s, kRep, far).status()), "payment.paid_at");
  ASSERT_TRUE(FoldAt(s, kManager, VoidPayment{"p0", "录入错误"}).ok());
  RecordPayment future = Paid("p1", 100, t);
  future.now = t - absl::Hours(1);
  EXPECT_EQ(FieldOf(Decide(&s, kRep, future).status()), "payment.paid_at");
  RecordPayment no_day = Paid("p1", 100, t);
  no_day.payment.clear_paid_at();
  EXPECT_EQ(FieldOf(Decide(&s, kRep, no_day).status()), "payment.paid_at");
  RecordPayment long_method = Paid("p1", 100, t);
  long_method.payment.set_method(std::string(41, 'x'));
  EXPECT_EQ(FieldOf(Decide(&s, kRep, long_method).status()), "payment.method");
  ASSERT_TRUE(FoldAt(s, kRep, Paid("p1", 12324980, t)).ok());
  EXPECT_EQ(Receivable(s), 0);
  EXPECT_TRUE(Decide(&s, kRep, Paid("p1", 12324980, t))->empty());  // the same payment again: a retry
  EXPECT_EQ(FieldOf(Decide(&s, kRep, Paid("p2", 1, t)).status()), "payment.amount_minor");
}

TEST(PaymentTest, ABackdatedCorrectionKeepsWhatWasKnownThen) {
  ContractState s = ActiveWithPlan();
  const absl::Time april = absl::FromCivil(absl::CivilDay(2026, 4, 10), absl::UTCTimeZone());
  ASSERT_TRUE(FoldAt(s, kRep, Paid("p1", 1000000, april)).ok());
  const ContractState known_then = s;
  CorrectPayment fix;
  fix.correction.set_payment_id("p1");
  fix.correction.set_amount_minor(1200000);
  *fix.correction.mutable_paid_at() = ToProto(april - absl::Hours(24 * 15));  // 2026-03-26 in fact
  fix.correction.set_reason("银行回单金额为 12,000.00，到账日 3 月 26 日");
  fix.now = april + absl::Hours(24);
  EXPECT_EQ(Decide(&s, kRep, fix).status().code(), absl::StatusCode::kPermissionDenied);
  fix.correction.set_reason("");
  EXPECT_EQ(FieldOf(Decide(&s, kManager, fix).status()), "reason");
  fix.correction.set_reason("银行回单金额为 12,000.00，到账日 3 月 26 日");
  ASSERT_TRUE(FoldAt(s, kManager, fix).ok());
  const absl::Time march_end = absl::FromCivil(absl::CivilDay(2026, 3, 31), absl::UTCTimeZone());
  EXPECT_EQ(CollectedAsOf(known_then, march_end), 0);        // as known then: nothing by March
  EXPECT_EQ(CollectedAsOf(s, march_end), 1200000);           // as corrected
  EXPECT_EQ(s.payments(0).corrections(), 1);
  // Voided: it no longer counts
  ASSERT_TRUE(FoldAt(s, kManager, VoidPayment{"p1", "退票"}).ok());
  EXPECT_EQ(s.collected_minor(), 0);
  EXPECT_EQ(Decide(&s, kManager, VoidPayment{"p9", "x"}).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace crm::opportunities
