#include "services/tasks/rule.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "crm/customers/v1/customers_events.pb.h"
#include "crm/tickets/v1/tickets_events.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/grpc_status.h"
#include "libs/common/proto_time.h"
#include "libs/common/text.h"
#include "libs/eventlog/envelope.h"
#include "libs/topics/contracts.h"
#include "services/tasks/task.h"

namespace crm::tasks {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

namespace {

constexpr int kMaxConditions = 20;
constexpr int kMaxDueInMinutes = 366 * 24 * 60;

const Descriptor* FindType(const std::string& name) {
  return google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(name);
}

// Date triggers watch business records only (the ones tasks relate to).
bool KnownAggregate(const std::string& t) {
  const topics::AggregateContract* a = topics::FindAggregate(t);
  return a != nullptr && a->record;
}

bool IsTimestamp(const FieldDescriptor* fd) {
  return fd->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
         fd->message_type()->full_name() == google::protobuf::Timestamp::descriptor()->full_name();
}

std::string ScalarText(const Message& m, const FieldDescriptor* fd, int index) {
  const Reflection* r = m.GetReflection();
  const bool rep = fd->is_repeated();
  switch (fd->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: return absl::StrCat(rep ? r->GetRepeatedInt32(m, fd, index) : r->GetInt32(m, fd));
    case FieldDescriptor::CPPTYPE_INT64: return absl::StrCat(rep ? r->GetRepeatedInt64(m, fd, index) : r->GetInt64(m, fd));
    case FieldDescriptor::CPPTYPE_UINT32: return absl::StrCat(rep ? r->GetRepeatedUInt32(m, fd, index) : r->GetUInt32(m, fd));
    case FieldDescriptor::CPPTYPE_UINT64: return absl::StrCat(rep ? r->GetRepeatedUInt64(m, fd, index) : r->GetUInt64(m, fd));
    case FieldDescriptor::CPPTYPE_DOUBLE: return absl::StrCat(rep ? r->GetRepeatedDouble(m, fd, index) : r->GetDouble(m, fd));
    case FieldDescriptor::CPPTYPE_FLOAT: return absl::StrCat(rep ? r->GetRepeatedFloat(m, fd, index) : r->GetFloat(m, fd));
    case FieldDescriptor::CPPTYPE_BOOL: return (rep ? r->GetRepeatedBool(m, fd, index) : r->GetBool(m, fd)) ? "true" : "false";
    case FieldDescriptor::CPPTYPE_ENUM: return (rep ? r->GetRepeatedEnum(m, fd, index) : r->GetEnum(m, fd))->name();
    case FieldDescriptor::CPPTYPE_STRING: return rep ? r->GetRepeatedString(m, fd, index) : r->GetString(m, fd);
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      const Message& sub = rep ? r->GetRepeatedMessage(m, fd, index) : r->GetMessage(m, fd);
      if (IsTimestamp(fd)) {
        google::protobuf::Timestamp ts;
        ts.CopyFrom(sub);
        return google::protobuf::util::TimeUtil::ToString(ts);
      }
      return sub.ShortDebugString();
    }
  }
  return "";
}

// Compares as numbers when both parse, else as text: <0, 0, >0.
int Compare(const std::string& a, const std::string& b) {
  double x, y;
  if (absl::SimpleAtod(a, &x) && absl::SimpleAtod(b, &y)) return x < y ? -1 : (x > y ? 1 : 0);
  return a.compare(b);
}

bool ValidPathSyntax(const std::string& path) {
  if (path.empty() || path.size() > 200) return false;
  for (absl::string_view part : absl::StrSplit(path, '.')) {
    if (part.empty()) return false;
    for (char c : part) {
      if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '_') return false;
    }
  }
  return true;
}

