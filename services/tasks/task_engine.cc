#include "services/tasks/task_engine.h"

#include <algorithm>
#include <map>
#include <cstring>
#include <set>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/common/await.h"
#include "absl/time/civil_time.h"
#include "crm/customers/v1/customers_events.pb.h"
#include "crm/opportunities/v1/opportunities_events.pb.h"
#include "crm/tickets/v1/tickets_events.pb.h"
#include "libs/common/completions.h"
#include "libs/common/grpc_status.h"
#include "libs/common/list_page.h"
#include "libs/projection/index_walk.h"
#include "libs/common/ids.h"
#include "libs/common/proto_time.h"
#include "libs/common/request.h"
#include "libs/common/status_macros.h"
#include "libs/kernel/target_command.h"
#include "libs/projection/history.h"
#include "libs/server/logging.h"
#include "libs/topics/contracts.h"
#include "libs/topics/events.h"

namespace crm::tasks {

using projection::FromRocks;
using projection::TimeKey;

namespace {

using kernel::Command;
using kernel::Reply;
using projection::ReadStateRow;

constexpr char kSource[] = "/crm/tasks";
const Caller kScheduler{"scheduler", "service", ""};
const Caller kAutomation{"automation", "service", ""};
constexpr size_t kIdLen = 36;
// Items one scheduler run or one ProcessPending takes on; the rest wait for the next.
constexpr size_t kMaxBatch = 20000;

// The aggregates' traits for kernel::AggregateStore. Apply is the fold the projection commits
// (task_projections.cc), so a reply equals the row read back.
struct TaskKind {
  static constexpr const char* kType = topics::tasks::kTask.type;
  static std::string Row(absl::string_view id) { return rows::Task(id); }
  static bool Visible(const Caller& c, const TaskState& s) { return CanSee(c, s); }
  static void Apply(TaskState& s, const TaskEvent& e, int64_t v, absl::Time at, const std::string& actor) {
    ApplyTask(s, e, v, at, actor);
  }
};
struct RuleKind {
  static constexpr const char* kType = topics::tasks::kRule.type;
  static std::string Row(absl::string_view id) { return rows::Rule(id); }
  static bool Visible(const Caller&, const RuleState&) { return true; }
  static void Apply(RuleState& s, const RuleEvent& e, int64_t v, absl::Time at, const std::string& actor) {
    ApplyRule(s, e, v, at, actor);
  }
};
struct ReminderKind {
  static constexpr const char* kType = topics::tasks::kReminder.type;
  static std::string Row(absl::string_view id) { return rows::Reminder(id); }
  static bool Visible(const Caller&, const v1::ReminderState&) { return true; }
  static void Apply(v1::ReminderState& s, const ReminderEvent& e, int64_t v, absl::Time at, const std::string& actor) {
    ApplyReminder(s, e, v, at, actor);
  }
};

// The event payload types rules may name are compiled in; referencing their descriptors keeps
// the linker from dropping them (the generated pool only knows linked files).
void LinkEventTypes() {
  static const bool linked = [] {
    (void)customers::v1::CustomerCreated::descriptor();
    (void)customers::v1::LeadCreated::descriptor();
    (void)opportunities::v1::OpportunityCreated::descriptor();
    (void)opportunities::v1::ContractDrafted::descriptor();
    (void)tickets::v1::TicketCreated::descriptor();
    return true;
  }();
  (void)linked;
}

template <typename State, typename Event>
using DecideFn = absl::AnyInvocable<absl::StatusOr<std::vector<Event>>(const State*)>;

template <typename State, typename Event, typename Cmd>
DecideFn<State, Event> Plain(const Caller& caller, Cmd cmd) {
  return [caller, cmd = std::move(cmd)](const State* s) { return Decide(s, caller, cmd); };
}

// Blocks for an asynchronous command, within AwaitOptions' default deadline.
template <typename T>
absl::StatusOr<T> Await(absl::AnyInvocable<void(absl::AnyInvocable<void(absl::StatusOr<T>)>)> start) {
  return AwaitCallback<absl::StatusOr<T>>(std::move(start), {.what = "a command"});
}

RuleDefinition EventRule(const std::string& name, const std::string& event_type,
                         std::vector<v1::Condition> conditions, const std::string& title, int32_t due_in,
                         v1::TaskPriority priority, std::vector<int32_t> offsets) {
  RuleDefinition d;
  d.set_display_name(name);
  d.set_enabled(true);
  d.mutable_event()->set_event_type(event_type);
  for (auto& c : conditions) *d.mutable_event()->add_conditions() = std::move(c);
  auto* a = d.mutable_action();
  a->set_title(title);
  a->set_assignee(v1::ASSIGNEE_KIND_RECORD_OWNER);
  a->set_due_in_minutes(due_in);
  a->set_priority(priority);
  for (int32_t o : offsets) a->add_reminder_offsets_minutes(o);
  a->add_channels(v1::CHANNEL_IN_APP);
  a->add_channels(v1::CHANNEL_WECOM);
  return d;
}

v1::Condition Cond(const std::string& field, v1::ConditionOp op, std::vector<std::string> values = {}) {
  v1::Condition c;
  c.set_field(field);
  c.set_op(op);
  for (auto& v : values) c.add_values(std::move(v));
  return c;
}

}  // namespace

const std::vector<DefaultRule>& DefaultRules() {
  static const auto* rules = [] {
    constexpr int kHour = 60, kDay = 24 * 60;
    using topics::EventType;
    auto* out = new std::vector<DefaultRule>;
    out->push_back({"default.new_lead",
                    EventRule("新线索 24 小时内联系", EventType<customers::v1::LeadCreated>(), {},
                              "联系新线索：{record_name}", 24 * kHour, v1::TASK_PRIORITY_HIGH, {2 * kHour})});
    out->push_back({"default.proposal_follow_up",
                    EventRule("进入方案报价 3 天后跟进", EventType<opportunities::v1::OpportunityStageChanged>(),
                              {Cond("to_stage_id", v1::CONDITION_OP_EQ, {"proposal"})}, "跟进方案报价：{record_name}",
                              3 * kDay, v1::TASK_PRIORITY_NORMAL, {kDay})});
    {
      RuleDefinition d = EventRule("合同到期前 30 天续约", "", {}, "合同续约：{record_name}", 7 * kDay,
                                   v1::TASK_PRIORITY_HIGH, {kDay});
      d.clear_event();
      auto* t = d.mutable_date();
      t->set_aggregate_type(topics::opportunities::kContract.type);
      t->set_field("terms.end_date");
      t->set_offset_minutes(-30 * kDay);
      t->add_arm_on(EventType<opportunities::v1::ContractActivated>());
      t->add_disarm_on(EventType<opportunities::v1::ContractTerminated>());
      t->add_disarm_on(EventType<opportunities::v1::ContractExpired>());
      out->push_back({"default.contract_renewal", std::move(d)});
    }
    out->push_back({"default.return_visit",
                    EventRule("成交 15 天后回访", EventType<opportunities::v1::OpportunityWon>(), {},
                              "成交回访：{record_name}", 15 * kDay, v1::TASK_PRIORITY_NORMAL, {kDay})});
    out->push_back(
        {"default.lost_customer_care",
         EventRule("流失客户关怀", EventType<customers::v1::CustomerUpdated>(),
                   {Cond("changed_fields", v1::CONDITION_OP_CONTAINS, {"lifecycle_status"}),
                    Cond("profile.lifecycle_status", v1::CONDITION_OP_EQ, {"LIFECYCLE_STATUS_LOST"})},
                   "流失客户关怀：{record_name}", 2 * kDay, v1::TASK_PRIORITY_NORMAL, {})});
    {
      RuleDefinition d = EventRule("工单超时升级", EventType<tickets::v1::SlaBreached>(), {}, "工单已超时：{record_name}",
                                   2 * kHour, v1::TASK_PRIORITY_URGENT, {});
      d.mutable_action()->clear_channels();
      d.mutable_action()->add_channels(v1::CHANNEL_IN_APP);
      d.mutable_action()->add_channels(v1::CHANNEL_SMS);
      out->push_back({"default.sla_breach_escalation", std::move(d)});
    }
    {
      RuleDefinition d = EventRule("按下次跟进时间提醒", EventType<customers::v1::FollowUpRecorded>(),
                                   {Cond("next_follow_up_time", v1::CONDITION_OP_EXISTS)}, "按计划跟进：{record_name}", 0,
                                   v1::TASK_PRIORITY_NORMAL, {kHour});
      d.mutable_action()->set_due_field("next_follow_up_time");
      out->push_back({"default.next_follow_up", std::move(d)});
    }
    return out;
  }();
  return *rules;
}

absl::StatusOr<std::unique_ptr<TaskEngine>> TaskEngine::Open(eventlog::Log* log, projection::ProjectionDb* db,
                                                             Options options) {
  if (options.clock == nullptr) return absl::InvalidArgumentError("TaskEngine needs a clock");
  LinkEventTypes();
  // The same folds a rebuild uses: sources[0] is this topic, then the followed ones in order.
  const projection::ProjectionSpec spec = Spec(options);
  CRM_ASSIGN_OR_RETURN(auto writer,
                       projection::AggregateWriter::Open(
                           log, db,
                           {.topic = options.topic, .partitions = options.partitions, .source = kSource,
                            .tenant = options.tenant, .clock = options.clock, .observe_append = options.observe_append},
                           spec.sources[0].apply(db)));
  std::unique_ptr<TaskEngine> e(new TaskEngine(log, db, std::move(options), std::move(writer)));
  const Options& o = e->options_;
  if (o.seed_default_rules) CRM_RETURN_IF_ERROR(e->SeedDefaultRules());
  TaskEngine* raw = e.get();
  for (size_t i = 1; i < spec.sources.size(); ++i) {
    projection::Follower::Options fo;
    fo.topic = spec.sources[i].topic;
    fo.after_commit = [raw](const std::vector<eventlog::Record>&) {
      if (auto n = raw->ProcessPending(); !n.ok()) {
        server::LogWarn(absl::StrCat("automation: ", n.status().ToString()));
      }
    };
    CRM_ASSIGN_OR_RETURN(auto f, projection::Follower::Start(log, db, std::move(fo), spec.sources[i].apply(db)));
    e->followers_.push_back(std::move(f));
  }
  CRM_RETURN_IF_ERROR(e->ProcessPending().status());
  return e;
}

TaskEngine::~TaskEngine() {
  followers_.clear();  // no reaction may start once the writer is gone
  writer_.reset();
}

projection::ProjectionSpec TaskEngine::Spec(const Options& o) {
  projection::ProjectionSpec spec;
  spec.version = kProjectionVersion;
  spec.sources.push_back(projection::FoldSource(o.topic, true, o.partitions, &ApplyTasksRecord));
  const absl::TimeZone zone = o.zone;
  for (const std::string& topic : o.followed_topics) {
    spec.sources.push_back({.topic = topic, .owned = false, .partitions = 0,
                            .apply = [zone](projection::ProjectionDb* db) -> projection::ProjectionDb::ApplyFn {
                              LinkEventTypes();
                              auto book = std::make_shared<RuleBook>();
                              return [db, book, zone](const eventlog::Record& r, projection::Batch& b) {
                                return ApplyFollowedRecord(*db, FollowContext{book.get(), zone}, r, b);
                              };
                            }});
  }
  return spec;
}

absl::Status TaskEngine::WaitToken(const std::string& token, absl::string_view field, absl::Time deadline) {
  return projection::WaitForToken(*db_, token, field, deadline);
}

absl::Status TaskEngine::SeedDefaultRules() {
  for (const DefaultRule& d : DefaultRules()) {
    const std::string id = DerivedId("rules", d.key);
    auto w = Await<kernel::Written<RuleState>>([&](auto done) {
      store_.Execute<RuleKind>(
          Command<RuleState, RuleEvent>{
              .caller = kAutomation,
              .id = id,
              .decide = Plain<RuleState, RuleEvent>(kAutomation, tasks::CreateRule{d.definition, d.key}),
              .cause = {.source = common::v1::ACTOR_SOURCE_SYSTEM}},
          std::move(done));
    });
    if (!w.ok()) return w.status();
  }
  return absl::OkStatus();
}

// ---- Tasks ----

v1::Task TaskEngine::ToApi(const TaskState& s) const {
  v1::Task t;
  CopySameNamed(s, &t);
  CopySameNamed(s.profile(), &t);
  t.set_name(absl::StrCat("tasks/", s.id()));
  t.set_etag(std::to_string(s.version()));
  t.set_overdue(s.status() == v1::TASK_STATUS_OPEN && FromProto(s.profile().due_time()) <= options_.clock->Now());
  return t;
}

void TaskEngine::CreateTask(const Caller& c, const v1::CreateTaskRequest& req, Callback<v1::Task> done) {
  if (auto s = CheckRequestId(req.request_id()); !s.ok()) return done(s);
  TaskProfile p;
  CopySameNamed(req.task(), &p);
  const std::string id = req.request_id().empty() ? NewUuidV7(options_.clock->Now())
                                                  : DerivedId("tasks", absl::StrCat(c.user_id, "/", req.request_id()));
  auto shared = std::make_shared<Callback<v1::Task>>(std::move(done));
  WithRelated(
      c, p.related(), "task.related",
      [this, c, id, p, rid = req.request_id(), shared] {
        store_.Execute<TaskKind>(Command<TaskState, TaskEvent>{.caller = c,
                                                               .id = id,
                                                               .request_id = rid,
                                                               .decide = Plain<TaskState, TaskEvent>(c, tasks::CreateTask{p})},
                                 Reply<TaskState, v1::Task>(this, std::move(*shared)));
      },
      [shared](absl::Status s) { (*shared)(std::move(s)); });
}

void TaskEngine::UpdateTask(const Caller& c, const v1::UpdateTaskRequest& req, Callback<v1::Task> done) {
  auto t = ParseTarget(req.request_id(), req.task().name(), "task.name", req.etag(), "etag", "tasks");
  if (!t.ok()) return done(t.status());
  TaskProfile p;
  CopySameNamed(req.task(), &p);
  std::vector<std::string> paths(req.update_mask().paths().begin(), req.update_mask().paths().end());
  if (paths.empty()) paths = SetFields(p, EditableTaskFields());
  const bool moves = std::find(paths.begin(), paths.end(), "related") != paths.end();
  auto shared = std::make_shared<Callback<v1::Task>>(std::move(done));
  WithRelated(
      c, moves ? p.related() : "", "task.related",
      [this, c, target = *t, p, paths = std::move(paths), rid = req.request_id(), shared]() mutable {
        store_.Execute<TaskKind>(kernel::TargetCommand<TaskState, TaskEvent>(
                                     c, target, Plain<TaskState, TaskEvent>(c, tasks::UpdateTask{p, std::move(paths)})),
                                 Reply<TaskState, v1::Task>(this, std::move(*shared)));
      },
      [shared](absl::Status s) { (*shared)(std::move(s)); });
}

absl::Status TaskEngine::CheckRelated(const Caller& caller, const std::string& related) {
  if (related.empty() || !ValidRelated(related)) {
    return absl::OkStatus();  // the decision validates the shape
  }
  v1::RecordRef ref;
  CRM_ASSIGN_OR_RETURN(bool found, projection::ReadRow(db_->db(), rocksdb::ReadOptions(), rows::RecordRef(related), &ref));
  if (!found) return absl::NotFoundError(absl::StrCat(related, " does not exist"));
  if (!SeesRecord(caller, ref.owner_id(), ref.team_id(), /*in_pool=*/ref.owner_id().empty())) {
    return absl::PermissionDeniedError(absl::StrCat(related, " belongs to another owner or team"));
  }
  return absl::OkStatus();
}

void TaskEngine::WithRelated(const Caller& caller, const std::string& related, const std::string& field,
                             absl::AnyInvocable<void()> then, absl::AnyInvocable<void(absl::Status)> fail) {
  absl::Status s = CheckRelated(caller, related);
  if (!absl::IsNotFound(s)) {
    if (!s.ok()) return fail(s);
    return then();
  }
  projection::AfterCaughtUp(
      *log_, *db_, options_.followed_topics, absl::Now() + absl::Seconds(10),
      [this, caller, related, field, then = std::move(then), fail = std::move(fail)](absl::Status st) mutable {
        if (!st.ok()) return fail(st);
        absl::Status again = CheckRelated(caller, related);
        if (absl::IsNotFound(again)) return fail(InvalidFieldError(field, again.message()));
        if (!again.ok()) return fail(again);
        then();
      });
}

std::string TaskEngine::CustomerOf(const std::string& related) {
  if (absl::StartsWith(related, "customers/")) return related.substr(strlen("customers/"));
  if (related.empty()) return "";
  v1::RecordRef ref;
  auto found = projection::ReadRow(db_->db(), rocksdb::ReadOptions(), rows::RecordRef(related), &ref);
  return found.ok() && *found ? ref.customer_id() : "";
}

void TaskEngine::CompleteTask(const Caller& c, const v1::CompleteTaskRequest& req, Callback<v1::Task> done) {
  auto t = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "tasks");
  if (!t.ok()) return done(t.status());
  // The customer is looked up from the state the decision sees (serialised with the task's
  // other commands), not from a read before it.
  store_.Execute<TaskKind>(kernel::TargetCommand<TaskState, TaskEvent>(
                               c, *t,
                               [this, c, cmd = tasks::CompleteTask{req.note(), ""}](const TaskState* s) mutable {
                                 if (s != nullptr) cmd.customer_id = CustomerOf(s->profile().related());
                                 return Decide(s, c, cmd);
                               }),
                           Reply<TaskState, v1::Task>(this, std::move(done)));
}

