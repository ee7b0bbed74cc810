#ifndef CRM_SERVICES_INTEGRATION_PUBLIC_EVENT_H_
#define CRM_SERVICES_INTEGRATION_PUBLIC_EVENT_H_

// The public form of an event (docs/architecture.md §1, issue 8): a CloudEvents 1.0 structured-mode JSON
// message for ERP/OA systems that do not speak protobuf, on crm.public.events.v1. Its schema
// per event type is docs/events/schemas/<type>.json (tools/gen_event_schemas.py).
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/eventlog/envelope.h"
#include "libs/eventlog/log.h"
#include "libs/topics/topics.h"

namespace crm::integration {

inline constexpr const char* kPublicTopic = topics::kPublic;
inline constexpr char kStructuredContentType[] = "application/cloudevents+json; charset=UTF-8";
// Header of every public record: "<topic>/<partition>/<offset>" of the protobuf original, by
// which the relay learns after a crash what it published already.
inline constexpr char kPositionHeader[] = "crm_position";

// "<topic>/<partition>/<offset>".
std::string PositionString(const eventlog::Record& r);
// Parses PositionString's form; nullopt when `s` is not one.
struct SourcePosition {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
};
std::optional<SourcePosition> ParsePosition(absl::string_view s);

// The structured-mode CloudEvent of the envelope in `record` (a record of a service's topic):
// the CloudEvents attributes, crm* extension attributes (aggregate, version, business time,
// actor, correlation, causation, tenant, position) and `data`, the payload in the proto3 JSON
// mapping with the proto field names. Every service's event types are known (their protos
// are linked in here). DATA_LOSS when the record holds no envelope; a payload of a type this
// build does not know (a newer service's) goes out as `data_base64` with datacontenttype
// application/protobuf, never dropped.
absl::StatusOr<std::string> PublicEventJson(const eventlog::Record& record);

// The public record of `record`: PublicEventJson with the structured-mode content-type and
// the position header.
absl::StatusOr<eventlog::Message> PublicEventMessage(const eventlog::Record& record);

}  // namespace crm::integration

#endif  // CRM_SERVICES_INTEGRATION_PUBLIC_EVENT_H_
