#include "services/opportunities/quote.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/grpc_status.h"
#include "libs/common/money.h"
#include "libs/common/proto_time.h"
#include "libs/common/text.h"
#include "services/opportunities/opportunity.h"

namespace crm::opportunities {
namespace {


constexpr int kMaxLines = 200;


// The request's etag is the command's expected version, checked before Decide
// (OpportunityEngine::Execute).
absl::Status CheckQuote(const QuoteState* s, const Caller& caller) {
  if (s == nullptr || s->version() == 0) return absl::NotFoundError("quote not found");
  if (!CanSee(caller, *s)) return absl::PermissionDeniedError("the quote belongs to another owner or team");
  return absl::OkStatus();
}

absl::Status StatusError(const QuoteState& s, absl::string_view want) {
  static const char* kNames[] = {"unspecified", "a draft", "sent", "accepted", "rejected"};
  return WithErrorInfo(absl::FailedPreconditionError(absl::StrCat("the quote is ", kNames[s.status()], "; ", want)),
                       "QUOTE_STATUS", {{"status", v1::QuoteStatus_Name(s.status())}});
}

int32_t CurrentNumber(const QuoteState& s) { return s.versions().empty() ? 0 : s.versions().rbegin()->number(); }

}  // namespace

absl::Status PriceQuote(QuoteVersion& v, const std::string& currency, absl::string_view field) {
  if (auto d = money::MinorDigits(currency); !d.ok()) return InvalidFieldError(absl::StrCat(field, ".currency"), d.status().message());
  if (v.lines().empty()) return InvalidFieldError(absl::StrCat(field, ".lines"), "needs at least one line");
  if (v.lines_size() > kMaxLines) return InvalidFieldError(absl::StrCat(field, ".lines"), absl::StrCat("has more than ", kMaxLines, " lines"));
  if (!v.valid_until().empty()) {
    if (auto d = ParseClientDate(v.valid_until(), absl::StrCat(field, ".valid_until")); !d.ok()) return d.status();
  }
  if (auto s = CheckText(v.notes(), absl::StrCat(field, ".notes"), 2000, false, TextKind::kMultiLine); !s.ok()) return s;
  v1::QuoteTotals totals;
  for (int i = 0; i < v.lines_size(); ++i) {
    v1::QuoteLine& l = *v.mutable_lines(i);
    const std::string f = absl::StrCat(field, ".lines[", i, "]");
    if (auto s = CheckText(l.product(), absl::StrCat(f, ".product"), 100, true); !s.ok()) return s;
    if (auto s = CheckText(l.description(), absl::StrCat(f, ".description"), 500, false, TextKind::kMultiLine); !s.ok()) return s;
    auto a = money::PriceLine(l.quantity_milli(), l.unit_price_minor(), l.discount_bp(), l.tax_rate_bp(), f);
    if (!a.ok()) return a.status();
    l.set_subtotal_minor(a->subtotal);
    l.set_discount_minor(a->discount);
    l.set_net_minor(a->net);
    l.set_tax_minor(a->tax);
    l.set_total_minor(a->total);
    // At most kMaxLines lines of at most kMaxAmountMinor each: the sums fit in 64 bits, but the
    // quote's total becomes a contract's amount and is held to the same maximum.
    totals.set_subtotal_minor(totals.subtotal_minor() + a->subtotal);
    totals.set_discount_minor(totals.discount_minor() + a->discount);
    totals.set_net_minor(totals.net_minor() + a->net);
    totals.set_tax_minor(totals.tax_minor() + a->tax);
    totals.set_total_minor(totals.total_minor() + a->total);
    if (auto s = money::CheckAmount(totals.subtotal_minor(), absl::StrCat(field, ".lines")); !s.ok()) return s;
    if (auto s = money::CheckAmount(totals.total_minor(), absl::StrCat(field, ".lines")); !s.ok()) return s;
  }
  *v.mutable_totals() = totals;
  return absl::OkStatus();
}

bool CanSee(const Caller& c, const QuoteState& s) { return SeesRecord(c, s.owner_id(), s.team_id()); }

QuoteDecision Decide(const QuoteState* state, const Caller& caller, const CreateQuote& cmd) {
  if (state != nullptr && state->version() > 0) return absl::AlreadyExistsError("quote id already exists");
  if (cmd.opportunity_id.empty()) return InvalidFieldError("quote.opportunity", "is required");
  if (!cmd.opportunity.exists) {
    return InvalidFieldError("quote.opportunity", absl::StrCat("opportunities/", cmd.opportunity_id, " does not exist"));
  }
  if (!SeesRecord(caller, cmd.opportunity.owner_id, cmd.opportunity.team_id)) {
    return absl::PermissionDeniedError("the opportunity belongs to another owner or team");
  }
  if (!cmd.opportunity.open) {
    return absl::FailedPreconditionError("quotes are made for open opportunities (this one is closed or deleted)");
  }
  v1::QuoteCreated e;
  e.set_opportunity_id(cmd.opportunity_id);
  e.set_customer_id(cmd.opportunity.customer_id);
  e.set_currency(cmd.currency.empty() ? "CNY" : cmd.currency);
  e.set_owner_id(cmd.opportunity.owner_id);
  e.set_team_id(cmd.opportunity.team_id);
  *e.mutable_version() = cmd.version;
  e.mutable_version()->set_number(1);
  if (auto s = PriceQuote(*e.mutable_version(), e.currency(), "quote"); !s.ok()) return s;
  return std::vector<QuoteEvent>{std::move(e)};
}

QuoteDecision Decide(const QuoteState* state, const Caller& caller, const ReviseQuote& cmd) {
  if (auto s = CheckQuote(state, caller); !s.ok()) return s;
  if (state->status() == v1::QUOTE_STATUS_ACCEPTED) return StatusError(*state, "an accepted quote is not revised");
  v1::QuoteRevised e;
  *e.mutable_version() = cmd.version;
  e.mutable_version()->set_number(CurrentNumber(*state) + 1);
  // ReviseQuoteRequest carries the lines in `version`: name the field the client sent.
  if (auto s = PriceQuote(*e.mutable_version(), state->currency(), "version"); !s.ok()) return s;
  return std::vector<QuoteEvent>{std::move(e)};
}

QuoteDecision Decide(const QuoteState* state, const Caller& caller, const SendQuote& cmd) {
  if (auto s = CheckQuote(state, caller); !s.ok()) return s;
  if (state->status() != v1::QUOTE_STATUS_DRAFT) return StatusError(*state, "only drafts are sent (revise it first)");
  v1::QuoteSent e;
  e.set_version_number(CurrentNumber(*state));
  return std::vector<QuoteEvent>{std::move(e)};
}

QuoteDecision Decide(const QuoteState* state, const Caller& caller, const AcceptQuote& cmd) {
  if (auto s = CheckQuote(state, caller); !s.ok()) return s;
  if (state->status() != v1::QUOTE_STATUS_SENT) return StatusError(*state, "only a sent quote is accepted");
  v1::QuoteAccepted e;
  e.set_version_number(CurrentNumber(*state));
  e.set_contract_id(cmd.contract_id);
  return std::vector<QuoteEvent>{std::move(e)};
}

QuoteDecision Decide(const QuoteState* state, const Caller& caller, const RejectQuote& cmd) {
  if (auto s = CheckQuote(state, caller); !s.ok()) return s;
  if (state->status() != v1::QUOTE_STATUS_SENT) return StatusError(*state, "only a sent quote is rejected");
  if (auto s = CheckText(cmd.reason, "reason", 500, true, TextKind::kMultiLine); !s.ok()) return s;
  v1::QuoteRejected e;
  e.set_version_number(CurrentNumber(*state));
  e.set_reason(cmd.reason);
  return std::vector<QuoteEvent>{std::move(e)};
}

void Apply(QuoteState& s, const QuoteEvent& event, int64_t version, absl::Time at, const std::string& actor) {
  const google::protobuf::Timestamp ts = ToProto(at);
  std::visit(
      [&](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, v1::QuoteCreated>) {
          s.set_opportunity_id(e.opportunity_id());
          s.set_customer_id(e.customer_id());
          s.set_currency(e.currency());
          s.set_owner_id(e.owner_id());
          s.set_team_id(e.team_id());
          *s.add_versions() = e.version();
          s.set_status(v1::QUOTE_STATUS_DRAFT);
          *s.mutable_create_time() = ts;
          s.set_created_by(actor);
        } else if constexpr (std::is_same_v<T, v1::QuoteRevised>) {
          *s.add_versions() = e.version();
          s.set_status(v1::QUOTE_STATUS_DRAFT);
          s.clear_reject_reason();
          s.clear_sent_time();
          s.clear_decided_time();
        } else if constexpr (std::is_same_v<T, v1::QuoteSent>) {
          s.set_status(v1::QUOTE_STATUS_SENT);
          *s.mutable_sent_time() = ts;
        } else if constexpr (std::is_same_v<T, v1::QuoteAccepted>) {
          s.set_status(v1::QUOTE_STATUS_ACCEPTED);
          s.set_contract_id(e.contract_id());
          *s.mutable_decided_time() = ts;
        } else if constexpr (std::is_same_v<T, v1::QuoteRejected>) {
          s.set_status(v1::QUOTE_STATUS_REJECTED);
          s.set_reject_reason(e.reason());
          *s.mutable_decided_time() = ts;
        }
      },
      event);
  s.set_version(version);
  *s.mutable_update_time() = ts;
}

}  // namespace crm::opportunities