void TaskEngine::CancelTask(const Caller& c, const v1::CancelTaskRequest& req, Callback<v1::Task> done) {
  auto t = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "tasks");
  if (!t.ok()) return done(t.status());
  store_.Execute<TaskKind>(kernel::TargetCommand<TaskState, TaskEvent>(
                               c, *t, Plain<TaskState, TaskEvent>(c, tasks::CancelTask{req.reason()})),
                           Reply<TaskState, v1::Task>(this, std::move(done)));
}

void TaskEngine::ReopenTask(const Caller& c, const v1::ReopenTaskRequest& req, Callback<v1::Task> done) {
  auto t = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "tasks");
  if (!t.ok()) return done(t.status());
  store_.Execute<TaskKind>(kernel::TargetCommand<TaskState, TaskEvent>(
                               c, *t, Plain<TaskState, TaskEvent>(c, tasks::ReopenTask{req.reason()})),
                           Reply<TaskState, v1::Task>(this, std::move(done)));
}

absl::StatusOr<v1::Task> TaskEngine::GetTask(const Caller& c, const v1::GetTaskRequest& req, absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(std::string id, ParseName(req.name(), "name", "tasks"));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  CRM_ASSIGN_OR_RETURN(auto s, ReadStateRow<TaskState>(db_->db(), rows::Task(id)));
  if (!s.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  if (!CanSee(c, *s)) return absl::PermissionDeniedError(absl::StrCat(req.name(), " belongs to another assignee or team"));
  return ToApi(*s);
}

absl::StatusOr<v1::ListTasksResponse> TaskEngine::ListTasks(const Caller& c, const v1::ListTasksRequest& req,
                                                            absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(int32_t page_size, PageSize(req.page_size(), "page_size"));
  if (!v1::TaskView_IsValid(req.view())) return InvalidFieldError("view", "is not a TaskView");
  CRM_ASSIGN_OR_RETURN(std::vector<FilterTerm> terms,
                       ParseFilterTerms(req.filter(), {"assignee_id", "assignee_role", "team_id", "related", "status",
                                                       "priority", "rule_id"}));
  std::map<std::string, std::string> f;
  for (auto& t : terms) f[t.field] = t.value;
  int status = -1, priority = -1;
  if (f.count("status")) {
    v1::TaskStatus st;
    if (!v1::TaskStatus_Parse(absl::StrCat("TASK_STATUS_", f["status"]), &st) || st == v1::TASK_STATUS_UNSPECIFIED) {
      return InvalidFieldError("filter", absl::StrCat("status is OPEN, DONE or CANCELLED, not '", f["status"], "'"));
    }
    status = st;
  }
  if (f.count("priority")) {
    v1::TaskPriority pr;
    if (!v1::TaskPriority_Parse(absl::StrCat("TASK_PRIORITY_", f["priority"]), &pr) ||
        pr == v1::TASK_PRIORITY_UNSPECIFIED) {
      return InvalidFieldError("filter", absl::StrCat("priority is LOW, NORMAL, HIGH or URGENT, not '", f["priority"], "'"));
    }
    priority = pr;
  }
  if (f.count("related") && !ValidRelated(f["related"])) {
    return InvalidFieldError("filter", "related is customers/{id}, opportunities/{id}, ...");
  }
  const std::string fingerprint = absl::StrCat(req.view(), "|", req.filter());
  CRM_ASSIGN_OR_RETURN(std::string after, ParsePositionToken(req.page_token(), fingerprint));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));

  const absl::Time now = options_.clock->Now();
  const absl::Time day_end =
      absl::FromCivil(absl::CivilDay(absl::ToCivilDay(now, options_.zone)) + 1, options_.zone);
  absl::Time from = absl::InfinitePast(), to = absl::InfiniteFuture();
  switch (req.view()) {
    case v1::TASK_VIEW_OVERDUE: to = now; break;
    case v1::TASK_VIEW_TODAY: from = now; to = day_end; break;
    case v1::TASK_VIEW_PLANNED: from = day_end; break;
    default: break;
  }
  const rocksdb::Snapshot* snap = db_->db()->GetSnapshot();
  auto release = absl::MakeCleanup([&] { db_->db()->ReleaseSnapshot(snap); });
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;

  // The narrowest indexes that answer the query; all but ir/ are ordered by due time, then id.
  std::vector<std::string> prefixes;
  bool by_due = true;
  if (req.view() != v1::TASK_VIEW_UNSPECIFIED) {
    if (f.count("assignee_id")) {
      prefixes.push_back(rows::AssigneePrefix(f["assignee_id"]));
    } else if (f.count("team_id") && f.count("assignee_role")) {
      prefixes.push_back(rows::QueuePrefix(f["team_id"], f["assignee_role"]));
    } else if (f.count("team_id")) {
      prefixes.push_back(rows::TeamPrefix(f["team_id"]));
    } else if (ReachOf(c) == Reach::kAll) {
      prefixes.push_back(rows::kOpenPrefix);
    } else if (ReachOf(c) == Reach::kTeam) {
      prefixes.push_back(rows::TeamPrefix(c.team));
    } else {
      prefixes.push_back(rows::AssigneePrefix(c.user_id));
      prefixes.push_back(rows::QueuePrefix(c.team, c.role));
    }
  } else if (f.count("related")) {
    prefixes.push_back(rows::RelatedPrefix(f["related"]));
    by_due = false;
  } else {
    prefixes.push_back(rows::kAllPrefix);
  }
  // Reads task `id` and says whether the caller sees it and the filter passes it.
  auto read_match = [&](absl::string_view id, TaskState* s) -> absl::StatusOr<bool> {
    CRM_ASSIGN_OR_RETURN(bool found, projection::ReadRow(db_->db(), ro, rows::Task(id), s));
    if (!found || !CanSee(c, *s)) return false;
    const auto& p = s->profile();
    return !((f.count("assignee_id") && p.assignee_id() != f["assignee_id"]) ||
             (f.count("assignee_role") && p.assignee_role() != f["assignee_role"]) ||
             (f.count("team_id") && p.team_id() != f["team_id"]) || (f.count("related") && p.related() != f["related"]) ||
             (status >= 0 && s->status() != status) || (priority >= 0 && p.priority() != priority) ||
             (f.count("rule_id") && s->origin().rule_id() != f["rule_id"]));
  };
  auto position = [](const TaskState& s) { return absl::StrCat(TimeKey(FromProto(s.profile().due_time())), s.id()); };

  Page page(page_size, absl::nullopt, after);
  v1::ListTasksResponse resp;
  WalkEnd end;
  if (!by_due) {
    // One record's tasks (few): read them all and sort by due time.
    std::vector<std::pair<std::string, TaskState>> matches;
    std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(ro));
    for (it->Seek(prefixes[0]); it->Valid() && it->key().starts_with(prefixes[0]); it->Next()) {
      TaskState s;
      const rocksdb::Slice key = it->key();
      CRM_ASSIGN_OR_RETURN(bool ok, read_match(absl::string_view(key.data(), key.size()).substr(prefixes[0].size()), &s));
      if (!ok) continue;
      std::string pos = position(s);
      if (pos > after) matches.emplace_back(std::move(pos), std::move(s));
    }
    CRM_RETURN_IF_ERROR(FromRocks(it->status(), "read tasks"));
    std::sort(matches.begin(), matches.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    end.reached_end = true;
    for (auto& [pos, s] : matches) {
      if (page.Takes(pos)) *resp.add_tasks() = ToApi(s);
      if (!page.More()) {
        end.reached_end = false;
        break;
      }
    }
  } else {
    // The indexes walked in step from the token (or the view's start) to the view's end.
    projection::IndexWalk walk{.prefixes = prefixes,
                               .lower = from == absl::InfinitePast() ? "" : TimeKey(from),
                               .upper = to == absl::InfiniteFuture() ? "" : TimeKey(to),
                               .after = after};
    CRM_ASSIGN_OR_RETURN(end, projection::WalkIndexes(db_->db(), ro, walk,
                                                      [&](absl::string_view pos, absl::string_view) -> absl::StatusOr<bool> {
                                                        if (pos.size() <= 8) return true;  // not a task row
                                                        TaskState s;
                                                        CRM_ASSIGN_OR_RETURN(bool ok, read_match(pos.substr(8), &s));
                                                        if (ok && page.Takes(pos)) *resp.add_tasks() = ToApi(s);
                                                        return page.More();
                                                      }));
  }
  resp.set_next_page_token(page.Token(end, fingerprint));
  resp.set_total_size(page.Total(end));
  return resp;
}

