// The quote, contract and payment RPCs of OpportunityEngine.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/common/grpc_status.h"
#include "libs/common/proto_time.h"
#include "libs/common/request.h"
#include "libs/common/money.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/envelope.h"
#include "services/opportunities/engine_kinds.h"
#include "services/opportunities/opportunity_engine.h"

namespace crm::opportunities {
namespace {

using projection::FromRocks;

template <typename Cmd>
OpportunityEngine::DecideFn<QuoteState, QuoteEvent> QuoteDecide(const Caller& caller, Cmd cmd) {
  return PlainDecide<QuoteState, QuoteEvent>(caller, std::move(cmd));
}

template <typename Cmd>
OpportunityEngine::DecideFn<ContractState, ContractEvent> ContractDecide(const Caller& caller, Cmd cmd) {
  return PlainDecide<ContractState, ContractEvent>(caller, std::move(cmd));
}

const std::vector<std::string>& EditableTerms() {
  static const auto* f =
      new std::vector<std::string>{"title", "amount", "start_date", "end_date", "notes", "owner_id", "team_id"};
  return *f;
}

ContractTerms TermsOf(const v1::Contract& c) {
  ContractTerms t;
  t.set_title(c.title());
  if (c.has_amount()) *t.mutable_amount() = c.amount();
  t.set_start_date(c.start_date());
  t.set_end_date(c.end_date());
  t.set_owner_id(c.owner_id());
  t.set_team_id(c.team_id());
  t.set_notes(c.notes());
  return t;
}

// The customer a new contract is for, as a draft needs it.
absl::Status FillCustomer(rocksdb::DB* db, const std::string& customer_id, DraftContract* d) {
  CRM_ASSIGN_OR_RETURN(CustomerView v, ReadCustomerView(db, customer_id));
  if (!v.merged_into.empty()) {
    return WithErrorInfo(absl::FailedPreconditionError(absl::StrCat("customers/", customer_id,
                                                                    " was merged into customers/", v.merged_into)),
                         "MERGED", {{"survivor", absl::StrCat("customers/", v.merged_into)}});
  }
  if (v.deleted) return absl::FailedPreconditionError(absl::StrCat("customers/", customer_id, " is in the recycle bin"));
  d->customer_exists = v.exists;
  d->customer_owner_id = v.owner_id;
  d->customer_team_id = v.team_id;
  return absl::OkStatus();
}

}  // namespace

v1::Quote OpportunityEngine::ToApi(const QuoteState& s) const {
  v1::Quote q;
  q.set_name(absl::StrCat("quotes/", s.id()));
  q.set_opportunity(absl::StrCat("opportunities/", s.opportunity_id()));
  q.set_customer(absl::StrCat("customers/", s.customer_id()));
  q.set_currency(s.currency());
  for (int i = 0; i < s.versions_size(); ++i) {
    *(i + 1 == s.versions_size() ? q.mutable_current() : q.add_earlier_versions()) = s.versions(i);
  }
  q.set_status(s.status());
  q.set_reject_reason(s.reject_reason());
  if (!s.contract_id().empty()) q.set_contract(absl::StrCat("contracts/", s.contract_id()));
  q.set_owner_id(s.owner_id());
  q.set_team_id(s.team_id());
  q.set_created_by(s.created_by());
  *q.mutable_create_time() = s.create_time();
  *q.mutable_update_time() = s.update_time();
  if (s.has_sent_time()) *q.mutable_sent_time() = s.sent_time();
  q.set_etag(std::to_string(s.version()));
  return q;
}

v1::Contract OpportunityEngine::ToApi(const ContractState& s) const {
  v1::Contract c;
  const auto& t = s.terms();
  c.set_name(absl::StrCat("contracts/", s.id()));
  c.set_number(t.number());
  c.set_title(t.title());
  c.set_customer(absl::StrCat("customers/", t.customer_id()));
  if (!t.opportunity_id().empty()) c.set_opportunity(absl::StrCat("opportunities/", t.opportunity_id()));
  if (!t.quote_id().empty()) c.set_quote(absl::StrCat("quotes/", t.quote_id()));
  c.set_quote_version(t.quote_version());
  *c.mutable_amount() = t.amount();
  c.set_start_date(t.start_date());
  c.set_end_date(t.end_date());
  c.set_owner_id(t.owner_id());
  c.set_team_id(t.team_id());
  c.set_notes(t.notes());
  c.set_status(s.status());
  *c.mutable_renewal_notices() = s.renewal_notices();
  c.set_submitted_by(s.submitted_by());
  c.set_approved_by(s.approved_by());
  c.set_reason(s.reason());
  *c.mutable_payment_plan() = s.plan();
  *c.mutable_payments() = s.payments();
  c.set_collected_minor(s.collected_minor());
  c.set_receivable_minor(Receivable(s));
  c.set_created_by(s.created_by());
  *c.mutable_create_time() = s.create_time();
  *c.mutable_update_time() = s.update_time();
  if (s.has_active_time()) *c.mutable_active_time() = s.active_time();
  c.set_etag(std::to_string(s.version()));
  return c;
}

// ---- Quotes ----

void OpportunityEngine::CreateQuote(const Caller& c, const v1::CreateQuoteRequest& req, Callback<v1::Quote> done) {
  if (auto s = CheckRequestId(req.request_id()); !s.ok()) return done(s);
  if (!req.has_quote()) return done(InvalidFieldError("quote", "is required"));
  const v1::Quote& q = req.quote();
  if (!q.name().empty()) return done(InvalidFieldError("quote.name", "is assigned by the service"));
  auto opp_id = ParseName(q.opportunity(), "quote.opportunity", "opportunities");
  if (!opp_id.ok()) return done(opp_id.status());
  auto opp = ReadState<OpportunityState>(db_->db(), rocksdb::ReadOptions(), rows::Opportunity(*opp_id));
  if (!opp.ok()) return done(opp.status());
  opportunities::CreateQuote cmd;
  cmd.opportunity_id = *opp_id;
  cmd.currency = q.currency();
  cmd.version = q.current();
  if (opp->has_value()) {
    const OpportunityState& o = **opp;
    cmd.opportunity = {true, o.status() == v1::OPPORTUNITY_STATUS_OPEN && !o.deleted(), o.profile().customer_id(),
                       o.profile().owner_id(), o.profile().team_id()};
  }
  Execute<QuoteState, QuoteEvent>(c, NewId("quotes", req.request_id(), clock()->Now()), req.request_id(),
                                  QuoteDecide(c, std::move(cmd)), Reply<QuoteState, v1::Quote>(this, std::move(done)));
}

void OpportunityEngine::ReviseQuote(const Caller& c, const v1::ReviseQuoteRequest& req, Callback<v1::Quote> done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "quotes");
  if (!target.ok()) return done(target.status());
  Execute<QuoteState, QuoteEvent>(c, Versioned(*target, "etag"), req.request_id(),
                                  QuoteDecide(c, opportunities::ReviseQuote{req.version()}),
                                  Reply<QuoteState, v1::Quote>(this, std::move(done)));
}

