#include "tools/crmctl_tickets.h"

#include <cstdio>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "crm/tickets/v1/tickets_service.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "libs/common/money.h"

namespace crm::ctl {
namespace {

namespace kv1 = crm::tickets::v1;
using Types = kv1::TicketTypeService;
using Tickets = kv1::TicketService;
using Sla = kv1::SlaService;

// "urgent" -> TICKET_PRIORITY_URGENT; "" and "default" -> UNSPECIFIED.
absl::StatusOr<kv1::TicketPriority> Priority(const std::string& text) {
  if (text.empty() || text == "default") return kv1::TICKET_PRIORITY_UNSPECIFIED;
  kv1::TicketPriority p;
  if (!kv1::TicketPriority_Parse(absl::StrCat("TICKET_PRIORITY_", absl::AsciiStrToUpper(text)), &p)) {
    return absl::InvalidArgumentError(absl::StrCat("--priority: '", text, "' is not low, normal, high or urgent"));
  }
  return p;
}

// A message from a proto3 JSON file.
template <typename M>
absl::StatusOr<M> ReadJson(const std::string& path, const std::string& what) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  M m;
  auto s = google::protobuf::util::JsonStringToMessage(*text, &m);
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": not a ", what, ": ", s.message().as_string()));
  return m;
}

// "key=value" flags as a map; INVALID_ARGUMENT naming `flag` for one without '='.
absl::StatusOr<std::map<std::string, std::string>> Pairs(const std::vector<std::string>& items, const std::string& flag) {
  std::map<std::string, std::string> out;
  for (const auto& item : items) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat(flag, ": '", item, "' is not key=value"));
    }
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

// Form values typed by `form`: text as is, numbers and money as decimals, dates yyyy-MM-dd,
// date-times RFC 3339, choices by option key (several comma-separated), "" to clear.
absl::StatusOr<std::map<std::string, kv1::FieldValue>> Values(const kv1::FormSchema& form,
                                                              const std::vector<std::string>& items) {
  auto pairs = Pairs(items, "--value");
  if (!pairs.ok()) return pairs.status();
  std::map<std::string, kv1::FieldValue> out;
  for (const auto& [key, text] : *pairs) {
    const kv1::FormField* field = nullptr;
    for (const auto& f : form.fields()) {
      if (f.key() == key) field = &f;
    }
    if (field == nullptr) return absl::InvalidArgumentError(absl::StrCat("--value: the form has no field '", key, "'"));
    kv1::FieldValue& v = out[key];
    if (text.empty()) continue;  // clears
    switch (field->type()) {
      case kv1::FIELD_TYPE_NUMBER: {
        auto n = money::ParseDecimal(text, field->scale(), key);
        if (!n.ok()) return n.status();
        v.set_number(*n);
        break;
      }
      case kv1::FIELD_TYPE_MONEY: {
        auto n = money::ParseAmount(text, field->currency().empty() ? "CNY" : field->currency());
        if (!n.ok()) return absl::InvalidArgumentError(absl::StrCat("--value ", key, ": ", n.status().message()));
        v.set_number(*n);
        break;
      }
      case kv1::FIELD_TYPE_DATE: v.set_date(text); break;
      case kv1::FIELD_TYPE_DATETIME: {
        auto t = When(absl::StrCat("--value ", key), text);
        if (!t.ok()) return t.status();
        *v.mutable_datetime() = *t;
        break;
      }
      case kv1::FIELD_TYPE_SINGLE_CHOICE: v.set_choice(text); break;
      case kv1::FIELD_TYPE_MULTI_CHOICE:
        for (absl::string_view k : absl::StrSplit(text, ',', absl::SkipEmpty())) v.mutable_choices()->add_keys(std::string(k));
        break;
      default: v.set_text(text);
    }
  }
  return out;
}