absl::StatusOr<v1::TaskCounts> TaskEngine::CountTasks(const Caller& c, const v1::CountTasksRequest& req,
                                                      absl::Time deadline) {
  if (!req.assignee_id().empty() && !req.team_id().empty()) {
    return InvalidFieldError("team_id", "give assignee_id or team_id, not both");
  }
  if (!req.team_id().empty() && !ManagesTeam(c, req.team_id())) {
    return absl::PermissionDeniedError("only a manager of the team or an admin counts a team's tasks");
  }
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  std::vector<std::string> open_prefixes, done_prefixes;
  if (!req.team_id().empty()) {
    open_prefixes.push_back(rows::TeamPrefix(req.team_id()));
    done_prefixes.push_back(rows::DoneTeamPrefix(req.team_id()));
  } else {
    const std::string user = req.assignee_id().empty() ? c.user_id : req.assignee_id();
    open_prefixes.push_back(rows::AssigneePrefix(user));
    done_prefixes.push_back(rows::DoneByPrefix(user));
    if (req.assignee_id().empty()) open_prefixes.push_back(rows::QueuePrefix(c.team, c.role));
  }
  const absl::Time now = options_.clock->Now();
  const absl::CivilDay today = absl::ToCivilDay(now, options_.zone);
  const absl::Time day_start = absl::FromCivil(today, options_.zone);
  const absl::Time day_end = absl::FromCivil(today + 1, options_.zone);
  const rocksdb::Snapshot* snap = db_->db()->GetSnapshot();
  auto release = absl::MakeCleanup([&] { db_->db()->ReleaseSnapshot(snap); });
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  // Counts only what the caller may see: a rep asking for a colleague's tasks gets the ones
  // visible to them.
  auto count = [&](const std::vector<std::string>& prefixes, absl::Time from, absl::Time to) -> absl::StatusOr<int32_t> {
    std::vector<std::pair<std::string, std::string>> ids;
    for (const auto& p : prefixes) CRM_RETURN_IF_ERROR(projection::ScanTimed(db_->db(), p, from, to, &ids, ro));
    int32_t n = 0;
    for (const auto& [unused, id] : ids) {
      TaskState s;
      CRM_ASSIGN_OR_RETURN(bool found, projection::ReadRow(db_->db(), ro, rows::Task(id), &s));
      if (found && CanSee(c, s)) ++n;
    }
    return n;
  };
  v1::TaskCounts out;
  CRM_ASSIGN_OR_RETURN(int32_t overdue, count(open_prefixes, absl::InfinitePast(), now));
  CRM_ASSIGN_OR_RETURN(int32_t today_n, count(open_prefixes, now, day_end));
  CRM_ASSIGN_OR_RETURN(int32_t planned, count(open_prefixes, day_end, absl::InfiniteFuture()));
  CRM_ASSIGN_OR_RETURN(int32_t done, count(done_prefixes, day_start, day_end));
  out.set_overdue(overdue);
  out.set_today(today_n);
  out.set_planned(planned);
  out.set_done_today(done);
  return out;
}