void OpportunityEngine::SendQuote(const Caller& c, const v1::SendQuoteRequest& req, Callback<v1::Quote> done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "quotes");
  if (!target.ok()) return done(target.status());
  Execute<QuoteState, QuoteEvent>(c, Versioned(*target, "etag"), req.request_id(), QuoteDecide(c, opportunities::SendQuote{}),
                                  Reply<QuoteState, v1::Quote>(this, std::move(done)));
}

void OpportunityEngine::RejectQuote(const Caller& c, const v1::RejectQuoteRequest& req, Callback<v1::Quote> done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "quotes");
  if (!target.ok()) return done(target.status());
  Execute<QuoteState, QuoteEvent>(c, Versioned(*target, "etag"), req.request_id(),
                                  QuoteDecide(c, opportunities::RejectQuote{req.reason()}),
                                  Reply<QuoteState, v1::Quote>(this, std::move(done)));
}

void OpportunityEngine::AcceptQuote(const Caller& c, const v1::AcceptQuoteRequest& req,
                                    Callback<v1::AcceptQuoteResponse> done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "quotes");
  if (!target.ok()) return done(target.status());
  // Read without the lease only to name the contract the lease must cover as well; the draft
  // is made from the quote as read under the lease (AcceptQuoteLeased).
  auto quote = LoadVisible<QuoteState>(c, target->id, req.name());
  if (!quote.ok()) return done(quote.status());
  AcceptQuoteLeased(c, req, *target, ContractOfQuote(*quote), kAcceptQuoteAttempts, std::move(done));
}

