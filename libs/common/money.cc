#include "libs/common/money.h"

#include <limits>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "libs/common/grpc_status.h"
#include "libs/common/text.h"

namespace crm::money {
namespace {

using Wide = __int128;

absl::StatusOr<int64_t> Narrow(Wide v) {
  if (v > std::numeric_limits<int64_t>::max() || v < std::numeric_limits<int64_t>::min()) {
    return absl::OutOfRangeError("the amount does not fit in 64 bits of minor units");
  }
  return static_cast<int64_t>(v);
}

// p / den rounded half away from zero (|remainder| * 2 >= den rounds the magnitude up);
// den > 0.
Wide RoundedDiv(Wide p, Wide den) {
  const Wide q = p / den, r = p % den;
  const Wide abs_r = r < 0 ? -r : r;
  return abs_r * 2 >= den ? q + (p < 0 ? -1 : 1) : q;
}

}  // namespace

absl::StatusOr<int> MinorDigits(absl::string_view currency) {
  static const auto* digits = new std::map<std::string, int, std::less<>>{
      {"CNY", 2}, {"HKD", 2}, {"MOP", 2}, {"TWD", 2}, {"USD", 2}, {"EUR", 2}, {"GBP", 2}, {"SGD", 2},
      {"AUD", 2}, {"CAD", 2}, {"CHF", 2}, {"THB", 2}, {"MYR", 2}, {"JPY", 0}, {"KRW", 0}, {"VND", 0}};
  auto it = digits->find(currency);
  if (it == digits->end()) return absl::InvalidArgumentError(absl::StrCat("'", currency, "' is not a currency we accept"));
  return it->second;
}

absl::StatusOr<int64_t> ParseAmount(absl::string_view text, absl::string_view currency) {
  auto digits = MinorDigits(currency);
  if (!digits.ok()) return digits.status();
  return ParseDecimal(text, *digits, currency);
}

absl::StatusOr<int64_t> ParseDecimal(absl::string_view text, int decimal_digits, absl::string_view unit) {
  const int* digits = &decimal_digits;
  const std::string currency(unit.empty() ? "this quantity" : unit);
  const std::string folded = FoldFullWidth(text);
  absl::string_view s = absl::StripAsciiWhitespace(folded);
  bool negative = absl::ConsumePrefix(&s, "-");
  for (absl::string_view symbol : {"¥", "￥", "$", "€", "£"}) {
    if (absl::ConsumePrefix(&s, symbol)) break;
  }
  if (!negative) negative = absl::ConsumePrefix(&s, "-");
  const std::string bad = absl::StrCat("'", text, "' is not an amount");
  if (s.empty()) return absl::InvalidArgumentError(bad);
  Wide units = 0;
  int decimals = -1;  // digits seen after the point; -1 before it
  bool any_digit = false;
  char prev = 0;
  for (char c : s) {
    if (absl::ascii_isdigit(c)) {
      if (decimals >= 0 && ++decimals > *digits) {
        return absl::InvalidArgumentError(
            absl::StrCat("'", text, "' has more than ", *digits, " decimals for ", currency));
      }
      units = units * 10 + (c - '0');
      if (units > std::numeric_limits<int64_t>::max()) return absl::InvalidArgumentError(absl::StrCat("'", text, "' is too large"));
      any_digit = true;
    } else if (c == '.' && decimals < 0 && any_digit) {
      decimals = 0;
    } else if (c == ',' && decimals < 0 && any_digit && prev != ',') {
      // thousands separator
    } else {
      return absl::InvalidArgumentError(bad);
    }
    prev = c;
  }
  if (!any_digit || prev == ',' || prev == '.') return absl::InvalidArgumentError(bad);
  for (int d = std::max(decimals, 0); d < *digits; ++d) units *= 10;
  if (units > std::numeric_limits<int64_t>::max()) return absl::InvalidArgumentError(absl::StrCat("'", text, "' is too large"));
  return static_cast<int64_t>(negative ? -units : units);
}

std::string FormatAmount(int64_t minor, int digits) {
  const bool negative = minor < 0;
  // Through unsigned so that INT64_MIN has a magnitude.
  uint64_t mag = negative ? static_cast<uint64_t>(-(minor + 1)) + 1 : static_cast<uint64_t>(minor);
  std::string s = std::to_string(mag);
  if (digits > 0) {
    if (s.size() <= static_cast<size_t>(digits)) s.insert(0, digits - s.size() + 1, '0');
    // StrCat rather than insert(): GCC 12 warns (-Wrestrict, a false positive) about insert.
    const absl::string_view all(s);
    const size_t point = all.size() - static_cast<size_t>(digits);
    s = absl::StrCat(all.substr(0, point), ".", all.substr(point));
  }
  return negative ? "-" + s : s;
}

absl::StatusOr<int64_t> MulDiv(int64_t value, int64_t num, int64_t den) {
  if (den <= 0) return absl::InvalidArgumentError("MulDiv needs a positive divisor");
  return Narrow(RoundedDiv(static_cast<Wide>(value) * num, den));
}

absl::StatusOr<int64_t> Add(int64_t a, int64_t b) { return Narrow(static_cast<Wide>(a) + b); }

absl::Status CheckAmount(int64_t minor, absl::string_view field) {
  if (minor > kMaxAmountMinor || minor < -kMaxAmountMinor) {
    return OutOfRangeFieldError(field, "is beyond 10^15 minor units, the largest amount this service holds");
  }
  return absl::OkStatus();
}

absl::Status AddTo(int64_t* total, int64_t more, absl::string_view field) {
  int64_t sum = 0;
  if (__builtin_add_overflow(*total, more, &sum)) {
    return OutOfRangeFieldError(field, "sums to more than 64 bits of minor units");
  }
  *total = sum;
  return absl::OkStatus();
}

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (!__builtin_add_overflow(a, b, &sum)) return sum;
  return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
}

