#include "tools/crmctl_sales.h"

#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "crm/opportunities/v1/opportunities_service.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"
#include "libs/common/money.h"
#include "libs/common/proto_time.h"
#include "tools/crmctl_common.h"

namespace crm::ctl {
namespace {

namespace ov1 = crm::opportunities::v1;

// A money flag ("1,234.56", "¥1234.5") in minor units of `currency`.
absl::StatusOr<int64_t> Amount(const std::string& flag, const std::string& text, const std::string& currency) {
  auto v = money::ParseAmount(text, currency);
  if (!v.ok()) return absl::InvalidArgumentError(absl::StrCat(flag, ": ", v.status().message()));
  return *v;
}

// A money flag into `m`: minor units of `currency`, and the currency.
absl::Status SetMoney(const std::string& flag, const std::string& text, const std::string& currency, ov1::Money* m) {
  auto a = Amount(flag, text, currency);
  if (!a.ok()) return a.status();
  m->set_amount_minor(*a);
  m->set_currency(currency);
  return absl::OkStatus();
}

// A quote line: "product|quantity|unit price[|discount %[|tax rate %]]", e.g. "货架|2.5|33333.33|9.5|13".
absl::StatusOr<ov1::QuoteLine> Line(const std::string& text, const std::string& currency) {
  std::vector<std::string> parts = absl::StrSplit(text, '|');
  if (parts.size() < 3 || parts.size() > 5) {
    return absl::InvalidArgumentError(
        absl::StrCat("--line '", text, "' is not product|quantity|unit price[|discount %[|tax rate %]]"));
  }
  ov1::QuoteLine l;
  l.set_product(parts[0]);
  auto q = money::ParseDecimal(parts[1], 3, "the quantity");
  if (!q.ok()) return absl::InvalidArgumentError(absl::StrCat("--line quantity: ", q.status().message()));
  l.set_quantity_milli(*q);
  auto price = Amount("--line unit price", parts[2], currency);
  if (!price.ok()) return price.status();
  l.set_unit_price_minor(*price);
  for (size_t i = 3; i < parts.size(); ++i) {
    auto bp = money::ParseDecimal(parts[i], 2, "a percentage");
    if (!bp.ok()) return absl::InvalidArgumentError(absl::StrCat("--line percentage: ", bp.status().message()));
    if (i == 3) l.set_discount_bp(static_cast<int32_t>(*bp));
    if (i == 4) l.set_tax_rate_bp(static_cast<int32_t>(*bp));
  }
  return l;
}

}  // namespace

struct SalesCommands::Flags {
  CLI::App* opportunities = nullptr;
  CLI::App* quotes = nullptr;
  CLI::App* contracts = nullptr;
  CLI::App* settings = nullptr;
  // Each verb and what it does with a connection.
  Verbs verbs;

