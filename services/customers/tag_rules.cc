// Behaviour tag rules (行为标签): validation, what an event contributes to a rule, and the
// pure decisions of tagging.
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "libs/common/grpc_status.h"
#include "services/customers/customer.h"

namespace crm::customers {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

const Descriptor* EventDescriptor(absl::string_view type) {
  return google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(std::string(type));
}

bool IsIntegerField(const FieldDescriptor* f) {
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      return !f->is_repeated();
    default:
      return false;
  }
}

int64_t IntegerValue(const google::protobuf::Message& m, const FieldDescriptor* f) {
  const auto* r = m.GetReflection();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: return r->GetInt32(m, f);
    case FieldDescriptor::CPPTYPE_INT64: return r->GetInt64(m, f);
    case FieldDescriptor::CPPTYPE_UINT32: return r->GetUInt32(m, f);
    default: return static_cast<int64_t>(r->GetUInt64(m, f));
  }
}

std::string TextValue(const google::protobuf::Message& m, const FieldDescriptor* f) {
  const auto* r = m.GetReflection();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_ENUM: return r->GetEnum(m, f)->name();
    case FieldDescriptor::CPPTYPE_BOOL: return r->GetBool(m, f) ? "true" : "false";
    default: return r->GetString(m, f);
  }
}

}  // namespace

absl::Status ValidateTagRule(const v1::TagRule& r, absl::string_view field) {
  auto at = [&](absl::string_view part) { return absl::StrCat(field, ".", part); };
  const bool id_ok = !r.id().empty() && r.id().size() <= 40 && std::all_of(r.id().begin(), r.id().end(), [](char c) {
    return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' || c == '-';
  });
  if (!id_ok) return InvalidFieldError(at("id"), "must match [a-z0-9_-]{1,40}");
  if (auto s = CheckText(r.tag(), at("tag"), 50, true); !s.ok()) return s;
  const Descriptor* d = EventDescriptor(r.event_type());
  if (d == nullptr) {
    return InvalidFieldError(at("event_type"), absl::StrCat("'", r.event_type(), "' is not a known event, e.g. crm.customers.v1.FollowUpRecorded"));
  }
  if (r.measure() == v1::TAG_RULE_MEASURE_UNSPECIFIED) return InvalidFieldError(at("measure"), "is required");
  if (r.measure() == v1::TAG_RULE_MEASURE_SUM) {
    const FieldDescriptor* f = d->FindFieldByName(r.sum_field());
    if (f == nullptr || !IsIntegerField(f)) {
      return InvalidFieldError(at("sum_field"), absl::StrCat("must name an integer field of ", r.event_type()));
    }
  } else if (!r.sum_field().empty()) {
    return InvalidFieldError(at("sum_field"), "is only for TAG_RULE_MEASURE_SUM");
  }
  if (!r.match_field().empty()) {
    const FieldDescriptor* f = d->FindFieldByName(r.match_field());
    if (f == nullptr || f->is_repeated() ||
        (f->cpp_type() != FieldDescriptor::CPPTYPE_STRING && f->cpp_type() != FieldDescriptor::CPPTYPE_ENUM &&
         f->cpp_type() != FieldDescriptor::CPPTYPE_BOOL)) {
      return InvalidFieldError(at("match_field"), absl::StrCat("must name a string, enum or bool field of ", r.event_type()));
    }
    if (auto s = CheckText(r.match_value(), at("match_value"), 200, false); !s.ok()) return s;
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_ENUM && f->enum_type()->FindValueByName(r.match_value()) == nullptr) {
      return InvalidFieldError(at("match_value"), absl::StrCat("is not a value of ", f->enum_type()->full_name()));
    }
  }
  if (r.window_days() < 0 || r.window_days() > 3650) return InvalidFieldError(at("window_days"), "must be 0 to 3650");
  if (r.threshold() < 0) return InvalidFieldError(at("threshold"), "must not be negative");
  return absl::OkStatus();
}