absl::StatusOr<v1::ListEventsResponse> TaskEngine::ListEvents(const Caller& c, const v1::ListEventsRequest& req,
                                                              absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(int32_t page_size, PageSize(req.page_size(), "page_size"));
  CRM_ASSIGN_OR_RETURN(int64_t offset, ParsePageToken(req.page_token(), req.parent()));
  const bool is_rule = absl::StartsWith(req.parent(), "rules/");
  if (!is_rule && !absl::StartsWith(req.parent(), "tasks/")) {
    return InvalidFieldError("parent", "must be tasks/{id} or rules/{id}");
  }
  CRM_ASSIGN_OR_RETURN(std::string id, ParseName(req.parent(), "parent", is_rule ? "rules" : "tasks"));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  int64_t version = 0;
  if (is_rule) {
    CRM_ASSIGN_OR_RETURN(auto s, ReadStateRow<RuleState>(db_->db(), rows::Rule(id)));
    if (!s.has_value()) return absl::NotFoundError(absl::StrCat(req.parent(), " not found"));
    version = s->version();
  } else {
    CRM_ASSIGN_OR_RETURN(auto s, ReadStateRow<TaskState>(db_->db(), rows::Task(id)));
    if (!s.has_value()) return absl::NotFoundError(absl::StrCat(req.parent(), " not found"));
    if (!CanSee(c, *s)) return absl::PermissionDeniedError(absl::StrCat(req.parent(), " belongs to another assignee or team"));
    version = s->version();
  }
  return projection::EventsPage<v1::ListEventsResponse>(db_->db(), id, version, offset, page_size, req.parent());
}