std::string OpportunityEngine::ContractOfQuote(const QuoteState& quote) {
  if (!quote.contract_id().empty()) return quote.contract_id();
  const int32_t number = quote.versions().empty() ? 0 : quote.versions().rbegin()->number();
  return DerivedId(absl::StrCat("quotes/", quote.id()), absl::StrCat("v", number));
}

void OpportunityEngine::AcceptQuoteLeased(const Caller& c, const v1::AcceptQuoteRequest& req, const Target& target,
                                          const std::string& contract_id, int attempts,
                                          Callback<v1::AcceptQuoteResponse> done) {
  // One lease on both: the quote's request_id then also names the draft written under it, and
  // no other command on either runs between the two steps.
  store_.Acquire({contract_id, target.id}, [this, c, req, target, contract_id, attempts,
                                            done = std::move(done)](absl::StatusOr<kernel::Lease> lease) mutable {
    if (!lease.ok()) return done(lease.status());
    // Released before `done` on every path, so that an answered caller holds nothing here.
    auto fail = [&lease, &done](absl::Status s) {
      *lease = kernel::Lease();
      done(std::move(s));
    };
    auto quote = LoadVisible<QuoteState>(c, target.id, req.name());
    if (!quote.ok()) return fail(quote.status());
    if (const std::string named = ContractOfQuote(*quote); named != contract_id) {
      // Revised since the read that named the contract: its new version names another draft.
      // Give this lease back before asking for that one, which shares the quote.
      *lease = kernel::Lease();
      if (attempts <= 1) {
        return done(
            absl::AbortedError(absl::StrCat(req.name(), " keeps changing while it is accepted; read it and retry")));
      }
      return AcceptQuoteLeased(c, req, target, named, attempts - 1, std::move(done));
    }
    if (quote->status() != v1::QUOTE_STATUS_ACCEPTED) {
      // Checked before the draft is written: a quote that cannot be accepted makes no contract.
      // The store checks the etag on step 2 only, after the draft: so here too.
      absl::Status expected =
          kernel::CheckExpected(kernel::ExpectedFromEtag(target.etag), quote->version(), Kind<QuoteState>::kType, "etag");
      if (!expected.ok()) return fail(expected);
      auto check = Decide(&*quote, c, opportunities::AcceptQuote{contract_id});
      if (!check.ok()) return fail(check.status());
    }
    // Step 1: the contract draft, unless an earlier attempt wrote it.
    const int32_t number = quote->versions().empty() ? 0 : quote->versions().rbegin()->number();
    DraftContract draft;
    ContractTerms& t = draft.terms;
    t.set_title(req.contract_title());
    t.set_customer_id(quote->customer_id());
    t.set_opportunity_id(quote->opportunity_id());
    t.set_quote_id(quote->id());
    t.set_quote_version(number);
    t.mutable_amount()->set_amount_minor(quote->versions().empty() ? 0
                                                                   : quote->versions().rbegin()->totals().total_minor());
    t.mutable_amount()->set_currency(quote->currency());
    t.set_start_date(req.start_date());
    t.set_end_date(req.end_date());
    t.set_owner_id(quote->owner_id());
    t.set_team_id(quote->team_id());
    if (t.title().empty()) {
      auto opp =
          ReadState<OpportunityState>(db_->db(), rocksdb::ReadOptions(), rows::Opportunity(quote->opportunity_id()));
      if (!opp.ok()) return fail(opp.status());
      t.set_title(opp->has_value() ? (*opp)->profile().name() : absl::StrCat("报价单 ", quote->id()));
    }
    if (auto s = FillCustomer(db_->db(), quote->customer_id(), &draft); !s.ok()) return fail(s);
    auto number_text = AllocateContractNumber();
    if (!number_text.ok()) return fail(number_text.status());
    t.set_number(*number_text);
    const std::string quote_id = quote->id();
    ExecuteHeld<ContractState, ContractEvent>(
        *lease, c, contract_id, "",
        [c, draft = std::move(draft), quote_id](const ContractState* s) -> ContractDecision {
          if (s != nullptr && s->terms().quote_id() == quote_id) return std::vector<ContractEvent>{};
          return Decide(s, c, draft);
        },
        [this, c, req, target, contract_id, lease = *lease, done = std::move(done)](
            absl::StatusOr<Written<ContractState>> contract) mutable {
          if (!contract.ok()) {
            lease = kernel::Lease();
            return done(contract.status());
          }
          // Step 2: the quote accepted, naming the draft.
          ExecuteHeld<QuoteState, QuoteEvent>(
              std::move(lease), c, Versioned(target, "etag"), req.request_id(),
              QuoteDecide(c, opportunities::AcceptQuote{contract_id}),
              [this, contract = *std::move(contract), done = std::move(done)](
                  absl::StatusOr<Written<QuoteState>> quote) mutable {
                if (!quote.ok()) return done(quote.status());
                v1::AcceptQuoteResponse resp;
                *resp.mutable_quote() = ToApi(quote->state);
                resp.mutable_quote()->set_consistency_token(quote->token);
                *resp.mutable_contract() = ToApi(contract.state);
                resp.mutable_contract()->set_consistency_token(quote->token.empty() ? contract.token
                                                                                    : quote->token);
                done(std::move(resp));
              },
              Cause{.correlation_id = req.request_id()});
        },
        Cause{.correlation_id = req.request_id()});
  }, c.deadline);
}