void PrintTickets(const kv1::ListTicketsResponse& r) {
  std::printf("%-44s %-8s %-14s %-10s %-9s %s\n", "NAME", "PRIORITY", "STATE", "ASSIGNEE", "SLA", "TITLE");
  for (const auto& t : r.tickets()) {
    const bool breached = t.sla().first_response().breached() || t.sla().resolution().breached();
    std::printf("%-44s %-8s %-14s %-10s %-9s %s\n", t.name().c_str(),
                kv1::TicketPriority_Name(t.priority()).substr(16).c_str(),
                (t.state_name().empty() ? t.state() : t.state_name()).c_str(),
                t.assignee_id().empty() ? "-" : t.assignee_id().c_str(),
                t.sla().policy().empty() ? "-" : (breached ? "breached" : "ok"), t.title().c_str());
  }
  PrintPageFooter(r.tickets_size(), r.total_size(), r.next_page_token());
}

void PrintSummary(const char* what, const kv1::SlaSummary& s) {
  std::printf("%-26s met %-6d breached %-6d running %-6d no target %-6d compliance %6.2f%%  median %llds  p90 %llds\n",
              what, s.met(), s.breached(), s.running(), s.no_target(), s.compliance_percent(),
              static_cast<long long>(s.median_elapsed_seconds()), static_cast<long long>(s.p90_elapsed_seconds()));
}

}  // namespace

struct TicketCommands::Flags {
  Verbs verbs;
  std::string id, file, type, title, customer, priority, assignee, team, transition, comment, body, reason, etag,
      request_id, filter, page_token, calendar, from, to, as_of, display_name;
  std::vector<std::string> values, field_map, state_map, defaults, pause_states;
  int page_size = 0, from_version = 0, to_version = 0, warning = 80;
  int64_t first_response = 0, resolution = 0;
  bool internal = false, validate_only = false, show_archived = false, per_ticket = false, yes = false, dry_run = false;
};

bool TicketCommands::Parsed() const { return f_ && f_->verbs.Parsed(); }

int TicketCommands::Run(const Connection& c) { return f_->verbs.RunParsed(c); }

