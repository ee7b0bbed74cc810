// The opportunities engine end to end on an embedded log, beside a real customers engine
// whose topic it follows: given/when/then.
#include "services/opportunities/opportunity_engine.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "libs/common/ids.h"
#include "libs/common/grpc_status.h"
#include "libs/common/proto_time.h"
#include "libs/common/caller_testing.h"
#include "libs/common/status_testing.h"
#include "libs/testing/engine_harness.h"
#include "services/customers/customer_engine.h"
#include "services/opportunities/domain_testing.h"

namespace crm::opportunities {
namespace {

using crm::testing::AbortedInfo;
using testing::FieldOf;

using crm::testing::kAdmin;
using crm::testing::kManager;
using crm::testing::kRep;
using crm::testing::kRep2;
using crm::testing::Service;

class OpportunityEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto h = crm::testing::EngineHarness::Create({.name = "opp-engine"});
    ASSERT_TRUE(h.ok()) << h.status();
    h_ = *std::move(h);
    const absl::Status s = h_->Open(Service::kCustomers);
    ASSERT_TRUE(s.ok()) << s;
    OpenOpportunities();
  }
  void OpenOpportunities(const std::string& proj = "") {
    const absl::Status s = h_->Open(Service::kOpportunities, proj);
    ASSERT_TRUE(s.ok()) << s;
  }
  OpportunityEngine* engine() const { return h_->opportunities(); }
  customers::CustomerEngine* customers() const { return h_->customers(); }
  ManualClock& clock() const { return h_->clock(); }

  // Runs a command of whichever engine `fn` belongs to (customers or opportunities).
  template <typename Fn, typename Req>
  auto Sync(Fn fn, const Caller& c, const Req& req) {
    return h_->Sync(fn, c, req);
  }

  // A customer of `c`, known to the opportunities engine when this returns.
  customers::v1::Customer Customer(const Caller& c, const std::string& name, const std::string& phone) {
    customers::v1::CreateCustomerRequest req;
    req.mutable_customer()->set_display_name(name);
    req.mutable_customer()->set_phone(phone);
    auto created = Sync(&customers::CustomerCommands::Create, c, req);
    EXPECT_TRUE(created.ok()) << created.status();
    Await(created->consistency_token());
    return *created;
  }
  void Await(const std::string& token) { ASSERT_TRUE(h_->Await(Service::kOpportunities, token).ok()); }