absl::StatusOr<v1::Quote> OpportunityEngine::GetQuote(const Caller& c, const v1::GetQuoteRequest& req,
                                                      absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(std::string id, ParseName(req.name(), "name", "quotes"));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  CRM_ASSIGN_OR_RETURN(QuoteState s, LoadVisible<QuoteState>(c, id, req.name()));
  return ToApi(s);
}

absl::StatusOr<v1::ListQuotesResponse> OpportunityEngine::ListQuotes(const Caller& c, const v1::ListQuotesRequest& req,
                                                                     absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(std::string opp, ParseName(req.parent(), "parent", "opportunities"));
  CRM_ASSIGN_OR_RETURN(int32_t page_size, PageSize(req.page_size(), "page_size"));
  CRM_ASSIGN_OR_RETURN(int64_t offset, ParsePageToken(req.page_token(), req.parent()));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  CRM_RETURN_IF_ERROR(LoadVisible<OpportunityState>(c, opp, req.parent()).status());
  CRM_ASSIGN_OR_RETURN(std::vector<std::string> ids, projection::ReadIds(db_->db(), rows::QuotesOfPrefix(opp)));
  std::vector<QuoteState> quotes;
  for (const auto& id : ids) {
    CRM_ASSIGN_OR_RETURN(auto s, ReadState<QuoteState>(db_->db(), rocksdb::ReadOptions(), rows::Quote(id)));
    if (s.has_value() && CanSee(c, *s)) quotes.push_back(*std::move(s));
  }
  std::sort(quotes.begin(), quotes.end(), [](const QuoteState& a, const QuoteState& b) {
    return std::make_pair(a.create_time().seconds(), a.id()) < std::make_pair(b.create_time().seconds(), b.id());
  });
  v1::ListQuotesResponse resp;
  for (int64_t i = offset; i < static_cast<int64_t>(quotes.size()) && resp.quotes_size() < page_size; ++i) {
    *resp.add_quotes() = ToApi(quotes[i]);
  }
  if (offset + resp.quotes_size() < static_cast<int64_t>(quotes.size())) {
    resp.set_next_page_token(PageToken(offset + resp.quotes_size(), req.parent()));
  }
  return resp;
}