// INVALID_ARGUMENT unless `v` is a value `fd` can hold, as ReadPath writes it.
absl::Status CheckValue(const FieldDescriptor* fd, const std::string& v) {
  switch (fd->cpp_type()) {
    case FieldDescriptor::CPPTYPE_ENUM:
      if (fd->enum_type()->FindValueByName(v) == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("'", v, "' is not a value of ", fd->enum_type()->full_name()));
      }
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_BOOL:
      if (v != "true" && v != "false") return absl::InvalidArgumentError(absl::StrCat("'", v, "' is not true or false"));
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      double d;
      if (!absl::SimpleAtod(v, &d)) return absl::InvalidArgumentError(absl::StrCat("'", v, "' is not a number"));
      return absl::OkStatus();
    }
    default:
      if (std::string problem = TextProblem(v, TextKind::kLine); !problem.empty()) {
        return absl::InvalidArgumentError(problem);
      }
      return absl::OkStatus();
  }
}

}  // namespace

std::unique_ptr<Message> DecodePayload(const common::v1::EventEnvelope& e) {
  const Descriptor* d = FindType(e.event_type());
  if (d == nullptr) return nullptr;
  const Message* proto = google::protobuf::MessageFactory::generated_factory()->GetPrototype(d);
  if (proto == nullptr) return nullptr;
  std::unique_ptr<Message> m(proto->New());
  if (!e.payload().UnpackTo(m.get())) return nullptr;
  return m;
}

absl::Status CheckPath(const std::string& type, const std::string& path, const FieldDescriptor** out) {
  const Descriptor* d = FindType(type);
  if (d == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown event type ", type));
  if (!ValidPathSyntax(path)) return absl::InvalidArgumentError(absl::StrCat("'", path, "' is not a field path"));
  const FieldDescriptor* fd = nullptr;
  std::vector<std::string> parts = absl::StrSplit(path, '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    fd = d->FindFieldByName(parts[i]);
    if (fd == nullptr) return absl::InvalidArgumentError(absl::StrCat(type, " has no field '", path, "'"));
    if (i + 1 < parts.size()) {
      if (fd->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || fd->is_repeated()) {
        return absl::InvalidArgumentError(absl::StrCat("'", parts[i], "' of ", type, " is not a message"));
      }
      d = fd->message_type();
    }
  }
  if (out != nullptr) *out = fd;
  return absl::OkStatus();
}

absl::StatusOr<PathValue> ReadPath(const Message& m, const std::string& path) {
  PathValue out;
  const Message* cur = &m;
  std::vector<std::string> parts = absl::StrSplit(path, '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    const FieldDescriptor* fd = cur->GetDescriptor()->FindFieldByName(parts[i]);
    if (fd == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(cur->GetDescriptor()->full_name(), " has no field '", parts[i], "'"));
    }
    const Reflection* r = cur->GetReflection();
    if (i + 1 < parts.size()) {
      if (fd->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || fd->is_repeated()) {
        return absl::InvalidArgumentError(absl::StrCat("'", parts[i], "' is not a message"));
      }
      if (!r->HasField(*cur, fd)) return out;
      cur = &r->GetMessage(*cur, fd);
      continue;
    }
    out.field = fd;
    if (fd->is_repeated()) {
      for (int k = 0; k < r->FieldSize(*cur, fd); ++k) out.values.push_back(ScalarText(*cur, fd, k));
    } else if (r->HasField(*cur, fd)) {
      out.values.push_back(ScalarText(*cur, fd, 0));
      if (IsTimestamp(fd)) {
        google::protobuf::Timestamp ts;
        ts.CopyFrom(r->GetMessage(*cur, fd));
        out.has_time = true;
        out.time = FromProto(ts);
      }
    }
  }
  return out;
}

bool Matches(const Message& payload, const v1::EventTrigger& trigger) {
  for (const auto& c : trigger.conditions()) {
    auto v = ReadPath(payload, c.field());
    if (!v.ok()) return false;
    const auto& vals = v->values;
    auto any_in = [&] {
      return std::any_of(vals.begin(), vals.end(), [&](const std::string& x) {
        return std::find(c.values().begin(), c.values().end(), x) != c.values().end();
      });
    };
    bool ok = false;
    switch (c.op()) {
      case v1::CONDITION_OP_EQ:
      case v1::CONDITION_OP_CONTAINS: ok = any_in(); break;
      case v1::CONDITION_OP_NE: ok = !any_in(); break;
      case v1::CONDITION_OP_EXISTS: ok = !vals.empty(); break;
      case v1::CONDITION_OP_NOT_EXISTS: ok = vals.empty(); break;
      case v1::CONDITION_OP_GT: ok = !vals.empty() && !c.values().empty() && Compare(vals[0], c.values(0)) > 0; break;
      case v1::CONDITION_OP_LT: ok = !vals.empty() && !c.values().empty() && Compare(vals[0], c.values(0)) < 0; break;
      default: ok = false;
    }
    if (!ok) return false;
  }
  return true;
}