  absl::StatusOr<v1::Opportunity> NewOpportunity(const Caller& c, const std::string& customer, int64_t amount_minor,
                                                 const std::string& rid = "") {
    v1::CreateOpportunityRequest req;
    req.mutable_opportunity()->set_customer(customer);
    req.mutable_opportunity()->set_title("智能仓储系统");
    req.mutable_opportunity()->mutable_amount()->set_amount_minor(amount_minor);
    req.mutable_opportunity()->set_expected_close_date("2026-03-31");
    req.set_request_id(rid);
    return Sync(&OpportunityEngine::CreateOpportunity, c, req);
  }
  // A contract of `c` for customer `customer` (its name) over 2026.
  absl::StatusOr<v1::Contract> NewContract(const Caller& c, const std::string& customer, const std::string& title,
                                           int64_t amount_minor, const std::string& rid = "") {
    v1::CreateContractRequest req;
    req.mutable_contract()->set_customer(customer);
    req.mutable_contract()->set_title(title);
    req.mutable_contract()->mutable_amount()->set_amount_minor(amount_minor);
    req.mutable_contract()->set_start_date("2026-01-01");
    req.mutable_contract()->set_end_date("2026-12-31");
    req.set_request_id(rid);
    return Sync(&OpportunityEngine::CreateContract, c, req);
  }
  // A quote of one line on opportunity `opp` (its name).
  absl::StatusOr<v1::Quote> NewQuote(const Caller& c, const std::string& opp, const std::string& product,
                                     int64_t quantity_milli, int64_t unit_price_minor, const std::string& rid = "") {
    v1::CreateQuoteRequest req;
    req.mutable_quote()->set_opportunity(opp);
    auto* line = req.mutable_quote()->mutable_current()->add_lines();
    line->set_product(product);
    line->set_quantity_milli(quantity_milli);
    line->set_unit_price_minor(unit_price_minor);
    req.set_request_id(rid);
    return Sync(&OpportunityEngine::CreateQuote, c, req);
  }
  // Accepting quote `name` into a contract from 2026-02-01 to 2027-01-31.
  static v1::AcceptQuoteRequest AcceptRequest(const std::string& name, const std::string& rid) {
    v1::AcceptQuoteRequest req;
    req.set_name(name);
    req.set_start_date("2026-02-01");
    req.set_end_date("2027-01-31");
    req.set_request_id(rid);
    return req;
  }
  v1::Opportunity Get(const Caller& c, const std::string& name) {
    v1::GetOpportunityRequest req;
    req.set_name(name);
    auto got = engine()->GetOpportunity(c, req, absl::Now() + absl::Seconds(5));
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? *got : v1::Opportunity();
  }
  absl::StatusOr<v1::Opportunity> Move(const Caller& c, const v1::Opportunity& o, const std::string& stage) {
    v1::MoveOpportunityStageRequest req;
    req.set_name(o.name());
    req.set_stage_id(stage);
    return Sync(&OpportunityEngine::MoveStage, c, req);
  }
  // Waits (up to 10 s) for `pred` on the opportunity: reactions run after the follower commits.
  template <typename Pred>
  v1::Opportunity Eventually(const std::string& name, Pred pred) {
    v1::Opportunity o;
    for (int i = 0; i < 1000; ++i) {
      o = Get(kAdmin, name);
      if (pred(o)) break;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return o;
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

  // The live projections equal a fresh rebuild from both topics.
  void ExpectEqualsFreshRebuild() {
    auto fresh = h_->RebuiltChecksum(Service::kOpportunities);
    ASSERT_TRUE(fresh.ok()) << fresh.status();
    EXPECT_EQ(*fresh, *h_->Checksum(Service::kOpportunities));
  }

  // Runs `decide` on aggregate `id` through the engine's write path; its answer.
  template <typename State, typename Event>
  absl::StatusOr<OpportunityEngine::Written<State>> Write(const Caller& c, const std::string& id,
                                                          const std::string& rid,
                                                          OpportunityEngine::DecideFn<State, Event> decide) {
    absl::Notification done;
    absl::StatusOr<OpportunityEngine::Written<State>> out = absl::UnknownError("no answer");
    engine()->Execute<State, Event>(c, id, rid, std::move(decide),
                                    [&](absl::StatusOr<OpportunityEngine::Written<State>> w) {
                                      out = std::move(w);
                                      done.Notify();
                                    });
    if (!done.WaitForNotificationWithTimeout(absl::Seconds(10))) return absl::DeadlineExceededError("no answer");
    return out;
  }
  // The state row `key` as the projection committed it.
  template <typename State>
  State Row(const std::string& key) {
    auto s = ReadState<State>(engine()->db()->db(), rocksdb::ReadOptions(), key);
    EXPECT_TRUE(s.ok() && s->has_value()) << key;
    return s.ok() && s->has_value() ? **s : State();
  }

  std::unique_ptr<crm::testing::EngineHarness> h_;
};

TEST_F(OpportunityEngineTest, FromOpportunityToQuoteContractAndPayment) {
  // Given a rep's customer and an opportunity of 120,000.00 in the default pipeline
  auto customer = Customer(kRep, "杭州云栖科技有限公司", "13800138000");
  auto opp = NewOpportunity(kRep, customer.name(), 12000000);
  ASSERT_TRUE(opp.ok()) << opp.status();
  EXPECT_EQ(opp->stage_id(), "initial_contact");
  EXPECT_EQ(opp->stage_name(), "初步接触");
  EXPECT_EQ(opp->owner_id(), "u1");
  ASSERT_TRUE(Move(kRep, *opp, "needs_analysis").ok());
  ASSERT_TRUE(Move(kRep, *opp, "proposal").ok());

  // When a quote of 2 lines is made, sent and accepted
  v1::CreateQuoteRequest cq;
  cq.mutable_quote()->set_opportunity(opp->name());
  auto* line = cq.mutable_quote()->mutable_current()->add_lines();
  line->set_product("货架");
  line->set_quantity_milli(2500);       // 2.5 套
  line->set_unit_price_minor(3333333);  // 33,333.33
  line->set_discount_bp(950);           // 9.5% off
  line->set_tax_rate_bp(1300);          // 13% VAT
  line = cq.mutable_quote()->mutable_current()->add_lines();
  line->set_product("实施服务");
  line->set_quantity_milli(1000);
  line->set_unit_price_minor(1000000);
  line->set_tax_rate_bp(600);
  cq.set_request_id("quote-1");
  auto quote = Sync(&OpportunityEngine::CreateQuote, kRep, cq);
  ASSERT_TRUE(quote.ok()) << quote.status();
  // 2.5 × 33,333.33 = 83,333.325 → 83,333.33; 9.5% = 7,916.67; net 75,416.66; VAT 9,804.17
  EXPECT_EQ(quote->current().lines(0).total_minor(), 8522083);
  EXPECT_EQ(quote->current().totals().total_minor(), 8522083 + 1060000);
  v1::SendQuoteRequest sq;
  sq.set_name(quote->name());
  ASSERT_TRUE(Sync(&OpportunityEngine::SendQuote, kRep, sq).ok());
  const v1::AcceptQuoteRequest aq = AcceptRequest(quote->name(), "accept-1");
  auto accepted = Sync(&OpportunityEngine::AcceptQuote, kRep, aq);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  // Then the quote is accepted and a contract draft holds its total
  EXPECT_EQ(accepted->quote().status(), v1::QUOTE_STATUS_ACCEPTED);
  const v1::Contract& draft = accepted->contract();
  EXPECT_EQ(accepted->quote().contract(), draft.name());
  EXPECT_EQ(draft.status(), v1::CONTRACT_STATUS_DRAFT);
  EXPECT_EQ(draft.amount().amount_minor(), 9582083);
  EXPECT_EQ(draft.number(), "HT202601010001");
  EXPECT_EQ(draft.title(), "智能仓储系统");
  // Accepting again (a retry) changes nothing
  auto again = Sync(&OpportunityEngine::AcceptQuote, kRep, aq);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->contract().name(), draft.name());
  EXPECT_EQ(again->contract().etag(), draft.etag());

  // When submitted above the threshold (100,000.00), a manager approves it
  v1::SetContractPolicyRequest policy;
  policy.set_approval_threshold_minor(5000000);
  ASSERT_TRUE(Sync(&OpportunityEngine::SetContractPolicy, kAdmin, policy).ok());
  v1::SubmitContractRequest submit;
  submit.set_name(draft.name());
  auto submitted = Sync(&OpportunityEngine::SubmitContract, kRep, submit);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  EXPECT_EQ(submitted->status(), v1::CONTRACT_STATUS_PENDING_APPROVAL);
  v1::ApproveContractRequest approve;
  approve.set_name(draft.name());
  EXPECT_EQ(Sync(&OpportunityEngine::ApproveContract, kRep, approve).status().code(), absl::StatusCode::kPermissionDenied);
  auto active = Sync(&OpportunityEngine::ApproveContract, kManager, approve);
  ASSERT_TRUE(active.ok()) << active.status();
  EXPECT_EQ(active->status(), v1::CONTRACT_STATUS_ACTIVE);

  // And a plan of two instalments, a backdated payment, and the receivable
  v1::SetPaymentPlanRequest plan;
  plan.set_name(draft.name());
  auto* i1 = plan.add_instalments();
  i1->set_due_date("2026-02-15");
  i1->set_amount_minor(4791042);
  auto* i2 = plan.add_instalments();
  i2->set_due_date("2026-06-30");
  i2->set_amount_minor(4791041);
  ASSERT_TRUE(Sync(&OpportunityEngine::SetPaymentPlan, kRep, plan).ok());
  clock().Advance(absl::Hours(24 * 40));  // 2026-02-10
  v1::RecordPaymentRequest pay;
  pay.set_name(draft.name());
  pay.mutable_payment()->set_amount_minor(3000000);
  *pay.mutable_payment()->mutable_paid_at() = ToProto(clock().Now() - absl::Hours(24 * 3));
  pay.mutable_payment()->set_method("银行转账");
  pay.set_request_id("pay-1");
  auto paid = Sync(&OpportunityEngine::RecordPayment, kRep, pay);
  ASSERT_TRUE(paid.ok()) << paid.status();
  EXPECT_EQ(paid->collected_minor(), 3000000);
  EXPECT_EQ(paid->receivable_minor(), 6582083);
  EXPECT_EQ(Sync(&OpportunityEngine::RecordPayment, kRep, pay)->payments_size(), 1);  // retried: once
  v1::GetCustomerReceivablesRequest cr;
  cr.set_customer(customer.name());
  auto receivables = engine()->GetCustomerReceivables(kRep, cr, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(receivables.ok()) << receivables.status();
  EXPECT_EQ(receivables->total_receivable_minor().at("CNY"), 6582083);

  // The scheduler reports instalment 1 overdue after its due date, once
  clock().Advance(absl::Hours(24 * 6));  // 2026-02-16
  auto run = engine()->RunScheduler(clock().Now());
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->overdue_instalments, 1);
  EXPECT_EQ(engine()->RunScheduler(clock().Now())->overdue_instalments, 0);
  v1::GetReceivableRequest gr;
  gr.set_name(draft.name());
  auto receivable = engine()->GetReceivable(kRep, gr, absl::Now() + absl::Seconds(5));
  EXPECT_EQ(receivable->overdue_minor(), 4791042 - 3000000);
  // As known a week ago, before the payment was recorded, nothing was collected
  gr.mutable_known_at()->CopyFrom(ToProto(clock().Now() - absl::Hours(24 * 7)));
  auto known_then = engine()->GetReceivable(kRep, gr, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(known_then.ok()) << known_then.status();
  EXPECT_EQ(known_then->collected_minor(), 0);
  EXPECT_EQ(known_then->receivable_minor(), 9582083);

  // The opportunity is won; its history names who did what
  v1::WinOpportunityRequest win;
  win.set_name(opp->name());
  auto won = Sync(&OpportunityEngine::Win, kRep, win);
  ASSERT_TRUE(won.ok()) << won.status();
  EXPECT_EQ(won->status(), v1::OPPORTUNITY_STATUS_WON);
  auto events = Events(opp->name());
  ASSERT_EQ(events.size(), 4u);  // created, 2 stage changes, won
  EXPECT_EQ(events[1].event_type(), "crm.opportunities.v1.OpportunityStageChanged");
  EXPECT_EQ(events[1].actor().user_id(), "u1");
  EXPECT_NE(events[1].payload_json().find("needs_analysis"), std::string::npos);

  // The customers service takes the win: the customer is a deal customer (成交), once
  customers::v1::Customer after;
  for (int i = 0; i < 1000 && after.deals_won() == 0; ++i) {
    customers::v1::GetCustomerRequest get;
    get.set_name(customer.name());
    after = *customers()->queries().Get(kRep, get, absl::Now() + absl::Seconds(5));
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(after.deals_won(), 1);
  EXPECT_EQ(after.lifecycle_status(), customers::v1::LIFECYCLE_STATUS_DEAL);
  // ... and its projections, restarted or rebuilt from both topics, agree
  const std::string live = *h_->Checksum(Service::kCustomers);
  ASSERT_TRUE(h_->Open(Service::kCustomers).ok());  // restart on the same projections
  EXPECT_EQ(*h_->Checksum(Service::kCustomers), live);
  auto fresh = h_->RebuiltChecksum(Service::kCustomers);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(*fresh, live);
}

TEST_F(OpportunityEngineTest, BadInputNamesTheField) {
  auto customer = Customer(kRep, "宁波港通物流", "13900139000");
  auto bad_create = [&](auto mutate) {
    v1::CreateOpportunityRequest req;
    req.mutable_opportunity()->set_customer(customer.name());
    req.mutable_opportunity()->set_title("冷链");
    mutate(req);
    return FieldOf(Sync(&OpportunityEngine::CreateOpportunity, kRep, req).status());
  };
  EXPECT_EQ(bad_create([](auto& r) { r.mutable_opportunity()->set_customer(""); }), "opportunity.customer");
  EXPECT_EQ(bad_create([](auto& r) { r.mutable_opportunity()->set_customer("customers/nope"); }), "opportunity.customer");
  EXPECT_EQ(bad_create([](auto& r) {
              r.mutable_opportunity()->set_customer("customers/0190a0a0-0000-7000-8000-000000000000");
            }),
            "opportunity.customer");
  EXPECT_EQ(bad_create([](auto& r) { r.mutable_opportunity()->set_title(""); }), "opportunity.name");
  EXPECT_EQ(bad_create([](auto& r) { r.mutable_opportunity()->set_pipeline_id("nope"); }), "opportunity.pipeline_id");
  EXPECT_EQ(bad_create([](auto& r) { r.mutable_opportunity()->set_expected_close_date("2026-13-01"); }),
            "opportunity.expected_close_date");
  EXPECT_EQ(bad_create([](auto& r) { r.mutable_opportunity()->mutable_amount()->set_amount_minor(-1); }),
            "opportunity.amount.amount_minor");
  EXPECT_EQ(bad_create([](auto& r) { r.mutable_opportunity()->mutable_amount()->set_currency("XXX"); }),
            "opportunity.amount.currency");
  EXPECT_EQ(bad_create([](auto& r) { r.set_request_id("has space"); }), "request_id");
  EXPECT_EQ(bad_create([](auto& r) { r.mutable_opportunity()->set_stage_id("won"); }), "stage_id");

  auto opp = NewOpportunity(kRep, customer.name(), 100);
  ASSERT_TRUE(opp.ok());
  v1::UpdateOpportunityRequest up;
  up.mutable_opportunity()->set_name(opp->name());
  up.mutable_opportunity()->set_etag("7");
  up.mutable_opportunity()->set_title("新名称");
  EXPECT_EQ(Sync(&OpportunityEngine::UpdateOpportunity, kRep, up).status().code(), absl::StatusCode::kAborted);
  up.mutable_opportunity()->set_etag("x");
  EXPECT_EQ(FieldOf(Sync(&OpportunityEngine::UpdateOpportunity, kRep, up).status()), "opportunity.etag");
  up.mutable_opportunity()->clear_etag();
  up.mutable_update_mask()->add_paths("stage_id");
  EXPECT_EQ(FieldOf(Sync(&OpportunityEngine::UpdateOpportunity, kRep, up).status()), "update_mask");
  EXPECT_EQ(FieldOf(Move(kRep, *opp, "").status()), "stage_id");
  EXPECT_EQ(FieldOf(Move(kRep, *opp, "nope").status()), "stage_id");
  v1::LoseOpportunityRequest lose;
  lose.set_name(opp->name());
  EXPECT_EQ(FieldOf(Sync(&OpportunityEngine::Lose, kRep, lose).status()), "reason");
  v1::ListOpportunitiesRequest list;
  list.set_filter("colour = red");
  EXPECT_EQ(FieldOf(engine()->ListOpportunities(kRep, list, absl::Now() + absl::Seconds(5)).status()), "filter");
  list.set_filter("");
  list.set_order_by("colour");
  EXPECT_EQ(FieldOf(engine()->ListOpportunities(kRep, list, absl::Now() + absl::Seconds(5)).status()), "order_by");
  v1::CreateQuoteRequest cq;
  cq.mutable_quote()->set_opportunity(opp->name());
  cq.mutable_quote()->mutable_current()->add_lines()->set_product("x");
  EXPECT_EQ(FieldOf(Sync(&OpportunityEngine::CreateQuote, kRep, cq).status()), "quote.lines[0].quantity_milli");
  v1::CreateContractRequest cc;
  cc.mutable_contract()->set_customer(customer.name());
  cc.mutable_contract()->set_title("合同");
  cc.mutable_contract()->mutable_amount()->set_amount_minor(100);
  cc.mutable_contract()->set_start_date("2026-01-01");
  cc.mutable_contract()->set_end_date("2025-01-01");
  EXPECT_EQ(FieldOf(Sync(&OpportunityEngine::CreateContract, kRep, cc).status()), "contract.end_date");
  cc.mutable_contract()->set_number("HT1");
  EXPECT_EQ(FieldOf(Sync(&OpportunityEngine::CreateContract, kRep, cc).status()), "contract.number");
}

TEST_F(OpportunityEngineTest, PermissionsFollowOwnerAndTeam) {
  auto customer = Customer(kRep, "苏州精工", "13700137000");
  auto opp = NewOpportunity(kRep, customer.name(), 100);
  ASSERT_TRUE(opp.ok());
  // Another rep neither sees the customer's opportunities nor creates one on it
  v1::GetOpportunityRequest get;
  get.set_name(opp->name());
  EXPECT_EQ(engine()->GetOpportunity(kRep2, get, absl::Now() + absl::Seconds(5)).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(NewOpportunity(kRep2, customer.name(), 100).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Move(kRep2, *opp, "needs_analysis").status().code(), absl::StatusCode::kPermissionDenied);
  // The team's manager does both; lists hold what each may see
  EXPECT_TRUE(Move(kManager, *opp, "needs_analysis").ok());
  v1::ListOpportunitiesRequest list;
  EXPECT_EQ(engine()->ListOpportunities(kRep2, list, absl::Now() + absl::Seconds(5))->total_size(), 0);
  auto all = engine()->ListOpportunities(kManager, list, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->total_size(), 1);
  // 需求分析 weighs 30%: 0.30 of 1.00
  EXPECT_EQ(all->weighted_amount_minor().at("CNY"), 30);
}

// The rpcs below had tests at the domain level only (Decide/Apply); these go through the engine
// that the gRPC service calls: validation, visibility, the events written and the read models.
TEST_F(OpportunityEngineTest, DeleteUndeleteAndReopenWriteTheirEventsAndMoveTheOpportunity) {
  auto customer = Customer(kRep, "无锡太湖机电", "13300133000");
  auto opp = NewOpportunity(kRep, customer.name(), 5000);
  ASSERT_TRUE(opp.ok()) << opp.status();
  ASSERT_TRUE(Move(kRep, *opp, "needs_analysis").ok());

  // Delete: to the recycle bin, out of the list unless show_deleted; another rep may not
  v1::DeleteOpportunityRequest del;
  del.set_name(opp->name());
  del.set_reason("重复录入");
  EXPECT_EQ(Sync(&OpportunityEngine::DeleteOpportunity, kRep2, del).status().code(),
            absl::StatusCode::kPermissionDenied);
  del.set_name("opportunities/0190a0a0-0000-7000-8000-000000000000");
  EXPECT_EQ(Sync(&OpportunityEngine::DeleteOpportunity, kRep, del).status().code(), absl::StatusCode::kNotFound);
  del.set_name("bogus");
  EXPECT_EQ(FieldOf(Sync(&OpportunityEngine::DeleteOpportunity, kRep, del).status()), "name");
  del.set_name(opp->name());
  del.set_reason(std::string(501, 'x'));
  EXPECT_EQ(FieldOf(Sync(&OpportunityEngine::DeleteOpportunity, kRep, del).status()), "reason");
  del.set_reason("重复录入");
  del.set_etag("1");  // stale: the stage move made it 2
  EXPECT_EQ(Sync(&OpportunityEngine::DeleteOpportunity, kRep, del).status().code(), absl::StatusCode::kAborted);
  del.clear_etag();
  auto deleted = Sync(&OpportunityEngine::DeleteOpportunity, kRep, del);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_TRUE(deleted->deleted());
  v1::ListOpportunitiesRequest list;
  EXPECT_EQ(engine()->ListOpportunities(kRep, list, absl::Now() + absl::Seconds(5))->total_size(), 0);
  list.set_show_deleted(true);
  EXPECT_EQ(engine()->ListOpportunities(kRep, list, absl::Now() + absl::Seconds(5))->total_size(), 1);

  // Undelete: back in the list; undeleting a live one is a broken rule
  v1::UndeleteOpportunityRequest undel;
  undel.set_name(opp->name());
  EXPECT_EQ(Sync(&OpportunityEngine::UndeleteOpportunity, kRep2, undel).status().code(),
            absl::StatusCode::kPermissionDenied);
  auto back = Sync(&OpportunityEngine::UndeleteOpportunity, kRep, undel);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_FALSE(back->deleted());
  EXPECT_EQ(Sync(&OpportunityEngine::UndeleteOpportunity, kRep, undel).status().code(),
            absl::StatusCode::kFailedPrecondition);
  list.set_show_deleted(false);
  EXPECT_EQ(engine()->ListOpportunities(kRep, list, absl::Now() + absl::Seconds(5))->total_size(), 1);

  // Reopen: refused while open; after a loss it returns to the last open stage, or to the one named
  v1::ReopenOpportunityRequest reopen;
  reopen.set_name(opp->name());
  EXPECT_EQ(Sync(&OpportunityEngine::Reopen, kRep, reopen).status().code(), absl::StatusCode::kFailedPrecondition);
  v1::LoseOpportunityRequest lose;
  lose.set_name(opp->name());
  lose.set_reason("预算取消");
  ASSERT_TRUE(Sync(&OpportunityEngine::Lose, kRep, lose).ok());
  reopen.set_stage_id("won");
  EXPECT_EQ(FieldOf(Sync(&OpportunityEngine::Reopen, kRep, reopen).status()), "stage_id");
  reopen.set_stage_id("");
  EXPECT_EQ(Sync(&OpportunityEngine::Reopen, kRep2, reopen).status().code(), absl::StatusCode::kPermissionDenied);
  reopen.set_reason("预算恢复");
  auto reopened = Sync(&OpportunityEngine::Reopen, kRep, reopen);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(reopened->status(), v1::OPPORTUNITY_STATUS_OPEN);
  EXPECT_EQ(reopened->stage_id(), "needs_analysis");
  EXPECT_EQ(Get(kRep, opp->name()).status(), v1::OPPORTUNITY_STATUS_OPEN);

  std::vector<std::string> types;
  for (const auto& e : Events(opp->name())) types.push_back(e.event_type());
  EXPECT_EQ(types, (std::vector<std::string>{
                       "crm.opportunities.v1.OpportunityCreated", "crm.opportunities.v1.OpportunityStageChanged",
                       "crm.opportunities.v1.OpportunityDeleted", "crm.opportunities.v1.OpportunityUndeleted",
                       "crm.opportunities.v1.OpportunityLost", "crm.opportunities.v1.OpportunityReopened"}));
  ExpectEqualsFreshRebuild();
}

TEST_F(OpportunityEngineTest, GetSalesSettingsShowsTheDefaultPipelineAndThePolicyInForce) {
  v1::GetSalesSettingsRequest get;
  auto before = engine()->GetSettings(kRep, get, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_GE(before->pipelines_size(), 1);
  EXPECT_EQ(before->pipelines(0).stages(0).id(), "initial_contact");
  EXPECT_EQ(before->approval_threshold_minor(), 0);
  // Never written: etag "0", which a test-and-set may pass back
  EXPECT_EQ(before->etag(), "0");
  v1::SetContractPolicyRequest policy;
  policy.set_approval_threshold_minor(5000000);
  policy.set_etag(before->etag());
  auto set = Sync(&OpportunityEngine::SetContractPolicy, kAdmin, policy);
  ASSERT_TRUE(set.ok()) << set.status();
  get.set_min_consistency_token(set->consistency_token());
  auto after = engine()->GetSettings(kRep, get, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->approval_threshold_minor(), 5000000);
  EXPECT_EQ(after->etag(), "1");
  // ... and once written, "0" is stale
  EXPECT_EQ(Sync(&OpportunityEngine::SetContractPolicy, kAdmin, policy).status().code(), absl::StatusCode::kAborted);
  get.set_min_consistency_token("not-a-token");
  EXPECT_EQ(FieldOf(engine()->GetSettings(kRep, get, absl::Now() + absl::Seconds(5)).status()),
            "min_consistency_token");

  // SetPipelines: a renamed stage shows in the settings; a pipeline in force cannot be dropped
  v1::SetPipelinesRequest pipelines;
  *pipelines.mutable_pipelines() = after->pipelines();
  pipelines.mutable_pipelines(0)->mutable_stages(0)->set_name("初步接洽");
  pipelines.set_etag(after->etag());
  auto renamed = Sync(&OpportunityEngine::SetPipelines, kAdmin, pipelines);
  ASSERT_TRUE(renamed.ok()) << renamed.status();
  EXPECT_EQ(renamed->pipelines(0).stages(0).name(), "初步接洽");
  EXPECT_EQ(renamed->etag(), "2");
  v1::SetPipelinesRequest none;
  EXPECT_EQ(FieldOf(Sync(&OpportunityEngine::SetPipelines, kAdmin, none).status()), "pipelines");
}

TEST_F(OpportunityEngineTest, QuotesAreReadListedRevisedAndRejected) {
  auto customer = Customer(kRep, "合肥科大智能", "13200132000");
  auto opp = NewOpportunity(kRep, customer.name(), 100000);
  ASSERT_TRUE(opp.ok()) << opp.status();
  auto quote = NewQuote(kRep, opp->name(), "传感器", 10000, 10000);
  ASSERT_TRUE(quote.ok()) << quote.status();
  const auto deadline = [] { return absl::Now() + absl::Seconds(5); };

  // GetQuote: the quote as created; bad names, unknown ids and other reps refused
  v1::GetQuoteRequest get;
  get.set_name(quote->name());
  auto got = engine()->GetQuote(kRep, get, deadline());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->current().number(), 1);
  EXPECT_EQ(got->current().totals().total_minor(), 100000);
  EXPECT_EQ(got->status(), v1::QUOTE_STATUS_DRAFT);
  EXPECT_EQ(engine()->GetQuote(kRep2, get, deadline()).status().code(), absl::StatusCode::kPermissionDenied);
  get.set_name("opportunities/x");
  EXPECT_EQ(FieldOf(engine()->GetQuote(kRep, get, deadline()).status()), "name");
  get.set_name("quotes/0190a0a0-0000-7000-8000-000000000000");
  EXPECT_EQ(engine()->GetQuote(kRep, get, deadline()).status().code(), absl::StatusCode::kNotFound);

  // ListQuotes: the opportunity's quotes, oldest first, paged
  clock().Advance(absl::Seconds(1));
  ASSERT_TRUE(NewQuote(kRep, opp->name(), "传感器", 10000, 10000).ok());
  v1::ListQuotesRequest list;
  list.set_parent(opp->name());
  list.set_page_size(1);
  auto page = engine()->ListQuotes(kRep, list, deadline());
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->quotes_size(), 1);
  EXPECT_EQ(page->quotes(0).name(), quote->name());
  ASSERT_FALSE(page->next_page_token().empty());
  list.set_page_token(page->next_page_token());
  auto rest = engine()->ListQuotes(kRep, list, deadline());
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->quotes_size(), 1);
  EXPECT_TRUE(rest->next_page_token().empty());
  EXPECT_EQ(engine()->ListQuotes(kRep2, list, deadline()).status().code(), absl::StatusCode::kPermissionDenied);
  list.set_parent("");
  EXPECT_EQ(FieldOf(engine()->ListQuotes(kRep, list, deadline()).status()), "parent");
  list.set_parent(opp->name());
  list.clear_page_token();
  list.set_page_size(-1);
  EXPECT_EQ(FieldOf(engine()->ListQuotes(kRep, list, deadline()).status()), "page_size");

  // ReviseQuote: version 2 with its own total, version 1 kept; bad lines name the field
  v1::ReviseQuoteRequest revise;
  revise.set_name(quote->name());
  auto* l2 = revise.mutable_version()->add_lines();
  l2->set_product("传感器");
  l2->set_quantity_milli(20000);
  l2->set_unit_price_minor(9000);
  revise.set_etag("9");
  EXPECT_EQ(Sync(&OpportunityEngine::ReviseQuote, kRep, revise).status().code(), absl::StatusCode::kAborted);
  revise.clear_etag();
  EXPECT_EQ(Sync(&OpportunityEngine::ReviseQuote, kRep2, revise).status().code(), absl::StatusCode::kPermissionDenied);
  auto revised = Sync(&OpportunityEngine::ReviseQuote, kRep, revise);
  ASSERT_TRUE(revised.ok()) << revised.status();
  EXPECT_EQ(revised->current().number(), 2);
  EXPECT_EQ(revised->current().totals().total_minor(), 180000);
  ASSERT_EQ(revised->earlier_versions_size(), 1);
  EXPECT_EQ(revised->earlier_versions(0).totals().total_minor(), 100000);
  l2->set_quantity_milli(0);
  EXPECT_EQ(FieldOf(Sync(&OpportunityEngine::ReviseQuote, kRep, revise).status()), "version.lines[0].quantity_milli");

  // RejectQuote: only a sent quote, with a reason
  v1::RejectQuoteRequest reject;
  reject.set_name(quote->name());
  reject.set_reason("价格过高");
  EXPECT_EQ(Sync(&OpportunityEngine::RejectQuote, kRep, reject).status().code(), absl::StatusCode::kFailedPrecondition);
  v1::SendQuoteRequest send;
  send.set_name(quote->name());
  ASSERT_TRUE(Sync(&OpportunityEngine::SendQuote, kRep, send).ok());
  reject.clear_reason();
  EXPECT_EQ(FieldOf(Sync(&OpportunityEngine::RejectQuote, kRep, reject).status()), "reason");
  reject.set_reason("价格过高");
  auto rejected = Sync(&OpportunityEngine::RejectQuote, kRep, reject);
  ASSERT_TRUE(rejected.ok()) << rejected.status();
  EXPECT_EQ(rejected->status(), v1::QUOTE_STATUS_REJECTED);
  get.set_name(quote->name());
  EXPECT_EQ(engine()->GetQuote(kRep, get, deadline())->status(), v1::QUOTE_STATUS_REJECTED);

  std::vector<std::string> types;
  for (const auto& e : Events(quote->name())) types.push_back(e.event_type());
  EXPECT_EQ(types, (std::vector<std::string>{"crm.opportunities.v1.QuoteCreated", "crm.opportunities.v1.QuoteRevised",
                                             "crm.opportunities.v1.QuoteSent", "crm.opportunities.v1.QuoteRejected"}));
  ExpectEqualsFreshRebuild();
}

TEST_F(OpportunityEngineTest, ContractsAreListedRejectedAndTerminated) {
  auto customer = Customer(kRep, "厦门鹭岛贸易", "13100131000");
  v1::SetContractPolicyRequest policy;
  policy.set_approval_threshold_minor(1000);
  ASSERT_TRUE(Sync(&OpportunityEngine::SetContractPolicy, kAdmin, policy).ok());
  auto draft = [&](const std::string& title) {
    auto k = NewContract(kRep, customer.name(), title, 500000);
    EXPECT_TRUE(k.ok()) << k.status();
    v1::SubmitContractRequest submit;
    submit.set_name(k->name());
    auto s = Sync(&OpportunityEngine::SubmitContract, kRep, submit);
    EXPECT_EQ(s->status(), v1::CONTRACT_STATUS_PENDING_APPROVAL);
    return *s;
  };
  v1::Contract a = draft("维保合同");
  v1::Contract b = draft("软件合同");

  // UpdateContract: drafts only
  v1::UpdateContractRequest up;
  up.mutable_contract()->set_name(a.name());
  up.mutable_contract()->set_title("改名");
  up.mutable_update_mask()->add_paths("title");
  EXPECT_EQ(Sync(&OpportunityEngine::UpdateContract, kRep, up).status().code(), absl::StatusCode::kFailedPrecondition);

  // RejectContract: not by the rep, a reason required, back to draft
  v1::RejectContractRequest reject;
  reject.set_name(a.name());
  reject.set_reason("金额有误");
  EXPECT_EQ(Sync(&OpportunityEngine::RejectContract, kRep, reject).status().code(),
            absl::StatusCode::kPermissionDenied);
  reject.clear_reason();
  EXPECT_EQ(FieldOf(Sync(&OpportunityEngine::RejectContract, kManager, reject).status()), "reason");
  reject.set_reason("金额有误");
  auto rejected = Sync(&OpportunityEngine::RejectContract, kManager, reject);
  ASSERT_TRUE(rejected.ok()) << rejected.status();
  EXPECT_EQ(rejected->status(), v1::CONTRACT_STATUS_DRAFT);
  EXPECT_EQ(Sync(&OpportunityEngine::RejectContract, kManager, reject).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // ... where it can be edited again
  auto edited = Sync(&OpportunityEngine::UpdateContract, kRep, up);
  ASSERT_TRUE(edited.ok()) << edited.status();
  EXPECT_EQ(edited->title(), "改名");

  // TerminateContract: only an active one, with a reason
  v1::TerminateContractRequest terminate;
  terminate.set_name(b.name());
  terminate.set_reason("客户违约");
  EXPECT_EQ(Sync(&OpportunityEngine::TerminateContract, kRep, terminate).status().code(),
            absl::StatusCode::kFailedPrecondition);
  v1::ApproveContractRequest approve;
  approve.set_name(b.name());
  ASSERT_TRUE(Sync(&OpportunityEngine::ApproveContract, kManager, approve).ok());
  EXPECT_EQ(Sync(&OpportunityEngine::TerminateContract, kRep2, terminate).status().code(),
            absl::StatusCode::kPermissionDenied);
  terminate.clear_reason();
  EXPECT_EQ(FieldOf(Sync(&OpportunityEngine::TerminateContract, kRep, terminate).status()), "reason");
  terminate.set_reason("客户违约");
  terminate.set_name("contracts/0190a0a0-0000-7000-8000-000000000000");
  EXPECT_EQ(Sync(&OpportunityEngine::TerminateContract, kRep, terminate).status().code(), absl::StatusCode::kNotFound);
  terminate.set_name(b.name());
  auto ended = Sync(&OpportunityEngine::TerminateContract, kRep, terminate);
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->status(), v1::CONTRACT_STATUS_TERMINATED);

  // ListContracts: both, as each now stands; another rep sees none
  v1::ListContractsRequest list;
  auto all = engine()->ListContracts(kRep, list, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(all.ok()) << all.status();
  std::map<std::string, v1::ContractStatus> status;
  for (const auto& k : all->contracts()) status[k.name()] = k.status();
  EXPECT_EQ(status, (std::map<std::string, v1::ContractStatus>{{a.name(), v1::CONTRACT_STATUS_DRAFT},
                                                                {b.name(), v1::CONTRACT_STATUS_TERMINATED}}));
  EXPECT_EQ(engine()->ListContracts(kRep2, list, absl::Now() + absl::Seconds(5))->contracts_size(), 0);

  std::vector<std::string> types;
  for (const auto& e : Events(a.name())) types.push_back(e.event_type());
  EXPECT_EQ(types.at(2), "crm.opportunities.v1.ContractApprovalRejected");
  types.clear();
  for (const auto& e : Events(b.name())) types.push_back(e.event_type());
  EXPECT_EQ(types.back(), "crm.opportunities.v1.ContractTerminated");
  ExpectEqualsFreshRebuild();
}

TEST_F(OpportunityEngineTest, ARetriedCreateWithTheSameRequestIdWritesOnce) {
  auto customer = Customer(kRep, "成都天府软件", "13600136000");
  auto a = NewOpportunity(kRep, customer.name(), 100, "create-opp-1");
  auto b = NewOpportunity(kRep, customer.name(), 100, "create-opp-1");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->name(), b->name());
  EXPECT_EQ(b->etag(), "1");
  EXPECT_EQ(Events(a->name()).size(), 1u);
}

TEST_F(OpportunityEngineTest, MergedCustomersOpportunitiesFollowTheSurvivorAndDeletedCustomersFlagOpenOnes) {
  auto survivor = Customer(kRep, "深圳华强电子", "13500135000");
  auto merged = Customer(kRep, "深圳华强电子有限公司", "13500135001");
  auto open = NewOpportunity(kRep, merged.name(), 100);
  auto won = NewOpportunity(kRep, merged.name(), 200);
  ASSERT_TRUE(open.ok() && won.ok());
  auto contract = NewContract(kRep, merged.name(), "维保合同", 500000);
  ASSERT_TRUE(contract.ok()) << contract.status();
  v1::WinOpportunityRequest win;
  win.set_name(won->name());
  ASSERT_TRUE(Sync(&OpportunityEngine::Win, kRep, win).ok());

  // When the customers service merges them
  customers::v1::MergeCustomersRequest mr;
  mr.set_survivor(survivor.name());
  mr.set_merged(merged.name());
  auto m = Sync(&customers::CustomerEngine::MergeCustomers, kManager, mr);
  ASSERT_TRUE(m.ok()) << m.status();
  // Then both opportunities follow the survivor, caused by the customers event
  auto moved = Eventually(open->name(), [&](const v1::Opportunity& o) { return o.customer() == survivor.name(); });
  EXPECT_EQ(moved.customer(), survivor.name());
  EXPECT_EQ(Eventually(won->name(), [&](const v1::Opportunity& o) { return o.customer() == survivor.name(); }).customer(),
            survivor.name());
  // ... and so does the contract with its receivable
  v1::Contract moved_contract;
  for (int i = 0; i < 1000 && moved_contract.customer() != survivor.name(); ++i) {
    v1::GetContractRequest get;
    get.set_name(contract->name());
    moved_contract = *engine()->GetContract(kAdmin, get, absl::Now() + absl::Seconds(5));
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(moved_contract.customer(), survivor.name());
  auto events = Events(open->name());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].event_type(), "crm.opportunities.v1.OpportunityCustomerChanged");
  EXPECT_EQ(events[1].actor().source(), common::v1::ACTOR_SOURCE_SYSTEM);
  EXPECT_FALSE(events[1].causation_id().empty());

  // When the survivor goes to the recycle bin, its open opportunity is flagged, the won one not
  customers::v1::DeleteCustomerRequest del;
  del.set_name(survivor.name());
  ASSERT_TRUE(Sync(&customers::CustomerCommands::Delete, kRep, del).ok());
  EXPECT_TRUE(Eventually(open->name(), [](const v1::Opportunity& o) { return o.customer_deleted(); }).customer_deleted());
  EXPECT_FALSE(Get(kAdmin, won->name()).customer_deleted());
  v1::ListOpportunitiesRequest flagged;
  flagged.set_filter("customer_deleted = true");
  EXPECT_EQ(engine()->ListOpportunities(kManager, flagged, absl::Now() + absl::Seconds(5))->total_size(), 1);
  // And back out of the recycle bin, the flag is cleared
  customers::v1::UndeleteCustomerRequest undel;
  undel.set_name(survivor.name());
  ASSERT_TRUE(Sync(&customers::CustomerCommands::Undelete, kRep, undel).ok());
  EXPECT_FALSE(Eventually(open->name(), [](const v1::Opportunity& o) { return !o.customer_deleted(); }).customer_deleted());
  // A merged customer takes no new opportunities
  EXPECT_EQ(NewOpportunity(kRep, merged.name(), 1).status().code(), absl::StatusCode::kFailedPrecondition);
  ExpectEqualsFreshRebuild();
}

TEST_F(OpportunityEngineTest, AReactionMissedWhileStoppedIsMadeAtTheNextStart) {
  auto customer = Customer(kRep, "武汉光谷生物", "13400134000");
  auto opp = NewOpportunity(kRep, customer.name(), 100);
  ASSERT_TRUE(opp.ok());
  // Given the opportunities service is down while the customer is deleted
  h_->Close(Service::kOpportunities);
  customers::v1::DeleteCustomerRequest del;
  del.set_name(customer.name());
  ASSERT_TRUE(Sync(&customers::CustomerCommands::Delete, kRep, del).ok());
  // When it starts again, the catch-up and the start's reconciliation flag the opportunity
  OpenOpportunities();
  EXPECT_TRUE(Get(kAdmin, opp->name()).customer_deleted());
}

TEST_F(OpportunityEngineTest, ALeadConvertedWithAnOpportunityRequestedGetsExactlyOne) {
  customers::v1::CreateLeadRequest cl;
  cl.mutable_lead()->set_contact_name("李雷");
  cl.mutable_lead()->set_company("合肥新能源");
  cl.mutable_lead()->set_phone("13100131000");
  auto lead = Sync(&customers::LeadCommands::CreateLead, kRep, cl);
  ASSERT_TRUE(lead.ok()) << lead.status();
  customers::v1::ConvertLeadRequest conv;
  conv.set_name(lead->name());
  conv.set_create_opportunity(true);
  conv.set_opportunity_name("储能柜 200 台");
  conv.set_expected_amount_minor(50000000);
  auto converted = Sync(&customers::CustomerEngine::ConvertLead, kRep, conv);
  ASSERT_TRUE(converted.ok()) << converted.status();
  const std::string id = absl::StrCat("opportunities/", ConversionOpportunityId(lead->name().substr(6)));
  v1::Opportunity o;
  for (int i = 0; i < 1000; ++i) {
    v1::GetOpportunityRequest get;
    get.set_name(id);
    auto got = engine()->GetOpportunity(kRep, get, absl::Now() + absl::Seconds(5));
    if (got.ok()) {
      o = *got;
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(o.title(), "储能柜 200 台");
  EXPECT_EQ(o.owner_id(), "u1");
  EXPECT_EQ(o.customer(), converted->customer().name());
  EXPECT_EQ(o.amount().amount_minor(), 50000000);
  // A restart and a rebuild make no second one
  OpenOpportunities();
  v1::ListOpportunitiesRequest list;
  EXPECT_EQ(engine()->ListOpportunities(kAdmin, list, absl::Now() + absl::Seconds(5))->total_size(), 1);
  EXPECT_EQ(Events(id).size(), 1u);
  ExpectEqualsFreshRebuild();
}

TEST_F(OpportunityEngineTest, StageTimeoutsAreEmittedOncePerStay) {
  auto customer = Customer(kRep, "西安秦川机械", "13300133000");
  auto opp = NewOpportunity(kRep, customer.name(), 100);
  ASSERT_TRUE(opp.ok());
  ASSERT_TRUE(Move(kRep, *opp, "needs_analysis").ok());  // times out after 5 days
  clock().Advance(absl::Hours(24 * 5) - absl::Minutes(1));
  EXPECT_EQ(engine()->RunScheduler(clock().Now())->stage_timeouts, 0);
  clock().Advance(absl::Minutes(2));
  EXPECT_EQ(engine()->RunScheduler(clock().Now())->stage_timeouts, 1);
  EXPECT_EQ(engine()->RunScheduler(clock().Now() + absl::Hours(48))->stage_timeouts, 0);
  auto o = Get(kRep, opp->name());
  EXPECT_TRUE(o.stage_history().rbegin()->timed_out());
  EXPECT_EQ(o.seconds_in_stage().at("needs_analysis"), 5 * 86400 + 60);
}

TEST_F(OpportunityEngineTest, ProjectionsEqualAFreshRebuildAfterARestart) {
  auto customer = Customer(kRep, "青岛海风贸易", "13200132000");
  for (int i = 0; i < 5; ++i) {
    auto opp = NewOpportunity(kRep, customer.name(), 1000 * (i + 1));
    ASSERT_TRUE(opp.ok());
    ASSERT_TRUE(Move(kRep, *opp, "needs_analysis").ok());
  }
  ASSERT_TRUE(NewContract(kRep, customer.name(), "年度服务合同", 1000000).ok());
  const std::string live = *h_->Checksum(Service::kOpportunities);
  OpenOpportunities();  // restart on the same projections
  EXPECT_EQ(*h_->Checksum(Service::kOpportunities), live);
  ExpectEqualsFreshRebuild();
}

// ---- The write path (kernel::AggregateStore) ----

MATCHER_P(EqualsProto, want, "") { return google::protobuf::util::MessageDifferencer::Equals(arg, want); }

// What the write path did between two readings of its counters: state reads, request-id
// lookups, events (each folded once and sealed once) and appends.
struct Work {
  int64_t reads = 0;
  int64_t lookups = 0;
  int64_t events = 0;
  int64_t appends = 0;
};

// Counts the write path's work command by command.
class WorkMeter {
 public:
  explicit WorkMeter(const OpportunityEngine* engine) : engine_(engine), last_(engine->WriteCounters()) {}
  // The work since the last Expect is `want`.
  void Expect(const Work& want, const std::string& what) {
    const kernel::StoreCounters now = engine_->WriteCounters();
    // The projection's reads and folds count too: it takes the store's fold.
    EXPECT_EQ(now.all_states() - last_.all_states(), want.reads) << what << ": states read or cached";
    EXPECT_EQ(now.request_lookups - last_.request_lookups, want.lookups) << what << ": request-id lookups";
    EXPECT_EQ(now.all_folds() - last_.all_folds(), want.events) << what << ": one fold per event";
    EXPECT_EQ(now.seals - last_.seals, want.events) << what << ": one seal per event";
    EXPECT_EQ(now.appends - last_.appends, want.appends) << what << ": appends";
    last_ = now;
  }

 private:
  const OpportunityEngine* engine_;
  kernel::StoreCounters last_;
};

TEST_F(OpportunityEngineTest, EachWriteReadsTheStateOnceFoldsAndSealsEachEventOnceAndAppendsOnce) {
  auto customer = Customer(kRep, "南京紫金软件", "13900139000");
  WorkMeter work(engine());

  // Opportunities: a create with a request id (its lookup), an update without
  auto opp = NewOpportunity(kRep, customer.name(), 100000, "count-opp");
  ASSERT_TRUE(opp.ok()) << opp.status();
  work.Expect({.reads = 1, .lookups = 1, .events = 1, .appends = 1}, "CreateOpportunity");
  ASSERT_TRUE(Move(kRep, *opp, "needs_analysis").ok());
  work.Expect({.reads = 1, .lookups = 0, .events = 1, .appends = 1}, "MoveStage");

  // A repeated request id: one read and one lookup; nothing decided, folded, sealed or appended
  auto again = NewOpportunity(kRep, customer.name(), 100000, "count-opp");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->name(), opp->name());
  EXPECT_EQ(again->etag(), "2") << "answered with the opportunity as it is";
  EXPECT_TRUE(again->consistency_token().empty());
  work.Expect({.reads = 1, .lookups = 1, .events = 0, .appends = 0}, "repeated CreateOpportunity");
  int decided = 0;
  auto repeat = Write<OpportunityState, OpportunityEvent>(kRep, opp->name().substr(strlen("opportunities/")),
                                                          "count-opp", [&](const OpportunityState*) -> Decision {
                                                            ++decided;
                                                            return std::vector<OpportunityEvent>{};
                                                          });
  ASSERT_TRUE(repeat.ok()) << repeat.status();
  EXPECT_EQ(decided, 0);
  work.Expect({.reads = 1, .lookups = 1, .events = 0, .appends = 0}, "repeat through Execute");
  EXPECT_EQ(Events(opp->name()).size(), 2u);

  // Quotes, and AcceptQuote: two aggregates, each read once, the quote's request id looked up once
  auto quote = NewQuote(kRep, opp->name(), "货架", 1000, 50000, "count-quote");
  ASSERT_TRUE(quote.ok()) << quote.status();
  work.Expect({.reads = 1, .lookups = 1, .events = 1, .appends = 1}, "CreateQuote");
  v1::SendQuoteRequest sq;
  sq.set_name(quote->name());
  ASSERT_TRUE(Sync(&OpportunityEngine::SendQuote, kRep, sq).ok());
  work.Expect({.reads = 1, .lookups = 0, .events = 1, .appends = 1}, "SendQuote");
  auto accepted = Sync(&OpportunityEngine::AcceptQuote, kRep, AcceptRequest(quote->name(), "count-accept"));
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  work.Expect({.reads = 2, .lookups = 1, .events = 2, .appends = 2}, "AcceptQuote (draft + accept)");

  // Contracts
  v1::SubmitContractRequest submit;
  submit.set_name(accepted->contract().name());
  ASSERT_TRUE(Sync(&OpportunityEngine::SubmitContract, kRep, submit).ok());
  work.Expect({.reads = 1, .lookups = 0, .events = 1, .appends = 1}, "SubmitContract");
  ASSERT_TRUE(NewContract(kRep, customer.name(), "年度服务合同", 1000000, "count-contract").ok());
  work.Expect({.reads = 1, .lookups = 1, .events = 1, .appends = 1}, "CreateContract");

  // The settings
  v1::SetContractPolicyRequest policy;
  policy.set_approval_threshold_minor(1000);
  policy.set_request_id("count-policy");
  auto set = Sync(&OpportunityEngine::SetContractPolicy, kAdmin, policy);
  ASSERT_TRUE(set.ok()) << set.status();
  work.Expect({.reads = 1, .lookups = 1, .events = 1, .appends = 1}, "SetContractPolicy");
  v1::SetPipelinesRequest pipelines;
  *pipelines.add_pipelines() = DefaultPipeline();
  pipelines.mutable_pipelines(0)->mutable_stages(0)->set_name("初步接洽");
  ASSERT_TRUE(Sync(&OpportunityEngine::SetPipelines, kAdmin, pipelines).ok());
  work.Expect({.reads = 1, .lookups = 0, .events = 1, .appends = 1}, "SetPipelines");
  ExpectEqualsFreshRebuild();
}

TEST_F(OpportunityEngineTest, EveryAggregatesReplyIsTheRowTheProjectionCommitted) {
  auto customer = Customer(kRep, "苏州园区科技", "13700137000");
  const std::string customer_id = customer.name().substr(strlen("customers/"));
  auto view = ReadCustomerView(engine()->db()->db(), customer_id);
  ASSERT_TRUE(view.ok()) << view.status();

  // An opportunity, created and moved
  const std::string opp_id = NewUuidV7(clock().Now());
  opportunities::CreateOpportunity create;
  create.profile.set_customer_id(customer_id);
  create.profile.set_name("智能仓储系统");
  create.profile.mutable_amount()->set_amount_minor(100000);
  create.profile.mutable_amount()->set_currency("CNY");
  create.pipeline = DefaultPipeline();
  create.customer = *view;
  auto opp = Write<OpportunityState, OpportunityEvent>(
      kRep, opp_id, "row-opp", [create](const OpportunityState* s) { return Decide(s, kRep, create); });
  ASSERT_TRUE(opp.ok()) << opp.status();
  EXPECT_THAT(opp->state, EqualsProto(Row<OpportunityState>(rows::Opportunity(opp_id))));
  clock().Advance(absl::Minutes(5));
  opp = Write<OpportunityState, OpportunityEvent>(kRep, opp_id, "", [](const OpportunityState* s) {
    return Decide(s, kRep, opportunities::MoveStage{"needs_analysis", "", DefaultPipeline()});
  });
  ASSERT_TRUE(opp.ok()) << opp.status();
  EXPECT_EQ(opp->state.version(), 2);
  EXPECT_THAT(opp->state, EqualsProto(Row<OpportunityState>(rows::Opportunity(opp_id))));

  // A quote of it, created and sent
  const std::string quote_id = NewUuidV7(clock().Now());
  opportunities::CreateQuote cq;
  cq.opportunity_id = opp_id;
  auto* line = cq.version.add_lines();
  line->set_product("货架");
  line->set_quantity_milli(2500);
  line->set_unit_price_minor(3333333);
  cq.opportunity = {true, true, customer_id, kRep.user_id, kRep.team};
  auto quote = Write<QuoteState, QuoteEvent>(kRep, quote_id, "row-quote",
                                             [cq](const QuoteState* s) { return Decide(s, kRep, cq); });
  ASSERT_TRUE(quote.ok()) << quote.status();
  EXPECT_THAT(quote->state, EqualsProto(Row<QuoteState>(rows::Quote(quote_id))));
  quote = Write<QuoteState, QuoteEvent>(kRep, quote_id, "",
                                        [](const QuoteState* s) { return Decide(s, kRep, opportunities::SendQuote{}); });
  ASSERT_TRUE(quote.ok()) << quote.status();
  EXPECT_THAT(quote->state, EqualsProto(Row<QuoteState>(rows::Quote(quote_id))));

  // A contract (its draft also records the day's contract number), drafted and submitted
  const std::string contract_id = NewUuidV7(clock().Now());
  DraftContract draft;
  draft.terms.set_title("年度服务合同");
  draft.terms.set_customer_id(customer_id);
  draft.terms.mutable_amount()->set_amount_minor(1000000);
  draft.terms.mutable_amount()->set_currency("CNY");
  draft.terms.set_start_date("2026-01-01");
  draft.terms.set_end_date("2026-12-31");
  auto number = engine()->AllocateContractNumber();
  ASSERT_TRUE(number.ok()) << number.status();
  draft.terms.set_number(*number);
  draft.customer_exists = true;
  draft.customer_owner_id = view->owner_id;
  draft.customer_team_id = view->team_id;
  auto contract = Write<ContractState, ContractEvent>(
      kRep, contract_id, "row-contract", [draft](const ContractState* s) { return Decide(s, kRep, draft); });
  ASSERT_TRUE(contract.ok()) << contract.status();
  EXPECT_THAT(contract->state, EqualsProto(Row<ContractState>(rows::Contract(contract_id))));
  contract = Write<ContractState, ContractEvent>(kRep, contract_id, "", [](const ContractState* s) {
    return Decide(s, kRep, opportunities::SubmitContract{});
  });
  ASSERT_TRUE(contract.ok()) << contract.status();
  EXPECT_EQ(contract->state.version(), 2);
  EXPECT_THAT(contract->state, EqualsProto(Row<ContractState>(rows::Contract(contract_id))));

  // The settings: the projection folds them as every aggregate (id, version, hash chain)
  auto settings = Write<OpportunitySettings, SettingsEvent>(
      kAdmin, kSettingsId, "row-settings", [](const OpportunitySettings* s) {
        return Decide(s != nullptr ? *s : OpportunitySettings(), kAdmin, opportunities::SetContractPolicy{1000});
      });
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_THAT(settings->state, EqualsProto(Row<OpportunitySettings>(rows::kSettings)));
  settings = Write<OpportunitySettings, SettingsEvent>(kAdmin, kSettingsId, "", [](const OpportunitySettings* s) {
    return Decide(*s, kAdmin, opportunities::SetPipelines{{DefaultPipeline()}});
  });
  ASSERT_TRUE(settings.ok()) << settings.status();
  const OpportunitySettings row = Row<OpportunitySettings>(rows::kSettings);
  EXPECT_EQ(row.id(), kSettingsId);
  EXPECT_EQ(row.version(), 2);
  EXPECT_THAT(settings->state, EqualsProto(row));
  ExpectEqualsFreshRebuild();
}

TEST_F(OpportunityEngineTest, ARequestIdUsedForAnotherAggregateIsRefusedNamingRequestId) {
  auto customer = Customer(kRep, "无锡太湖电子", "13500135000");
  auto a = NewOpportunity(kRep, customer.name(), 100, "shared-rid");
  auto b = NewOpportunity(kRep, customer.name(), 200);
  ASSERT_TRUE(a.ok() && b.ok());
  v1::MoveOpportunityStageRequest move;
  move.set_name(b->name());
  move.set_stage_id("needs_analysis");
  move.set_request_id("shared-rid");
  auto moved = Sync(&OpportunityEngine::MoveStage, kRep, move);
  EXPECT_EQ(moved.status().code(), absl::StatusCode::kInvalidArgument) << moved.status();
  EXPECT_EQ(FieldOf(moved.status()), "request_id");
  EXPECT_EQ(Events(b->name()).size(), 1u) << "nothing written";
  EXPECT_EQ(Get(kRep, b->name()).stage_id(), "initial_contact");
}

TEST_F(OpportunityEngineTest, ARetriedSettingsChangeIsAnsweredWithoutWritingAgain) {
  v1::SetContractPolicyRequest policy;
  policy.set_approval_threshold_minor(1000);
  policy.set_etag("0");
  policy.set_request_id("policy-1");
  auto first = Sync(&OpportunityEngine::SetContractPolicy, kAdmin, policy);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->etag(), "1");
  // The answer was lost and the client sends the same request again: its etag is stale now,
  // but the request is a repeat
  auto retry = Sync(&OpportunityEngine::SetContractPolicy, kAdmin, policy);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->etag(), "1");
  EXPECT_TRUE(retry->consistency_token().empty()) << "nothing written";