// ---- Contracts ----

void OpportunityEngine::CreateContract(const Caller& c, const v1::CreateContractRequest& req,
                                       Callback<v1::Contract> done) {
  if (auto s = CheckRequestId(req.request_id()); !s.ok()) return done(s);
  if (!req.has_contract()) return done(InvalidFieldError("contract", "is required"));
  const v1::Contract& k = req.contract();
  if (!k.name().empty()) return done(InvalidFieldError("contract.name", "is assigned by the service"));
  if (!k.number().empty()) return done(InvalidFieldError("contract.number", "is assigned by the service"));
  if (!k.quote().empty()) return done(InvalidFieldError("contract.quote", "is set by AcceptQuote"));
  auto customer_id = ParseName(k.customer(), "contract.customer", "customers");
  if (!customer_id.ok()) return done(customer_id.status());
  auto shared = std::make_shared<Callback<v1::Contract>>(std::move(done));
  AfterCustomerKnown(
      req.min_consistency_token(), *customer_id,
      [this, c, req, id = *customer_id, shared] { CreateContractNow(c, req, id, std::move(*shared)); },
      [shared](absl::Status s) { (*shared)(std::move(s)); });
}

void OpportunityEngine::CreateContractNow(const Caller& c, const v1::CreateContractRequest& req,
                                          const std::string& customer_id, Callback<v1::Contract> done) {
  const v1::Contract& k = req.contract();
  DraftContract draft;
  draft.terms = TermsOf(k);
  draft.terms.set_customer_id(customer_id);
  if (!k.opportunity().empty()) {
    auto opp = ParseName(k.opportunity(), "contract.opportunity", "opportunities");
    if (!opp.ok()) return done(opp.status());
    auto state = LoadVisible<OpportunityState>(c, *opp, k.opportunity());
    if (!state.ok()) return done(InvalidFieldError("contract.opportunity", state.status().message()));
    if (state->profile().customer_id() != customer_id) {
      return done(InvalidFieldError("contract.opportunity", "belongs to another customer"));
    }
    draft.terms.set_opportunity_id(*opp);
  }
  if (auto s = FillCustomer(db_->db(), customer_id, &draft); !s.ok()) return done(s);
  auto number = AllocateContractNumber();
  if (!number.ok()) return done(number.status());
  draft.terms.set_number(*number);
  Execute<ContractState, ContractEvent>(c, NewId("contracts", req.request_id(), clock()->Now()), req.request_id(),
                                        ContractDecide(c, std::move(draft)),
                                        Reply<ContractState, v1::Contract>(this, std::move(done)));
}

void OpportunityEngine::UpdateContract(const Caller& c, const v1::UpdateContractRequest& req,
                                       Callback<v1::Contract> done) {
  auto target = ParseTarget(req.request_id(), req.contract().name(), "contract.name", req.contract().etag(),
                            "contract.etag", "contracts");
  if (!target.ok()) return done(target.status());
  opportunities::UpdateContract cmd;
  cmd.terms = TermsOf(req.contract());
  cmd.paths.assign(req.update_mask().paths().begin(), req.update_mask().paths().end());
  if (cmd.paths.empty()) cmd.paths = SetFields(cmd.terms, EditableTerms());
  for (const auto& p : cmd.paths) {
    if (std::find(EditableTerms().begin(), EditableTerms().end(), p) == EditableTerms().end()) {
      return done(InvalidFieldError("update_mask", absl::StrCat("'", p, "' is not an editable field (",
                                                                absl::StrJoin(EditableTerms(), ", "), ")")));
    }
  }
  Execute<ContractState, ContractEvent>(c, Versioned(*target, "contract.etag"), req.request_id(),
                                        ContractDecide(c, std::move(cmd)),
                                        Reply<ContractState, v1::Contract>(this, std::move(done)));
}

