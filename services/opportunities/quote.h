#ifndef CRM_SERVICES_OPPORTUNITIES_QUOTE_H_
#define CRM_SERVICES_OPPORTUNITIES_QUOTE_H_

// The quote aggregate (报价单): versioned line items with totals in exact money, sent to the
// customer, accepted (becoming a contract draft) or rejected. Pure decisions and folds.
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "crm/opportunities/v1/opportunities_events.pb.h"
#include "libs/common/caller.h"

namespace crm::opportunities {

using v1::QuoteState;
using v1::QuoteVersion;

using QuoteEvent = std::variant<v1::QuoteCreated, v1::QuoteRevised, v1::QuoteSent, v1::QuoteAccepted, v1::QuoteRejected>;
using QuoteDecision = absl::StatusOr<std::vector<QuoteEvent>>;

// Prices every line of `v` in `currency` (PriceLine: each amount rounded once, per line, as on
// Chinese VAT invoices) and sums the totals. `field` is where the request holds `v` ("quote" on
// create, "version" on revise): INVALID_ARGUMENT naming "<field>.lines[i].<part>" for a bad
// line, "<field>.lines" for none or more than 200, "<field>.valid_until" for a bad date;
// OUT_OF_RANGE when the sums overflow.
absl::Status PriceQuote(QuoteVersion& v, const std::string& currency, absl::string_view field);

// The opportunity a quote is for, as the service knows it.
struct OpportunityView {
  bool exists = false;
  bool open = false;  // neither won nor lost, not in the recycle bin
  std::string customer_id, owner_id, team_id;
};

struct CreateQuote {
  std::string opportunity_id;
  std::string currency;  // default CNY
  QuoteVersion version;  // lines, valid_until, notes
  OpportunityView opportunity;
};
// A new version (from a draft, a sent or a rejected quote; not an accepted one).
struct ReviseQuote {
  QuoteVersion version;
};
struct SendQuote {
};
struct AcceptQuote {
  std::string contract_id;  // derived by the service from the quote and its version
};
struct RejectQuote {
  std::string reason;  // required
};

bool CanSee(const Caller& c, const QuoteState& s);

QuoteDecision Decide(const QuoteState* state, const Caller& caller, const CreateQuote& cmd);
QuoteDecision Decide(const QuoteState* state, const Caller& caller, const ReviseQuote& cmd);
QuoteDecision Decide(const QuoteState* state, const Caller& caller, const SendQuote& cmd);
QuoteDecision Decide(const QuoteState* state, const Caller& caller, const AcceptQuote& cmd);
QuoteDecision Decide(const QuoteState* state, const Caller& caller, const RejectQuote& cmd);

void Apply(QuoteState& state, const QuoteEvent& event, int64_t version, absl::Time at, const std::string& actor);

}  // namespace crm::opportunities

#endif  // CRM_SERVICES_OPPORTUNITIES_QUOTE_H_
