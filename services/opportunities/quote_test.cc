// The quote aggregate's rules and money arithmetic, given/when/then.
#include "services/opportunities/quote.h"

#include <limits>

#include "gtest/gtest.h"
#include "libs/common/caller_testing.h"
#include "libs/common/grpc_status.h"
#include "libs/common/money.h"
#include "services/opportunities/domain_testing.h"

namespace crm::opportunities {
namespace {


using crm::testing::kRep;
using crm::testing::kRep2;
const absl::Time kT0 = absl::FromUnixSeconds(1767225600);

using testing::FieldOf;

template <typename State, typename Cmd>
absl::Status FoldAt(State& s, const Caller& c, const Cmd& cmd) {
  return testing::Fold(s, c, cmd, kT0);
}

v1::QuoteLine Line(const std::string& product, int64_t qty_milli, int64_t price, int32_t discount_bp, int32_t tax_bp) {
  v1::QuoteLine l;
  l.set_product(product);
  l.set_quantity_milli(qty_milli);
  l.set_unit_price_minor(price);
  l.set_discount_bp(discount_bp);
  l.set_tax_rate_bp(tax_bp);
  return l;
}

CreateQuote NewQuote() {
  CreateQuote q;
  q.opportunity_id = "o1";
  q.opportunity = {.exists = true, .open = true, .customer_id = "c1", .owner_id = "u1", .team_id = "east"};
  *q.version.add_lines() = Line("智能仓储货架", 2500, 399999, 500, 1300);  // 2.5 套 at ¥3,999.99, 5% off, 13% VAT
  *q.version.add_lines() = Line("安装服务", 1000, 150000, 0, 600);        // 1 次 at ¥1,500.00, 6% VAT
  q.version.set_valid_until("2026-01-31");
  return q;
}

TEST(QuoteTest, LinesArePricedInExactMoneyAndSummed) {
  QuoteState s;
  ASSERT_TRUE(FoldAt(s, kRep, NewQuote()).ok());
  ASSERT_EQ(s.versions_size(), 1);
  const QuoteVersion& v = s.versions(0);
  EXPECT_EQ(v.number(), 1);
  EXPECT_EQ(v.lines(0).subtotal_minor(), 999998);  // 9999.975 -> 9999.98
  EXPECT_EQ(v.lines(0).discount_minor(), 50000);   // 499.999 -> 500.00
  EXPECT_EQ(v.lines(0).tax_minor(), 123500);       // 1234.9974 -> 1235.00
  EXPECT_EQ(v.lines(0).total_minor(), 1073498);
  EXPECT_EQ(v.lines(1).tax_minor(), 9000);
  EXPECT_EQ(v.lines(1).total_minor(), 159000);
  EXPECT_EQ(v.totals().subtotal_minor(), 999998 + 150000);
  EXPECT_EQ(v.totals().discount_minor(), 50000);
  EXPECT_EQ(v.totals().net_minor(), 949998 + 150000);
  EXPECT_EQ(v.totals().tax_minor(), 123500 + 9000);
  EXPECT_EQ(v.totals().total_minor(), 1073498 + 159000);  // ¥12,324.98
  EXPECT_EQ(s.currency(), "CNY");
  EXPECT_EQ(s.status(), v1::QUOTE_STATUS_DRAFT);
  EXPECT_EQ(s.customer_id(), "c1");
}

TEST(QuoteTest, EveryBadLinePartIsNamed) {
  auto with = [](v1::QuoteLine l) {
    CreateQuote q = NewQuote();
    *q.version.mutable_lines(1) = l;
    return FieldOf(Decide(nullptr, kRep, q).status());
  };
  EXPECT_EQ(with(Line("", 1000, 1, 0, 0)), "quote.lines[1].product");
  EXPECT_EQ(with(Line("x", 0, 1, 0, 0)), "quote.lines[1].quantity_milli");
  EXPECT_EQ(with(Line("x", 1000, -1, 0, 0)), "quote.lines[1].unit_price_minor");
  EXPECT_EQ(with(Line("x", 1000, 1, 10001, 0)), "quote.lines[1].discount_bp");
  EXPECT_EQ(with(Line("x", 1000, 1, 0, -5)), "quote.lines[1].tax_rate_bp");
  CreateQuote q = NewQuote();
  q.version.clear_lines();
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, q).status()), "quote.lines");
  q = NewQuote();
  q.currency = "XYZ";
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, q).status()), "quote.currency");
  q = NewQuote();
  q.version.set_valid_until("31/01/2026");
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, q).status()), "quote.valid_until");
  // Sums beyond 64 bits are refused, never wrapped
  q = NewQuote();
  *q.version.mutable_lines(0) = Line("x", 1000, std::numeric_limits<int64_t>::max() - 10, 0, 0);
  EXPECT_EQ(Decide(nullptr, kRep, q).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(QuoteTest, AmountsPastTheMaximumAreOutOfRangeNamingTheLineOrPart) {
  auto with = [](v1::QuoteLine l0, v1::QuoteLine l1) {
    CreateQuote q = NewQuote();
    *q.version.mutable_lines(0) = l0;
    *q.version.mutable_lines(1) = l1;
    absl::Status s = Decide(nullptr, kRep, q).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange);
    return FieldOf(s);
  };
  const int64_t max = money::kMaxAmountMinor;
  EXPECT_EQ(with(Line("x", 1000, 1, 0, 0), Line("y", 1000, max + 1, 0, 0)), "quote.lines[1].unit_price_minor");
  EXPECT_EQ(with(Line("x", 1000, 1, 0, 0), Line("y", money::kMaxQuantityMilli + 1, 1, 0, 0)),
            "quote.lines[1].quantity_milli");
  EXPECT_EQ(with(Line("x", 1000, 1, 0, 0), Line("y", 3000, max / 2, 0, 0)), "quote.lines[1]");
  // Two lines at the maximum each: the quote's total would become a contract above it.
  EXPECT_EQ(with(Line("x", 1000, max, 0, 0), Line("y", 1000, max, 0, 0)), "quote.lines");
}