void OpportunityEngine::SubmitContract(const Caller& c, const v1::SubmitContractRequest& req,
                                       Callback<v1::Contract> done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "contracts");
  if (!target.ok()) return done(target.status());
  auto settings = ReadSettings(db_->db());
  if (!settings.ok()) return done(settings.status());
  Execute<ContractState, ContractEvent>(
      c, Versioned(*target, "etag"), req.request_id(),
      ContractDecide(c, opportunities::SubmitContract{ApprovalThreshold(*settings)}),
      Reply<ContractState, v1::Contract>(this, std::move(done)));
}

void OpportunityEngine::ApproveContract(const Caller& c, const v1::ApproveContractRequest& req,
                                        Callback<v1::Contract> done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "contracts");
  if (!target.ok()) return done(target.status());
  Execute<ContractState, ContractEvent>(c, Versioned(*target, "etag"), req.request_id(),
                                        ContractDecide(c, opportunities::ApproveContract{req.comment()}),
                                        Reply<ContractState, v1::Contract>(this, std::move(done)));
}

void OpportunityEngine::RejectContract(const Caller& c, const v1::RejectContractRequest& req,
                                       Callback<v1::Contract> done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "contracts");
  if (!target.ok()) return done(target.status());
  Execute<ContractState, ContractEvent>(c, Versioned(*target, "etag"), req.request_id(),
                                        ContractDecide(c, RejectContractApproval{req.reason()}),
                                        Reply<ContractState, v1::Contract>(this, std::move(done)));
}

void OpportunityEngine::TerminateContract(const Caller& c, const v1::TerminateContractRequest& req,
                                          Callback<v1::Contract> done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "contracts");
  if (!target.ok()) return done(target.status());
  Execute<ContractState, ContractEvent>(c, Versioned(*target, "etag"), req.request_id(),
                                        ContractDecide(c, opportunities::TerminateContract{req.reason()}),
                                        Reply<ContractState, v1::Contract>(this, std::move(done)));
}

void OpportunityEngine::SetPaymentPlan(const Caller& c, const v1::SetPaymentPlanRequest& req,
                                       Callback<v1::Contract> done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "contracts");
  if (!target.ok()) return done(target.status());
  opportunities::SetPaymentPlan cmd{{req.instalments().begin(), req.instalments().end()}};
  Execute<ContractState, ContractEvent>(c, Versioned(*target, "etag"), req.request_id(), ContractDecide(c, std::move(cmd)),
                                        Reply<ContractState, v1::Contract>(this, std::move(done)));
}

void OpportunityEngine::RecordPayment(const Caller& c, const v1::RecordPaymentRequest& req,
                                      Callback<v1::Contract> done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "contracts");
  if (!target.ok()) return done(target.status());
  if (!req.payment().payment_id().empty()) return done(InvalidFieldError("payment.payment_id", "is assigned by the service"));
  opportunities::RecordPayment cmd{req.payment(), clock()->Now()};
  cmd.payment.set_payment_id(NewId(absl::StrCat("contracts/", target->id, "/payments"), req.request_id(), clock()->Now()));
  Execute<ContractState, ContractEvent>(c, Versioned(*target, "etag"), req.request_id(), ContractDecide(c, std::move(cmd)),
                                        Reply<ContractState, v1::Contract>(this, std::move(done)));
}

void OpportunityEngine::CorrectPayment(const Caller& c, const v1::CorrectPaymentRequest& req,
                                       Callback<v1::Contract> done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "contracts");
  if (!target.ok()) return done(target.status());
  if (req.payment_id().empty()) return done(InvalidFieldError("payment_id", "is required"));
  opportunities::CorrectPayment cmd;
  cmd.correction.set_payment_id(req.payment_id());
  cmd.correction.set_amount_minor(req.amount_minor());
  *cmd.correction.mutable_paid_at() = req.paid_at();
  cmd.correction.set_reason(req.reason());
  cmd.now = clock()->Now();
  Execute<ContractState, ContractEvent>(c, Versioned(*target, "etag"), req.request_id(), ContractDecide(c, std::move(cmd)),
                                        Reply<ContractState, v1::Contract>(this, std::move(done)));
}