absl::optional<int64_t> RuleContribution(const v1::TagRule& rule, const google::protobuf::Any& payload,
                                         absl::string_view event_type) {
  if (event_type != rule.event_type()) return absl::nullopt;
  if (rule.measure() == v1::TAG_RULE_MEASURE_COUNT && rule.match_field().empty()) return 1;
  const Descriptor* d = EventDescriptor(event_type);
  if (d == nullptr) return absl::nullopt;
  std::unique_ptr<google::protobuf::Message> m(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(d)->New());
  if (!payload.UnpackTo(m.get())) return absl::nullopt;
  if (!rule.match_field().empty()) {
    const FieldDescriptor* f = d->FindFieldByName(rule.match_field());
    if (f == nullptr || TextValue(*m, f) != rule.match_value()) return absl::nullopt;
  }
  if (rule.measure() == v1::TAG_RULE_MEASURE_COUNT) return 1;
  const FieldDescriptor* f = d->FindFieldByName(rule.sum_field());
  if (f == nullptr || !IsIntegerField(f)) return absl::nullopt;
  return IntegerValue(*m, f);
}

bool HasRuleTag(const CustomerState& s, absl::string_view rule_id) {
  return std::any_of(s.rule_tags().begin(), s.rule_tags().end(),
                     [&](const v1::RuleTag& t) { return t.rule_id() == rule_id; });
}

absl::StatusOr<std::vector<SettingsEvent>> DecideSettings(const CustomerSettings&, const Caller& caller,
                                                          const std::vector<v1::TagRule>& rules) {
  if (rules.size() > 100) return InvalidFieldError("rules", "at most 100 rules");
  std::set<std::string> ids;
  for (size_t i = 0; i < rules.size(); ++i) {
    const std::string field = absl::StrCat("rules[", i, "]");
    if (auto s = ValidateTagRule(rules[i], field); !s.ok()) return s;
    if (!ids.insert(rules[i].id()).second) return InvalidFieldError(field + ".id", "repeats an earlier id");
  }
  v1::TagRulesSet e;
  for (const auto& r : rules) *e.add_rules() = r;
  return std::vector<SettingsEvent>{std::move(e)};
}

Decision Decide(const CustomerState* state, const Caller&, const ApplyRuleTag& cmd) {
  if (state == nullptr || state->purged()) return std::vector<CustomerEvent>{};
  const bool meets = cmd.meets && IsLive(*state);
  const bool tagged = HasRuleTag(*state, cmd.rule.id());
  if (meets && !tagged) {
    v1::CustomerRuleTagged e;
    e.set_rule_id(cmd.rule.id());
    e.set_tag(cmd.rule.tag());
    e.set_measure(cmd.measure);
    return std::vector<CustomerEvent>{std::move(e)};
  }
  if (!meets && tagged) {
    v1::CustomerRuleUntagged e;
    e.set_rule_id(cmd.rule.id());
    for (const auto& t : state->rule_tags()) {
      if (t.rule_id() == cmd.rule.id()) e.set_tag(t.tag());
    }
    e.set_measure(cmd.measure);
    return std::vector<CustomerEvent>{std::move(e)};
  }
  return std::vector<CustomerEvent>{};
}

void ApplyEvent(CustomerState& s, const v1::CustomerRuleTagged& e, const google::protobuf::Timestamp& at) {
  v1::RuleTag* t = s.add_rule_tags();
  t->set_tag(e.tag());
  t->set_rule_id(e.rule_id());
  *t->mutable_since() = at;
  t->set_measure(e.measure());
}

void ApplyEvent(CustomerState& s, const v1::CustomerRuleUntagged& e, const google::protobuf::Timestamp&) {
  auto* tags = s.mutable_rule_tags();
  for (int i = tags->size() - 1; i >= 0; --i) {
    if (tags->Get(i).rule_id() == e.rule_id()) tags->DeleteSubrange(i, 1);
  }
}

}  // namespace crm::customers
