#include "tools/crmctl_tasks.h"

#include <cstdio>
#include <functional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "crm/tasks/v1/tasks_service.grpc.pb.h"
#include "google/protobuf/util/json_util.h"

namespace crm::ctl {
namespace {

namespace tv1 = crm::tasks::v1;
using Tasks = tv1::TaskService;
using Automation = tv1::AutomationService;

// "high" -> TASK_PRIORITY_HIGH.
absl::StatusOr<tv1::TaskPriority> Priority(const std::string& text) {
  tv1::TaskPriority p;
  if (!tv1::TaskPriority_Parse(absl::StrCat("TASK_PRIORITY_", absl::AsciiStrToUpper(text)), &p) ||
      p == tv1::TASK_PRIORITY_UNSPECIFIED) {
    return absl::InvalidArgumentError(absl::StrCat("--priority: '", text, "' is not low, normal, high or urgent"));
  }
  return p;
}

absl::StatusOr<tv1::Channel> ChannelOf(const std::string& text) {
  tv1::Channel ch;
  if (!tv1::Channel_Parse(absl::StrCat("CHANNEL_", absl::AsciiStrToUpper(text)), &ch) || ch == tv1::CHANNEL_UNSPECIFIED) {
    return absl::InvalidArgumentError(absl::StrCat("--channel: '", text, "' is not in_app, sms, email, wecom or dingtalk"));
  }
  return ch;
}

void PrintTasks(const tv1::ListTasksResponse& r) {
  std::printf("%-42s %-21s %-8s %-10s %-12s %s\n", "NAME", "DUE", "PRIORITY", "STATUS", "ASSIGNEE", "TITLE");
  for (const auto& t : r.tasks()) {
    const std::string who = t.assignee_id().empty() ? absl::StrCat("(", t.assignee_role(), "s)") : t.assignee_id();
    std::printf("%-42s %-21s %-8s %-10s %-12s %s%s\n", t.name().c_str(), Time(t.due_time()).c_str(),
                tv1::TaskPriority_Name(t.priority()).substr(14).c_str(),
                tv1::TaskStatus_Name(t.status()).substr(12).c_str(), who.c_str(), t.title().c_str(),
                t.overdue() ? "  (overdue)" : "");
  }
  PrintPageFooter(r.tasks_size(), r.total_size(), r.next_page_token());
}

void PrintRules(const tv1::ListRulesResponse& r) {
  std::printf("%-42s %-8s %-28s %s\n", "NAME", "ENABLED", "DEFAULT", "RULE");
  for (const auto& x : r.rules()) {
    std::printf("%-42s %-8s %-28s %s\n", x.name().c_str(), x.definition().enabled() ? "yes" : "no",
                x.default_key().c_str(), x.definition().display_name().c_str());
  }
}

// A RuleDefinition from a JSON file (proto3 JSON, e.g. as `automation get -o json` prints
// its "definition").
absl::StatusOr<tv1::RuleDefinition> ReadDefinition(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  tv1::RuleDefinition d;
  auto s = google::protobuf::util::JsonStringToMessage(*text, &d);
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": not a rule definition: ", s.message().as_string()));
  return d;
}

}  // namespace

struct TaskCommands::Flags {
  CLI::App* tasks = nullptr;
  CLI::App* automation = nullptr;
  Verbs verbs;
  std::string id, title, description, assignee, role, team, related, due, priority, note, reason, etag, request_id,
      view = "open", filter, page_token, file;
  std::vector<int32_t> remind;
  std::vector<std::string> channels;
  int page_size = 0;
  bool yes = false, dry_run = false, show_deleted = false;
};

bool TaskCommands::Parsed() const { return f_ && f_->verbs.Parsed(); }

int TaskCommands::Run(const Connection& c) { return f_->verbs.RunParsed(c); }