void OpportunityEngine::VoidPayment(const Caller& c, const v1::VoidPaymentRequest& req, Callback<v1::Contract> done) {
  auto target = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "contracts");
  if (!target.ok()) return done(target.status());
  if (req.payment_id().empty()) return done(InvalidFieldError("payment_id", "is required"));
  Execute<ContractState, ContractEvent>(
      c, Versioned(*target, "etag"), req.request_id(),
      ContractDecide(c, opportunities::VoidPayment{req.payment_id(), req.reason()}),
      Reply<ContractState, v1::Contract>(this, std::move(done)));
}

absl::StatusOr<v1::Contract> OpportunityEngine::GetContract(const Caller& c, const v1::GetContractRequest& req,
                                                            absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(std::string id, ParseName(req.name(), "name", "contracts"));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  CRM_ASSIGN_OR_RETURN(ContractState s, LoadVisible<ContractState>(c, id, req.name()));
  return ToApi(s);
}

absl::StatusOr<v1::ListContractsResponse> OpportunityEngine::ListContracts(const Caller& c,
                                                                           const v1::ListContractsRequest& req,
                                                                           absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(int32_t page_size, PageSize(req.page_size(), "page_size"));
  CRM_ASSIGN_OR_RETURN(std::vector<FilterTerm> terms,
                       ParseFilterTerms(req.filter(), {"customer", "owner_id", "team_id", "status"}));
  std::string customer_id;
  int status = -1;
  for (const auto& t : terms) {
    if (t.field == "customer") {
      CRM_ASSIGN_OR_RETURN(customer_id, ParseName(t.value, "filter", "customers"));
    } else if (t.field == "status") {
      v1::ContractStatus st;
      if (!v1::ContractStatus_Parse(absl::StrCat("CONTRACT_STATUS_", t.value), &st) ||
          st == v1::CONTRACT_STATUS_UNSPECIFIED) {
        return InvalidFieldError("filter", absl::StrCat("status is DRAFT, PENDING_APPROVAL, ACTIVE, EXPIRED or "
                                                        "TERMINATED, not '",
                                                        t.value, "'"));
      }
      status = st;
    }
  }
  CRM_ASSIGN_OR_RETURN(int64_t offset, ParsePageToken(req.page_token(), req.filter()));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  std::vector<ContractState> matches;
  auto consider = [&](ContractState s) {
    if (!CanSee(c, s)) return;
    const auto& t = s.terms();
    for (const auto& term : terms) {
      if ((term.field == "customer" && t.customer_id() != customer_id) ||
          (term.field == "owner_id" && t.owner_id() != term.value) ||
          (term.field == "team_id" && t.team_id() != term.value) || (term.field == "status" && s.status() != status)) {
        return;
      }
    }
    matches.push_back(std::move(s));
  };
  if (!customer_id.empty()) {
    CRM_ASSIGN_OR_RETURN(std::vector<std::string> ids, projection::ReadIds(db_->db(), rows::ContractsOfPrefix(customer_id)));
    for (const auto& id : ids) {
      CRM_ASSIGN_OR_RETURN(auto s, ReadState<ContractState>(db_->db(), rocksdb::ReadOptions(), rows::Contract(id)));
      if (s.has_value()) consider(*std::move(s));
    }
  } else {
    std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek("k/"); it->Valid() && it->key().starts_with("k/"); it->Next()) {
      ContractState s;
      if (!s.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
        return absl::DataLossError("undecodable contract state");
      }
      consider(std::move(s));
    }
    CRM_RETURN_IF_ERROR(FromRocks(it->status(), "scan contracts"));
  }
  // Newest number first: numbers are HT<day><seq>.
  std::sort(matches.begin(), matches.end(), [](const ContractState& a, const ContractState& b) {
    return std::make_pair(a.terms().number(), a.id()) > std::make_pair(b.terms().number(), b.id());
  });
  v1::ListContractsResponse resp;
  resp.set_total_size(static_cast<int32_t>(matches.size()));
  for (int64_t i = offset; i < static_cast<int64_t>(matches.size()) && resp.contracts_size() < page_size; ++i) {
    *resp.add_contracts() = ToApi(matches[i]);
  }
  if (offset + resp.contracts_size() < static_cast<int64_t>(matches.size())) {
    resp.set_next_page_token(PageToken(offset + resp.contracts_size(), req.filter()));
  }
  return resp;
}

