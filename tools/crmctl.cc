// crmctl: the operator and user CLI (docs/architecture.md §6). Exit codes: 0 success, 1 the server refused
// or failed the call (the gRPC code and message are printed), 2 bad usage or local error,
// 3 an import finished with failed rows (listed in its error report).
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "crm/customers/v1/customers_service.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"
#include "libs/common/grpc_status.h"
#include "libs/common/token.h"
#include "tools/crmctl_common.h"
#include "tools/crmctl_bulk.h"
#include "tools/crmctl_sales.h"
#include "tools/crmctl_tasks.h"
#include "tools/crmctl_tickets.h"
#include "tools/crmctl_reports.h"
#include "tools/crm_ops_verbs.h"
#include "tools/crmctl_exec.h"
#include "libs/common/money.h"
#include "libs/server/process.h"

namespace {

using crm::ctl::Fail;
using crm::ctl::Json;
using crm::ctl::RpcFail;
using crm::customers::v1::Customer;
using crm::customers::v1::CustomerService;

struct Global {
  std::string addr;
  std::string token;
  std::string output = "table";
  double timeout_s = 10;
};

using crm::ctl::Time;

void Print(const google::protobuf::Message& m, const Global& g) { crm::ctl::Print(m, g.output == "json"); }

// Enum flags take the value's name without its prefix, in lower case: --channel website.
template <typename Enum>
bool ParseEnumFlag(const std::string& value, const std::string& prefix, Enum* out) {
  const auto* d = google::protobuf::GetEnumDescriptor<Enum>()->FindValueByName(
      prefix + absl::AsciiStrToUpper(value));
  if (d == nullptr || d->number() == 0) return false;
  *out = static_cast<Enum>(d->number());
  return true;
}

template <typename Enum>
std::vector<std::string> EnumChoices(const std::string& prefix) {
  std::vector<std::string> out;
  const auto* d = google::protobuf::GetEnumDescriptor<Enum>();
  for (int i = 1; i < d->value_count(); ++i) out.push_back(absl::AsciiStrToLower(d->value(i)->name().substr(prefix.size())));
  return out;
}

std::string ResourceName(const std::string& id) {
  return absl::StartsWith(id, "customers/") ? id : absl::StrCat("customers/", id);
}

std::string LeadName(const std::string& id) {
  return absl::StartsWith(id, "leads/") ? id : absl::StrCat("leads/", id);
}

// The customer fields a command line may set; flags left out stay unset.
struct CustomerFlags {
  std::string display_name, phone, email, kind, status, owner, team, source, industry, address, notes;
  std::string channel, cooperation, scale, churn_reason, region;
  std::vector<std::string> tags;
  bool clear_tags = false;

  void Add(CLI::App* cmd) {
    cmd->add_option("--display-name", display_name, "Display name (company or person)");
    cmd->add_option("--phone", phone, "Mainland mobile number");
    cmd->add_option("--email", email, "E-mail address");
    cmd->add_option("--kind", kind, "company or person")->check(CLI::IsMember({"company", "person"}));
    cmd->add_option("--status", status, "potential, intent, deal or lost")
        ->check(CLI::IsMember({"potential", "intent", "deal", "lost"}));
    cmd->add_option("--tag", tags, "A tag (repeat for several)");
    cmd->add_option("--owner", owner, "Owner user id");
    cmd->add_option("--team", team, "Team id");
    cmd->add_option("--source", source, "Source channel");
    cmd->add_option("--industry", industry, "Industry");
    cmd->add_option("--address", address, "Address");
    cmd->add_option("--notes", notes, "Notes");
    using namespace crm::customers::v1;
    cmd->add_option("--channel", channel, "Source channel")
        ->check(CLI::IsMember(EnumChoices<SourceChannel>("SOURCE_CHANNEL_")));
    cmd->add_option("--cooperation", cooperation, "Cooperation status")
        ->check(CLI::IsMember(EnumChoices<CooperationStatus>("COOPERATION_STATUS_")));
    cmd->add_option("--scale", scale, "Company scale")->check(CLI::IsMember(EnumChoices<CompanyScale>("COMPANY_SCALE_")));
    cmd->add_option("--churn-reason", churn_reason, "Why the customer was lost (with --status lost)");
    cmd->add_option("--region", region, "Province/city, e.g. 广东/深圳");
  }

  // Fills `c` and returns the update_mask paths of the flags given.
  std::vector<std::string> Fill(CLI::App* cmd, Customer* c) const {
    std::vector<std::string> paths;
    auto set = [&](const char* flag, const char* path, auto apply) {
      if (cmd->count(flag) > 0) {
        apply();
        paths.push_back(path);
      }
    };
    set("--display-name", "display_name", [&] { c->set_display_name(display_name); });
    set("--phone", "phone", [&] { c->set_phone(phone); });
    set("--email", "email", [&] { c->set_email(email); });
    set("--kind", "kind", [&] {
      c->set_kind(kind == "person" ? crm::customers::v1::CUSTOMER_KIND_PERSON
                                   : crm::customers::v1::CUSTOMER_KIND_COMPANY);
    });
    set("--status", "lifecycle_status", [&] {
      using namespace crm::customers::v1;
      c->set_lifecycle_status(status == "intent" ? LIFECYCLE_STATUS_INTENT
                              : status == "deal" ? LIFECYCLE_STATUS_DEAL
                              : status == "lost" ? LIFECYCLE_STATUS_LOST
                                                 : LIFECYCLE_STATUS_POTENTIAL);
    });
    set("--tag", "tags", [&] { for (const auto& t : tags) c->add_tags(t); });
    set("--owner", "owner_id", [&] { c->set_owner_id(owner); });
    set("--team", "team_id", [&] { c->set_team_id(team); });
    set("--source", "source", [&] { c->set_source(source); });
    set("--industry", "industry", [&] { c->set_industry(industry); });
    set("--address", "address", [&] { c->set_address(address); });
    using namespace crm::customers::v1;
    set("--channel", "source_channel", [&] {
      SourceChannel v;
      if (ParseEnumFlag(channel, "SOURCE_CHANNEL_", &v)) c->set_source_channel(v);
    });
    set("--cooperation", "cooperation_status", [&] {
      CooperationStatus v;
      if (ParseEnumFlag(cooperation, "COOPERATION_STATUS_", &v)) c->set_cooperation_status(v);
    });
    set("--scale", "scale", [&] {
      CompanyScale v;
      if (ParseEnumFlag(scale, "COMPANY_SCALE_", &v)) c->set_scale(v);
    });
    set("--churn-reason", "churn_reason", [&] { c->set_churn_reason(churn_reason); });
    set("--region", "region", [&] { c->set_region(region); });
    set("--notes", "notes", [&] { c->set_notes(notes); });
    return paths;
  }
};

class Client {
 public:
  explicit Client(const Global& g) : g_(g) {
    auto channel = grpc::CreateChannel(g.addr, grpc::InsecureChannelCredentials());
    stub_ = CustomerService::NewStub(channel);
    leads_ = crm::customers::v1::LeadService::NewStub(channel);
  }
  std::unique_ptr<grpc::ClientContext> Context() const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", "Bearer " + g_.token);
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(static_cast<int64_t>(g_.timeout_s * 1000)));
    return ctx;
  }
  // For streams (import, export): no deadline; they run until done or interrupted.
  std::unique_ptr<grpc::ClientContext> StreamContext() const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", "Bearer " + g_.token);
    return ctx;
  }
  CustomerService::Stub* operator->() { return stub_.get(); }
  CustomerService::Stub* stub(CustomerService::Stub*) { return stub_.get(); }
  crm::customers::v1::LeadService::Stub* stub(crm::customers::v1::LeadService::Stub*) { return leads_.get(); }

 private:
  const Global& g_;
  std::unique_ptr<CustomerService::Stub> stub_;
  std::unique_ptr<crm::customers::v1::LeadService::Stub> leads_;
};