void TaskCommands::Add(CLI::App& app) {
  f_ = std::make_shared<Flags>();
  Flags* f = f_.get();
  auto verb = [f](CLI::App* noun, const std::string& name, const std::string& help, Verbs::Run run) {
    return f->verbs.Add(noun, name, help, std::move(run));
  };
  auto id_arg = [f](CLI::App* cmd, const std::string& what) { cmd->add_option("id", f->id, what)->required(); };
  auto writes = [f](CLI::App* cmd) { AddWriteFlags(cmd, &f->etag, &f->request_id); };
  // The task fields given as flags, and their names for an update mask.
  auto fill = [f](tv1::Task* t, std::vector<std::string>* paths) -> absl::Status {
    auto set = [&](bool given, const char* path) {
      if (given && paths != nullptr) paths->push_back(path);
    };
    t->set_title(f->title);
    set(!f->title.empty(), "title");
    t->set_description(f->description);
    set(!f->description.empty(), "description");
    t->set_assignee_id(f->assignee);
    set(!f->assignee.empty(), "assignee_id");
    t->set_assignee_role(f->role);
    set(!f->role.empty(), "assignee_role");
    t->set_team_id(f->team);
    set(!f->team.empty(), "team_id");
    t->set_related(f->related);
    set(!f->related.empty(), "related");
    if (!f->due.empty()) {
      auto when = When("--due", f->due);
      if (!when.ok()) return when.status();
      *t->mutable_due_time() = *when;
      set(true, "due_time");
    }
    if (!f->priority.empty()) {
      auto p = Priority(f->priority);
      if (!p.ok()) return p.status();
      t->set_priority(*p);
      set(true, "priority");
    }
    for (int32_t m : f->remind) t->add_reminder_offsets_minutes(m);
    set(!f->remind.empty(), "reminder_offsets_minutes");
    for (const auto& ch : f->channels) {
      auto c = ChannelOf(ch);
      if (!c.ok()) return c.status();
      t->add_channels(*c);
    }
    set(!f->channels.empty(), "channels");
    return absl::OkStatus();
  };
  auto task_flags = [f](CLI::App* cmd) {
    cmd->add_option("--title", f->title, "What to do (1-200 characters)");
    cmd->add_option("--description", f->description, "Details");
    cmd->add_option("--assignee", f->assignee, "User id (default: you)");
    cmd->add_option("--role", f->role, "Instead of a user: a queue for anyone of rep, manager or admin in the team");
    cmd->add_option("--team", f->team, "Team (admins; default: yours)");
    cmd->add_option("--related", f->related, "customers/{id}, leads/{id}, opportunities/{id}, contracts/{id}, ...");
    cmd->add_option("--due", f->due, "Due time on the hour, RFC 3339 (2026-03-02T15:00:00+08:00) or a day");
    cmd->add_option("--priority", f->priority, "low, normal, high or urgent");
    cmd->add_option("--remind", f->remind, "Minutes before the due time for a reminder (repeatable, at most 5)");
    cmd->add_option("--channel", f->channels, "Reminder channel: in_app, sms, email, wecom, dingtalk (repeatable)");
  };

  // ---- tasks ----
  CLI::App* t = f->tasks = app.add_subcommand("tasks", "Tasks (待办): the task center, reminders and overdue notices");
  t->require_subcommand(1);
  auto* create = verb(t, "create", "Create a task", [f, fill](const Connection& c) {
    tv1::CreateTaskRequest req;
    if (auto s = fill(req.mutable_task(), nullptr); !s.ok()) return Fail(std::string(s.message()));
    req.set_request_id(f->request_id);
    return Call<Tasks>(c, &Tasks::Stub::CreateTask, req);
  });
  task_flags(create);
  create->add_option("--request-id", f->request_id, "Idempotency key: a retry with it creates one task");
  auto* get = verb(t, "get", "Show one task", [f](const Connection& c) {
    tv1::GetTaskRequest req;
    req.set_name(Name("tasks", f->id));
    return Call<Tasks>(c, &Tasks::Stub::GetTask, req);
  });
  id_arg(get, "Task id or tasks/{id}");
  auto* list = verb(t, "list", "Tasks by view, earliest due first", [f](const Connection& c) {
    tv1::ListTasksRequest req;
    const std::string v = absl::AsciiStrToUpper(f->view);
    if (v == "ALL") {
      req.set_view(tv1::TASK_VIEW_UNSPECIFIED);
    } else {
      tv1::TaskView view;
      if (!tv1::TaskView_Parse(absl::StrCat("TASK_VIEW_", v), &view)) {
        return Fail(absl::StrCat("--view: '", f->view, "' is not overdue, today, planned, open or all"));
      }
      req.set_view(view);
    }
    req.set_filter(f->filter);
    req.set_page_size(f->page_size);
    req.set_page_token(f->page_token);
    tv1::ListTasksResponse resp;
    if (int rc = Call<Tasks>(c, &Tasks::Stub::ListTasks, req, &resp); rc != 0) return rc;
    c.json ? Print(resp, true) : PrintTasks(resp);
    return 0;
  });
  list->add_option("--view", f->view, "overdue, today, planned, open or all")->capture_default_str();
  list->add_option("--filter", f->filter, "e.g. assignee_id = \"u1\" AND priority = HIGH (also team_id, related, status, rule_id)");
  list->add_option("--page-size", f->page_size, "Tasks per page (default 50)");
  list->add_option("--page-token", f->page_token, "From a previous page");
  auto* counts = verb(t, "counts", "Overdue, today's, planned and done-today counts", [f](const Connection& c) {
    tv1::CountTasksRequest req;
    req.set_assignee_id(f->assignee);
    req.set_team_id(f->team);
    tv1::TaskCounts counts;
    if (int rc = Call<Tasks>(c, &Tasks::Stub::CountTasks, req, &counts); rc != 0) return rc;
    if (c.json) {
      Print(counts, true);
    } else {
      std::printf("overdue %d\ntoday %d\nplanned %d\ndone_today %d\n", counts.overdue(), counts.today(),
                  counts.planned(), counts.done_today());
    }
    return 0;
  });
  counts->add_option("--assignee", f->assignee, "Whose tasks (default: yours and your role's queue)");
  counts->add_option("--team", f->team, "A team's tasks (its managers, admins)");
  auto* update = verb(t, "update", "Change the fields given as flags", [f, fill](const Connection& c) {
    tv1::UpdateTaskRequest req;
    std::vector<std::string> paths;
    if (auto s = fill(req.mutable_task(), &paths); !s.ok()) return Fail(std::string(s.message()));
    if (paths.empty()) return Fail("give at least one field to change");
    for (const auto& p : paths) req.mutable_update_mask()->add_paths(p);
    req.mutable_task()->set_name(Name("tasks", f->id));
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Tasks>(c, &Tasks::Stub::UpdateTask, req);
  });
  id_arg(update, "Task id");
  task_flags(update);
  writes(update);
  auto* complete = verb(t, "complete", "Mark done; the note becomes a follow-up on the customer", [f](const Connection& c) {
    tv1::CompleteTaskRequest req;
    req.set_name(Name("tasks", f->id));
    req.set_note(f->note);
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Tasks>(c, &Tasks::Stub::CompleteTask, req);
  });
  id_arg(complete, "Task id");
  complete->add_option("--note", f->note, "The result (跟进结果), written back to the customer");
  writes(complete);
  auto* cancel = verb(t, "cancel", "Cancel a task", [f](const Connection& c) {
    tv1::CancelTaskRequest req;
    req.set_name(Name("tasks", f->id));
    req.set_reason(f->reason);
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Tasks>(c, &Tasks::Stub::CancelTask, req);
  });
  id_arg(cancel, "Task id");
  cancel->add_option("--reason", f->reason, "Why");
  writes(cancel);
  auto* reopen = verb(t, "reopen", "Open a done or cancelled task again", [f](const Connection& c) {
    tv1::ReopenTaskRequest req;
    req.set_name(Name("tasks", f->id));
    req.set_reason(f->reason);
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Tasks>(c, &Tasks::Stub::ReopenTask, req);
  });
  id_arg(reopen, "Task id");
  reopen->add_option("--reason", f->reason, "Why");
  writes(reopen);
  auto* history = verb(t, "history", "The audit trail of a task or a rule", [f](const Connection& c) {
    tv1::ListEventsRequest req;
    req.set_parent(f->id.rfind("rules/", 0) == 0 ? f->id : Name("tasks", f->id));
    req.set_page_size(1000);
    tv1::ListEventsResponse resp;
    if (int rc = Call<Tasks>(c, &Tasks::Stub::ListEvents, req, &resp); rc != 0) return rc;
    c.json ? Print(resp, true) : PrintEvents(resp);
    return 0;
  });
  id_arg(history, "Task id, or rules/{id}");

  // ---- automation ----
  CLI::App* a = f->automation = app.add_subcommand("automation", "Automation rules (自动化规则): admins define them");
  a->require_subcommand(1);
  auto* rlist = verb(a, "list", "The rules", [f](const Connection& c) {
    tv1::ListRulesRequest req;
    req.set_show_deleted(f->show_deleted);
    req.set_page_size(1000);
    tv1::ListRulesResponse resp;
    if (int rc = Call<Automation>(c, &Automation::Stub::ListRules, req, &resp); rc != 0) return rc;
    c.json ? Print(resp, true) : PrintRules(resp);
    return 0;
  });
  rlist->add_flag("--show-deleted", f->show_deleted, "Include deleted rules");
  auto* rget = verb(a, "get", "Show one rule (-o json prints a definition to edit)", [f](const Connection& c) {
    tv1::GetRuleRequest req;
    req.set_name(Name("rules", f->id));
    return Call<Automation>(c, &Automation::Stub::GetRule, req);
  });
  id_arg(rget, "Rule id or rules/{id}");
  auto* rcreate = verb(a, "create", "Create a rule from a JSON definition", [f](const Connection& c) {
    auto d = ReadDefinition(f->file);
    if (!d.ok()) return Fail(std::string(d.status().message()));
    tv1::CreateRuleRequest req;
    *req.mutable_rule()->mutable_definition() = *d;
    req.set_request_id(f->request_id);
    return Call<Automation>(c, &Automation::Stub::CreateRule, req);
  });
  rcreate->add_option("--file", f->file, "RuleDefinition as proto3 JSON")->required()->check(CLI::ExistingFile);
  rcreate->add_option("--request-id", f->request_id, "Idempotency key");
  auto* rupdate = verb(a, "update", "Replace a rule's definition (applies to causes from now on)", [f](const Connection& c) {
    auto d = ReadDefinition(f->file);
    if (!d.ok()) return Fail(std::string(d.status().message()));
    tv1::UpdateRuleRequest req;
    req.mutable_rule()->set_name(Name("rules", f->id));
    *req.mutable_rule()->mutable_definition() = *d;
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    return Call<Automation>(c, &Automation::Stub::UpdateRule, req);
  });
  id_arg(rupdate, "Rule id");
  rupdate->add_option("--file", f->file, "RuleDefinition as proto3 JSON")->required()->check(CLI::ExistingFile);
  writes(rupdate);
  for (bool enable : {true, false}) {
    auto* toggle = verb(a, enable ? "enable" : "disable", enable ? "Turn a rule on" : "Turn a rule off",
                        [f, enable](const Connection& c) {
                          tv1::GetRuleRequest get;
                          get.set_name(Name("rules", f->id));
                          tv1::Rule rule;
                          if (int rc = Call<Automation>(c, &Automation::Stub::GetRule, get, &rule); rc != 0) return rc;
                          tv1::UpdateRuleRequest req;
                          *req.mutable_rule() = rule;
                          req.mutable_rule()->mutable_definition()->set_enabled(enable);
                          req.set_etag(rule.etag());
                          return Call<Automation>(c, &Automation::Stub::UpdateRule, req);
                        });
    id_arg(toggle, "Rule id");
  }
  auto* rdelete = verb(a, "delete", "Delete a rule (its tasks stay)", [f](const Connection& c) {
    tv1::DeleteRuleRequest req;
    req.set_name(Name("rules", f->id));
    req.set_etag(f->etag);
    req.set_request_id(f->request_id);
    if (auto rc = Unconfirmed(f->yes, f->dry_run, "DeleteRule", req, "deleting a rule stops its automation")) return *rc;
    return Call<Automation>(c, &Automation::Stub::DeleteRule, req);
  });
  id_arg(rdelete, "Rule id");
  AddConfirmFlags(rdelete, &f->yes, &f->dry_run);
  writes(rdelete);
}

}  // namespace crm::ctl