bool DateOf(const PathValue& v, absl::TimeZone zone, absl::Time* out, std::string* text) {
  if (v.values.empty()) return false;
  if (v.has_time) {
    *out = v.time;
    *text = v.values[0];
    return true;
  }
  absl::CivilDay day;
  if (v.values[0].size() != 10 || !absl::ParseCivilTime(v.values[0], &day)) return false;
  *out = absl::FromCivil(day, zone);
  *text = v.values[0];
  return true;
}

std::string CollectionOf(const std::string& aggregate_type) {
  const topics::AggregateContract* a = topics::FindAggregate(aggregate_type);
  if (a != nullptr && a->record) return a->collection;
  // Not a record (settings, ticket types, ...): its type with an "s", the row keys earlier
  // builds wrote and a rebuild must reproduce; no task relates to these.
  return absl::StrCat(aggregate_type, "s");
}

bool UpdateRecordRef(const common::v1::EventEnvelope& env, const Message& payload, v1::RecordRef* ref) {
  bool found = false;
  if (eventlog::Is<customers::v1::CustomerReturnedToPool>(env) || eventlog::Is<customers::v1::LeadReleased>(env) ||
      eventlog::Is<tickets::v1::TicketAssigned>(env)) {
    ref->clear_owner_id();
    found = true;
  }
  auto take = [&](const Message& m, const std::vector<std::string>* changed) {
    const Reflection* r = m.GetReflection();
    auto get = [&](const char* name, std::string* into) {
      const FieldDescriptor* fd = m.GetDescriptor()->FindFieldByName(name);
      if (fd == nullptr || fd->cpp_type() != FieldDescriptor::CPPTYPE_STRING || fd->is_repeated()) return false;
      if (changed != nullptr && std::find(changed->begin(), changed->end(), name) == changed->end()) return false;
      std::string v = r->GetString(m, fd);
      if (v.empty() && changed == nullptr) return false;
      *into = std::move(v);
      found = true;
      return true;
    };
    // A ticket's owner is its assignee.
    if (!get("owner_id", ref->mutable_owner_id())) get("assignee_id", ref->mutable_owner_id());
    get("team_id", ref->mutable_team_id());
    get("customer_id", ref->mutable_customer_id());
    // The record's name: a customer's display_name, an opportunity's name, a lead's company or
    // contact, a contract's title.
    for (const char* name : {"display_name", "name", "company", "contact_name", "title"}) {
      if (get(name, ref->mutable_display_name())) break;
    }
  };
  std::vector<std::string> changed;
  const FieldDescriptor* cf = payload.GetDescriptor()->FindFieldByName("changed_fields");
  const bool is_update = cf != nullptr && cf->is_repeated() && cf->cpp_type() == FieldDescriptor::CPPTYPE_STRING;
  if (is_update) {
    const Reflection* r = payload.GetReflection();
    for (int i = 0; i < r->FieldSize(payload, cf); ++i) changed.push_back(r->GetRepeatedString(payload, cf, i));
  }
  take(payload, nullptr);
  const Reflection* r = payload.GetReflection();
  for (int i = 0; i < payload.GetDescriptor()->field_count(); ++i) {
    const FieldDescriptor* fd = payload.GetDescriptor()->field(i);
    if (fd->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || fd->is_repeated() || !r->HasField(payload, fd)) continue;
    take(r->GetMessage(payload, fd), is_update ? &changed : nullptr);
  }
  return found;
}

std::string FillTemplate(const std::string& text, const v1::RecordRef& ref, const std::string& record,
                         const std::string& event_type) {
  const std::string name = ref.display_name().empty() ? record : ref.display_name();
  const std::string short_type = event_type.substr(event_type.rfind('.') + 1);
  return absl::StrReplaceAll(text, {{"{record_name}", name}, {"{record}", record}, {"{event_type}", short_type}});
}

