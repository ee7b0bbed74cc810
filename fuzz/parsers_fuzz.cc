// The parsers that read text from outside: bearer tokens, CSV imports, amounts, etags, names,
// page tokens (offsets and ListCustomers' positions), filters and order_by. Each refuses with
// a code a client can act on, and what it accepts holds up (a token verifies to a known role,
// an amount formats back, a position token reads back).
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "fuzz/fuzz_input.h"
#include "libs/common/csv.h"
#include "libs/common/list_page.h"
#include "libs/common/money.h"
#include "libs/common/request.h"
#include "libs/common/text.h"
#include "libs/common/token.h"
#include "services/customers/customer_list.h"

namespace {

using crm::fuzz::CheckRefusal;

void Token(crm::fuzz::Input& in) {
  static const std::string key(48, 'k');
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  auto c = crm::VerifyToken(key, in.Rest(), now);
  CheckRefusal(c.status(), "VerifyToken");
  if (c.ok() && (!crm::IsKnownRole(c->role) || c->sub.empty() || c->exp <= now)) std::abort();
}

void Csv(crm::fuzz::Input& in) {
  const char delimiter = in.Byte() % 2 ? ';' : ',';
  crm::csv::Reader r(in.Rest(), delimiter);
  std::vector<std::string> fields;
  for (int records = 0;; ++records) {
    auto more = r.Next(&fields);
    CheckRefusal(more.status(), "csv::Reader");
    if (!more.ok() || !*more) break;
    if (records > 1'000'000) std::abort();  // it must end
    // A record written back reads as itself.
    const std::string line = crm::csv::FormatRecord(fields, delimiter);
    crm::csv::Reader again(line, delimiter);
    std::vector<std::string> back;
    auto one = again.Next(&back);
    if (!one.ok() || !*one || back != fields) std::abort();
  }
}

void Amount(crm::fuzz::Input& in) {
  static const char* kCurrencies[] = {"CNY", "JPY", "USD", "XXX"};
  const char* currency = kCurrencies[in.Byte() % 4];
  auto a = crm::money::ParseAmount(in.Rest(), currency);
  CheckRefusal(a.status(), "ParseAmount");
  if (a.ok()) {
    auto digits = crm::money::MinorDigits(currency);
    if (!digits.ok()) std::abort();  // an amount in an unknown currency was accepted
    auto back = crm::money::ParseAmount(crm::money::FormatAmount(*a, *digits), currency);
    if (!back.ok() || *back != *a) std::abort();
  }
}

void Requests(crm::fuzz::Input& in) {
  const std::string a = in.Short(), b = in.Short();
  CheckRefusal(crm::ParseEtag(a, "etag").status(), "ParseEtag");
  CheckRefusal(crm::ParseName(a, "name", "customers").status(), "ParseName");
  CheckRefusal(crm::CheckRequestId(a), "CheckRequestId");
  CheckRefusal(crm::ParseTarget(a, b, "name", a, "etag", "customers").status(), "ParseTarget");
  CheckRefusal(crm::ParsePageToken(a, b).status(), "ParsePageToken");
  CheckRefusal(crm::ParseFilterTerms(a, {"owner_id", "stage", "status"}).status(), "ParseFilterTerms");
  CheckRefusal(crm::ParseOrderBy(b, {"create_time", "display_name"}, "create_time").status(), "ParseOrderBy");
  CheckRefusal(crm::CheckText(b, "display_name", 20, true), "CheckText");
  // A page token we issue reads back.
  const std::string t = crm::PageToken(static_cast<int64_t>(a.size()), b);
  auto off = crm::ParsePageToken(t, b);
  if (!off.ok() || *off != static_cast<int64_t>(a.size())) std::abort();
}

// ListCustomers' position tokens, queries and index entries.
void CustomerList(crm::fuzz::Input& in) {
  namespace cs = crm::customers;
  const std::string a = in.Short(), b = in.Short();
  CheckRefusal(crm::ParsePositionToken(a, b).status(), "ParsePositionToken");
  CheckRefusal(cs::ParseListQuery(a, b, false).status(), "ParseListQuery");
  auto back = crm::ParsePositionToken(crm::PositionToken(a, b), b);
  if (!back.ok() || *back != a) std::abort();
  cs::ListEntry e, again;
  if (cs::ListEntry::Decode(a, &e) && (!cs::ListEntry::Decode(e.Encode(), &again) || !(again == e))) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  crm::fuzz::Input in(data, size);
  switch (in.Byte() % 5) {
    case 0: Token(in); break;
    case 1: Csv(in); break;
    case 2: Amount(in); break;
    case 3: CustomerList(in); break;
    default: Requests(in); break;
  }
  return 0;
}