  // After another change, a late retry of the first does not undo it
  v1::SetContractPolicyRequest second;
  second.set_approval_threshold_minor(2000);
  second.set_request_id("policy-2");
  ASSERT_TRUE(Sync(&OpportunityEngine::SetContractPolicy, kAdmin, second).ok());
  policy.clear_etag();
  auto late = Sync(&OpportunityEngine::SetContractPolicy, kAdmin, policy);
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_EQ(late->approval_threshold_minor(), 2000);
  EXPECT_EQ(late->etag(), "2");
  v1::GetSalesSettingsRequest get;
  auto now = engine()->GetSettings(kRep, get, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->approval_threshold_minor(), 2000);
  EXPECT_EQ(now->etag(), "2");
}

TEST_F(OpportunityEngineTest, AQuoteRevisedWhileAnAcceptWaitsForItsLeaseIsDraftedAsRevised) {
  auto customer = Customer(kRep, "无锡太湖机电", "13600136000");
  auto opp = NewOpportunity(kRep, customer.name(), 100000);
  ASSERT_TRUE(opp.ok()) << opp.status();
  auto quote = NewQuote(kRep, opp->name(), "电机", 1000, 10000);
  ASSERT_TRUE(quote.ok()) << quote.status();
  v1::SendQuoteRequest sq;
  sq.set_name(quote->name());
  ASSERT_TRUE(Sync(&OpportunityEngine::SendQuote, kRep, sq).ok());
  const std::string quote_id = quote->name().substr(strlen("quotes/"));

  // Given a command on the quote that holds its lease until released: it revises the quote to
  // 30 units and sends it again, as a colleague's ReviseQuote and SendQuote would
  absl::Notification holding, release, revised;
  absl::StatusOr<OpportunityEngine::Written<QuoteState>> revision = absl::UnknownError("no answer");
  std::thread colleague([&] {
    engine()->Execute<QuoteState, QuoteEvent>(
        kRep, quote_id, "",
        [&](const QuoteState* s) -> absl::StatusOr<std::vector<QuoteEvent>> {
          holding.Notify();
          release.WaitForNotification();
          QuoteVersion v = s->versions(0);
          v.mutable_lines(0)->set_quantity_milli(30000);
          auto events = Decide(s, kRep, ReviseQuote{v});
          if (!events.ok()) return events.status();
          QuoteState next = *s;
          Apply(next, events->front(), s->version() + 1, absl::Now(), kRep.user_id);
          auto sent = Decide(&next, kRep, SendQuote{});
          if (!sent.ok()) return sent.status();
          events->push_back(sent->front());
          return events;
        },
        [&](absl::StatusOr<OpportunityEngine::Written<QuoteState>> w) {
          revision = std::move(w);
          revised.Notify();
        });
  });
  holding.WaitForNotification();

  // When the quote is accepted meanwhile, and the revision commits before the accept gets the lease
  absl::Notification answered;
  absl::StatusOr<v1::AcceptQuoteResponse> accepted = absl::UnknownError("no answer");
  engine()->AcceptQuote(kRep, AcceptRequest(quote->name(), "accept-while-revised"),
                        [&](absl::StatusOr<v1::AcceptQuoteResponse> r) {
                          accepted = std::move(r);
                          answered.Notify();
                        });
  EXPECT_FALSE(answered.HasBeenNotified()) << "the accept waits for the quote's lease";
  release.Notify();
  colleague.join();
  ASSERT_TRUE(revised.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(revision.ok()) << revision.status();
  const int64_t revised_total = revision->state.versions(1).totals().total_minor();
  ASSERT_EQ(revised_total, 30 * quote->current().totals().total_minor());
  ASSERT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(10)));

  // Then the contract is drafted from the version accepted, not from the one read before the lease
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_EQ(accepted->quote().status(), v1::QUOTE_STATUS_ACCEPTED);
  EXPECT_EQ(accepted->quote().current().number(), 2);
  EXPECT_EQ(accepted->contract().quote_version(), 2);
  EXPECT_EQ(accepted->contract().amount().amount_minor(), revised_total);
  EXPECT_EQ(accepted->quote().contract(), accepted->contract().name());
  v1::ListContractsRequest list;
  list.set_filter(absl::StrCat("customer = \"", customer.name(), "\""));
  auto contracts = engine()->ListContracts(kRep, list, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(contracts.ok()) << contracts.status();
  EXPECT_EQ(contracts->contracts_size(), 1) << "no draft of the version read before the lease";
  ExpectEqualsFreshRebuild();
}