// ---- Rules ----

v1::Rule TaskEngine::ToApi(const RuleState& s) const {
  v1::Rule r;
  r.set_name(absl::StrCat("rules/", s.id()));
  *r.mutable_definition() = s.definition();
  r.set_default_key(s.default_key());
  *r.mutable_create_time() = s.create_time();
  *r.mutable_update_time() = s.update_time();
  r.set_etag(std::to_string(s.version()));
  r.set_deleted(s.deleted());
  return r;
}

void TaskEngine::CreateRule(const Caller& c, const v1::CreateRuleRequest& req, Callback<v1::Rule> done) {
  if (auto s = CheckRequestId(req.request_id()); !s.ok()) return done(s);
  const std::string id = req.request_id().empty() ? NewUuidV7(options_.clock->Now())
                                                  : DerivedId("rules", absl::StrCat(c.user_id, "/", req.request_id()));
  store_.Execute<RuleKind>(
      Command<RuleState, RuleEvent>{
          .caller = c,
          .id = id,
          .request_id = req.request_id(),
          .decide = Plain<RuleState, RuleEvent>(c, tasks::CreateRule{req.rule().definition(), ""})},
      Reply<RuleState, v1::Rule>(this, std::move(done)));
}

void TaskEngine::UpdateRule(const Caller& c, const v1::UpdateRuleRequest& req, Callback<v1::Rule> done) {
  auto t = ParseTarget(req.request_id(), req.rule().name(), "rule.name", req.etag(), "etag", "rules");
  if (!t.ok()) return done(t.status());
  store_.Execute<RuleKind>(kernel::TargetCommand<RuleState, RuleEvent>(
                               c, *t, Plain<RuleState, RuleEvent>(c, tasks::UpdateRule{req.rule().definition()})),
                           Reply<RuleState, v1::Rule>(this, std::move(done)));
}