  std::string id, customer, opportunity, title, amount, currency = "CNY", close_date, stage, pipeline, owner, team,
      description, note, reason, etag, request_id, filter, order_by, page_token, as_of_time, comment, start_date,
      end_date, valid_until, notes, paid_at, method, reference, payment_id, known_at, file, threshold;
  std::vector<std::string> lines, instalments;
  int page_size = 0;
  bool show_deleted = false, yes = false, dry_run = false;
};

namespace {

using Opps = ov1::OpportunityService;
using Quotes = ov1::QuoteService;
using Contracts = ov1::ContractService;

std::string Money(const ov1::Money& m) {
  const std::string cur = m.currency().empty() ? "CNY" : m.currency();
  auto d = money::MinorDigits(cur);
  return absl::StrCat(money::FormatAmount(m.amount_minor(), d.ok() ? *d : 2), " ", cur);
}

void PrintOpportunities(const ov1::ListOpportunitiesResponse& r) {
  std::printf("%-50s %-16s %-6s %-18s %-8s %s\n", "NAME", "STAGE", "STATUS", "AMOUNT", "OWNER", "TITLE");
  for (const auto& o : r.opportunities()) {
    std::printf("%-50s %-16s %-6s %-18s %-8s %s%s%s\n", o.name().c_str(), o.stage_id().c_str(),
                ov1::OpportunityStatus_Name(o.status()).substr(19).c_str(), Money(o.amount()).c_str(),
                o.owner_id().c_str(), o.title().c_str(), o.deleted() ? " (deleted)" : "",
                o.customer_deleted() ? " (customer in recycle bin)" : "");
  }
  std::printf("%d of %d", r.opportunities_size(), r.total_size());
  for (const auto& [cur, v] : r.total_amount_minor()) {
    auto d = money::MinorDigits(cur);
    std::printf("; total %s %s", money::FormatAmount(v, d.ok() ? *d : 2).c_str(), cur.c_str());
    auto w = r.weighted_amount_minor().find(cur);
    if (w != r.weighted_amount_minor().end()) {
      std::printf(" (weighted %s)", money::FormatAmount(w->second, d.ok() ? *d : 2).c_str());
    }
  }
  if (!r.next_page_token().empty()) std::printf("; next page: --page-token %s", r.next_page_token().c_str());
  std::printf("\n");
}

void PrintContracts(const ov1::ListContractsResponse& r) {
  std::printf("%-46s %-15s %-17s %-18s %-18s %s\n", "NAME", "NUMBER", "STATUS", "AMOUNT", "RECEIVABLE", "TITLE");
  for (const auto& k : r.contracts()) {
    ov1::Money receivable;
    receivable.set_amount_minor(k.receivable_minor());
    receivable.set_currency(k.amount().currency());
    std::printf("%-46s %-15s %-17s %-18s %-18s %s\n", k.name().c_str(), k.number().c_str(),
                ov1::ContractStatus_Name(k.status()).substr(16).c_str(), Money(k.amount()).c_str(),
                Money(receivable).c_str(), k.title().c_str());
  }
  std::printf("%d of %d\n", r.contracts_size(), r.total_size());
}

}  // namespace

bool SalesCommands::Parsed() const { return f_ && f_->verbs.Parsed(); }

int SalesCommands::Run(const Connection& c) { return f_->verbs.RunParsed(c); }

void SalesCommands::Add(CLI::App& app) {
  f_ = std::make_shared<Flags>();
  Flags* f = f_.get();
  auto verb = [f](CLI::App* noun, const std::string& name, const std::string& help, Verbs::Run run) {
    return f->verbs.Add(noun, name, help, std::move(run));
  };
  auto id_arg = [f](CLI::App* cmd, const std::string& what) { cmd->add_option("id", f->id, what)->required(); };
  auto writes = [f](CLI::App* cmd) { AddWriteFlags(cmd, &f->etag, &f->request_id); };

  // ---- opportunities ----
  CLI::App* o = f->opportunities = app.add_subcommand("opportunities", "Opportunities (商机) and their stages");
  o->require_subcommand(1);
  auto* create = verb(o, "create", "Create an opportunity on a customer", [f](const Connection& c) {
    ov1::CreateOpportunityRequest req;
    auto* x = req.mutable_opportunity();
    x->set_customer(Name("customers", f->customer));
    x->set_title(f->title);
    if (!f->amount.empty()) {
      if (auto s = SetMoney("--amount", f->amount, f->currency, x->mutable_amount()); !s.ok()) {
        return Fail(std::string(s.message()));
      }
    }
    x->set_expected_close_date(f->close_date);
    x->set_stage_id(f->stage);
    x->set_pipeline_id(f->pipeline);
    x->set_owner_id(f->owner);
    x->set_team_id(f->team);
    x->set_description(f->description);
    req.set_request_id(f->request_id);
    return Call<Opps>(c, &Opps::Stub::CreateOpportunity, req);
  });
  create->add_option("--customer", f->customer, "The customer (id or customers/{id})")->required();
  create->add_option("--title", f->title, "What is being sold, 1-200 characters")->required();
  create->add_option("--amount", f->amount, "Expected amount, e.g. 120000.00");
  create->add_option("--currency", f->currency, "ISO 4217")->capture_default_str();
  create->add_option("--close-date", f->close_date, "Expected close date yyyy-MM-dd");
  create->add_option("--stage", f->stage, "Open stage to start in (default: the first)");
  create->add_option("--pipeline", f->pipeline, "Pipeline id (default: the first)");
  create->add_option("--owner", f->owner, "Owner user id (default: you)");
  create->add_option("--team", f->team, "Team id (default: yours)");
  create->add_option("--description", f->description, "Description");
  create->add_option("--request-id", f->request_id, "Idempotency key: a retry with it creates one");

  auto* get = verb(o, "get", "Show one opportunity with its stage history", [f](const Connection& c) {
    ov1::GetOpportunityRequest req;
    req.set_name(Name("opportunities", f->id));
    if (!f->as_of_time.empty()) {
      auto t = When("--as-of-time", f->as_of_time);
      if (!t.ok()) return Fail(std::string(t.status().message()));
      *req.mutable_as_of_time() = *t;
    }
    return Call<Opps>(c, &Opps::Stub::GetOpportunity, req);
  });
  id_arg(get, "Opportunity id or name");
  get->add_option("--as-of-time", f->as_of_time, "As it was then (RFC 3339 or yyyy-MM-dd)");

  auto* list = verb(o, "list", "Opportunities you may see, with totals and the weighted forecast",
                    [f](const Connection& c) {
                      ov1::ListOpportunitiesRequest req;
                      req.set_filter(f->filter);
                      req.set_order_by(f->order_by);
                      req.set_page_size(f->page_size);
                      req.set_page_token(f->page_token);
                      req.set_show_deleted(f->show_deleted);
                      ov1::ListOpportunitiesResponse resp;
                      if (int rc = Call<Opps>(c, &Opps::Stub::ListOpportunities, req, &resp); rc != 0) return rc;
                      if (c.json) {
                        std::cout << Json(resp);
                      } else {
                        PrintOpportunities(resp);
                      }
                      return 0;
                    });
  list->add_option("--filter", f->filter,
                   "e.g. 'status = OPEN AND stage_id = proposal'; fields: customer, owner_id, team_id, stage_id, "
                   "pipeline_id, status, customer_deleted");
  list->add_option("--order-by", f->order_by, "create_time, update_time, amount, expected_close_date [desc]");
  list->add_option("--page-size", f->page_size, "At most 1000 (default 50)");
  list->add_option("--page-token", f->page_token, "From the previous page");
  list->add_flag("--show-deleted", f->show_deleted, "Include the recycle bin");

  auto* update = verb(o, "update", "Change the fields given as flags", [f](const Connection& c) {
    ov1::UpdateOpportunityRequest req;
    auto* x = req.mutable_opportunity();
    x->set_name(Name("opportunities", f->id));
    x->set_etag(f->etag);
    auto* mask = req.mutable_update_mask();
    CLI::App* cmd = f->opportunities->get_subcommand("update");
    if (cmd->count("--title")) x->set_title(f->title), mask->add_paths("title");
    if (cmd->count("--amount")) {
      if (auto s = SetMoney("--amount", f->amount, f->currency, x->mutable_amount()); !s.ok()) {
        return Fail(std::string(s.message()));
      }
      mask->add_paths("amount");
    }
    if (cmd->count("--close-date")) x->set_expected_close_date(f->close_date), mask->add_paths("expected_close_date");
    if (cmd->count("--description")) x->set_description(f->description), mask->add_paths("description");
    if (cmd->count("--owner")) x->set_owner_id(f->owner), mask->add_paths("owner_id");
    if (cmd->count("--team")) x->set_team_id(f->team), mask->add_paths("team_id");
    if (mask->paths().empty()) return Fail("nothing to update: give at least one field flag");
    req.set_request_id(f->request_id);
    return Call<Opps>(c, &Opps::Stub::UpdateOpportunity, req);
  });
  id_arg(update, "Opportunity id or name");
  update->add_option("--title", f->title, "Title");
  update->add_option("--amount", f->amount, "Expected amount");
  update->add_option("--currency", f->currency, "ISO 4217 of --amount")->capture_default_str();
  update->add_option("--close-date", f->close_date, "Expected close date yyyy-MM-dd");
  update->add_option("--description", f->description, "Description");
  update->add_option("--owner", f->owner, "Owner user id");
  update->add_option("--team", f->team, "Team id");
  writes(update);

  auto* move = verb(o, "move", "Move to another open stage (forwards or back)", [f](const Connection& c) {
    ov1::MoveOpportunityStageRequest req;
    req.set_name(Name("opportunities", f->id));
    req.set_stage_id(f->stage);
    req.set_note(f->note);
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Opps>(c, &Opps::Stub::MoveOpportunityStage, req);
  });
  id_arg(move, "Opportunity id or name");
  move->add_option("stage", f->stage, "Stage id, e.g. needs_analysis")->required();
  move->add_option("--note", f->note, "Why");
  writes(move);

  auto* win = verb(o, "win", "Mark won (成交)", [f](const Connection& c) {
    ov1::WinOpportunityRequest req;
    req.set_name(Name("opportunities", f->id));
    if (!f->amount.empty()) {
      if (auto s = SetMoney("--amount", f->amount, f->currency, req.mutable_amount()); !s.ok()) {
        return Fail(std::string(s.message()));
      }
    }
    req.set_reason(f->reason);
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Opps>(c, &Opps::Stub::WinOpportunity, req);
  });
  id_arg(win, "Opportunity id or name");
  win->add_option("--amount", f->amount, "Amount won (default: the opportunity's)");
  win->add_option("--currency", f->currency, "ISO 4217 of --amount")->capture_default_str();
  win->add_option("--reason", f->reason, "Why it was won");
  writes(win);

  auto* lose = verb(o, "lose", "Mark lost (输单) with a reason", [f](const Connection& c) {
    ov1::LoseOpportunityRequest req;
    req.set_name(Name("opportunities", f->id));
    req.set_reason(f->reason);
    req.set_stage_id(f->stage);
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Opps>(c, &Opps::Stub::LoseOpportunity, req);
  });
  id_arg(lose, "Opportunity id or name");
  lose->add_option("--reason", f->reason, "Why it was lost")->required();
  lose->add_option("--stage", f->stage, "Lost stage (default: the first)");
  writes(lose);

  auto* reopen = verb(o, "reopen", "Back to an open stage", [f](const Connection& c) {
    ov1::ReopenOpportunityRequest req;
    req.set_name(Name("opportunities", f->id));
    req.set_stage_id(f->stage);
    req.set_reason(f->reason);
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Opps>(c, &Opps::Stub::ReopenOpportunity, req);
  });
  id_arg(reopen, "Opportunity id or name");
  reopen->add_option("--stage", f->stage, "Open stage (default: the last one it was in)");
  reopen->add_option("--reason", f->reason, "Why");
  writes(reopen);

  auto* del = verb(o, "delete", "Move to the recycle bin (needs --yes; --dry-run shows what)", [f](const Connection& c) {
    if (f->dry_run || !f->yes) {
      ov1::GetOpportunityRequest get;
      get.set_name(Name("opportunities", f->id));
      ov1::Opportunity x;
      if (int rc = Call<Opps>(c, &Opps::Stub::GetOpportunity, get, &x); rc != 0) return rc;
      std::printf("would move %s (%s, %s) to the recycle bin\n", x.name().c_str(), x.title().c_str(),
                  Money(x.amount()).c_str());
      return f->dry_run ? 0 : Fail("refusing to delete without --yes");
    }
    ov1::DeleteOpportunityRequest req;
    req.set_name(Name("opportunities", f->id));
    req.set_reason(f->reason);
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Opps>(c, &Opps::Stub::DeleteOpportunity, req);
  });
  id_arg(del, "Opportunity id or name");
  del->add_option("--reason", f->reason, "Why");
  del->add_flag("--yes", f->yes, "Really delete");
  del->add_flag("--dry-run", f->dry_run, "Show what would be deleted");
  writes(del);

  auto* undel = verb(o, "undelete", "Restore from the recycle bin", [f](const Connection& c) {
    ov1::UndeleteOpportunityRequest req;
    req.set_name(Name("opportunities", f->id));
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Opps>(c, &Opps::Stub::UndeleteOpportunity, req);
  });
  id_arg(undel, "Opportunity id or name");
  writes(undel);

  auto* history = verb(o, "history", "The audit trail of an opportunity, quote or contract", [f](const Connection& c) {
    ov1::ListEventsRequest req;
    req.set_parent(absl::StrContains(f->id, "/") ? f->id : Name("opportunities", f->id));
    req.set_page_size(1000);
    ov1::ListEventsResponse resp;
    if (int rc = Call<Opps>(c, &Opps::Stub::ListEvents, req, &resp); rc != 0) return rc;
    if (c.json) {
      std::cout << Json(resp);
    } else {
      PrintEvents(resp);
    }
    return 0;
  });
  id_arg(history, "opportunities/{id}, quotes/{id} or contracts/{id} (a bare id is an opportunity)");

  // ---- sales settings ----
  CLI::App* st = f->settings = app.add_subcommand("sales-settings", "Pipelines (销售阶段) and the contract approval threshold");
  st->require_subcommand(1);
  verb(st, "get", "Show the pipelines and the threshold", [](const Connection& c) {
    return Call<Opps>(c, &Opps::Stub::GetSalesSettings, ov1::GetSalesSettingsRequest());
  });
  auto* set_pipelines = verb(st, "set-pipelines", "Replace the pipelines from a JSON file (admins)", [f](const Connection& c) {
    auto text = ReadFile(f->file);
    if (!text.ok()) return Fail(std::string(text.status().message()));
    ov1::SetPipelinesRequest req;
    auto parsed = google::protobuf::util::JsonStringToMessage(*text, &req);
    if (!parsed.ok()) return Fail(absl::StrCat(f->file, ": ", parsed.message().as_string()));
    if (!f->etag.empty()) req.set_etag(f->etag);
    return Call<Opps>(c, &Opps::Stub::SetPipelines, req);
  });
  set_pipelines->add_option("file", f->file, "JSON: {\"pipelines\": [{\"id\": ..., \"stages\": [...]}]}")->required();
  set_pipelines->add_option("--etag", f->etag, "Settings etag");
  auto* set_threshold = verb(st, "set-approval-threshold", "Contracts above this amount need approval (admins)",
                             [f](const Connection& c) {
                               auto a = Amount("amount", f->threshold, "CNY");
                               if (!a.ok()) return Fail(std::string(a.status().message()));
                               ov1::SetContractPolicyRequest req;
                               req.set_approval_threshold_minor(*a);
                               req.set_etag(f->etag);
                               return Call<Opps>(c, &Opps::Stub::SetContractPolicy, req);
                             });
  set_threshold->add_option("amount", f->threshold, "In CNY, e.g. 100000.00")->required();
  set_threshold->add_option("--etag", f->etag, "Settings etag");

  // ---- quotes ----
  CLI::App* q = f->quotes = app.add_subcommand("quotes", "Quotes (报价单) of an opportunity");
  q->require_subcommand(1);
  auto lines_into = [f](ov1::QuoteVersion* v) -> absl::Status {
    for (const auto& text : f->lines) {
      auto l = Line(text, f->currency);
      if (!l.ok()) return l.status();
      *v->add_lines() = *l;
    }
    v->set_valid_until(f->valid_until);
    v->set_notes(f->notes);
    return absl::OkStatus();
  };
  auto line_flags = [f](CLI::App* cmd) {
    cmd->add_option("--line", f->lines, "product|quantity|unit price[|discount %[|tax rate %]] (repeat), "
                                        "e.g. '货架|2.5|33333.33|9.5|13'")
        ->required();
    cmd->add_option("--valid-until", f->valid_until, "yyyy-MM-dd");
    cmd->add_option("--notes", f->notes, "Notes");
  };
  auto* qcreate = verb(q, "create", "Make a quote; totals are computed by the service", [f, lines_into](const Connection& c) {
    ov1::CreateQuoteRequest req;
    req.mutable_quote()->set_opportunity(Name("opportunities", f->opportunity));
    req.mutable_quote()->set_currency(f->currency);
    if (auto s = lines_into(req.mutable_quote()->mutable_current()); !s.ok()) return Fail(std::string(s.message()));
    req.set_request_id(f->request_id);
    return Call<Quotes>(c, &Quotes::Stub::CreateQuote, req);
  });
  qcreate->add_option("--opportunity", f->opportunity, "Opportunity id or name")->required();
  qcreate->add_option("--currency", f->currency, "ISO 4217")->capture_default_str();
  line_flags(qcreate);
  qcreate->add_option("--request-id", f->request_id, "Idempotency key");
  auto* qget = verb(q, "get", "Show a quote with its versions", [f](const Connection& c) {
    ov1::GetQuoteRequest req;
    req.set_name(Name("quotes", f->id));
    return Call<Quotes>(c, &Quotes::Stub::GetQuote, req);
  });
  id_arg(qget, "Quote id or name");
  auto* qlist = verb(q, "list", "Quotes of an opportunity", [f](const Connection& c) {
    ov1::ListQuotesRequest req;
    req.set_parent(Name("opportunities", f->opportunity));
    return Call<Quotes>(c, &Quotes::Stub::ListQuotes, req);
  });
  qlist->add_option("--opportunity", f->opportunity, "Opportunity id or name")->required();
  auto* qrevise = verb(q, "revise", "A new version with new lines", [f, lines_into](const Connection& c) {
    ov1::ReviseQuoteRequest req;
    req.set_name(Name("quotes", f->id));
    if (auto s = lines_into(req.mutable_version()); !s.ok()) return Fail(std::string(s.message()));
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Quotes>(c, &Quotes::Stub::ReviseQuote, req);
  });
  id_arg(qrevise, "Quote id or name");
  qrevise->add_option("--currency", f->currency, "The quote's currency (for parsing prices)")->capture_default_str();
  line_flags(qrevise);
  writes(qrevise);
  auto* qsend = verb(q, "send", "Mark sent to the customer", [f](const Connection& c) {
    ov1::SendQuoteRequest req;
    req.set_name(Name("quotes", f->id));
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Quotes>(c, &Quotes::Stub::SendQuote, req);
  });
  id_arg(qsend, "Quote id or name");
  writes(qsend);
  auto* qaccept = verb(q, "accept", "Accept: the quote becomes a contract draft", [f](const Connection& c) {
    ov1::AcceptQuoteRequest req;
    req.set_name(Name("quotes", f->id));
    req.set_contract_title(f->title);
    req.set_start_date(f->start_date);
    req.set_end_date(f->end_date);
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Quotes>(c, &Quotes::Stub::AcceptQuote, req);
  });
  id_arg(qaccept, "Quote id or name");
  qaccept->add_option("--start", f->start_date, "Contract start yyyy-MM-dd")->required();
  qaccept->add_option("--end", f->end_date, "Contract end yyyy-MM-dd")->required();
  qaccept->add_option("--title", f->title, "Contract title (default: the opportunity's)");
  writes(qaccept);
  auto* qreject = verb(q, "reject", "The customer rejected it", [f](const Connection& c) {
    ov1::RejectQuoteRequest req;
    req.set_name(Name("quotes", f->id));
    req.set_reason(f->reason);
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Quotes>(c, &Quotes::Stub::RejectQuote, req);
  });
  id_arg(qreject, "Quote id or name");
  qreject->add_option("--reason", f->reason, "Why")->required();
  writes(qreject);

  // ---- contracts ----
  CLI::App* k = f->contracts = app.add_subcommand("contracts", "Contracts (合同) and payment collection (回款)");
  k->require_subcommand(1);
  auto* kcreate = verb(k, "create", "Draft a contract", [f](const Connection& c) {
    ov1::CreateContractRequest req;
    auto* x = req.mutable_contract();
    x->set_customer(Name("customers", f->customer));
    if (!f->opportunity.empty()) x->set_opportunity(Name("opportunities", f->opportunity));
    x->set_title(f->title);
    if (auto s = SetMoney("--amount", f->amount, f->currency, x->mutable_amount()); !s.ok()) {
      return Fail(std::string(s.message()));
    }
    x->set_start_date(f->start_date);
    x->set_end_date(f->end_date);
    x->set_owner_id(f->owner);
    x->set_team_id(f->team);
    x->set_notes(f->notes);
    req.set_request_id(f->request_id);
    return Call<Contracts>(c, &Contracts::Stub::CreateContract, req);
  });
  kcreate->add_option("--customer", f->customer, "Customer id or name")->required();
  kcreate->add_option("--opportunity", f->opportunity, "Opportunity id or name");
  kcreate->add_option("--title", f->title, "Title")->required();
  kcreate->add_option("--amount", f->amount, "Amount, e.g. 95820.83")->required();
  kcreate->add_option("--currency", f->currency, "ISO 4217")->capture_default_str();
  kcreate->add_option("--start", f->start_date, "yyyy-MM-dd")->required();
  kcreate->add_option("--end", f->end_date, "yyyy-MM-dd")->required();
  kcreate->add_option("--owner", f->owner, "Owner (default: you)");
  kcreate->add_option("--team", f->team, "Team (default: yours)");
  kcreate->add_option("--notes", f->notes, "Notes");
  kcreate->add_option("--request-id", f->request_id, "Idempotency key");
  auto* kupdate = verb(k, "update", "Change a draft's fields given as flags", [f](const Connection& c) {
    ov1::UpdateContractRequest req;
    auto* x = req.mutable_contract();
    x->set_name(Name("contracts", f->id));
    x->set_etag(f->etag);
    auto* mask = req.mutable_update_mask();
    CLI::App* cmd = f->contracts->get_subcommand("update");
    if (cmd->count("--title")) x->set_title(f->title), mask->add_paths("title");
    if (cmd->count("--amount")) {
      if (auto s = SetMoney("--amount", f->amount, f->currency, x->mutable_amount()); !s.ok()) {
        return Fail(std::string(s.message()));
      }
      mask->add_paths("amount");
    }
    if (cmd->count("--start")) x->set_start_date(f->start_date), mask->add_paths("start_date");
    if (cmd->count("--end")) x->set_end_date(f->end_date), mask->add_paths("end_date");
    if (cmd->count("--notes")) x->set_notes(f->notes), mask->add_paths("notes");
    if (cmd->count("--owner")) x->set_owner_id(f->owner), mask->add_paths("owner_id");
    if (cmd->count("--team")) x->set_team_id(f->team), mask->add_paths("team_id");
    if (mask->paths().empty()) return Fail("nothing to update: give at least one field flag");
    req.set_request_id(f->request_id);
    return Call<Contracts>(c, &Contracts::Stub::UpdateContract, req);
  });
  id_arg(kupdate, "Contract id or name");
  kupdate->add_option("--title", f->title, "Title");
  kupdate->add_option("--amount", f->amount, "Amount");
  kupdate->add_option("--currency", f->currency, "ISO 4217 of --amount")->capture_default_str();
  kupdate->add_option("--start", f->start_date, "yyyy-MM-dd");
  kupdate->add_option("--end", f->end_date, "yyyy-MM-dd");
  kupdate->add_option("--notes", f->notes, "Notes");
  kupdate->add_option("--owner", f->owner, "Owner user id");
  kupdate->add_option("--team", f->team, "Team id");
  writes(kupdate);
  auto* kget = verb(k, "get", "Show a contract with its plan and payments", [f](const Connection& c) {
    ov1::GetContractRequest req;
    req.set_name(Name("contracts", f->id));
    return Call<Contracts>(c, &Contracts::Stub::GetContract, req);
  });
  id_arg(kget, "Contract id or name");
  auto* klist = verb(k, "list", "Contracts you may see, newest number first", [f](const Connection& c) {
    ov1::ListContractsRequest req;
    req.set_filter(f->filter);
    req.set_page_size(f->page_size);
    req.set_page_token(f->page_token);
    ov1::ListContractsResponse resp;
    if (int rc = Call<Contracts>(c, &Contracts::Stub::ListContracts, req, &resp); rc != 0) return rc;
    if (c.json) {
      std::cout << Json(resp);
    } else {
      PrintContracts(resp);
    }
    return 0;
  });
  klist->add_option("--filter", f->filter, "e.g. 'status = ACTIVE'; fields: customer, owner_id, team_id, status");
  klist->add_option("--page-size", f->page_size, "At most 1000 (default 50)");
  klist->add_option("--page-token", f->page_token, "From the previous page");
  auto simple = [&](const std::string& name, const std::string& help, auto make, auto method, bool needs_reason,
                    bool destructive) {
    auto* cmd = verb(k, name, help, [f, make, method, destructive, name](const Connection& c) {
      auto req = make(*f);
      if (destructive) {
        if (auto rc = Unconfirmed(f->yes, f->dry_run, req.GetDescriptor()->name(), req, absl::StrCat("refusing to ", name))) {
          return *rc;
        }
      }
      return Call<Contracts>(c, method, req);
    });
    id_arg(cmd, "Contract id or name");
    if (needs_reason) cmd->add_option("--reason", f->reason, "Why")->required();
    if (destructive) AddConfirmFlags(cmd, &f->yes, &f->dry_run);
    writes(cmd);
    return cmd;
  };
  simple("submit", "Submit a draft (active at once at or below the approval threshold)",
         [](const Flags& f) {
           ov1::SubmitContractRequest r;
           r.set_name(Name("contracts", f.id));
           r.set_etag(f.etag);
           r.set_request_id(f.request_id);
           return r;
         },
         &Contracts::Stub::SubmitContract, false, false);
  simple("approve", "Approve a submitted contract (its team's manager or an admin, not the submitter)",
         [](const Flags& f) {
           ov1::ApproveContractRequest r;
           r.set_name(Name("contracts", f.id));
           r.set_comment(f.comment);
           r.set_etag(f.etag);
           r.set_request_id(f.request_id);
           return r;
         },
         &Contracts::Stub::ApproveContract, false, false)
      ->add_option("--comment", f->comment, "Comment");
  simple("reject", "Send a submitted contract back to draft",
         [](const Flags& f) {
           ov1::RejectContractRequest r;
           r.set_name(Name("contracts", f.id));
           r.set_reason(f.reason);
           r.set_etag(f.etag);
           r.set_request_id(f.request_id);
           return r;
         },
         &Contracts::Stub::RejectContract, true, false);
  simple("terminate", "End an active contract early (needs --yes)",
         [](const Flags& f) {
           ov1::TerminateContractRequest r;
           r.set_name(Name("contracts", f.id));
           r.set_reason(f.reason);
           r.set_etag(f.etag);
           r.set_request_id(f.request_id);
           return r;
         },
         &Contracts::Stub::TerminateContract, true, true);
  auto* plan = verb(k, "plan", "Replace the payment plan (回款计划)", [f](const Connection& c) {
    ov1::SetPaymentPlanRequest req;
    req.set_name(Name("contracts", f->id));
    for (const auto& text : f->instalments) {
      std::pair<std::string, std::string> kv = absl::StrSplit(text, absl::MaxSplits('=', 1));
      auto a = Amount("--instalment", kv.second, f->currency);
      if (!a.ok() || kv.first.empty()) {
        return Fail(absl::StrCat("--instalment '", text, "' is not yyyy-MM-dd=amount",
                                 a.ok() ? "" : absl::StrCat(" (", a.status().message(), ")")));
      }
      auto* i = req.add_instalments();
      i->set_due_date(kv.first);
      i->set_amount_minor(*a);
    }
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Contracts>(c, &Contracts::Stub::SetPaymentPlan, req);
  });
  id_arg(plan, "Contract id or name");
  plan->add_option("--instalment", f->instalments, "yyyy-MM-dd=amount (repeat), e.g. 2026-03-31=47910.42")->required();
  plan->add_option("--currency", f->currency, "The contract's currency")->capture_default_str();
  writes(plan);
  auto* pay = verb(k, "pay", "Record a payment received (回款)", [f](const Connection& c) {
    ov1::RecordPaymentRequest req;
    req.set_name(Name("contracts", f->id));
    auto a = Amount("--amount", f->amount, f->currency);
    if (!a.ok()) return Fail(std::string(a.status().message()));
    req.mutable_payment()->set_amount_minor(*a);
    auto t = When("--paid-at", f->paid_at);
    if (!t.ok()) return Fail(std::string(t.status().message()));
    *req.mutable_payment()->mutable_paid_at() = *t;
    req.mutable_payment()->set_method(f->method);
    req.mutable_payment()->set_reference(f->reference);
    req.mutable_payment()->set_note(f->notes);
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Contracts>(c, &Contracts::Stub::RecordPayment, req);
  });
  id_arg(pay, "Contract id or name");
  pay->add_option("--amount", f->amount, "Amount received")->required();
  pay->add_option("--currency", f->currency, "The contract's currency")->capture_default_str();
  pay->add_option("--paid-at", f->paid_at, "When it arrived: yyyy-MM-dd or RFC 3339")->required();
  pay->add_option("--method", f->method, "银行转账, 现金, 承兑汇票 ...");
  pay->add_option("--reference", f->reference, "Bank slip or ERP document number");
  pay->add_option("--note", f->notes, "Note");
  writes(pay);
  auto* correct = verb(k, "correct-payment", "Correct a payment's amount and day (managers)", [f](const Connection& c) {
    ov1::CorrectPaymentRequest req;
    req.set_name(Name("contracts", f->id));
    req.set_payment_id(f->payment_id);
    auto a = Amount("--amount", f->amount, f->currency);
    if (!a.ok()) return Fail(std::string(a.status().message()));
    req.set_amount_minor(*a);
    auto t = When("--paid-at", f->paid_at);
    if (!t.ok()) return Fail(std::string(t.status().message()));
    *req.mutable_paid_at() = *t;
    req.set_reason(f->reason);
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Contracts>(c, &Contracts::Stub::CorrectPayment, req);
  });
  id_arg(correct, "Contract id or name");
  correct->add_option("payment", f->payment_id, "Payment id")->required();
  correct->add_option("--amount", f->amount, "Corrected amount")->required();
  correct->add_option("--currency", f->currency, "The contract's currency")->capture_default_str();
  correct->add_option("--paid-at", f->paid_at, "Corrected day: yyyy-MM-dd or RFC 3339")->required();
  correct->add_option("--reason", f->reason, "Why")->required();
  writes(correct);
  auto* void_cmd = verb(k, "void-payment", "Void a payment recorded in error (managers; needs --yes)",
                        [f](const Connection& c) {
                          ov1::VoidPaymentRequest req;
                          req.set_name(Name("contracts", f->id));
                          req.set_payment_id(f->payment_id);
                          req.set_reason(f->reason);
                          req.set_etag(f->etag);
                          req.set_request_id(f->request_id);
                          if (auto rc = Unconfirmed(f->yes, f->dry_run, "VoidPayment", req,
                                                    "refusing to void a payment")) {
                            return *rc;
                          }
                          return Call<Contracts>(c, &Contracts::Stub::VoidPayment, req);
                        });
  id_arg(void_cmd, "Contract id or name");
  void_cmd->add_option("payment", f->payment_id, "Payment id")->required();
  void_cmd->add_option("--reason", f->reason, "Why")->required();
  AddConfirmFlags(void_cmd, &f->yes, &f->dry_run);
  writes(void_cmd);
  auto* receivable = verb(k, "receivable", "What is still owed, as of a day and as known then", [f](const Connection& c) {
    ov1::GetReceivableRequest req;
    req.set_name(Name("contracts", f->id));
    for (auto [flag, text, out] : {std::tuple{"--as-of", &f->as_of_time, req.mutable_as_of()},
                                   std::tuple{"--known-at", &f->known_at, req.mutable_known_at()}}) {
      if (text->empty()) continue;
      auto t = When(flag, *text);
      if (!t.ok()) return Fail(std::string(t.status().message()));
      *out = *t;
    }
    if (f->as_of_time.empty()) req.clear_as_of();
    if (f->known_at.empty()) req.clear_known_at();
    return Call<Contracts>(c, &Contracts::Stub::GetReceivable, req);
  });
  id_arg(receivable, "Contract id or name");
  receivable->add_option("--as-of", f->as_of_time, "Count payments paid by then (default: now)");
  receivable->add_option("--known-at", f->known_at, "As the service knew it then (default: now)");
  auto* receivables = verb(k, "receivables", "A customer's receivables over its signed contracts", [f](const Connection& c) {
    ov1::GetCustomerReceivablesRequest req;
    req.set_customer(Name("customers", f->customer));
    return Call<Contracts>(c, &Contracts::Stub::GetCustomerReceivables, req);
  });
  receivables->add_option("--customer", f->customer, "Customer id or name")->required();
}

}  // namespace crm::ctl