absl::Status ValidateRule(const RuleDefinition& d, const std::string& prefix) {
  auto field = [&](absl::string_view f) { return absl::StrCat(prefix, ".", f); };
  if (auto s = CheckText(d.display_name(), field("display_name"), 100, true); !s.ok()) return s;
  if (auto s = CheckText(d.description(), field("description"), 2000, false, TextKind::kMultiLine); !s.ok()) return s;
  switch (d.trigger_case()) {
    case RuleDefinition::kEvent: {
      const auto& t = d.event();
      if (FindType(t.event_type()) == nullptr) {
        return InvalidFieldError(field("event.event_type"),
                                 absl::StrCat("'", t.event_type(), "' is not an event type this service knows"));
      }
      if (t.conditions_size() > kMaxConditions) return InvalidFieldError(field("event.conditions"), "at most 20");
      for (int i = 0; i < t.conditions_size(); ++i) {
        const auto& c = t.conditions(i);
        const std::string f = field(absl::StrCat("event.conditions[", i, "]"));
        const FieldDescriptor* fd = nullptr;
        if (auto s = CheckPath(t.event_type(), c.field(), &fd); !s.ok()) {
          return InvalidFieldError(absl::StrCat(f, ".field"), s.message());
        }
        // A value the field can never hold would make a rule that silently never fires.
        for (const auto& v : c.values()) {
          if (auto s = CheckValue(fd, v); !s.ok()) return InvalidFieldError(absl::StrCat(f, ".values"), s.message());
        }
        if (!v1::ConditionOp_IsValid(c.op()) || c.op() == v1::CONDITION_OP_UNSPECIFIED) {
          return InvalidFieldError(absl::StrCat(f, ".op"), "must be EQ, NE, EXISTS, NOT_EXISTS, CONTAINS, GT or LT");
        }
        const bool needs_values = c.op() != v1::CONDITION_OP_EXISTS && c.op() != v1::CONDITION_OP_NOT_EXISTS;
        if (needs_values && c.values().empty()) return InvalidFieldError(absl::StrCat(f, ".values"), "needs a value");
        if (!needs_values && !c.values().empty()) return InvalidFieldError(absl::StrCat(f, ".values"), "takes no value");
      }
      break;
    }
    case RuleDefinition::kDate: {
      const auto& t = d.date();
      if (!KnownAggregate(t.aggregate_type())) {
        return InvalidFieldError(field("date.aggregate_type"),
                                 "must be customer, lead, opportunity, quote, contract or ticket");
      }
      if (!ValidPathSyntax(t.field())) return InvalidFieldError(field("date.field"), "must be a dotted field path");
      if (t.offset_minutes() < -kMaxDueInMinutes || t.offset_minutes() > kMaxDueInMinutes) {
        return InvalidFieldError(field("date.offset_minutes"), "must be within a year either way");
      }
      for (const auto* list : {&t.arm_on(), &t.disarm_on()}) {
        for (const auto& type : *list) {
          if (FindType(type) == nullptr) {
            return InvalidFieldError(field(list == &t.arm_on() ? "date.arm_on" : "date.disarm_on"),
                                     absl::StrCat("'", type, "' is not an event type this service knows"));
          }
        }
      }
      break;
    }
    default: return InvalidFieldError(field("trigger"), "set event or date");
  }
  const auto& a = d.action();
  if (auto s = CheckText(a.title(), field("action.title"), 200, true); !s.ok()) return s;
  if (auto s = CheckText(a.description(), field("action.description"), 4000, false, TextKind::kMultiLine); !s.ok()) return s;
  switch (a.assignee()) {
    case v1::ASSIGNEE_KIND_RECORD_OWNER: break;
    case v1::ASSIGNEE_KIND_USER:
      if (auto s = CheckText(a.assignee_id(), field("action.assignee_id"), 64, true); !s.ok()) return s;
      break;
    case v1::ASSIGNEE_KIND_ROLE:
      if (a.assignee_role() != "rep" && a.assignee_role() != "manager" && a.assignee_role() != "admin") {
        return InvalidFieldError(field("action.assignee_role"), "must be rep, manager or admin");
      }
      break;
    default: return InvalidFieldError(field("action.assignee"), "must be RECORD_OWNER, USER or ROLE");
  }
  if (a.due_in_minutes() < 0 || a.due_in_minutes() > kMaxDueInMinutes) {
    return InvalidFieldError(field("action.due_in_minutes"), "must be 0 to a year");
  }
  if (!a.due_field().empty()) {
    if (d.trigger_case() != RuleDefinition::kEvent) {
      return InvalidFieldError(field("action.due_field"), "only an event trigger has a payload to read it from");
    }
    const FieldDescriptor* fd = nullptr;
    if (auto s = CheckPath(d.event().event_type(), a.due_field(), &fd); !s.ok()) {
      return InvalidFieldError(field("action.due_field"), s.message());
    }
    if (!IsTimestamp(fd) || fd->is_repeated()) return InvalidFieldError(field("action.due_field"), "is not a Timestamp");
  }
  TaskProfile p;
  p.set_priority(a.priority());
  *p.mutable_reminder_offsets_minutes() = a.reminder_offsets_minutes();
  *p.mutable_channels() = a.channels();
  return ValidateTaskProfile(p, {"priority", "reminder_offsets_minutes", "channels"}, field("action"));
}

