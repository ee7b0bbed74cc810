#ifndef CRM_LIBS_COMMON_MONEY_H_
#define CRM_LIBS_COMMON_MONEY_H_

// Exact money: integer minor units of a currency (fen for CNY), never floating point.
// Rounding is half away from zero (四舍五入), to the currency's minor unit, once per
// operation; callers decide where (per quote line, as Chinese VAT invoices do).
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace crm::money {

// The largest amount, in minor units, one record may hold: what a client sends (an
// opportunity's or contract's amount, a unit price, a payment, an instalment, a channel cost,
// a threshold) and what the service computes for one record (a quote line, a quote's totals,
// a contract's collected sum). 10^15 minor units: ten trillion yuan in fen, far beyond any
// real deal, and 9,000 of them still sum within 64 bits. Sums over many records (list totals,
// reports, receivables) are checked (AddTo) instead of capped.
inline constexpr int64_t kMaxAmountMinor = 1'000'000'000'000'000;
// The largest quote line quantity, in thousandths: a billion units.
inline constexpr int64_t kMaxQuantityMilli = 1'000'000'000'000;

// OUT_OF_RANGE naming `field` (google.rpc.BadRequest) when |minor| > kMaxAmountMinor. Whether
// a sign is allowed is the caller's rule.
absl::Status CheckAmount(int64_t minor, absl::string_view field);

// *total += more, or OUT_OF_RANGE naming `field` when the sum does not fit in int64 (then
// *total is unchanged).
absl::Status AddTo(int64_t* total, int64_t more, absl::string_view field);

// a + b held at the int64 limits instead of wrapping: for measures only compared with a
// threshold (a behaviour tag rule's sum), where a total past the limit is still past it.
int64_t SaturatingAdd(int64_t a, int64_t b);

// AddTo for code that adds up many totals where an error cannot be returned at once (a report
// folding facts through callbacks): a total that would leave int64 is left as it was, and
// status() is then OUT_OF_RANGE naming the first such field. Not thread-safe.
class Totals {
 public:
  void Add(int64_t* total, int64_t more, absl::string_view field) {
    if (absl::Status s = AddTo(total, more, field); !s.ok() && status_.ok()) status_ = std::move(s);
  }
  const absl::Status& status() const { return status_; }

 private:
  absl::Status status_;
};

// Digits after the decimal point of an ISO 4217 currency we accept (CNY, HKD, USD, EUR ...: 2;
// JPY, KRW: 0). INVALID_ARGUMENT for codes outside the list.
absl::StatusOr<int> MinorDigits(absl::string_view currency);

// Text to minor units: "1234.56", "1,234.56", "-0.5", "¥1,234.56", "１２３.４"; spaces allowed
// around. INVALID_ARGUMENT for more decimals than the currency has, for text that is not an
// amount, and beyond ±9.2e18 minor units.
absl::StatusOr<int64_t> ParseAmount(absl::string_view text, absl::string_view currency);
// The same for any fixed-point quantity with `decimal_digits` decimals ("2.5" with 3 is 2500),
// `unit` naming it in errors.
absl::StatusOr<int64_t> ParseDecimal(absl::string_view text, int decimal_digits, absl::string_view unit = "");
// Minor units to text with exactly the currency's decimals: 123456 CNY -> "1234.56".
std::string FormatAmount(int64_t minor, int digits);

// value × num / den rounded half away from zero; OUT_OF_RANGE when the result does not fit
// in int64. den must be positive.
absl::StatusOr<int64_t> MulDiv(int64_t value, int64_t num, int64_t den);

// Checked sum; OUT_OF_RANGE on overflow.
absl::StatusOr<int64_t> Add(int64_t a, int64_t b);

// One priced line (报价单明细): quantity in thousandths (2.5 units = 2500), unit price in minor
// units, discount and tax rate in basis points (9.5% off = 950; 13% VAT = 1300). Errors name
// the request fields under `field` ("quote.lines[2]").
struct LineAmounts {
  int64_t subtotal = 0;  // quantity × unit price, rounded
  int64_t discount = 0;  // subtotal × discount, rounded
  int64_t net = 0;       // subtotal − discount
  int64_t tax = 0;       // net × tax rate, rounded
  int64_t total = 0;     // net + tax
};
// INVALID_ARGUMENT naming the part (<field>.quantity_milli, .unit_price_minor, .discount_bp,
// .tax_rate_bp) for a quantity that is not positive, a negative price, a discount or tax rate
// outside 0-100%; OUT_OF_RANGE naming the part for a quantity above kMaxQuantityMilli or a
// price above kMaxAmountMinor, and naming `field` when the line comes to more than
// kMaxAmountMinor.
absl::StatusOr<LineAmounts> PriceLine(int64_t quantity_milli, int64_t unit_price, int32_t discount_bp,
                                      int32_t tax_rate_bp, absl::string_view field = "line");

}  // namespace crm::money

#endif  // CRM_LIBS_COMMON_MONEY_H_