TEST(QuoteTest, TheOpportunityMustExistBeOpenAndBeTheCallers) {
  CreateQuote q = NewQuote();
  q.opportunity.exists = false;
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, q).status()), "quote.opportunity");
  q = NewQuote();
  q.opportunity.open = false;
  EXPECT_EQ(Decide(nullptr, kRep, q).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Decide(nullptr, kRep2, NewQuote()).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(QuoteTest, SendRejectReviseSendAcceptKeepsEveryVersion) {
  QuoteState s;
  ASSERT_TRUE(FoldAt(s, kRep, NewQuote()).ok());
  // Only a sent quote is accepted or rejected
  EXPECT_EQ(GetErrorInfo(Decide(&s, kRep, AcceptQuote{"k1"}).status())->reason(), "QUOTE_STATUS");
  ASSERT_TRUE(FoldAt(s, kRep, SendQuote{}).ok());
  EXPECT_EQ(s.status(), v1::QUOTE_STATUS_SENT);
  EXPECT_EQ(Decide(&s, kRep, SendQuote{}).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(FieldOf(Decide(&s, kRep, RejectQuote{""}).status()), "reason");
  ASSERT_TRUE(FoldAt(s, kRep, RejectQuote{"价格高于预算"}).ok());
  EXPECT_EQ(s.status(), v1::QUOTE_STATUS_REJECTED);
  // A revision is a new version; the first stays as it was
  ReviseQuote r;
  *r.version.add_lines() = Line("智能仓储货架", 2500, 380000, 800, 1300);
  ASSERT_TRUE(FoldAt(s, kRep, r).ok());
  ASSERT_EQ(s.versions_size(), 2);
  EXPECT_EQ(s.versions(1).number(), 2);
  EXPECT_EQ(s.versions(0).totals().total_minor(), 1232498);
  EXPECT_EQ(s.status(), v1::QUOTE_STATUS_DRAFT);
  EXPECT_TRUE(s.reject_reason().empty());
  ASSERT_TRUE(FoldAt(s, kRep, SendQuote{}).ok());
  ASSERT_TRUE(FoldAt(s, kRep, AcceptQuote{"contract-1"}).ok());
  EXPECT_EQ(s.status(), v1::QUOTE_STATUS_ACCEPTED);
  EXPECT_EQ(s.contract_id(), "contract-1");
  // An accepted quote is final
  EXPECT_EQ(Decide(&s, kRep, r).status().code(), absl::StatusCode::kFailedPrecondition);
  // Another rep is refused (a stale etag is the store's: OpportunityEngineTest)
  EXPECT_EQ(Decide(&s, kRep2, SendQuote{}).status().code(), absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace crm::opportunities
