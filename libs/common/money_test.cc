#include "libs/common/money.h"

#include <limits>

#include "gtest/gtest.h"
#include "libs/common/grpc_status.h"

namespace crm::money {
namespace {

TEST(MoneyParseTest, AcceptsWhatPeopleTypeAndNothingInexact) {
  EXPECT_EQ(*ParseAmount("1234.56", "CNY"), 123456);
  EXPECT_EQ(*ParseAmount(" 1,234.5 ", "CNY"), 123450);
  EXPECT_EQ(*ParseAmount("¥1,000", "CNY"), 100000);
  EXPECT_EQ(*ParseAmount("-0.05", "CNY"), -5);
  EXPECT_EQ(*ParseAmount("-¥3", "CNY"), -300);
  EXPECT_EQ(*ParseAmount("１２３.４", "CNY"), 12340);  // full-width, as typed with an IME
  EXPECT_EQ(*ParseAmount("1500", "JPY"), 1500);
  // More decimals than the currency has is refused, never rounded away
  EXPECT_FALSE(ParseAmount("0.001", "CNY").ok());
  EXPECT_FALSE(ParseAmount("1.5", "JPY").ok());
  for (const char* bad : {"", "abc", "1.2.3", ",100", "1,,000", "1.", "1e3", "--1", "12 34"}) {
    EXPECT_FALSE(ParseAmount(bad, "CNY").ok()) << bad;
  }
  EXPECT_FALSE(ParseAmount("99999999999999999999", "CNY").ok());
  EXPECT_FALSE(ParseAmount("1", "XYZ").ok());
}

TEST(MoneyFormatTest, ExactDecimalsAndSign) {
  EXPECT_EQ(FormatAmount(123456, 2), "1234.56");
  EXPECT_EQ(FormatAmount(5, 2), "0.05");
  EXPECT_EQ(FormatAmount(-5, 2), "-0.05");
  EXPECT_EQ(FormatAmount(0, 2), "0.00");
  EXPECT_EQ(FormatAmount(1500, 0), "1500");
  EXPECT_EQ(FormatAmount(std::numeric_limits<int64_t>::min(), 2), "-92233720368547758.08");
}

TEST(MoneyRoundingTest, HalfAwayFromZeroOnceWithoutOverflow) {
  EXPECT_EQ(*MulDiv(5, 1, 10), 1);    // 0.5 -> 1
  EXPECT_EQ(*MulDiv(4, 1, 10), 0);    // 0.4 -> 0
  EXPECT_EQ(*MulDiv(-5, 1, 10), -1);  // -0.5 -> -1
  EXPECT_EQ(*MulDiv(-4, 1, 10), 0);
  // Intermediate products beyond 64 bits are fine when the result fits
  EXPECT_EQ(*MulDiv(std::numeric_limits<int64_t>::max(), 10000, 10000), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(MulDiv(std::numeric_limits<int64_t>::max(), 2, 1).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_FALSE(Add(std::numeric_limits<int64_t>::max(), 1).ok());
}

TEST(MoneyLineTest, QuantityDiscountAndTaxAreEachRoundedToTheFen) {
  // 2.5 吨 at ¥3,999.99, 5% off, 13% VAT
  auto a = PriceLine(2500, 399999, 500, 1300);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->subtotal, 999998);  // 9999.975 -> 9999.98
  EXPECT_EQ(a->discount, 50000);   // 499.999 -> 500.00
  EXPECT_EQ(a->net, 949998);
  EXPECT_EQ(a->tax, 123500);  // 1234.9974 -> 1235.00
  EXPECT_EQ(a->total, 1073498);
  // Free items and full discounts
  EXPECT_EQ(PriceLine(1000, 0, 0, 1300)->total, 0);
  EXPECT_EQ(PriceLine(3000, 10000, 10000, 1300)->total, 0);
  // Bad parts are named
  EXPECT_NE(PriceLine(-1, 1, 0, 0).status().message().find("quantity"), std::string::npos);
  EXPECT_NE(PriceLine(1, -1, 0, 0).status().message().find("unit_price"), std::string::npos);
  EXPECT_NE(PriceLine(1, 1, 10001, 0).status().message().find("discount_bp"), std::string::npos);
  EXPECT_NE(PriceLine(1, 1, 0, -1).status().message().find("tax_rate_bp"), std::string::npos);
  EXPECT_EQ(PriceLine(std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::max(), 0, 0).status().code(),
            absl::StatusCode::kOutOfRange);
}

TEST(MoneyLineTest, PartsAndTotalsPastTheMaximumAreOutOfRangeNamingTheField) {
  const int64_t max = std::numeric_limits<int64_t>::max();
  auto field = [](const absl::StatusOr<LineAmounts>& a) {
    EXPECT_EQ(a.status().code(), absl::StatusCode::kOutOfRange);
    return GetBadRequest(a.status())->field_violations(0).field();
  };
  EXPECT_EQ(field(PriceLine(1000, kMaxAmountMinor + 1, 0, 0, "lines[2]")), "lines[2].unit_price_minor");
  EXPECT_EQ(field(PriceLine(1000, max, 0, 0, "lines[2]")), "lines[2].unit_price_minor");
  EXPECT_EQ(field(PriceLine(kMaxQuantityMilli + 1, 1, 0, 0, "lines[2]")), "lines[2].quantity_milli");
  // Each part in range, their product and its tax not.
  EXPECT_EQ(field(PriceLine(2000, kMaxAmountMinor, 0, 0, "lines[2]")), "lines[2]");
  EXPECT_EQ(field(PriceLine(1000, kMaxAmountMinor, 0, 1300, "lines[2]")), "lines[2]");
  EXPECT_EQ(PriceLine(kMaxQuantityMilli, 1000000, 0, 0)->total, kMaxAmountMinor);
  EXPECT_EQ(PriceLine(1000, kMaxAmountMinor, 0, 0)->total, kMaxAmountMinor);
}

TEST(MoneyBoundTest, AmountsPastTheMaximumAreOutOfRangeNamingTheField) {
  EXPECT_TRUE(CheckAmount(kMaxAmountMinor, "amount").ok());
  EXPECT_TRUE(CheckAmount(-kMaxAmountMinor, "amount").ok());
  for (int64_t bad : {kMaxAmountMinor + 1, -kMaxAmountMinor - 1, std::numeric_limits<int64_t>::max(),
                      std::numeric_limits<int64_t>::min()}) {
    absl::Status s = CheckAmount(bad, "payment.amount_minor");
    EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange) << bad;
    EXPECT_EQ(GetBadRequest(s)->field_violations(0).field(), "payment.amount_minor");
  }
}

TEST(MoneySumTest, SumsThatWouldWrapAreOutOfRangeAndLeaveTheTotal) {
  // Two amounts of INT64_MAX summed to 1 with wrapping.
  int64_t total = std::numeric_limits<int64_t>::max();
  absl::Status s = AddTo(&total, std::numeric_limits<int64_t>::max(), "total_amount_minor");
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(GetBadRequest(s)->field_violations(0).field(), "total_amount_minor");
  EXPECT_EQ(total, std::numeric_limits<int64_t>::max());
  EXPECT_TRUE(AddTo(&total, -1, "total_amount_minor").ok());
  EXPECT_EQ(total, std::numeric_limits<int64_t>::max() - 1);

  Totals sums;
  int64_t a = 0, b = std::numeric_limits<int64_t>::min();
  sums.Add(&a, 5, "a");
  sums.Add(&b, -1, "b");
  sums.Add(&a, std::numeric_limits<int64_t>::max(), "a");
  EXPECT_EQ(a, 5);
  EXPECT_EQ(GetBadRequest(sums.status())->field_violations(0).field(), "b");  // the first

  EXPECT_EQ(SaturatingAdd(std::numeric_limits<int64_t>::max(), 1), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(SaturatingAdd(std::numeric_limits<int64_t>::min(), -1), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(SaturatingAdd(2, -3), -1);
}

}  // namespace
}  // namespace crm::money
