// crmctl: the operator and user CLI (DESIGN §6). Exit codes: 0 success, 1 the server refused
// or failed the call (the gRPC code and message are printed), 2 bad usage or local error.
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "crm/customers/v1/customers_service.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"
#include "libs/common/grpc_status.h"
#include "libs/common/token.h"
#include "libs/eventlog/embedded_log.h"
#include "services/customers/customer_engine.h"

namespace {

using crm::customers::v1::Customer;
using crm::customers::v1::CustomerService;

struct Global {
  std::string addr;
  std::string token;
  std::string output = "table";
  double timeout_s = 10;
};

int Fail(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  return 2;
}

int RpcFail(const grpc::Status& s) {
  absl::Status st = crm::FromGrpcStatus(s);
  std::fprintf(stderr, "error: %s: %s\n", absl::StatusCodeToString(st.code()).c_str(),
               std::string(st.message()).c_str());
  if (auto bad = crm::GetBadRequest(st)) {
    for (const auto& v : bad->field_violations()) {
      std::fprintf(stderr, "  field %s: %s\n", v.field().c_str(), v.description().c_str());
    }
  }
  if (auto info = crm::GetErrorInfo(st)) {
    for (const auto& [k, v] : info->metadata()) std::fprintf(stderr, "  %s: %s\n", k.c_str(), v.c_str());
  }
  return 1;
}

std::string Json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

std::string Time(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "";
  return google::protobuf::util::TimeUtil::ToString(t);
}

void PrintCustomer(const Customer& c, const Global& g) {
  if (g.output == "json") {
    std::cout << Json(c);
    return;
  }
  auto row = [](const char* k, const std::string& v) {
    if (!v.empty()) std::printf("%-18s %s\n", k, v.c_str());
  };
  row("name", c.name());
  row("customer_number", c.customer_number());
  row("display_name", c.display_name());
  row("kind", crm::customers::v1::CustomerKind_Name(c.kind()));
  row("phone", c.phone());
  row("email", c.email());
  row("lifecycle_status", crm::customers::v1::LifecycleStatus_Name(c.lifecycle_status()));
  row("tags", absl::StrJoin(c.tags(), ","));
  row("owner_id", c.owner_id());
  row("team_id", c.team_id());
  row("source", c.source());
  row("industry", c.industry());
  row("address", c.address());
  row("notes", c.notes());
  row("create_time", Time(c.create_time()));
  row("update_time", Time(c.update_time()));
  row("delete_time", Time(c.delete_time()));
  row("etag", c.etag());
  row("consistency_token", c.consistency_token());
}

std::string ResourceName(const std::string& id) {
  return absl::StartsWith(id, "customers/") ? id : absl::StrCat("customers/", id);
}

// The customer fields a command line may set; flags left out stay unset.
struct CustomerFlags {
  std::string display_name, phone, email, kind, status, owner, team, source, industry, address, notes;
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
    set("--notes", "notes", [&] { c->set_notes(notes); });
    return paths;
  }
};

class Client {
 public:
  explicit Client(const Global& g) : g_(g) {
    stub_ = CustomerService::NewStub(grpc::CreateChannel(g.addr, grpc::InsecureChannelCredentials()));
  }
  std::unique_ptr<grpc::ClientContext> Context() const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", "Bearer " + g_.token);
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(static_cast<int64_t>(g_.timeout_s * 1000)));
    return ctx;
  }
  CustomerService::Stub* operator->() { return stub_.get(); }

 private:
  const Global& g_;
  std::unique_ptr<CustomerService::Stub> stub_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"crmctl: command line for the CRM backbone"};
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

  // rebuild
  auto* rebuild_cmd = app.add_subcommand("rebuild", "Rebuild the projections from the log (crmd must be stopped)");
  std::string data_dir = "data";
  rebuild_cmd->add_option("--data-dir", data_dir, "crmd's data folder")->capture_default_str();

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

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  if (token_cmd->parsed()) {
    std::string key;
    if (const char* env = std::getenv("CRM_SIGNING_KEY"); env && *env) {
      key = env;
    } else {
      auto k = crm::LoadSigningKey(key_file, false);
      if (!k.ok()) return Fail(std::string(k.status().message()));
      key = *k;
    }
    absl::Duration d;
    if (!absl::ParseDuration(ttl, &d) || d <= absl::ZeroDuration()) return Fail("--ttl is not a positive duration");
    auto t = crm::MintToken(key, {sub, role, team, absl::Now() + d});
    if (!t.ok()) return Fail(std::string(t.status().message()));
    std::cout << *t << "\n";
    return 0;
  }

  if (rebuild_cmd->parsed()) {
    auto log = crm::eventlog::OpenEmbeddedLog({.path = data_dir + "/log"});
    if (!log.ok()) return Fail(absl::StrCat(log.status().message(), " (is crmd still running?)"));
    const absl::Time t0 = absl::Now();
    auto n = crm::customers::CustomerEngine::RebuildAndSwap(**log, crm::customers::kTopic,
                                                            data_dir + "/customers");
    if (!n.ok()) return Fail(std::string(n.status().message()));
    const double secs = absl::ToDoubleSeconds(absl::Now() - t0);
    std::printf("customers: rebuilt from %lld events in %.2f s (%.0f events/s)\n",
                static_cast<long long>(*n), secs, secs > 0 ? *n / secs : 0.0);
    return 0;
  }

  if (g.token.empty()) return Fail("no token: pass --token or set CRM_TOKEN (see 'crmctl token --help')");
  Client client(g);
  grpc::Status s;
  if (create->parsed()) {
    crm::customers::v1::CreateCustomerRequest req;
    cflags.Fill(create, req.mutable_customer());
    req.set_request_id(request_id);
    Customer resp;
    s = client->CreateCustomer(client.Context().get(), req, &resp);
    if (!s.ok()) return RpcFail(s);
    PrintCustomer(resp, g);
  } else if (get->parsed()) {
    crm::customers::v1::GetCustomerRequest req;
    req.set_name(ResourceName(id));
    Customer resp;
    s = client->GetCustomer(client.Context().get(), req, &resp);
    if (!s.ok()) return RpcFail(s);
    PrintCustomer(resp, g);
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
      std::printf("%d of %d", resp.customers_size(), resp.total_size());
      if (!resp.next_page_token().empty()) std::printf("; next page: --page-token %s", resp.next_page_token().c_str());
      std::printf("\n");
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
    PrintCustomer(resp, g);
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
    PrintCustomer(resp, g);
  } else if (undel->parsed()) {
    crm::customers::v1::UndeleteCustomerRequest req;
    req.set_name(ResourceName(id));
    req.set_etag(etag);
    Customer resp;
    s = client->UndeleteCustomer(client.Context().get(), req, &resp);
    if (!s.ok()) return RpcFail(s);
    PrintCustomer(resp, g);
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
