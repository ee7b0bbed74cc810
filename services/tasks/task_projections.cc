#include "services/tasks/task_projections.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/common/proto_time.h"
#include "libs/common/request.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/envelope.h"
#include "libs/projection/aggregate_writer.h"
#include "libs/projection/fold.h"
#include "libs/projection/rows.h"

namespace crm::tasks {

using common::v1::EventEnvelope;
using projection::Batch;
using projection::IndexRows;
using projection::ProjectionDb;
using projection::TimeKey;

namespace rows {
std::string Task(absl::string_view id) { return absl::StrCat("t/", id); }
std::string Rule(absl::string_view id) { return absl::StrCat("u/", id); }
std::string Reminder(absl::string_view id) { return absl::StrCat("m/", id); }
std::string AssigneePrefix(absl::string_view u) { return absl::StrCat("ia/", u, "/"); }
std::string QueuePrefix(absl::string_view team, absl::string_view role) { return absl::StrCat("iq/", team, "/", role, "/"); }
std::string TeamPrefix(absl::string_view team) { return absl::StrCat("it/", team, "/"); }
std::string RelatedPrefix(absl::string_view related) { return absl::StrCat("ir/", related, "/"); }
std::string DoneByPrefix(absl::string_view u) { return absl::StrCat("ca/", u, "/"); }
std::string DoneTeamPrefix(absl::string_view team) { return absl::StrCat("ct/", team, "/"); }
std::string RecordRef(absl::string_view record) { return absl::StrCat("v/", record); }
std::string Pending(absl::string_view id) { return absl::StrCat(kPendingPrefix, id); }
std::string Watch(absl::string_view rule, absl::string_view record) { return absl::StrCat("dv/", rule, "/", record); }
std::string WatchDue(absl::Time fire, absl::string_view rule, absl::string_view record) {
  return absl::StrCat(kWatchDuePrefix, TimeKey(fire), rule, "/", record);
}
std::string Fired(absl::string_view rule, absl::string_view record, absl::string_view date) {
  return absl::StrCat("df/", rule, "/", record, "/", date);
}
}  // namespace rows

absl::StatusOr<TaskEvent> UnpackTaskEvent(const EventEnvelope& e) {
  return projection::UnpackEvent<TaskEvent>(e);
}

absl::StatusOr<RuleEvent> UnpackRuleEvent(const EventEnvelope& e) {
  return projection::UnpackEvent<RuleEvent>(e);
}

std::string EventTaskId(const std::string& rule_id, const std::string& event_id) {
  return DerivedId("tasks", absl::StrCat(rule_id, "/", event_id));
}

std::string DateTaskId(const std::string& rule_id, const std::string& record, const std::string& date) {
  return DerivedId("tasks", absl::StrCat(rule_id, "/", record, "@", date));
}

void ApplyTask(TaskState& s, const TaskEvent& e, int64_t v, absl::Time at, const std::string& actor) {
  Apply(s, e, v, at, actor);
}
void ApplyRule(RuleState& s, const RuleEvent& e, int64_t v, absl::Time at, const std::string& actor) {
  Apply(s, e, v, at, actor);
}
void ApplyReminder(v1::ReminderState& s, const ReminderEvent& e, int64_t version, absl::Time at, const std::string&) {
  s.set_version(version);
  *s.mutable_reminder() = std::get<0>(e).reminder();
  *s.mutable_origin() = std::get<0>(e).origin();
  *s.mutable_create_time() = ToProto(at);
}

namespace {

IndexRows TaskIndex(const TaskState& s) {
  IndexRows out;
  if (s.version() == 0) return out;
  const auto& p = s.profile();
  if (!p.related().empty()) out.push_back({absl::StrCat(rows::RelatedPrefix(p.related()), s.id()), ""});
  const std::string due = TimeKey(FromProto(p.due_time()));
  out.push_back({absl::StrCat(rows::kAllPrefix, due, s.id()), ""});
  if (s.status() == v1::TASK_STATUS_DONE) {
    const std::string close = TimeKey(FromProto(s.close_time()));
    out.push_back({absl::StrCat(rows::DoneByPrefix(s.closed_by()), close, s.id()), ""});
    out.push_back({absl::StrCat(rows::DoneTeamPrefix(p.team_id()), close, s.id()), ""});
  }
  if (s.status() != v1::TASK_STATUS_OPEN) return out;
  if (!p.assignee_id().empty()) {
    out.push_back({absl::StrCat(rows::AssigneePrefix(p.assignee_id()), due, s.id()), ""});
  } else {
    out.push_back({absl::StrCat(rows::QueuePrefix(p.team_id(), p.assignee_role()), due, s.id()), ""});
  }
  out.push_back({absl::StrCat(rows::TeamPrefix(p.team_id()), due, s.id()), ""});
  out.push_back({absl::StrCat(rows::kOpenPrefix, due, s.id()), ""});
  for (const DueItem& item : PendingItems(s)) {
    out.push_back({absl::StrCat(rows::kSchedulePrefix, TimeKey(item.at), s.id(), "/", item.offset_minutes), ""});
  }
  return out;
}

IndexRows NoIndex(const RuleState&) { return {}; }
IndexRows NoReminderIndex(const v1::ReminderState&) { return {}; }

absl::StatusOr<ReminderEvent> UnpackReminderEvent(const EventEnvelope& e) {
  return projection::UnpackEvent<ReminderEvent>(e);
}

// An action automation decided on is done: its pending row goes, and a date trigger's watch
// is marked fired for that date.
void Settle(Batch& b, const std::string& id, const v1::Origin& o) {
  b.Delete(rows::Pending(id));
  if (!o.cause_date().empty()) {
    b.Put(rows::Fired(o.rule_id(), o.cause_record(), o.cause_date()), "");
    b.Delete(rows::WatchDue(FromProto(o.fire_time()), o.rule_id(), o.cause_record()));
  }
}

}  // namespace

absl::Status ApplyTasksRecord(ProjectionDb& db, const eventlog::Record& r, Batch& b) {
  CRM_ASSIGN_OR_RETURN(EventEnvelope env, eventlog::EnvelopeOf(r));
  const std::string& type = env.aggregate_type();
  const std::string& id = env.aggregate_id();
  if (type == topics::tasks::kTask.type) {
    projection::FoldedEvent<TaskState, TaskEvent> folded;
    CRM_ASSIGN_OR_RETURN(bool next, (projection::FoldRow<TaskState, TaskEvent>(db, r, env, b, rows::Task(id),
                                                                               &UnpackTaskEvent, &TaskIndex,
                                                                               &ApplyTask, &folded)));
    if (next) {
      if (const auto* c = std::get_if<v1::TaskCreated>(&folded.event()); c != nullptr && c->has_origin()) {
        Settle(b, id, c->origin());
      }
    }
    return absl::OkStatus();
  }
  if (type == topics::tasks::kRule.type) {
    projection::FoldedEvent<RuleState, RuleEvent> folded;
    CRM_ASSIGN_OR_RETURN(bool next, (projection::FoldRow<RuleState, RuleEvent>(db, r, env, b, rows::Rule(id),
                                                                               &UnpackRuleEvent, &NoIndex,
                                                                               &ApplyRule, &folded)));
    if (next) {  // a count of rule events: the same however partitions interleave
      std::string gen;
      int64_t n = 0;
      if (db.Get(b, rows::kRulesGeneration, &gen).ok()) absl::SimpleAtoi(gen, &n);
      b.Put(rows::kRulesGeneration, absl::StrCat(n + 1));
    }
    return absl::OkStatus();
  }
  if (type == topics::tasks::kReminder.type) {
    projection::FoldedEvent<v1::ReminderState, ReminderEvent> folded;
    CRM_ASSIGN_OR_RETURN(bool next, (projection::FoldRow<v1::ReminderState, ReminderEvent>(
                                        db, r, env, b, rows::Reminder(id), &UnpackReminderEvent, &NoReminderIndex,
                                        &ApplyReminder, &folded)));
    if (next) Settle(b, id, std::get<0>(folded.event()).origin());
    return absl::OkStatus();
  }
  return absl::DataLossError(absl::StrCat("unknown aggregate type ", type));
}

absl::StatusOr<std::shared_ptr<const RuleBook::Rules>> RuleBook::Get(ProjectionDb& db) {
  std::string gen;
  rocksdb::Status s = db.db()->Get(rocksdb::ReadOptions(), rows::kRulesGeneration, &gen);
  if (!s.ok() && !s.IsNotFound()) return projection::FromRocks(s, "read the rules' generation");
  absl::MutexLock l(&mu_);
  if (gen == generation_ && rules_ != nullptr) return rules_;
  auto rules = std::make_shared<Rules>();
  std::unique_ptr<rocksdb::Iterator> it(db.db()->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(rows::kRulePrefix); it->Valid() && it->key().starts_with(rows::kRulePrefix); it->Next()) {
    RuleState rule;
    if (!rule.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat("undecodable rule row ", it->key().ToString()));
    }
    rules->push_back(std::move(rule));
  }
  CRM_RETURN_IF_ERROR(projection::FromRocks(it->status(), "read the rules"));
  generation_ = gen;
  rules_ = std::move(rules);
  return rules_;
}