// The etag is the command's expected version, checked by the store before Decide: a stale one
// writes nothing and names the request field it came from.
TEST_F(OpportunityEngineTest, AStaleEtagWritesNothingAndNamesItsField) {
  auto customer = Customer(kRep, "常州龙城精工", "13500135000");
  auto opp = NewOpportunity(kRep, customer.name(), 100000);
  ASSERT_TRUE(opp.ok()) << opp.status();
  auto quote = NewQuote(kRep, opp->name(), "轴承", 1000, 20000);
  ASSERT_TRUE(quote.ok()) << quote.status();
  auto contract = NewContract(kRep, customer.name(), "年度维保合同", 500000);
  ASSERT_TRUE(contract.ok()) << contract.status();
  // "ETAG_MISMATCH <field> <current_etag>" of an ABORTED answer; "" for any other.
  auto mismatch = [](const absl::Status& s) { return AbortedInfo(s, {"field", "current_etag"}); };

  v1::UpdateOpportunityRequest up;
  up.mutable_opportunity()->set_name(opp->name());
  up.mutable_opportunity()->set_title("新名称");
  up.mutable_opportunity()->set_etag("2");
  EXPECT_EQ(mismatch(Sync(&OpportunityEngine::UpdateOpportunity, kRep, up).status()),
            "ETAG_MISMATCH opportunity.etag 1");
  v1::MoveOpportunityStageRequest move;
  move.set_name(opp->name());
  move.set_stage_id("needs_analysis");
  move.set_etag("0");  // "nothing written yet": it has been
  EXPECT_EQ(mismatch(Sync(&OpportunityEngine::MoveStage, kRep, move).status()), "ETAG_MISMATCH etag 1");
  EXPECT_EQ(Events(opp->name()).size(), 1u) << "nothing written";

  v1::ReviseQuoteRequest revise;
  revise.set_name(quote->name());
  *revise.mutable_version() = quote->current();
  revise.set_etag("3");
  EXPECT_EQ(mismatch(Sync(&OpportunityEngine::ReviseQuote, kRep, revise).status()), "ETAG_MISMATCH etag 1");
  v1::SendQuoteRequest send;
  send.set_name(quote->name());
  ASSERT_TRUE(Sync(&OpportunityEngine::SendQuote, kRep, send).ok());
  // Accepting with the etag from before the send drafts no contract either
  v1::AcceptQuoteRequest accept = AcceptRequest(quote->name(), "accept-stale");
  accept.set_etag("1");
  auto accepted = Sync(&OpportunityEngine::AcceptQuote, kRep, accept);
  EXPECT_EQ(mismatch(accepted.status()), "ETAG_MISMATCH etag 2");
  EXPECT_EQ(Events(quote->name()).size(), 2u) << "created and sent only";
  v1::ListContractsRequest list;
  list.set_filter(absl::StrCat("customer = \"", customer.name(), "\""));
  auto contracts = engine()->ListContracts(kRep, list, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(contracts.ok()) << contracts.status();
  EXPECT_EQ(contracts->contracts_size(), 1) << "no draft";

  v1::UpdateContractRequest uc;
  uc.mutable_contract()->set_name(contract->name());
  uc.mutable_contract()->set_title("新标题");
  uc.mutable_contract()->set_etag("5");
  EXPECT_EQ(mismatch(Sync(&OpportunityEngine::UpdateContract, kRep, uc).status()), "ETAG_MISMATCH contract.etag 1");
  v1::SubmitContractRequest submit;
  submit.set_name(contract->name());
  submit.set_etag("2");
  EXPECT_EQ(mismatch(Sync(&OpportunityEngine::SubmitContract, kRep, submit).status()), "ETAG_MISMATCH etag 1");
  EXPECT_EQ(Events(contract->name()).size(), 1u) << "nothing written";

  v1::SetContractPolicyRequest policy;
  policy.set_approval_threshold_minor(1000);
  ASSERT_TRUE(Sync(&OpportunityEngine::SetContractPolicy, kAdmin, policy).ok());
  policy.set_approval_threshold_minor(2000);
  policy.set_etag("0");
  EXPECT_EQ(mismatch(Sync(&OpportunityEngine::SetContractPolicy, kAdmin, policy).status()), "ETAG_MISMATCH etag 1");
  auto settings = engine()->GetSettings(kRep, v1::GetSalesSettingsRequest(), absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(settings->approval_threshold_minor(), 1000);
  EXPECT_EQ(settings->etag(), "1");
  ExpectEqualsFreshRebuild();
}

}  // namespace
}  // namespace crm::opportunities
