#ifndef CRM_SERVICES_TASKS_RULE_H_
#define CRM_SERVICES_TASKS_RULE_H_

// The automation rule aggregate (自动化规则) and how a rule reads another service's events:
// field paths over any event payload, conditions, dates. Pure, no I/O.
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crm/common/v1/envelope.pb.h"
#include "crm/tasks/v1/tasks_events.pb.h"
#include "google/protobuf/message.h"
#include "libs/common/caller.h"

namespace crm::tasks {

using v1::RuleDefinition;
using v1::RuleState;

using RuleEvent = std::variant<v1::RuleCreated, v1::RuleUpdated, v1::RuleDeleted>;
using RuleDecision = absl::StatusOr<std::vector<RuleEvent>>;

// INVALID_ARGUMENT naming "<prefix>.<field>" unless the definition is complete: a name, one
// trigger (an event type this build knows, conditions on fields its payload has; or a date
// trigger on a known aggregate type with a field path), and an action with a title and an
// assignee that can be resolved (and, with due_field, a Timestamp field of the event).
absl::Status ValidateRule(const RuleDefinition& d, const std::string& prefix);

struct CreateRule {
  RuleDefinition definition;
  std::string default_key;  // the service's own defaults only
};
struct UpdateRule {
  RuleDefinition definition;
};
struct DeleteRule {
};

// Who may define rules is the permission matrix's (admins: the rpcs' access options); the
// service seeds its default rules itself. No role check here.
RuleDecision Decide(const RuleState* state, const Caller& caller, const CreateRule& cmd);
RuleDecision Decide(const RuleState* state, const Caller& caller, const UpdateRule& cmd);
RuleDecision Decide(const RuleState* state, const Caller& caller, const DeleteRule& cmd);

void Apply(RuleState& state, const RuleEvent& event, int64_t version, absl::Time at, const std::string& actor);

// The definition in force for a cause recorded at `t` (the last revision written at or before
// it), with its version; null when none was, or that revision is deleted or disabled.
const RuleDefinition* InForce(const RuleState& s, absl::Time t, int64_t* version);

// ---- Reading events of any service ----

// The payload of `e` as a message of the type its event_type names (any type compiled into
// this binary); null when the type is unknown or the payload does not parse.
std::unique_ptr<google::protobuf::Message> DecodePayload(const common::v1::EventEnvelope& e);

// The values at a dotted path of proto field names ("profile.lifecycle_status") as text:
// enum value names, decimal numbers, true/false, strings, Timestamps in RFC 3339. One value per
// element for a repeated field; none when a message on the way or the field is unset (proto3
// scalars at their default count as unset). INVALID_ARGUMENT when the path names no field.
struct PathValue {
  std::vector<std::string> values;
  const google::protobuf::FieldDescriptor* field = nullptr;
  // For a Timestamp field that is set.
  bool has_time = false;
  absl::Time time;
};
absl::StatusOr<PathValue> ReadPath(const google::protobuf::Message& m, const std::string& path);
// INVALID_ARGUMENT unless `path` names a field of `type` (a message full name).
absl::Status CheckPath(const std::string& type, const std::string& path, const google::protobuf::FieldDescriptor** fd);

// Whether `payload` (an event of the trigger's type) meets every condition.
bool Matches(const google::protobuf::Message& payload, const v1::EventTrigger& trigger);

// A date field's value as the moment it denotes: yyyy-MM-dd is midnight in `zone`; a
// Timestamp is itself. False when unset or unparsable.
bool DateOf(const PathValue& v, absl::TimeZone zone, absl::Time* out, std::string* text);

// The collection of an aggregate type's resources ("customer" -> "customers"): the contract's
// for business records (libs/topics/contracts.h).
std::string CollectionOf(const std::string& aggregate_type);

// What an event says about its record's owner, team, name and customer: the fields owner_id,
// team_id, display_name/name/title and customer_id at the top of the payload or in a message
// one level down (profile, terms); an update names its changed fields. Returns whether any was
// found. A release to the public pool clears the owner.
bool UpdateRecordRef(const common::v1::EventEnvelope& env, const google::protobuf::Message& payload,
                     v1::RecordRef* ref);

// Title and description with {record_name}, {record} and {event_type} filled in.
std::string FillTemplate(const std::string& text, const v1::RecordRef& ref, const std::string& record,
                         const std::string& event_type);

}  // namespace crm::tasks

#endif  // CRM_SERVICES_TASKS_RULE_H_