RuleDecision Decide(const RuleState* state, const Caller& caller, const CreateRule& cmd) {
  if (state != nullptr && state->version() > 0) {
    if (!cmd.default_key.empty()) return std::vector<RuleEvent>{};  // seeded already (maybe deleted since)
    return absl::AlreadyExistsError("rule id already exists");
  }
  if (auto s = ValidateRule(cmd.definition, "rule.definition"); !s.ok()) return s;
  v1::RuleCreated e;
  *e.mutable_definition() = cmd.definition;
  e.set_default_key(cmd.default_key);
  return std::vector<RuleEvent>{std::move(e)};
}

RuleDecision Decide(const RuleState* state, const Caller& caller, const UpdateRule& cmd) {
  if (state == nullptr || state->version() == 0 || state->deleted()) return absl::NotFoundError("rule not found");
  if (auto s = ValidateRule(cmd.definition, "rule.definition"); !s.ok()) return s;
  if (cmd.definition.SerializeAsString() == state->definition().SerializeAsString()) return std::vector<RuleEvent>{};
  v1::RuleUpdated e;
  *e.mutable_definition() = cmd.definition;
  return std::vector<RuleEvent>{std::move(e)};
}

RuleDecision Decide(const RuleState* state, const Caller& caller, const DeleteRule& cmd) {
  if (state == nullptr || state->version() == 0) return absl::NotFoundError("rule not found");
  if (state->deleted()) return std::vector<RuleEvent>{};
  return std::vector<RuleEvent>{v1::RuleDeleted()};
}

void Apply(RuleState& s, const RuleEvent& event, int64_t version, absl::Time at, const std::string& actor) {
  s.set_version(version);
  *s.mutable_update_time() = ToProto(at);
  v1::RuleRevision rev;
  rev.set_version(version);
  *rev.mutable_effective_time() = ToProto(at);
  if (const auto* e = std::get_if<v1::RuleCreated>(&event)) {
    *s.mutable_definition() = e->definition();
    s.set_default_key(e->default_key());
    s.set_created_by(actor);
    *s.mutable_create_time() = ToProto(at);
  } else if (const auto* e = std::get_if<v1::RuleUpdated>(&event)) {
    *s.mutable_definition() = e->definition();
  } else {
    s.set_deleted(true);
    rev.set_deleted(true);
  }
  *rev.mutable_definition() = s.definition();
  *s.add_revisions() = std::move(rev);
}

const RuleDefinition* InForce(const RuleState& s, absl::Time t, int64_t* version) {
  for (int i = s.revisions_size() - 1; i >= 0; --i) {
    const auto& rev = s.revisions(i);
    if (FromProto(rev.effective_time()) > t) continue;
    if (rev.deleted() || !rev.definition().enabled()) return nullptr;
    if (version != nullptr) *version = rev.version();
    return &rev.definition();
  }
  return nullptr;
}

}  // namespace crm::tasks