void TicketCommands::Add(CLI::App& app) {
  f_ = std::make_shared<Flags>();
  Flags* f = f_.get();
  auto verb = [f](CLI::App* noun, const std::string& name, const std::string& help, Verbs::Run run) {
    return f->verbs.Add(noun, name, help, std::move(run));
  };
  auto id_arg = [f](CLI::App* cmd, const std::string& what) { cmd->add_option("id", f->id, what)->required(); };
  auto writes = [f](CLI::App* cmd) { AddWriteFlags(cmd, &f->etag, &f->request_id); };
  // The form of ticket type `type` (its version `version`, 0: in force).
  auto form_of = [](const Connection& c, const std::string& type, int32_t version, kv1::FormSchema* out) {
    kv1::GetTicketTypeRequest req;
    req.set_name(Name("ticketTypes", type));
    kv1::TicketType t;
    if (int rc = Call<Types>(c, &Types::Stub::GetTicketType, req, &t); rc != 0) return rc;
    *out = t.definition().form();
    for (const auto& v : t.versions()) {
      if (v.number() == version) *out = v.definition().form();
    }
    return 0;
  };

  // ---- ticket-types ----
  CLI::App* ty = app.add_subcommand("ticket-types", "Ticket types (工单类型): custom forms and workflows, versioned");
  ty->require_subcommand(1);
  auto* tcreate = verb(ty, "create", "Define a type from a JSON TicketTypeDefinition", [f](const Connection& c) {
    auto d = ReadJson<kv1::TicketTypeDefinition>(f->file, "ticket type definition");
    if (!d.ok()) return Fail(std::string(d.status().message()));
    kv1::CreateTicketTypeRequest req;
    req.set_ticket_type_id(f->id);
    *req.mutable_definition() = *d;
    req.set_request_id(f->request_id);
    return Call<Types>(c, &Types::Stub::CreateTicketType, req);
  });
  tcreate->add_option("--id", f->id, "[a-z][a-z0-9_]{0,39}, e.g. repair (default: generated)");
  tcreate->add_option("--file", f->file, "JSON: display_name, description, form.fields[], workflow")->required();
  tcreate->add_option("--request-id", f->request_id, "Idempotency key");
  auto* tget = verb(ty, "get", "Show a type with every version", [f](const Connection& c) {
    kv1::GetTicketTypeRequest req;
    req.set_name(Name("ticketTypes", f->id));
    return Call<Types>(c, &Types::Stub::GetTicketType, req);
  });
  id_arg(tget, "Type id or ticketTypes/{id}");
  auto* tlist = verb(ty, "list", "Ticket types", [f](const Connection& c) {
    kv1::ListTicketTypesRequest req;
    req.set_show_archived(f->show_archived);
    req.set_page_size(1000);
    kv1::ListTicketTypesResponse resp;
    if (int rc = Call<Types>(c, &Types::Stub::ListTicketTypes, req, &resp); rc != 0) return rc;
    if (c.json) {
      Print(resp, true);
      return 0;
    }
    std::printf("%-36s %-8s %-9s %s\n", "NAME", "VERSION", "ARCHIVED", "DISPLAY NAME");
    for (const auto& t : resp.ticket_types()) {
      std::printf("%-36s %-8d %-9s %s\n", t.name().c_str(), t.current_version(), t.archived() ? "yes" : "no",
                  t.definition().display_name().c_str());
    }
    return 0;
  });
  tlist->add_flag("--show-archived", f->show_archived, "Include archived types");
  auto* publish = verb(ty, "publish", "Publish a new version from a JSON TicketTypeDefinition", [f](const Connection& c) {
    auto d = ReadJson<kv1::TicketTypeDefinition>(f->file, "ticket type definition");
    if (!d.ok()) return Fail(std::string(d.status().message()));
    kv1::PublishTicketTypeVersionRequest req;
    req.set_name(Name("ticketTypes", f->id));
    *req.mutable_definition() = *d;
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Types>(c, &Types::Stub::PublishTicketTypeVersion, req);
  });
  id_arg(publish, "Type id");
  publish->add_option("--file", f->file, "JSON TicketTypeDefinition")->required();
  writes(publish);
  auto* archive = verb(ty, "archive", "No new tickets of the type (needs --yes)", [f](const Connection& c) {
    kv1::ArchiveTicketTypeRequest req;
    req.set_name(Name("ticketTypes", f->id));
    req.set_reason(f->reason);
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    if (auto rc = Unconfirmed(f->yes, f->dry_run, "ArchiveTicketType", req, "archiving stops new tickets of the type")) {
      return *rc;
    }
    return Call<Types>(c, &Types::Stub::ArchiveTicketType, req);
  });
  id_arg(archive, "Type id");
  archive->add_option("--reason", f->reason, "Why");
  AddConfirmFlags(archive, &f->yes, &f->dry_run);
  writes(archive);
  auto* migrate = verb(ty, "migrate", "Move open tickets of a version to another with a mapping", [f, form_of](const Connection& c) {
    kv1::MigrateTicketsRequest req;
    req.set_name(Name("ticketTypes", f->id));
    req.set_from_version(f->from_version);
    req.set_to_version(f->to_version);
    auto fields = Pairs(f->field_map, "--map");
    auto states = Pairs(f->state_map, "--state-map");
    if (!fields.ok()) return Fail(std::string(fields.status().message()));
    if (!states.ok()) return Fail(std::string(states.status().message()));
    for (const auto& [k, v] : *fields) (*req.mutable_field_mapping())[k] = v;
    for (const auto& [k, v] : *states) (*req.mutable_state_mapping())[k] = v;
    if (!f->defaults.empty()) {
      kv1::FormSchema form;
      if (int rc = form_of(c, f->id, f->to_version, &form); rc != 0) return rc;
      auto values = Values(form, f->defaults);
      if (!values.ok()) return Fail(std::string(values.status().message()));
      for (const auto& [k, v] : *values) (*req.mutable_defaults())[k] = v;
    }
    req.set_validate_only(f->validate_only);
    req.set_request_id(f->request_id);
    if (!f->validate_only && !f->yes) return Fail("migrating changes open tickets: add --yes (or --validate-only)");
    return Call<Types>(c, &Types::Stub::MigrateTickets, req);
  });
  id_arg(migrate, "Type id");
  migrate->add_option("--from", f->from_version, "Version whose open tickets move")->required();
  migrate->add_option("--to", f->to_version, "Target version (default: the one in force)");
  migrate->add_option("--map", f->field_map, "old_key=new_key (new_key empty drops the field; repeatable)");
  migrate->add_option("--state-map", f->state_map, "old_state=new_state (repeatable)");
  migrate->add_option("--default", f->defaults, "key=value for fields the new form requires (repeatable)");
  migrate->add_flag("--validate-only", f->validate_only, "Report what would fail; change nothing");
  migrate->add_flag("--yes", f->yes, "Confirm");
  migrate->add_option("--request-id", f->request_id, "Idempotency key");

  // ---- tickets ----
  CLI::App* tk = app.add_subcommand("tickets", "Tickets (工单): form values, workflow transitions, comments, SLA");
  tk->require_subcommand(1);
  auto* create = verb(tk, "create", "Open a ticket", [f, form_of](const Connection& c) {
    kv1::FormSchema form;
    if (int rc = form_of(c, f->type, 0, &form); rc != 0) return rc;
    auto values = Values(form, f->values);
    if (!values.ok()) return Fail(std::string(values.status().message()));
    auto p = Priority(f->priority);
    if (!p.ok()) return Fail(std::string(p.status().message()));
    kv1::CreateTicketRequest req;
    auto* t = req.mutable_ticket();
    t->set_ticket_type(Name("ticketTypes", f->type));
    t->set_title(f->title);
    if (!f->customer.empty()) t->set_customer(Name("customers", f->customer));
    t->set_priority(*p);
    t->set_assignee_id(f->assignee);
    t->set_team_id(f->team);
    for (const auto& [k, v] : *values) (*t->mutable_values())[k] = v;
    req.set_request_id(f->request_id);
    return Call<Tickets>(c, &Tickets::Stub::CreateTicket, req);
  });
  create->add_option("--type", f->type, "Ticket type id")->required();
  create->add_option("--title", f->title, "1-200 characters")->required();
  create->add_option("--customer", f->customer, "Customer id or customers/{id}");
  create->add_option("--priority", f->priority, "low, normal (default), high or urgent");
  create->add_option("--assignee", f->assignee, "User id (default: unassigned)");
  create->add_option("--team", f->team, "Team (default: yours)");
  create->add_option("--value", f->values, "key=value of the form (repeatable); choices by key, several comma-separated");
  create->add_option("--request-id", f->request_id, "Idempotency key: a retry with it opens one ticket");
  auto* get = verb(tk, "get", "Show one ticket with its SLA clocks", [f](const Connection& c) {
    kv1::GetTicketRequest req;
    req.set_name(Name("tickets", f->id));
    return Call<Tickets>(c, &Tickets::Stub::GetTicket, req);
  });
  id_arg(get, "Ticket id or tickets/{id}");
  auto* list = verb(tk, "list", "Tickets, newest first", [f](const Connection& c) {
    kv1::ListTicketsRequest req;
    req.set_filter(f->filter);
    req.set_page_size(f->page_size);
    req.set_page_token(f->page_token);
    kv1::ListTicketsResponse resp;
    if (int rc = Call<Tickets>(c, &Tickets::Stub::ListTickets, req, &resp); rc != 0) return rc;
    c.json ? Print(resp, true) : PrintTickets(resp);
    return 0;
  });
  list->add_option("--filter", f->filter,
                   "e.g. closed = false AND priority = URGENT (also ticket_type, state, assignee_id, team_id, customer, "
                   "sla_breached)");
  list->add_option("--page-size", f->page_size, "Tickets per page (default 50)");
  list->add_option("--page-token", f->page_token, "From a previous page");
  // The ticket's form version, for typed values.
  auto ticket_form = [form_of](const Connection& c, const std::string& id, kv1::FormSchema* form) {
    kv1::GetTicketRequest req;
    req.set_name(Name("tickets", id));
    kv1::Ticket t;
    if (int rc = Call<Tickets>(c, &Tickets::Stub::GetTicket, req, &t); rc != 0) return rc;
    return form_of(c, t.ticket_type(), t.type_version(), form);
  };
  auto* update = verb(tk, "update", "Set form values (key= clears)", [f, ticket_form](const Connection& c) {
    kv1::FormSchema form;
    if (int rc = ticket_form(c, f->id, &form); rc != 0) return rc;
    auto values = Values(form, f->values);
    if (!values.ok()) return Fail(std::string(values.status().message()));
    if (values->empty()) return Fail("give at least one --value");
    kv1::UpdateTicketRequest req;
    req.set_name(Name("tickets", f->id));
    for (const auto& [k, v] : *values) (*req.mutable_values())[k] = v;
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Tickets>(c, &Tickets::Stub::UpdateTicket, req);
  });
  id_arg(update, "Ticket id");
  update->add_option("--value", f->values, "key=value (repeatable)");
  writes(update);
  auto* move = verb(tk, "transition", "Take a transition of the workflow", [f](const Connection& c) {
    kv1::TransitionTicketRequest req;
    req.set_name(Name("tickets", f->id));
    req.set_transition_id(f->transition);
    req.set_comment(f->comment);
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Tickets>(c, &Tickets::Stub::TransitionTicket, req);
  });
  id_arg(move, "Ticket id");
  move->add_option("--transition", f->transition, "Transition id, e.g. resolve")->required();
  move->add_option("--comment", f->comment, "Why");
  writes(move);
  auto* assign = verb(tk, "assign", "Give the ticket to someone (or nobody)", [f](const Connection& c) {
    kv1::AssignTicketRequest req;
    req.set_name(Name("tickets", f->id));
    req.set_assignee_id(f->assignee);
    req.set_team_id(f->team);
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Tickets>(c, &Tickets::Stub::AssignTicket, req);
  });
  id_arg(assign, "Ticket id");
  assign->add_option("--assignee", f->assignee, "User id; empty: unassigned");
  assign->add_option("--team", f->team, "Team (default: the ticket's)");
  writes(assign);
  auto* comment = verb(tk, "comment", "Add a public (for the customer) or internal comment", [f](const Connection& c) {
    kv1::AddCommentRequest req;
    req.set_name(Name("tickets", f->id));
    req.set_body(f->body);
    req.set_internal(f->internal);
    req.set_request_id(f->request_id);
    return Call<Tickets>(c, &Tickets::Stub::AddComment, req);
  });
  id_arg(comment, "Ticket id");
  comment->add_option("--body", f->body, "The text (1-4000 characters)")->required();
  comment->add_flag("--internal", f->internal, "Staff only (does not count as the first response)");
  comment->add_option("--request-id", f->request_id, "Idempotency key");
  auto* history = verb(tk, "history", "The audit trail of a ticket, type, policy or calendar", [f](const Connection& c) {
    kv1::ListEventsRequest req;
    req.set_parent(f->id.find('/') != std::string::npos ? f->id : Name("tickets", f->id));
    req.set_page_size(1000);
    kv1::ListEventsResponse resp;
    if (int rc = Call<Tickets>(c, &Tickets::Stub::ListEvents, req, &resp); rc != 0) return rc;
    c.json ? Print(resp, true) : PrintEvents(resp);
    return 0;
  });
  id_arg(history, "Ticket id, or ticketTypes/{id}, ticketTypes/{id}/slaPolicies/{priority}, calendars/{id}");

  // ---- sla ----
  CLI::App* sla = app.add_subcommand("sla", "SLA policies (服务时效), business calendars and what-if evaluation");
  sla->require_subcommand(1);
  auto* pset = verb(sla, "set-policy", "Create or replace a type's policy for a priority", [f](const Connection& c) {
    auto p = Priority(f->priority);
    if (!p.ok()) return Fail(std::string(p.status().message()));
    kv1::SetSlaPolicyRequest req;
    auto* pol = req.mutable_policy();
    pol->set_type_id(f->type);
    pol->set_priority(*p);
    pol->set_first_response_minutes(f->first_response);
    pol->set_resolution_minutes(f->resolution);
    pol->set_warning_percent(f->warning);
    if (!f->calendar.empty()) pol->set_calendar(Name("calendars", f->calendar));
    for (const auto& s : f->pause_states) pol->add_pause_states(s);
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Sla>(c, &Sla::Stub::SetSlaPolicy, req);
  });
  pset->add_option("--type", f->type, "Ticket type id")->required();
  pset->add_option("--priority", f->priority, "low, normal, high, urgent, or default (the others)");
  pset->add_option("--first-response", f->first_response, "First-response target in business minutes (0: none)");
  pset->add_option("--resolution", f->resolution, "Resolution target in business minutes (0: none)");
  pset->add_option("--warning", f->warning, "Warn at this percent of a target (0: no warning)")->capture_default_str();
  pset->add_option("--calendar", f->calendar, "Calendar id for business hours (default: around the clock)");
  pset->add_option("--pause", f->pause_states, "A state that stops the clocks (repeatable; default: the workflow's)");
  writes(pset);
  auto* pget = verb(sla, "get-policy", "Show a policy", [f](const Connection& c) {
    kv1::GetSlaPolicyRequest req;
    req.set_name(f->id);
    return Call<Sla>(c, &Sla::Stub::GetSlaPolicy, req);
  });
  id_arg(pget, "ticketTypes/{type}/slaPolicies/{priority}");
  auto* plist = verb(sla, "policies", "The policies of a type (or of all)", [f](const Connection& c) {
    kv1::ListSlaPoliciesRequest req;
    if (!f->type.empty()) req.set_parent(Name("ticketTypes", f->type));
    kv1::ListSlaPoliciesResponse resp;
    if (int rc = Call<Sla>(c, &Sla::Stub::ListSlaPolicies, req, &resp); rc != 0) return rc;
    if (c.json) {
      Print(resp, true);
      return 0;
    }
    std::printf("%-48s %-14s %-14s %-8s %s\n", "NAME", "FIRST RESP min", "RESOLUTION min", "WARN %", "CALENDAR");
    for (const auto& p : resp.policies()) {
      std::printf("%-48s %-14lld %-14lld %-8d %s\n", p.name().c_str(),
                  static_cast<long long>(p.policy().first_response_minutes()),
                  static_cast<long long>(p.policy().resolution_minutes()), p.policy().warning_percent(),
                  p.policy().calendar().empty() ? "(24x7)" : p.policy().calendar().c_str());
    }
    return 0;
  });
  plist->add_option("--type", f->type, "Ticket type id");
  auto* pdel = verb(sla, "delete-policy", "Delete a policy (needs --yes)", [f](const Connection& c) {
    kv1::DeleteSlaPolicyRequest req;
    req.set_name(f->id);
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    if (auto rc = Unconfirmed(f->yes, f->dry_run, "DeleteSlaPolicy", req,
                              "tickets fall back to the type's default policy or none")) {
      return *rc;
    }
    return Call<Sla>(c, &Sla::Stub::DeleteSlaPolicy, req);
  });
  id_arg(pdel, "ticketTypes/{type}/slaPolicies/{priority}");
  AddConfirmFlags(pdel, &f->yes, &f->dry_run);
  writes(pdel);
  auto* cset = verb(sla, "set-calendar", "Create or replace a calendar from a JSON BusinessCalendar", [f](const Connection& c) {
    auto cal = ReadJson<kv1::BusinessCalendar>(f->file, "business calendar");
    if (!cal.ok()) return Fail(std::string(cal.status().message()));
    kv1::SetCalendarRequest req;
    req.mutable_calendar()->set_name(Name("calendars", f->id));
    req.mutable_calendar()->set_display_name(f->display_name);
    *req.mutable_calendar()->mutable_calendar() = *cal;
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Sla>(c, &Sla::Stub::SetCalendar, req);
  });
  id_arg(cset, "Calendar id, e.g. cn");
  cset->add_option("--display-name", f->display_name, "e.g. 中国大陆工作日")->required();
  cset->add_option("--file", f->file, "JSON: windows[{weekday,start_minute,end_minute}], holidays[], workdays[]")->required();
  writes(cset);
  auto* cget = verb(sla, "get-calendar", "Show a calendar", [f](const Connection& c) {
    kv1::GetCalendarRequest req;
    req.set_name(Name("calendars", f->id));
    return Call<Sla>(c, &Sla::Stub::GetCalendar, req);
  });
  id_arg(cget, "Calendar id");
  verb(sla, "calendars", "Every calendar", [](const Connection& c) {
    return Call<Sla>(c, &Sla::Stub::ListCalendars, kv1::ListCalendarsRequest());
  });
  auto* eval = verb(sla, "evaluate", "SLA compliance of a period, and what if the targets had been others",
                    [f](const Connection& c) {
                      kv1::EvaluateSlaRequest req;
                      if (!f->type.empty()) req.set_ticket_type(Name("ticketTypes", f->type));
                      auto p = Priority(f->priority);
                      if (!p.ok()) return Fail(std::string(p.status().message()));
                      req.set_priority(*p);
                      auto from = When("--from", f->from);
                      auto to = When("--to", f->to);
                      if (!from.ok()) return Fail(std::string(from.status().message()));
                      if (!to.ok()) return Fail(std::string(to.status().message()));
                      *req.mutable_start_time() = *from;
                      *req.mutable_end_time() = *to;
                      if (!f->as_of.empty()) {
                        auto at = When("--as-of", f->as_of);
                        if (!at.ok()) return Fail(std::string(at.status().message()));
                        *req.mutable_as_of() = *at;
                      }
                      if (f->first_response > 0 || f->resolution > 0) {
                        auto* w = req.mutable_what_if();
                        w->set_first_response_minutes(f->first_response);
                        w->set_resolution_minutes(f->resolution);
                        w->set_warning_percent(f->warning);
                        if (!f->calendar.empty()) w->set_calendar(Name("calendars", f->calendar));
                        for (const auto& s : f->pause_states) w->add_pause_states(s);
                      }
                      req.set_include_tickets(f->per_ticket);
                      kv1::EvaluateSlaResponse resp;
                      if (int rc = Call<Sla>(c, &Sla::Stub::EvaluateSla, req, &resp); rc != 0) return rc;
                      if (c.json) {
                        Print(resp, true);
                        return 0;
                      }
                      std::printf("%d tickets, evaluated in %lld µs\n", resp.tickets(),
                                  static_cast<long long>(resp.evaluation_micros()));
                      PrintSummary("first response (in force)", resp.actual_first_response());
                      PrintSummary("resolution (in force)", resp.actual_resolution());
                      if (req.has_what_if()) {
                        PrintSummary("first response (what if)", resp.what_if_first_response());
                        PrintSummary("resolution (what if)", resp.what_if_resolution());
                      }
                      return 0;
                    });
  eval->add_option("--type", f->type, "Ticket type id (default: every type)");
  eval->add_option("--priority", f->priority, "Only this priority");
  eval->add_option("--from", f->from, "Tickets created from (RFC 3339 or a day)")->required();
  eval->add_option("--to", f->to, "... until (exclusive)")->required();
  eval->add_option("--as-of", f->as_of, "The clocks as of this moment (default: now)");
  eval->add_option("--first-response", f->first_response, "What-if first-response target, business minutes");
  eval->add_option("--resolution", f->resolution, "What-if resolution target, business minutes");
  eval->add_option("--warning", f->warning, "What-if warning percent")->capture_default_str();
  eval->add_option("--calendar", f->calendar, "What-if calendar id (default: around the clock)");
  eval->add_option("--pause", f->pause_states, "What-if pausing state (repeatable)");
  eval->add_flag("--per-ticket", f->per_ticket, "Include each ticket's clocks (JSON output)");
}

}  // namespace crm::ctl