absl::StatusOr<LineAmounts> PriceLine(int64_t quantity_milli, int64_t unit_price, int32_t discount_bp,
                                      int32_t tax_rate_bp, absl::string_view field) {
  auto part = [&](absl::string_view name) { return absl::StrCat(field, ".", name); };
  if (quantity_milli <= 0) return InvalidFieldError(part("quantity_milli"), "must be positive");
  if (quantity_milli > kMaxQuantityMilli) {
    return OutOfRangeFieldError(part("quantity_milli"), "is above 10^12 (a billion units)");
  }
  if (unit_price < 0) return InvalidFieldError(part("unit_price_minor"), "must not be negative");
  if (auto s = CheckAmount(unit_price, part("unit_price_minor")); !s.ok()) return s;
  if (discount_bp < 0 || discount_bp > 10000) {
    return InvalidFieldError(part("discount_bp"), "must be 0-10000 (basis points)");
  }
  if (tax_rate_bp < 0 || tax_rate_bp > 10000) {
    return InvalidFieldError(part("tax_rate_bp"), "must be 0-10000 (basis points)");
  }
  // Bounded inputs: at most 10^15 × 10^12 / 1000 = 10^24 before the checks below, within 128 bits.
  const Wide subtotal = RoundedDiv(static_cast<Wide>(unit_price) * quantity_milli, 1000);
  const Wide discount = RoundedDiv(subtotal * discount_bp, 10000);
  const Wide net = subtotal - discount;
  const Wide tax = RoundedDiv(net * tax_rate_bp, 10000);
  const Wide total = net + tax;
  if (total > kMaxAmountMinor || subtotal > kMaxAmountMinor) {
    return OutOfRangeFieldError(field, "comes to more than 10^15 minor units, the largest amount this service holds");
  }
  return LineAmounts{.subtotal = static_cast<int64_t>(subtotal), .discount = static_cast<int64_t>(discount),
                     .net = static_cast<int64_t>(net), .tax = static_cast<int64_t>(tax),
                     .total = static_cast<int64_t>(total)};
}

}  // namespace crm::money