// Calls one unary method of any of our services and prints the answer; the exit code of the call.
template <typename Stub, typename Req, typename Resp>
int Call(Client& client, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
         const Req& req, const Global& g) {
  Resp resp;
  grpc::Status s = (client.stub(static_cast<Stub*>(nullptr))->*method)(client.Context().get(), req, &resp);
  if (!s.ok()) return RpcFail(s);
  Print(resp, g);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  crm::server::RestrictNewFileModes();  // exports hold personal data
  CLI::App app{"crmctl: command line for the CRM backbone"};
  app.footer(
      "Exit codes: 0 done; 1 the server refused the call (code, message and field printed); 2 bad usage, an\n"
      "unusable file, an unreachable log or no crm-ops to run; 3 an import with failed rows; 4 verify found a\n"
      "problem.\n"
      "Destructive verbs (delete, remove, void-payment, terminate, archive, delete-policy) need --yes;\n"
      "--dry-run prints what they would send.");
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommands
  Global g;
  g.addr = std::getenv("CRM_ADDR") ? std::getenv("CRM_ADDR") : "127.0.0.1:50051";
  g.token = std::getenv("CRM_TOKEN") ? std::getenv("CRM_TOKEN") : "";
  app.add_option("--addr", g.addr, "Server address (env CRM_ADDR)")->capture_default_str();
  app.add_option("--token", g.token, "Bearer token (env CRM_TOKEN); make one with 'crmctl token'");
  app.add_option("-o,--output", g.output, "table or json")->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  app.add_option("--timeout", g.timeout_s, "Seconds to wait for the server")->capture_default_str();

  // token
  auto* token_cmd = app.add_subcommand("token", "Mint a bearer token from the signing key");
  std::string key_file = "data/signing.key", sub, role = "rep", team, ttl = "24h";
  token_cmd->add_option("--key-file", key_file, "Signing key file ($CRM_SIGNING_KEY wins)")->capture_default_str();
  token_cmd->add_option("--sub", sub, "User id")->required();
  token_cmd->add_option("--role", role, "rep, manager, admin or service")
      ->check(CLI::IsMember({"rep", "manager", "admin", "service"}))->capture_default_str();
  token_cmd->add_option("--team", team, "Team id");
  token_cmd->add_option("--ttl", ttl, "Lifetime, e.g. 30m, 24h")->capture_default_str();
  std::string max_lifetime = absl::FormatDuration(crm::kDefaultMaxTokenLifetime);
  token_cmd->add_option("--max-lifetime", max_lifetime,
                        "Refuse a --ttl longer than this: the servers' --max-token-lifetime")
      ->capture_default_str();

  // rebuild, tail, lag, verify: crm-ops runs them, as it links every service's engine and
  // crmctl does not. Their flags (and --help) are crm-ops's, so the command line goes there whole.
  std::vector<CLI::App*> ops_verbs;
  for (const crm::ctl::OpsVerb& v : crm::ctl::kOpsVerbs) {
    CLI::App* cmd = app.add_subcommand(v.name, absl::StrCat(v.help, " (runs ", crm::ctl::kOpsProgram, ")"));
    cmd->prefix_command()->allow_extras()->fallthrough(false);
    cmd->set_help_flag();
    ops_verbs.push_back(cmd);
  }

  // customers
  auto* customers = app.add_subcommand("customers", "Customers");
  customers->require_subcommand(1);
  customers->fallthrough();
  CustomerFlags cflags;
  std::string request_id, id, etag, reason, filter, order_by, page_token;
  int page_size = 0;
  bool show_deleted = false, yes = false, dry_run = false;
  auto* create = customers->add_subcommand("create", "Create a customer");
  cflags.Add(create);
  create->add_option("--request-id", request_id, "Idempotency key");
  auto* get = customers->add_subcommand("get", "Show one customer");
  get->add_option("id", id, "customers/{id} or {id}")->required();
  auto* list = customers->add_subcommand("list", "List customers you may see");
  list->add_option("--filter", filter, "e.g. owner_id = \"u1\" AND tags:\"vip\"");
  list->add_option("--order-by", order_by, "create_time|update_time|display_name|customer_number [desc]");
  list->add_option("--page-size", page_size, "Rows per page (max 1000)");
  list->add_option("--page-token", page_token, "From next_page_token");
  list->add_flag("--show-deleted", show_deleted, "Include the recycle bin");
  auto* update = customers->add_subcommand("update", "Change fields given as flags");
  update->add_option("id", id, "customers/{id} or {id}")->required();
  cflags.Add(update);
  update->add_option("--etag", etag, "Fail with ABORTED unless the customer is at this etag");
  update->add_option("--request-id", request_id, "Idempotency key");
  auto* del = customers->add_subcommand("delete", "Move a customer to the recycle bin");
  del->add_option("id", id, "customers/{id} or {id}")->required();
  del->add_option("--etag", etag, "Expected etag");
  del->add_option("--reason", reason, "Why");
  del->add_flag("--yes", yes, "Do it without asking");
  del->add_flag("--dry-run", dry_run, "Show what would be deleted and stop");
  auto* undel = customers->add_subcommand("undelete", "Restore a customer from the recycle bin");
  undel->add_option("id", id, "customers/{id} or {id}")->required();
  undel->add_option("--etag", etag, "Expected etag");
  auto* history = customers->add_subcommand("history", "The audit trail of a customer");
  history->add_option("id", id, "customers/{id} or {id}")->required();
  std::string as_of_time;
  int64_t as_of_version = 0;
  get->add_option("--as-of-version", as_of_version, "Show the customer as of this version (etag)");
  get->add_option("--as-of-time", as_of_time, "Show the customer as the log knew it then (RFC 3339)");
  auto* release = customers->add_subcommand("release", "Release a customer to the public pool (公海)");
  release->add_option("id", id, "customers/{id} or {id}")->required();
  release->add_option("--reason", reason, "Why");
  release->add_option("--etag", etag, "Expected etag");
  auto* claim = customers->add_subcommand("claim", "Claim a customer from the public pool");
  claim->add_option("id", id, "customers/{id} or {id}")->required();
  claim->add_option("--request-id", request_id, "Idempotency key");


  // customers duplicates / merge / unmerge
  auto* dup_cmd = customers->add_subcommand("duplicates", "Find duplicates (查重) of a customer or of a probe");
  std::string dup_name, dup_phone, dup_email;
  int dup_max = 0;
  dup_cmd->add_option("id", id, "customers/{id} or {id} (or give a probe instead)");
  dup_cmd->add_option("--display-name", dup_name, "Company or person name");
  dup_cmd->add_option("--phone", dup_phone, "Mobile number");
  dup_cmd->add_option("--email", dup_email, "E-mail");
  dup_cmd->add_option("--max", dup_max, "At most this many matches (default 20, max 200)");
  std::string merged_id;
  std::vector<std::string> take_fields;
  std::string merged_etag;
  auto* merge_cmd = customers->add_subcommand("merge", "Merge a duplicate into a survivor (managers, owners of both)");
  merge_cmd->add_option("survivor", id, "The customer that stays")->required();
  merge_cmd->add_option("merged", merged_id, "The duplicate that goes")->required();
  merge_cmd->add_option("--take", take_fields, "A field whose value comes from the duplicate (repeat)");
  merge_cmd->add_option("--etag", etag, "Expected etag of the survivor");
  merge_cmd->add_option("--merged-etag", merged_etag, "Expected etag of the duplicate");
  merge_cmd->add_option("--request-id", request_id, "Idempotency key");
  auto* unmerge_cmd = customers->add_subcommand("unmerge", "Undo a merge");
  unmerge_cmd->add_option("survivor", id, "The survivor")->required();
  unmerge_cmd->add_option("merged", merged_id, "The merged customer to bring back")->required();
  unmerge_cmd->add_option("--request-id", request_id, "Idempotency key");

  // customers contacts
  auto* contacts = customers->add_subcommand("contacts", "Contacts (联系人) of a customer");
  contacts->require_subcommand(1);
  std::string contact_id, contact_name, contact_title, contact_phone, contact_email, contact_wechat, contact_notes;
  bool contact_primary = false;
  auto contact_flags = [&](CLI::App* cmd) {
    cmd->add_option("id", id, "customers/{id} or {id}")->required();
    cmd->add_option("--name", contact_name, "Name");
    cmd->add_option("--title", contact_title, "Job title");
    cmd->add_option("--phone", contact_phone, "Mobile or landline with area code");
    cmd->add_option("--email", contact_email, "E-mail");
    cmd->add_option("--wechat", contact_wechat, "WeChat id");
    cmd->add_option("--notes", contact_notes, "Notes");
    cmd->add_flag("--primary", contact_primary, "Make this the primary contact");
  };
  auto* contact_add = contacts->add_subcommand("add", "Add a contact");
  contact_flags(contact_add);
  contact_add->add_option("--request-id", request_id, "Idempotency key");
  auto* contact_update = contacts->add_subcommand("update", "Change the contact fields given as flags");
  contact_flags(contact_update);
  contact_update->add_option("--contact-id", contact_id, "Which contact")->required();
  auto* contact_remove = contacts->add_subcommand("remove", "Remove a contact");
  contact_remove->add_option("id", id, "customers/{id} or {id}")->required();
  contact_remove->add_option("--contact-id", contact_id, "Which contact")->required();
  crm::ctl::AddConfirmFlags(contact_remove, &yes, &dry_run);

  // customers import / export (批量导入/导出)
  crm::ctl::ImportFlags import_flags;
  auto* import_cmd = customers->add_subcommand(
      "import",
      "Import customers from a CSV file (UTF-8 with or without BOM, or GB18030). The first row names the "
      "columns; Chinese labels (客户名称, 手机, 邮箱, 客户状态, 行业, 标签, 联系人 ...) and field names map by "
      "themselves. Failed and skipped rows go to an error report with their row numbers. Exit 3 when rows failed.");
  import_cmd->add_option("file", import_flags.file, "CSV file")->required();
  import_cmd->add_option("--map", import_flags.map, "COLUMN=FIELD, repeatable (FIELD empty: ignore the column)");
  import_cmd->add_option("--policy", import_flags.policy,
                         "For rows matching a customer (by id, phone, email or company name): skip, update "
                         "(the row's non-empty cells win) or merge (fill only empty fields)")
      ->check(CLI::IsMember({"skip", "update", "merge"}))->capture_default_str();
  import_cmd->add_flag("--dry-run", import_flags.dry_run, "Check and match every row, write nothing");
  import_cmd->add_option("--encoding", import_flags.encoding, "auto, utf-8 or gb18030")->capture_default_str();
  import_cmd->add_option("--errors", import_flags.errors, "Error report path (default: <file>.errors.csv)");
  import_cmd->add_option("--import-id", import_flags.import_id,
                         "Resume an import that broke off: rows applied under this id are not applied again");
  import_cmd->add_option("--batch", import_flags.batch, "Rows per message (1-1000)")->capture_default_str();
  crm::ctl::ExportFlags export_flags;
  auto* export_cmd = customers->add_subcommand(
      "export",
      "Export the customers you may see to CSV (UTF-8 with BOM, Chinese headers; cells starting with = + - @ "
      "are prefixed with ' so spreadsheets do not run them). Times are China Standard Time.");
  export_cmd->add_option("-f,--file", export_flags.file, "Output file; - for stdout")->capture_default_str();
  export_cmd->add_option("--filter", export_flags.filter, "As for list");
  export_cmd->add_option("--order-by", export_flags.order_by, "As for list");
  export_cmd->add_flag("--show-deleted", export_flags.show_deleted, "Include the recycle bin");
  export_cmd->add_option("--columns", export_flags.columns, "Field names to export, in order (default: all)")
      ->delimiter(',');
  export_cmd->add_flag("--field-names", export_flags.field_names, "Headers as field names, not Chinese labels");

  // customers followups
  auto* followups = customers->add_subcommand("followups", "Follow-up records (跟进记录)");
  followups->require_subcommand(1);
  std::string fu_channel, fu_summary, fu_feedback, fu_next_step, fu_next_time, fu_time;
  auto* fu_add = followups->add_subcommand("add", "Record a follow-up");
  fu_add->add_option("id", id, "customers/{id} or {id}")->required();
  fu_add->add_option("--channel", fu_channel, "How")
      ->check(CLI::IsMember(EnumChoices<crm::customers::v1::FollowUpChannel>("FOLLOW_UP_CHANNEL_")))->required();
  fu_add->add_option("--summary", fu_summary, "What was discussed")->required();
  fu_add->add_option("--feedback", fu_feedback, "What the customer said");
  fu_add->add_option("--next-step", fu_next_step, "Next step");
  fu_add->add_option("--next-time", fu_next_time, "Next follow-up time (RFC 3339)");
  fu_add->add_option("--time", fu_time, "When it took place (RFC 3339; default now)");
  fu_add->add_option("--contact-id", contact_id, "Contact spoken to");
  fu_add->add_option("--request-id", request_id, "Idempotency key");
  auto* fu_list = followups->add_subcommand("list", "Follow-ups, newest first");
  fu_list->add_option("id", id, "customers/{id} or {id}")->required();
  fu_list->add_option("--page-size", page_size, "Rows per page (max 1000)");
  fu_list->add_option("--page-token", page_token, "From next_page_token");

  // pool
  auto* pool = app.add_subcommand("pool", "Public pool (公海) policy");
  pool->require_subcommand(1);
  pool->fallthrough();
  auto* pool_get = pool->add_subcommand("get", "Show the pool policy");
  auto* pool_set = pool->add_subcommand("set", "Replace the pool policy (admins)");
  int claim_limit = 0, return_days = 0;
  std::vector<std::string> team_days, user_limits;
  pool_set->add_option("--daily-claim-limit", claim_limit, "Claims per rep and day; 0: no limit")->required();
  pool_set->add_option("--return-after-days", return_days, "Idle days before a customer returns; 0: never")
      ->required();
  pool_set->add_option("--team-days", team_days, "team=days override (repeat)");
  pool_set->add_option("--user-limit", user_limits, "user=claims override (repeat)");

  // industries
  auto* industries = app.add_subcommand("industries", "The industry list customers choose from");
  industries->require_subcommand(1);
  industries->fallthrough();
  auto* ind_list = industries->add_subcommand("list", "Show the list");
  auto* ind_set = industries->add_subcommand("set", "Replace the list (admins)");
  std::vector<std::string> industry_items;
  ind_set->add_option("--industry", industry_items, "code=name (repeat, in order)")->required();

  // channel costs (渠道费用), for the analytics channels report's cost per acquisition
  auto* costs = app.add_subcommand("channel-costs", "What each source channel cost per month (渠道费用)");
  costs->require_subcommand(1);
  costs->fallthrough();
  auto* cost_list = costs->add_subcommand("list", "Show every channel's costs (managers and admins)");
  auto* cost_set = costs->add_subcommand("set", "Set one channel's cost for a month; --amount 0 removes it (admins)");
  std::string cost_channel, cost_month, cost_amount, cost_currency = "CNY", cost_note;
  cost_set->add_option("--channel", cost_channel, "Source channel")
      ->required()
      ->check(CLI::IsMember(EnumChoices<crm::customers::v1::SourceChannel>("SOURCE_CHANNEL_")));
  cost_set->add_option("--month", cost_month, "yyyy-MM")->required();
  cost_set->add_option("--amount", cost_amount, "Decimal amount, e.g. 12000.50")->required();
  cost_set->add_option("--currency", cost_currency, "ISO 4217")->capture_default_str();
  cost_set->add_option("--note", cost_note, "e.g. the campaign or invoice");


  // leads
  auto* leads = app.add_subcommand("leads", "Leads (线索) and the lead pool (线索池)");
  leads->require_subcommand(1);
  leads->fallthrough();
  struct LeadFlags {
    std::string contact_name, company, title, phone, email, wechat, channel, source_detail, need, region,
        industry, notes, owner, team;
    std::vector<std::string> tags;
  } lf;
  auto lead_flags = [&](CLI::App* cmd) {
    cmd->add_option("--contact-name", lf.contact_name, "The person to talk to");
    cmd->add_option("--company", lf.company, "Company name");
    cmd->add_option("--title", lf.title, "Job title");
    cmd->add_option("--phone", lf.phone, "Mainland mobile number");
    cmd->add_option("--email", lf.email, "E-mail");
    cmd->add_option("--wechat", lf.wechat, "WeChat id");
    cmd->add_option("--channel", lf.channel, "Source channel")
        ->check(CLI::IsMember(EnumChoices<crm::customers::v1::SourceChannel>("SOURCE_CHANNEL_")));
    cmd->add_option("--source-detail", lf.source_detail, "Exhibition, campaign, referrer");
    cmd->add_option("--need", lf.need, "What the lead asked for (需求描述)");
    cmd->add_option("--region", lf.region, "Province/city");
    cmd->add_option("--industry", lf.industry, "Industry code");
    cmd->add_option("--notes", lf.notes, "Notes");
    cmd->add_option("--tag", lf.tags, "A tag (repeat)");
    cmd->add_option("--owner", lf.owner, "Owner user id (empty: the lead pool)");
    cmd->add_option("--team", lf.team, "Team id");
  };
  auto lead_name = [](CLI::App* cmd, std::string* id) { cmd->add_option("id", *id, "leads/{id} or {id}")->required(); };
  auto* lead_create = leads->add_subcommand("create", "Create a lead");
  lead_flags(lead_create);
  lead_create->add_option("--request-id", request_id, "Idempotency key");
  auto* lead_get = leads->add_subcommand("get", "Show one lead");
  lead_name(lead_get, &id);
  auto* lead_update = leads->add_subcommand("update", "Change the lead fields given as flags");
  lead_name(lead_update, &id);
  lead_flags(lead_update);
  lead_update->add_option("--etag", etag, "Expected etag");
  auto* lead_list = leads->add_subcommand("list", "Leads you may see, newest first");
  lead_list->add_option("--filter", filter, "e.g. status = LEAD_STATUS_OPEN AND in_pool = true");
  lead_list->add_option("--page-size", page_size, "Rows per page (max 1000)");
  lead_list->add_option("--page-token", page_token, "From next_page_token");
  std::string assign_owner, assign_team;
  auto* lead_assign = leads->add_subcommand("assign", "Give a lead to a rep (managers, admins)");
  lead_name(lead_assign, &id);
  lead_assign->add_option("--owner", assign_owner, "New owner")->required();
  lead_assign->add_option("--team", assign_team, "Team (default: the lead's)");
  lead_assign->add_option("--etag", etag, "Expected etag");
  auto* lead_claim = leads->add_subcommand("claim", "Take a lead from the lead pool");
  lead_name(lead_claim, &id);
  lead_claim->add_option("--request-id", request_id, "Idempotency key");
  auto* lead_release = leads->add_subcommand("release", "Return a lead to the lead pool");
  lead_name(lead_release, &id);
  lead_release->add_option("--reason", reason, "Why");
  auto* lead_qualify = leads->add_subcommand("qualify", "Mark a lead qualified");
  lead_name(lead_qualify, &id);
  auto* lead_disqualify = leads->add_subcommand("disqualify", "Close a lead as not worth pursuing");
  lead_name(lead_disqualify, &id);
  lead_disqualify->add_option("--reason", reason, "Why (required)")->required();
  auto* lead_convert = leads->add_subcommand("convert", "Turn a lead into a customer (and an opportunity request)");
  lead_name(lead_convert, &id);
  std::string convert_into, opp_name, currency;
  int64_t expected_minor = 0;
  bool with_opportunity = false;
  lead_convert->add_option("--customer", convert_into, "Convert into this customer (default: found by phone/email, else new)");
  lead_convert->add_flag("--opportunity", with_opportunity, "Ask the opportunities service for an opportunity");
  lead_convert->add_option("--opportunity-name", opp_name, "Its name");
  lead_convert->add_option("--expected-amount", expected_minor, "Expected amount in fen");
  lead_convert->add_option("--currency", currency, "ISO 4217 code (default CNY)");
  lead_convert->add_option("--request-id", request_id, "Idempotency key");
  for (auto* c : {lead_qualify, lead_release, lead_disqualify, lead_convert}) c->add_option("--etag", etag, "Expected etag");


  // tag-rules
  auto* rules_cmd = app.add_subcommand("tag-rules", "Behaviour tag rules (行为标签)");
  rules_cmd->require_subcommand(1);
  rules_cmd->fallthrough();
  auto* rules_list = rules_cmd->add_subcommand("list", "Show the rules");
  auto* rules_set = rules_cmd->add_subcommand("set", "Replace the rules from a JSON file (admins)");
  std::string rules_file;
  rules_set->add_option("--file", rules_file, "JSON: {\"rules\": [{\"id\": ..., \"tag\": ..., \"event_type\": ..., ...}]}")
      ->required()->check(CLI::ExistingFile);
  auto* rules_preview = rules_cmd->add_subcommand("preview", "Whom a rule would tag now, from the last N days (admins)");
  crm::customers::v1::TagRule prule;
  std::string pr_id = "preview", pr_tag, pr_event, pr_measure = "count", pr_sum, pr_match;
  int pr_window = 0, pr_days = 0, pr_max = 0;
  int64_t pr_threshold = 1;
  rules_preview->add_option("--id", pr_id, "Rule id (to compare with the tags it gave)")->capture_default_str();
  rules_preview->add_option("--tag", pr_tag, "Tag to give")->required();
  rules_preview->add_option("--event-type", pr_event, "e.g. crm.customers.v1.FollowUpRecorded")->required();
  rules_preview->add_option("--measure", pr_measure, "count or sum")->check(CLI::IsMember({"count", "sum"}))->capture_default_str();
  rules_preview->add_option("--sum-field", pr_sum, "Integer field summed (with --measure sum)");
  rules_preview->add_option("--match", pr_match, "field=value the events must have, e.g. channel=FOLLOW_UP_CHANNEL_PHONE");
  rules_preview->add_option("--window-days", pr_window, "Rule window; 0: all history");
  rules_preview->add_option("--threshold", pr_threshold, "Tag when the measure reaches this")->capture_default_str();
  rules_preview->add_option("--days", pr_days, "History to replay (default: the window)");
  rules_preview->add_option("--max", pr_max, "Hits to list (default 100)");

  crm::ctl::SalesCommands sales;
  sales.Add(app);
  crm::ctl::TaskCommands tasks;
  tasks.Add(app);
  crm::ctl::TicketCommands tickets;
  tickets.Add(app);
  crm::ctl::ReportCommands reports;
  reports.Add(app);

  // Returns only when crm-ops could not be run, or no operator verb was named.
  auto run_ops_verb = [&]() -> std::optional<int> {
    for (CLI::App* cmd : ops_verbs) {
      if (!cmd->parsed()) continue;
      const absl::Status s = crm::ctl::ExecSibling(crm::ctl::kOpsProgram, argc, argv);
      return Fail(absl::StrCat(cmd->get_name(), " runs ", crm::ctl::kOpsProgram, ", but ", s.message()));
    }
    return std::nullopt;
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help before the verb: crmctl's own
  } catch (const CLI::ParseError& e) {
    // Once an operator verb is named the command line is crm-ops's to judge: CLI11 hands some of
    // its words back to crmctl (`tail -- TOPIC`), and refusing them here would break that line.
    if (std::optional<int> rc = run_ops_verb()) return *rc;
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (std::optional<int> rc = run_ops_verb()) return *rc;

  if (token_cmd->parsed()) {
    auto key = crm::server::LoadProcessSigningKey(key_file, false);
    if (!key.ok()) return Fail(std::string(key.status().message()));
    absl::Duration d;
    if (!absl::ParseDuration(ttl, &d) || d <= absl::ZeroDuration()) return Fail("--ttl is not a positive duration");
    auto max = crm::ParseMaxTokenLifetime(max_lifetime);
    if (!max.ok()) return Fail(absl::StrCat("--max-lifetime: ", max.status().message()));
    if (d > *max) {
      return Fail(absl::StrCat("--ttl ", ttl, " is longer than --max-lifetime ", max_lifetime,
                               ": servers refuse such a token unless started with a --max-token-lifetime that long"));
    }
    const absl::Time now = absl::Now();
    auto t = crm::MintToken(*key, {.sub = sub, .role = role, .team = team, .exp = now + d, .iat = now});
    if (!t.ok()) return Fail(std::string(t.status().message()));
    std::cout << *t << "\n";
    return 0;
  }

  if (g.token.empty()) return Fail("no token: pass --token or set CRM_TOKEN (see 'crmctl token --help')");
  if (sales.Parsed()) return sales.Run({g.addr, g.token, g.timeout_s, g.output == "json"});
  if (tasks.Parsed()) return tasks.Run({g.addr, g.token, g.timeout_s, g.output == "json"});
  if (tickets.Parsed()) return tickets.Run({g.addr, g.token, g.timeout_s, g.output == "json"});
  if (reports.Parsed()) return reports.Run({g.addr, g.token, g.timeout_s, g.output == "json"});
  Client client(g);
  grpc::Status s;
  if (import_cmd->parsed()) {
    import_flags.json = g.output == "json";
    return crm::ctl::ImportCustomersCsv(client.stub(static_cast<CustomerService::Stub*>(nullptr)),
                                        client.StreamContext().get(), import_flags);
  }
  if (export_cmd->parsed()) {
    return crm::ctl::ExportCustomersCsv(client.stub(static_cast<CustomerService::Stub*>(nullptr)),
                                        client.StreamContext().get(), export_flags);
  }
  if (create->parsed()) {
    crm::customers::v1::CreateCustomerRequest req;
    cflags.Fill(create, req.mutable_customer());
    req.set_request_id(request_id);
    Customer resp;
    s = client->CreateCustomer(client.Context().get(), req, &resp);
    if (!s.ok()) return RpcFail(s);
    Print(resp, g);
  } else if (get->parsed()) {
    crm::customers::v1::GetCustomerRequest req;
    req.set_name(ResourceName(id));
    req.set_as_of_version(as_of_version);
    if (!as_of_time.empty()) {
      if (!google::protobuf::util::TimeUtil::FromString(as_of_time, req.mutable_as_of_time())) {
        return Fail("--as-of-time is not RFC 3339, e.g. 2026-05-01T08:00:00+08:00");
      }
    }
    Customer resp;
    s = client->GetCustomer(client.Context().get(), req, &resp);
    if (!s.ok()) return RpcFail(s);
    Print(resp, g);
  } else if (list->parsed()) {
    crm::customers::v1::ListCustomersRequest req;
    req.set_filter(filter);
    req.set_order_by(order_by);
    req.set_page_size(page_size);
    req.set_page_token(page_token);
    req.set_show_deleted(show_deleted);
    crm::customers::v1::ListCustomersResponse resp;
    s = client->ListCustomers(client.Context().get(), req, &resp);
    if (!s.ok()) return RpcFail(s);
    if (g.output == "json") {
      std::cout << Json(resp);
    } else {
      std::printf("%-46s %-15s %-10s %-26s %-5s %s\n", "NAME", "NUMBER", "OWNER", "STATUS", "ETAG", "DISPLAY_NAME");
      for (const auto& c : resp.customers()) {
        std::printf("%-46s %-15s %-10s %-26s %-5s %s%s\n", c.name().c_str(), c.customer_number().c_str(),
                    c.owner_id().c_str(),
                    crm::customers::v1::LifecycleStatus_Name(c.lifecycle_status()).c_str(),
                    c.etag().c_str(), c.display_name().c_str(), c.deleted() ? " (deleted)" : "");
      }
      crm::ctl::PrintPageFooter(resp.customers_size(), resp.total_size(), resp.next_page_token());
    }
  } else if (update->parsed()) {
    crm::customers::v1::UpdateCustomerRequest req;
    for (const auto& p : cflags.Fill(update, req.mutable_customer())) req.mutable_update_mask()->add_paths(p);
    if (req.update_mask().paths().empty()) return Fail("nothing to update: give at least one field flag");
    req.mutable_customer()->set_name(ResourceName(id));
    req.mutable_customer()->set_etag(etag);
    req.set_request_id(request_id);
    Customer resp;
    s = client->UpdateCustomer(client.Context().get(), req, &resp);
    if (!s.ok()) return RpcFail(s);
    Print(resp, g);
  } else if (del->parsed()) {
    if (dry_run || !yes) {
      crm::customers::v1::GetCustomerRequest req;
      req.set_name(ResourceName(id));
      Customer resp;
      s = client->GetCustomer(client.Context().get(), req, &resp);
      if (!s.ok()) return RpcFail(s);
      std::printf("would move %s (%s, %s) to the recycle bin\n", resp.name().c_str(),
                  resp.customer_number().c_str(), resp.display_name().c_str());
      if (dry_run) return 0;
      return Fail("refusing to delete without --yes");
    }
    crm::customers::v1::DeleteCustomerRequest req;
    req.set_name(ResourceName(id));
    req.set_etag(etag);
    req.set_reason(reason);
    Customer resp;
    s = client->DeleteCustomer(client.Context().get(), req, &resp);
    if (!s.ok()) return RpcFail(s);
    Print(resp, g);
  } else if (undel->parsed()) {
    crm::customers::v1::UndeleteCustomerRequest req;
    req.set_name(ResourceName(id));
    req.set_etag(etag);
    Customer resp;
    s = client->UndeleteCustomer(client.Context().get(), req, &resp);
    if (!s.ok()) return RpcFail(s);
    Print(resp, g);
  } else if (release->parsed()) {
    crm::customers::v1::ReleaseCustomerRequest req;
    req.set_name(ResourceName(id));
    req.set_reason(reason);
    req.set_etag(etag);
    return Call(client, &CustomerService::Stub::ReleaseCustomer, req, g);
  } else if (claim->parsed()) {
    crm::customers::v1::ClaimCustomerRequest req;
    req.set_name(ResourceName(id));
    req.set_request_id(request_id);
    return Call(client, &CustomerService::Stub::ClaimCustomer, req, g);
  } else if (contact_add->parsed() || contact_update->parsed()) {
    crm::customers::v1::Contact c;
    std::vector<std::string> paths;
    CLI::App* cmd = contact_add->parsed() ? contact_add : contact_update;
    auto set = [&](const char* flag, const char* path, auto apply) {
      if (cmd->count(flag) > 0) {
        apply();
        paths.push_back(path);
      }
    };
    set("--name", "name", [&] { c.set_name(contact_name); });
    set("--title", "title", [&] { c.set_title(contact_title); });
    set("--phone", "phone", [&] { c.set_phone(contact_phone); });
    set("--email", "email", [&] { c.set_email(contact_email); });
    set("--wechat", "wechat", [&] { c.set_wechat(contact_wechat); });
    set("--notes", "notes", [&] { c.set_notes(contact_notes); });
    set("--primary", "primary", [&] { c.set_primary(contact_primary); });
    if (contact_add->parsed()) {
      crm::customers::v1::AddContactRequest req;
      req.set_parent(ResourceName(id));
      *req.mutable_contact() = c;
      req.set_request_id(request_id);
      return Call(client, &CustomerService::Stub::AddContact, req, g);
    }
    if (paths.empty()) return Fail("nothing to update: give at least one field flag");
    crm::customers::v1::UpdateContactRequest req;
    req.set_parent(ResourceName(id));
    c.set_id(contact_id);
    *req.mutable_contact() = c;
    for (const auto& p : paths) req.mutable_update_mask()->add_paths(p);
    return Call(client, &CustomerService::Stub::UpdateContact, req, g);
  } else if (contact_remove->parsed()) {
    crm::customers::v1::RemoveContactRequest req;
    req.set_parent(ResourceName(id));
    req.set_contact_id(contact_id);
    if (auto rc = crm::ctl::Unconfirmed(yes, dry_run, "RemoveContact", req,
                                        absl::StrCat("refusing to remove contact ", contact_id))) {
      return *rc;
    }
    return Call(client, &CustomerService::Stub::RemoveContact, req, g);
  } else if (fu_add->parsed()) {
    crm::customers::v1::CreateFollowUpRequest req;
    req.set_parent(ResourceName(id));
    req.set_request_id(request_id);
    auto* f = req.mutable_follow_up();
    crm::customers::v1::FollowUpChannel ch;
    ParseEnumFlag(fu_channel, "FOLLOW_UP_CHANNEL_", &ch);
    f->set_channel(ch);
    f->set_summary(fu_summary);
    f->set_feedback(fu_feedback);
    f->set_next_step(fu_next_step);
    f->set_contact_id(contact_id);
    if (!fu_next_time.empty() &&
        !google::protobuf::util::TimeUtil::FromString(fu_next_time, f->mutable_next_follow_up_time())) {
      return Fail("--next-time is not RFC 3339, e.g. 2026-05-01T10:00:00+08:00");
    }
    if (!fu_time.empty() && !google::protobuf::util::TimeUtil::FromString(fu_time, f->mutable_follow_up_time())) {
      return Fail("--time is not RFC 3339, e.g. 2026-05-01T10:00:00+08:00");
    }
    return Call(client, &CustomerService::Stub::CreateFollowUp, req, g);
  } else if (fu_list->parsed()) {
    crm::customers::v1::ListFollowUpsRequest req;
    req.set_parent(ResourceName(id));
    req.set_page_size(page_size);
    req.set_page_token(page_token);
    return Call(client, &CustomerService::Stub::ListFollowUps, req, g);
  } else if (pool_get->parsed()) {
    return Call(client, &CustomerService::Stub::GetPoolPolicy, crm::customers::v1::GetPoolPolicyRequest(), g);
  } else if (pool_set->parsed()) {
    crm::customers::v1::UpdatePoolPolicyRequest req;
    auto* p = req.mutable_policy();
    p->set_daily_claim_limit(claim_limit);
    p->set_return_after_days(return_days);
    for (const auto& [items, map] : {std::pair{&team_days, p->mutable_team_return_after_days()},
                                     std::pair{&user_limits, p->mutable_user_daily_claim_limit()}}) {
      for (const auto& item : *items) {
        std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
        int32_t n = 0;
        if (kv.first.empty() || !absl::SimpleAtoi(kv.second, &n)) return Fail(absl::StrCat("'", item, "' is not key=number"));
        (*map)[kv.first] = n;
      }
    }
    return Call(client, &CustomerService::Stub::UpdatePoolPolicy, req, g);
  } else if (ind_list->parsed()) {
    return Call(client, &CustomerService::Stub::ListIndustries, crm::customers::v1::ListIndustriesRequest(), g);
  } else if (ind_set->parsed()) {
    crm::customers::v1::SetIndustriesRequest req;
    for (const auto& item : industry_items) {
      std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
      if (kv.first.empty() || kv.second.empty()) return Fail(absl::StrCat("'", item, "' is not code=name"));
      auto* i = req.add_industries();
      i->set_code(kv.first);
      i->set_name(kv.second);
    }
    return Call(client, &CustomerService::Stub::SetIndustries, req, g);
  } else if (cost_list->parsed()) {
    return Call(client, &CustomerService::Stub::ListChannelCosts, crm::customers::v1::ListChannelCostsRequest(), g);
  } else if (cost_set->parsed()) {
    crm::customers::v1::SetChannelCostRequest req;
    crm::customers::v1::SourceChannel ch{};
    ParseEnumFlag(cost_channel, "SOURCE_CHANNEL_", &ch);
    auto amount = crm::money::ParseAmount(cost_amount, cost_currency);
    if (!amount.ok()) return Fail(absl::StrCat("--amount: ", amount.status().message()));
    req.mutable_cost()->set_source_channel(ch);
    req.mutable_cost()->set_month(cost_month);
    req.mutable_cost()->set_amount_minor(*amount);
    req.mutable_cost()->set_currency(cost_currency);
    req.mutable_cost()->set_note(cost_note);
    return Call(client, &CustomerService::Stub::SetChannelCost, req, g);
  } else if (lead_create->parsed() || lead_update->parsed()) {
    using namespace crm::customers::v1;
    using LS = LeadService::Stub;
    CLI::App* cmd = lead_create->parsed() ? lead_create : lead_update;
    Lead l;
    std::vector<std::string> paths;
    auto set = [&](const char* flag, const char* path, auto apply) {
      if (cmd->count(flag) > 0) {
        apply();
        paths.push_back(path);
      }
    };
    set("--contact-name", "contact_name", [&] { l.set_contact_name(lf.contact_name); });
    set("--company", "company", [&] { l.set_company(lf.company); });
    set("--title", "title", [&] { l.set_title(lf.title); });
    set("--phone", "phone", [&] { l.set_phone(lf.phone); });
    set("--email", "email", [&] { l.set_email(lf.email); });
    set("--wechat", "wechat", [&] { l.set_wechat(lf.wechat); });
    set("--channel", "source_channel", [&] {
      SourceChannel v;
      if (ParseEnumFlag(lf.channel, "SOURCE_CHANNEL_", &v)) l.set_source_channel(v);
    });
    set("--source-detail", "source_detail", [&] { l.set_source_detail(lf.source_detail); });
    set("--need", "need", [&] { l.set_need(lf.need); });
    set("--region", "region", [&] { l.set_region(lf.region); });
    set("--industry", "industry", [&] { l.set_industry(lf.industry); });
    set("--notes", "notes", [&] { l.set_notes(lf.notes); });
    set("--tag", "tags", [&] { for (const auto& t : lf.tags) l.add_tags(t); });
    if (lead_create->parsed()) {
      l.set_owner_id(lf.owner);
      l.set_team_id(lf.team);
      CreateLeadRequest req;
      *req.mutable_lead() = l;
      req.set_request_id(request_id);
      return Call(client, &LS::CreateLead, req, g);
    }
    if (cmd->count("--owner") + cmd->count("--team") > 0) return Fail("use 'leads assign' to change the owner or team");
    if (paths.empty()) return Fail("nothing to update: give at least one field flag");
    UpdateLeadRequest req;
    l.set_name(LeadName(id));
    l.set_etag(etag);
    *req.mutable_lead() = l;
    for (const auto& p : paths) req.mutable_update_mask()->add_paths(p);
    return Call(client, &LS::UpdateLead, req, g);
  } else if (lead_get->parsed()) {
    crm::customers::v1::GetLeadRequest req;
    req.set_name(LeadName(id));
    return Call(client, &crm::customers::v1::LeadService::Stub::GetLead, req, g);
  } else if (lead_list->parsed()) {
    crm::customers::v1::ListLeadsRequest req;
    req.set_filter(filter);
    req.set_page_size(page_size);
    req.set_page_token(page_token);
    crm::customers::v1::ListLeadsResponse resp;
    s = client.stub(static_cast<crm::customers::v1::LeadService::Stub*>(nullptr))
            ->ListLeads(client.Context().get(), req, &resp);
    if (!s.ok()) return RpcFail(s);
    if (g.output == "json") {
      std::cout << Json(resp);
    } else {
      std::printf("%-42s %-20s %-10s %-8s %-14s %s\n", "NAME", "STATUS", "OWNER", "IN_POOL", "PHONE", "CONTACT / COMPANY");
      for (const auto& l : resp.leads()) {
        std::printf("%-42s %-20s %-10s %-8s %-14s %s / %s\n", l.name().c_str(),
                    crm::customers::v1::LeadStatus_Name(l.status()).c_str(), l.owner_id().c_str(),
                    l.in_pool() ? "yes" : "no", l.phone().c_str(), l.contact_name().c_str(), l.company().c_str());
      }
      crm::ctl::PrintPageFooter(resp.leads_size(), resp.total_size(), resp.next_page_token());
    }
  } else if (lead_assign->parsed()) {
    crm::customers::v1::AssignLeadRequest req;
    req.set_name(LeadName(id));
    req.set_owner_id(assign_owner);
    req.set_team_id(assign_team);
    req.set_etag(etag);
    return Call(client, &crm::customers::v1::LeadService::Stub::AssignLead, req, g);
  } else if (lead_claim->parsed()) {
    crm::customers::v1::ClaimLeadRequest req;
    req.set_name(LeadName(id));
    req.set_request_id(request_id);
    return Call(client, &crm::customers::v1::LeadService::Stub::ClaimLead, req, g);
  } else if (lead_release->parsed()) {
    crm::customers::v1::ReleaseLeadRequest req;
    req.set_name(LeadName(id));
    req.set_reason(reason);
    req.set_etag(etag);
    return Call(client, &crm::customers::v1::LeadService::Stub::ReleaseLead, req, g);
  } else if (lead_qualify->parsed()) {
    crm::customers::v1::QualifyLeadRequest req;
    req.set_name(LeadName(id));
    req.set_etag(etag);
    return Call(client, &crm::customers::v1::LeadService::Stub::QualifyLead, req, g);
  } else if (lead_disqualify->parsed()) {
    crm::customers::v1::DisqualifyLeadRequest req;
    req.set_name(LeadName(id));
    req.set_reason(reason);
    req.set_etag(etag);
    return Call(client, &crm::customers::v1::LeadService::Stub::DisqualifyLead, req, g);
  } else if (lead_convert->parsed()) {
    crm::customers::v1::ConvertLeadRequest req;
    req.set_name(LeadName(id));
    if (!convert_into.empty()) req.set_customer(ResourceName(convert_into));
    req.set_create_opportunity(with_opportunity);
    req.set_opportunity_name(opp_name);
    req.set_expected_amount_minor(expected_minor);
    req.set_currency(currency);
    req.set_etag(etag);
    req.set_request_id(request_id);
    return Call(client, &crm::customers::v1::LeadService::Stub::ConvertLead, req, g);
  } else if (dup_cmd->parsed()) {
    crm::customers::v1::FindDuplicatesRequest req;
    if (!id.empty()) req.set_customer(ResourceName(id));
    req.set_display_name(dup_name);
    req.set_phone(dup_phone);
    req.set_email(dup_email);
    req.set_max_results(dup_max);
    crm::customers::v1::FindDuplicatesResponse resp;
    s = client->FindDuplicates(client.Context().get(), req, &resp);
    if (!s.ok()) return RpcFail(s);
    if (g.output == "json") {
      std::cout << Json(resp);
    } else {
      std::printf("keys: phone=%s email=%s company_name=%s\n", resp.normalized_phone().c_str(),
                  resp.normalized_email().c_str(), resp.normalized_company_name().c_str());
      std::printf("%-46s %-15s %-10s %-24s %s\n", "NAME", "NUMBER", "OWNER", "MATCHED_ON", "DISPLAY_NAME");
      for (const auto& m : resp.matches()) {
        std::printf("%-46s %-15s %-10s %-24s %s%s\n", m.customer().name().c_str(), m.customer().customer_number().c_str(),
                    m.customer().owner_id().c_str(), absl::StrJoin(m.matched_on(), ",").c_str(),
                    m.customer().display_name().c_str(), m.visible() ? "" : " (not yours)");
      }
      std::printf("%d match(es)\n", resp.matches_size());
    }
  } else if (merge_cmd->parsed()) {
    crm::customers::v1::MergeCustomersRequest req;
    req.set_survivor(ResourceName(id));
    req.set_merged(ResourceName(merged_id));
    for (const auto& f : take_fields) req.add_take_from_merged(f);
    req.set_survivor_etag(etag);
    req.set_merged_etag(merged_etag);
    req.set_request_id(request_id);
    return Call(client, &CustomerService::Stub::MergeCustomers, req, g);
  } else if (unmerge_cmd->parsed()) {
    crm::customers::v1::UnmergeCustomersRequest req;
    req.set_survivor(ResourceName(id));
    req.set_merged(ResourceName(merged_id));
    req.set_request_id(request_id);
    return Call(client, &CustomerService::Stub::UnmergeCustomers, req, g);
  } else if (rules_list->parsed()) {
    return Call(client, &CustomerService::Stub::ListTagRules, crm::customers::v1::ListTagRulesRequest(), g);
  } else if (rules_set->parsed()) {
    auto text = crm::ctl::ReadFile(rules_file);
    if (!text.ok()) return Fail(std::string(text.status().message()));
    crm::customers::v1::SetTagRulesRequest req;
    auto parsed = google::protobuf::util::JsonStringToMessage(*text, &req);
    if (!parsed.ok()) return Fail(absl::StrCat(rules_file, ": ", parsed.message().as_string()));
    return Call(client, &CustomerService::Stub::SetTagRules, req, g);
  } else if (rules_preview->parsed()) {
    crm::customers::v1::PreviewTagRuleRequest req;
    auto* r = req.mutable_rule();
    r->set_id(pr_id);
    r->set_tag(pr_tag);
    r->set_event_type(pr_event);
    r->set_measure(pr_measure == "sum" ? crm::customers::v1::TAG_RULE_MEASURE_SUM : crm::customers::v1::TAG_RULE_MEASURE_COUNT);
    r->set_sum_field(pr_sum);
    if (!pr_match.empty()) {
      std::pair<std::string, std::string> kv = absl::StrSplit(pr_match, absl::MaxSplits('=', 1));
      if (kv.first.empty()) return Fail("--match is not field=value");
      r->set_match_field(kv.first);
      r->set_match_value(kv.second);
    }
    r->set_window_days(pr_window);
    r->set_threshold(pr_threshold);
    r->set_enabled(true);
    req.set_days(pr_days);
    req.set_max_results(pr_max);
    return Call(client, &CustomerService::Stub::PreviewTagRule, req, g);
  } else if (history->parsed()) {
    crm::customers::v1::ListCustomerEventsRequest req;
    req.set_parent(ResourceName(id));
    req.set_page_size(1000);
    crm::customers::v1::ListCustomerEventsResponse resp;
    s = client->ListCustomerEvents(client.Context().get(), req, &resp);
    if (!s.ok()) return RpcFail(s);
    if (g.output == "json") {
      std::cout << Json(resp);
    } else {
      std::printf("%-4s %-28s %-32s %-18s %s\n", "VER", "TIME", "EVENT", "ACTOR", "CHANGED");
      for (const auto& e : resp.events()) {
        std::printf("%-4lld %-28s %-32s %-18s %s\n", static_cast<long long>(e.version()),
                    Time(e.recorded_at()).c_str(),
                    e.event_type().substr(e.event_type().rfind('.') + 1).c_str(),
                    absl::StrCat(e.actor().user_id(), "/", e.actor().role()).c_str(),
                    absl::StrJoin(e.changed_fields(), ",").c_str());
      }
    }
  }
  return 0;
}