namespace {

// The receivable of `s` counting the payments paid by `as_of`; instalments due before the
// day of `as_of` and not covered are overdue.
v1::Receivable ReceivableOf(const ContractState& s, absl::Time as_of, absl::TimeZone zone) {
  v1::Receivable r;
  r.set_contract(absl::StrCat("contracts/", s.id()));
  r.set_currency(s.terms().amount().currency());
  r.set_amount_minor(s.terms().amount().amount_minor());
  const int64_t collected = CollectedAsOf(s, as_of);
  r.set_collected_minor(collected);
  r.set_receivable_minor(r.amount_minor() - collected);
  const std::string day = absl::FormatTime("%Y-%m-%d", as_of, zone);
  int64_t left = collected, overdue = 0;
  for (const auto& i : s.plan()) {
    const int64_t covered = std::min(left, i.amount_minor());
    left -= covered;
    if (i.due_date() < day) overdue += i.amount_minor() - covered;
  }
  r.set_overdue_minor(overdue);
  return r;
}

}  // namespace

absl::StatusOr<v1::Receivable> OpportunityEngine::GetReceivable(const Caller& c, const v1::GetReceivableRequest& req,
                                                                 absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(std::string id, ParseName(req.name(), "name", "contracts"));
  CRM_ASSIGN_OR_RETURN(const absl::Time as_of, OptionalClientTime(req.has_as_of(), req.as_of(), "as_of", clock()->Now()));
  CRM_ASSIGN_OR_RETURN(const absl::Time known_at,
                       OptionalClientTime(req.has_known_at(), req.known_at(), "known_at", absl::InfiniteFuture()));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  CRM_ASSIGN_OR_RETURN(ContractState state, LoadVisible<ContractState>(c, id, req.name()));
  if (!req.has_known_at()) return ReceivableOf(state, as_of, options_.zone);
  // As known then: the contract's events recorded up to known_at.
  CRM_ASSIGN_OR_RETURN(ContractState past, PastStateOf<ContractState>(db_->db(), id, known_at, &UnpackContractEvent));
  if (past.version() == 0) return absl::NotFoundError(absl::StrCat(req.name(), " did not exist at known_at"));
  return ReceivableOf(past, as_of, options_.zone);
}

absl::StatusOr<v1::CustomerReceivables> OpportunityEngine::GetCustomerReceivables(
    const Caller& c, const v1::GetCustomerReceivablesRequest& req, absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(std::string customer, ParseName(req.customer(), "customer", "customers"));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  v1::CustomerReceivables out;
  out.set_customer(req.customer());
  CRM_ASSIGN_OR_RETURN(std::vector<std::string> ids, projection::ReadIds(db_->db(), rows::ReceivablesPrefix(customer)));
  for (const auto& id : ids) {
    CRM_ASSIGN_OR_RETURN(auto s, ReadState<ContractState>(db_->db(), rocksdb::ReadOptions(), rows::Contract(id)));
    if (!s.has_value() || !CanSee(c, *s)) continue;
    v1::Receivable r = ReceivableOf(*s, clock()->Now(), options_.zone);
    CRM_RETURN_IF_ERROR(money::AddTo(&(*out.mutable_total_receivable_minor())[r.currency()], r.receivable_minor(),
                                     "total_receivable_minor"));
    *out.add_contracts() = std::move(r);
  }
  return out;
}

}  // namespace crm::opportunities