void TaskEngine::DeleteRule(const Caller& c, const v1::DeleteRuleRequest& req, Callback<v1::Rule> done) {
  auto t = ParseTarget(req.request_id(), req.name(), "name", req.etag(), "etag", "rules");
  if (!t.ok()) return done(t.status());
  store_.Execute<RuleKind>(
      kernel::TargetCommand<RuleState, RuleEvent>(c, *t, Plain<RuleState, RuleEvent>(c, tasks::DeleteRule{})),
      Reply<RuleState, v1::Rule>(this, std::move(done)));
}

absl::StatusOr<v1::Rule> TaskEngine::GetRule(const Caller&, const v1::GetRuleRequest& req, absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(std::string id, ParseName(req.name(), "name", "rules"));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  CRM_ASSIGN_OR_RETURN(auto s, ReadStateRow<RuleState>(db_->db(), rows::Rule(id)));
  if (!s.has_value()) return absl::NotFoundError(absl::StrCat(req.name(), " not found"));
  return ToApi(*s);
}

absl::StatusOr<v1::ListRulesResponse> TaskEngine::ListRules(const Caller&, const v1::ListRulesRequest& req,
                                                            absl::Time deadline) {
  CRM_ASSIGN_OR_RETURN(int32_t page_size, PageSize(req.page_size(), "page_size"));
  const std::string fingerprint = absl::StrCat("rules|", req.show_deleted());
  CRM_ASSIGN_OR_RETURN(int64_t offset, ParsePageToken(req.page_token(), fingerprint));
  CRM_RETURN_IF_ERROR(WaitToken(req.min_consistency_token(), "min_consistency_token", deadline));
  std::vector<RuleState> all;
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(rows::kRulePrefix); it->Valid() && it->key().starts_with(rows::kRulePrefix); it->Next()) {
    RuleState s;
    if (!s.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError("undecodable rule row");
    }
    if (s.deleted() && !req.show_deleted()) continue;
    all.push_back(std::move(s));
  }
  CRM_RETURN_IF_ERROR(FromRocks(it->status(), "read rules"));
  std::sort(all.begin(), all.end(), [](const RuleState& a, const RuleState& b) {
    return std::make_pair(FromProto(a.create_time()), a.id()) < std::make_pair(FromProto(b.create_time()), b.id());
  });
  v1::ListRulesResponse resp;
  for (size_t i = offset; i < all.size() && resp.rules_size() < page_size; ++i) *resp.add_rules() = ToApi(all[i]);
  if (offset + resp.rules_size() < static_cast<int64_t>(all.size())) {
    resp.set_next_page_token(PageToken(offset + resp.rules_size(), fingerprint));
  }
  return resp;
}

