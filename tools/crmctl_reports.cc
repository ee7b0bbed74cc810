#include "tools/crmctl_reports.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "crm/analytics/v1/analytics_service.grpc.pb.h"
#include "services/analytics/report_csv.h"
#include "services/analytics/report_params.h"

namespace crm::ctl {
namespace {

namespace av1 = crm::analytics::v1;
using Analytics = av1::AnalyticsService;
using google::protobuf::Message;

}  // namespace

struct ReportCommands::Flags {
  Verbs verbs;
  std::string from, to, as_of, group_by, scope, owner, team, currency, pipeline, ticket_type, token, csv, table;
  int limit = 0;
};

namespace {

// The flags as the named parameters of analytics::FillReportRequest.
absl::Status Fill(const ReportCommands::Flags& f, Message* req) {
  std::map<std::string, std::string> params = {
      {"from", f.from},         {"to", f.to},         {"as_of", f.as_of},
      {"group_by", f.group_by}, {"scope", f.scope},   {"owner", f.owner},
      {"team", f.team},         {"currency", f.currency}, {"pipeline", f.pipeline},
      {"ticket_type", f.ticket_type}, {"limit", f.limit == 0 ? "" : absl::StrCat(f.limit)},
      {"consistency_token", f.token}};
  auto s = analytics::FillReportRequest(params, req);
  if (s.ok()) return s;
  std::string msg(s.message());  // "as_of: ..." -> "--as-of: ..."
  std::replace(msg.begin(), msg.begin() + static_cast<ptrdiff_t>(msg.find(':')), '_', '-');
  return absl::InvalidArgumentError(absl::StrCat("--", msg));
}

// Calls `method`, then prints the report or writes one of its tables as CSV.
template <typename Req, typename Resp>
int Report(const Connection& c, const ReportCommands::Flags& f,
           grpc::Status (Analytics::Stub::*method)(grpc::ClientContext*, const Req&, Resp*)) {
  Req req;
  if (auto s = Fill(f, &req); !s.ok()) return Fail(std::string(s.message()));
  if (f.csv.empty()) return Call<Analytics>(c, method, req);
  Resp resp;
  if (int rc = Call<Analytics>(c, method, req, &resp); rc != 0) return rc;
  auto bytes = analytics::ReportCsv(resp, f.table);
  if (!bytes.ok()) return Fail(absl::StrCat("--", bytes.status().message()));
  if (f.csv == "-") {
    std::fwrite(bytes->data(), 1, bytes->size(), stdout);
    return 0;
  }
  std::ofstream out(f.csv, std::ios::binary | std::ios::trunc);
  out.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
  out.close();
  if (!out) return Fail(absl::StrCat("--csv: cannot write ", f.csv));
  std::fprintf(stderr, "wrote %s (%zu bytes, UTF-8 with BOM)\n", f.csv.c_str(), bytes->size());
  return 0;
}

}  // namespace

void ReportCommands::Add(CLI::App& app) {
  f_ = std::make_shared<Flags>();
  auto f = f_;
  auto* noun = app.add_subcommand("reports", "Reports (报表) of the analytics service; --csv exports one table");
  noun->require_subcommand(1);
  noun->fallthrough();
  // Every report's flags; the verb's own on top.
  noun->add_option("--from", f->from, "Start of the range: yyyy-MM-dd (UTC+8) or RFC 3339")->required();
  noun->add_option("--to", f->to, "End of the range, exclusive")->required();
  noun->add_option("--as-of", f->as_of, "As the log stood then (time travel); default now");
  noun->add_option("--group-by", f->group_by, "day, week or month")->check(CLI::IsMember({"day", "week", "month"}));
  noun->add_option("--scope", f->scope, "own, team or all (default: by your role)")
      ->check(CLI::IsMember({"own", "team", "all"}));
  noun->add_option("--owner", f->owner, "One rep's figures");
  noun->add_option("--team", f->team, "One team's figures");
  noun->add_option("--consistency-token", f->token, "Wait until this write is in the report");
  noun->add_option("--csv", f->csv, "Write a table as CSV (UTF-8 with BOM) to this file, - for stdout");
  noun->add_option("--table", f->table, "Which table for --csv (default the first; an unknown name lists them)");
  auto verb = [&](const std::string& name, const std::string& help, Verbs::Run run) {
    return f->verbs.Add(noun, name, help, std::move(run));
  };
  verb("funnel", "Sales funnel (销售漏斗) of the opportunities created in the range", [f](const Connection& c) {
    return Report(c, *f, &Analytics::Stub::GetFunnelReport);
  })->add_option("--pipeline", f->pipeline, "One pipeline's stages");
  verb("tickets", "Tickets (工单) opened, closed, SLA breaches and compliance", [f](const Connection& c) {
    return Report(c, *f, &Analytics::Stub::GetTicketsReport);
  })->add_option("--ticket-type", f->ticket_type, "ticketTypes/{id}");
  verb("channels", "Leads, customers and deals per source channel (渠道), cost per acquisition",
       [f](const Connection& c) { return Report(c, *f, &Analytics::Stub::GetChannelsReport); })
      ->add_option("--currency", f->currency, "ISO 4217 (default CNY)");
  verb("team", "Per rep (团队业绩): follow-ups, tasks, deals, win rate, collected",
       [f](const Connection& c) { return Report(c, *f, &Analytics::Stub::GetTeamReport); })
      ->add_option("--currency", f->currency, "ISO 4217 (default CNY)");
  auto* value = verb("value", "Customer value (客户价值): by region and industry, RFM, high-value list",
                     [f](const Connection& c) { return Report(c, *f, &Analytics::Stub::GetCustomerValueReport); });
  value->add_option("--currency", f->currency, "ISO 4217 (default CNY)");
  value->add_option("--limit", f->limit, "Length of the high-value list (1-1000, default 20)");
  verb("churn", "Churned customers (流失) by reason and period",
       [f](const Connection& c) { return Report(c, *f, &Analytics::Stub::GetChurnReport); });
  verb("receivables", "Receivables (回款): planned against collected per period",
       [f](const Connection& c) { return Report(c, *f, &Analytics::Stub::GetReceivablesReport); })
      ->add_option("--currency", f->currency, "ISO 4217 (default CNY)");
}

bool ReportCommands::Parsed() const { return f_ && f_->verbs.Parsed(); }

int ReportCommands::Run(const Connection& c) { return f_->verbs.RunParsed(c); }

}  // namespace crm::ctl