TaskProfile MakeProfile(const RuleDefinition& def, const v1::RecordRef& ref, const std::string& record,
                        const std::string& event_type, absl::Time due_base) {
  const auto& a = def.action();
  TaskProfile p;
  p.set_title(FillTemplate(a.title(), ref, record, event_type));
  p.set_description(FillTemplate(a.description(), ref, record, event_type));
  p.set_team_id(ref.team_id());
  switch (a.assignee()) {
    case v1::ASSIGNEE_KIND_USER: p.set_assignee_id(a.assignee_id()); break;
    case v1::ASSIGNEE_KIND_ROLE: p.set_assignee_role(a.assignee_role()); break;
    default:
      if (!ref.owner_id().empty()) {
        p.set_assignee_id(ref.owner_id());
      } else {
        p.set_assignee_role(ref.team_id().empty() ? "admin" : "manager");  // the pool's: someone decides
      }
  }
  if (ValidRelated(record)) p.set_related(record);
  *p.mutable_due_time() = ToProto(DueOnTheHour(due_base + absl::Minutes(a.due_in_minutes())));
  p.set_priority(a.priority());
  *p.mutable_reminder_offsets_minutes() = a.reminder_offsets_minutes();
  *p.mutable_channels() = a.channels();
  return p;
}

namespace {

bool Contains(const google::protobuf::RepeatedPtrField<std::string>& list, const std::string& v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

absl::StatusOr<bool> Exists(ProjectionDb& db, Batch& b, const std::string& key) {
  std::string unused;
  absl::Status s = db.Get(b, key, &unused);
  if (s.ok()) return true;
  if (absl::IsNotFound(s)) return false;
  return s;
}

// An event trigger's decision for one event.
absl::Status EvaluateEvent(ProjectionDb& db, Batch& b, const RuleState& rule, const RuleDefinition& def, int64_t version,
                           const EventEnvelope& env, const google::protobuf::Message& payload,
                           const v1::RecordRef& ref, const std::string& record) {
  if (!Matches(payload, def.event())) return absl::OkStatus();
  absl::Time base = projection::OccurredAt(env);
  if (!def.action().due_field().empty()) {
    auto v = ReadPath(payload, def.action().due_field());
    if (!v.ok() || !v->has_time) return absl::OkStatus();  // nothing to plan by
    base = v->time;
  }
  const std::string id = EventTaskId(rule.id(), env.event_id());
  const std::string state_row = def.reminder_only() ? rows::Reminder(id) : rows::Task(id);
  CRM_ASSIGN_OR_RETURN(bool done, Exists(db, b, state_row));
  if (done) return absl::OkStatus();  // a replay or a rebuild: it was made
  v1::PendingAction a;
  a.set_task_id(id);
  *a.mutable_profile() = MakeProfile(def, ref, record, env.event_type(), base);
  auto* o = a.mutable_origin();
  o->set_rule_id(rule.id());
  o->set_rule_version(version);
  o->set_cause_event_id(env.event_id());
  o->set_cause_event_type(env.event_type());
  o->set_cause_record(record);
  a.set_reminder_only(def.reminder_only());
  a.set_correlation_id(env.correlation_id());
  b.Put(rows::Pending(id), projection::DeterministicBytes(a));
  return absl::OkStatus();
}

// A date trigger's watch on the event's record.
absl::Status UpdateWatch(ProjectionDb& db, Batch& b, const FollowContext& ctx, const RuleState& rule,
                         const v1::DateTrigger& t, const EventEnvelope& env, const google::protobuf::Message& payload,
                         const std::string& record) {
  v1::DateWatch w;
  const std::string key = rows::Watch(rule.id(), record);
  CRM_ASSIGN_OR_RETURN(bool had, projection::ReadRow(db, b, key, &w));
  const v1::DateWatch before = w;
  w.set_rule_id(rule.id());
  w.set_record(record);
  if (Contains(t.disarm_on(), env.event_type())) {
    w.set_armed(false);
  } else if (Contains(t.arm_on(), env.event_type()) || t.arm_on().empty()) {
    w.set_armed(true);
  }
  if (auto v = ReadPath(payload, t.field()); v.ok()) {
    absl::Time date;
    std::string text;
    if (DateOf(*v, ctx.zone, &date, &text) && text != w.date()) {
      w.set_date(text);
      *w.mutable_fire_time() = ToProto(date + absl::Minutes(t.offset_minutes()));
      *w.mutable_seen_time() = env.recorded_at();
    }
  }
  if (had && projection::DeterministicBytes(w) == projection::DeterministicBytes(before)) return absl::OkStatus();
  auto indexed = [&](const v1::DateWatch& x) -> absl::StatusOr<bool> {
    if (!x.armed() || x.date().empty()) return false;
    CRM_ASSIGN_OR_RETURN(bool fired, Exists(db, b, rows::Fired(x.rule_id(), x.record(), x.date())));
    return !fired;
  };
  if (had) {
    CRM_ASSIGN_OR_RETURN(bool was, indexed(before));
    if (was) b.Delete(rows::WatchDue(FromProto(before.fire_time()), rule.id(), record));
  }
  CRM_ASSIGN_OR_RETURN(bool is, indexed(w));
  if (is) b.Put(rows::WatchDue(FromProto(w.fire_time()), rule.id(), record), "");
  b.Put(key, projection::DeterministicBytes(w));
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyFollowedRecord(ProjectionDb& db, const FollowContext& ctx, const eventlog::Record& r, Batch& b) {
  CRM_ASSIGN_OR_RETURN(EventEnvelope env, eventlog::EnvelopeOf(r));
  std::unique_ptr<google::protobuf::Message> payload = DecodePayload(env);
  if (payload == nullptr) return absl::OkStatus();  // a type this build does not know
  const std::string record = absl::StrCat(CollectionOf(env.aggregate_type()), "/", env.aggregate_id());
  v1::RecordRef ref;
  CRM_RETURN_IF_ERROR(projection::ReadRow(db, b, rows::RecordRef(record), &ref).status());
  const std::string before = projection::DeterministicBytes(ref);
  UpdateRecordRef(env, *payload, &ref);
  if (env.aggregate_type() == topics::customers::kCustomer.type) ref.set_customer_id(env.aggregate_id());
  std::string after = projection::DeterministicBytes(ref);
  if (after != before) b.Put(rows::RecordRef(record), after);

  CRM_ASSIGN_OR_RETURN(auto rules, ctx.book->Get(db));
  const absl::Time recorded = projection::RecordedAt(env);
  for (const RuleState& rule : *rules) {
    int64_t version = 0;
    const RuleDefinition* def = InForce(rule, recorded, &version);
    if (def == nullptr) continue;
    if (def->has_event()) {
      if (def->event().event_type() != env.event_type()) continue;
      CRM_RETURN_IF_ERROR(EvaluateEvent(db, b, rule, *def, version, env, *payload, ref, record));
    } else if (def->has_date() && def->date().aggregate_type() == env.aggregate_type()) {
      CRM_RETURN_IF_ERROR(UpdateWatch(db, b, ctx, rule, def->date(), env, *payload, record));
    }
  }
  return absl::OkStatus();
}

}  // namespace crm::tasks