// ---- Automation ----

absl::Status TaskEngine::Housekeep(const std::vector<std::string>& keys) {
  if (keys.empty()) return absl::OkStatus();
  projection::Batch b;
  for (const auto& k : keys) b.Delete(k);
  return db_->Commit(b, options_.topic, std::map<int32_t, int64_t>{});
}

void TaskEngine::WriteAction(const v1::PendingAction& a, absl::AnyInvocable<void(absl::StatusOr<bool>)> done) {
  const kernel::Cause cause{.source = common::v1::ACTOR_SOURCE_AUTOMATION,
                            .causation_id = a.origin().cause_event_id(),
                            .correlation_id = a.correlation_id()};
  // Written: an event was appended (the token); an action whose aggregate exists appends none.
  auto wrote = [done = std::move(done)](const auto& w) mutable {
    if (!w.ok()) return done(w.status());
    done(!w->token.empty());
  };
  if (a.reminder_only()) {
    store_.Execute<ReminderKind>(
        Command<v1::ReminderState, ReminderEvent>{
            .caller = kAutomation,
            .id = a.task_id(),
            .decide = [a](const v1::ReminderState* s) -> absl::StatusOr<std::vector<ReminderEvent>> {
              if (s != nullptr && s->version() > 0) return std::vector<ReminderEvent>{};
              v1::RuleReminderEmitted e;
              auto* r = e.mutable_reminder();
              const auto& p = a.profile();
              r->set_assignee_id(p.assignee_id());
              r->set_assignee_role(p.assignee_role());
              r->set_team_id(p.team_id());
              r->set_title(p.title());
              r->set_related(p.related());
              *r->mutable_due_time() = p.due_time();
              *r->mutable_channels() = p.channels();
              *e.mutable_origin() = a.origin();
              return std::vector<ReminderEvent>{std::move(e)};
            },
            .cause = cause},
        [wrote = std::move(wrote)](absl::StatusOr<kernel::Written<v1::ReminderState>> w) mutable { wrote(w); });
    return;
  }
  store_.Execute<TaskKind>(
      Command<TaskState, TaskEvent>{
          .caller = kAutomation,
          .id = a.task_id(),
          .decide = Plain<TaskState, TaskEvent>(kAutomation, CreateAutomatedTask{a.profile(), a.origin()}),
          .cause = cause},
      [wrote = std::move(wrote)](absl::StatusOr<kernel::Written<TaskState>> w) mutable { wrote(w); });
}

absl::StatusOr<int64_t> TaskEngine::PendingActions() const {
  int64_t n = 0;
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(rows::kPendingPrefix); it->Valid() && it->key().starts_with(rows::kPendingPrefix); it->Next()) ++n;
  CRM_RETURN_IF_ERROR(FromRocks(it->status(), "count pending actions"));
  return n;
}

absl::StatusOr<int64_t> TaskEngine::ProcessPending() {
  absl::MutexLock l(&pending_mu_);
  std::vector<v1::PendingAction> actions;
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(rows::kPendingPrefix); it->Valid() && it->key().starts_with(rows::kPendingPrefix) &&
                                       actions.size() < kMaxBatch;
       it->Next()) {
    v1::PendingAction a;
    if (!a.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat("undecodable pending action ", it->key().ToString()));
    }
    actions.push_back(std::move(a));
  }
  CRM_RETURN_IF_ERROR(FromRocks(it->status(), "read pending actions"));
  it.reset();
  if (actions.empty()) return 0;
  // A callback may come after the wait gave up: it reaches `stale` only through the batch.
  Completions all(static_cast<int>(actions.size()));
  std::vector<std::string> stale;
  for (const auto& a : actions) {
    WriteAction(a, [h = all.handle(), &stale, id = a.task_id()](absl::StatusOr<bool> wrote) {
      h.Done(wrote.status(), wrote.ok() && *wrote, [&] {
        // It existed: the row outlived its task's write.
        if (wrote.ok() && !*wrote) stale.push_back(rows::Pending(id));
      });
    });
  }
  absl::Status s = all.Wait(absl::Now() + options_.batch_timeout);
  CRM_RETURN_IF_ERROR(Housekeep(stale));
  CRM_RETURN_IF_ERROR(s);
  return all.written();
}

absl::StatusOr<TaskEngine::SchedulerRun> TaskEngine::RunScheduler(absl::Time now) {
  SchedulerRun run;
  // Reminders and overdue notices: "sr/<time><id>/<offset>".
  struct Item {
    std::string id;
    int32_t offset;
    absl::Time at;
  };
  std::vector<Item> items;
  {
    std::vector<std::pair<std::string, std::string>> unused;
    std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions()));
    const std::string prefix = rows::kSchedulePrefix;
    const std::string end = absl::StrCat(prefix, TimeKey(now + absl::Nanoseconds(1)));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix) && items.size() < kMaxBatch; it->Next()) {
      if (it->key().compare(end) >= 0) break;
      const std::string k = it->key().ToString();
      Item item;
      item.at = projection::TimeFromKey(absl::string_view(k).substr(prefix.size(), 8));
      item.id = k.substr(prefix.size() + 8, kIdLen);
      if (!absl::SimpleAtoi(k.substr(prefix.size() + 8 + kIdLen + 1), &item.offset)) continue;
      items.push_back(std::move(item));
    }
    CRM_RETURN_IF_ERROR(FromRocks(it->status(), "read the schedule"));
  }
  // Date triggers due: "dw/<fire time><rule>/<record>".
  struct Due {
    std::string key, rule, record;
  };
  std::vector<Due> dues;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions()));
    const std::string prefix = rows::kWatchDuePrefix;
    const std::string end = absl::StrCat(prefix, TimeKey(now + absl::Nanoseconds(1)));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix) && dues.size() < kMaxBatch; it->Next()) {
      if (it->key().compare(end) >= 0) break;
      const std::string k = it->key().ToString();
      if (k.size() < prefix.size() + 8 + kIdLen + 2) continue;
      dues.push_back({k, k.substr(prefix.size() + 8, kIdLen), k.substr(prefix.size() + 8 + kIdLen + 1)});
    }
    CRM_RETURN_IF_ERROR(FromRocks(it->status(), "read date triggers"));
  }

  std::vector<v1::PendingAction> date_actions;
  std::vector<std::string> stale;
  for (const Due& d : dues) {
    v1::DateWatch w;
    CRM_ASSIGN_OR_RETURN(bool has_watch, projection::ReadRow(db_->db(), rocksdb::ReadOptions(), rows::Watch(d.rule, d.record), &w));
    CRM_ASSIGN_OR_RETURN(auto rule, ReadStateRow<RuleState>(db_->db(), rows::Rule(d.rule)));
    int64_t version = 0;
    const RuleDefinition* def = rule.has_value() ? InForce(*rule, now, &version) : nullptr;
    const bool current = has_watch && w.armed() && rows::WatchDue(FromProto(w.fire_time()), d.rule, d.record) == d.key;
    absl::Time date;
    std::string text;
    PathValue pv;
    pv.values.push_back(w.date());
    const bool dated = DateOf(pv, options_.zone, &date, &text) ||
                       (absl::ParseTime(absl::RFC3339_full, w.date(), &date, nullptr));
    // A date already past when the rule was created is history, not a cause.
    if (!current || def == nullptr || !def->has_date() || !dated || date < FromProto(rule->create_time())) {
      stale.push_back(d.key);
      continue;
    }
    v1::RecordRef ref;
    CRM_RETURN_IF_ERROR(projection::ReadRow(db_->db(), rocksdb::ReadOptions(), rows::RecordRef(d.record), &ref).status());
    const absl::Time fire = FromProto(w.fire_time());
    v1::PendingAction a;
    a.set_task_id(DateTaskId(d.rule, d.record, w.date()));
    *a.mutable_profile() = MakeProfile(*def, ref, d.record, "", std::max(fire, now));
    auto* o = a.mutable_origin();
    o->set_rule_id(d.rule);
    o->set_rule_version(version);
    o->set_cause_record(d.record);
    o->set_cause_date(w.date());
    *o->mutable_fire_time() = w.fire_time();
    a.set_reminder_only(def->reminder_only());
    date_actions.push_back(std::move(a));
  }

  // A callback may come after the wait gave up: it reaches `run` and `stale` only through the
  // batch.
  Completions all(static_cast<int>(items.size() + date_actions.size()));
  for (const Item& item : items) {
    auto decide = item.offset < 0 ? Plain<TaskState, TaskEvent>(kScheduler, ReportOverdue{now})
                                  : Plain<TaskState, TaskEvent>(kScheduler, FireReminder{item.offset, now});
    store_.Execute<TaskKind>(
        Command<TaskState, TaskEvent>{.caller = kScheduler,
                                      .id = item.id,
                                      .decide = std::move(decide),
                                      .cause = {.source = common::v1::ACTOR_SOURCE_SYSTEM, .occurred_at = item.at}},
        [h = all.handle(), &run, overdue = item.offset < 0](absl::StatusOr<kernel::Written<TaskState>> w) {
          const bool wrote = w.ok() && !w->token.empty();
          h.Done(w.status(), wrote, [&] {
            if (wrote) ++(overdue ? run.overdue : run.reminders);
          });
        });
  }
  for (const auto& a : date_actions) {
    WriteAction(a, [h = all.handle(), &run, &stale, key = rows::WatchDue(FromProto(a.origin().fire_time()),
                                                                         a.origin().rule_id(), a.origin().cause_record())](
                       absl::StatusOr<bool> wrote) {
      h.Done(wrote.status(), wrote.ok() && *wrote, [&] {
        if (wrote.ok() && *wrote) ++run.date_tasks;
        if (wrote.ok() && !*wrote) stale.push_back(key);
      });
    });
  }
  absl::Status s = all.Wait(absl::Now() + options_.batch_timeout);
  CRM_RETURN_IF_ERROR(Housekeep(stale));
  CRM_RETURN_IF_ERROR(s);
  return run;
}

}  // namespace crm::tasks
