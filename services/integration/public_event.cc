#include "services/integration/public_event.h"

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "crm/customers/v1/customers_events.pb.h"
#include "crm/opportunities/v1/opportunities_events.pb.h"
#include "crm/tasks/v1/tasks_events.pb.h"
#include "crm/tickets/v1/tickets_events.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"

namespace crm::integration {
namespace {

using google::protobuf::util::TimeUtil;
using nlohmann::json;

// "ACTOR_SOURCE_API" -> "api".
std::string ActorSourceName(common::v1::ActorSource s) {
  std::string name = common::v1::ActorSource_Name(s);
  constexpr absl::string_view kPrefix = "ACTOR_SOURCE_";
  if (absl::StartsWith(name, kPrefix)) name = name.substr(kPrefix.size());
  return absl::AsciiStrToLower(name);
}

// Keeps every service's events file in the generated pool. The relay looks types up by
// name only, and a static link keeps only the protos some code names: without this, the
// tasks and tickets events went out as data_base64, which their published schemas refuse.
void LinkEveryServicesEvents() {
  google::protobuf::LinkMessageReflection<customers::v1::CustomerCreated>();
  google::protobuf::LinkMessageReflection<opportunities::v1::OpportunityCreated>();
  google::protobuf::LinkMessageReflection<tasks::v1::TaskCreated>();
  google::protobuf::LinkMessageReflection<tickets::v1::TicketCreated>();
}

// The payload as proto3 JSON, or nullopt when this build has no descriptor for its type.
absl::StatusOr<std::optional<json>> PayloadJson(const eventlog::EventEnvelope& e) {
  LinkEveryServicesEvents();
  const google::protobuf::Descriptor* d =
      google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(e.event_type());
  if (d == nullptr) return std::optional<json>();
  std::unique_ptr<google::protobuf::Message> m(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(d)->New());
  if (!e.payload().UnpackTo(m.get())) {
    return absl::DataLossError(absl::StrCat("event ", e.event_id(), ": payload is not a ", e.event_type()));
  }
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  std::string text;
  if (auto s = google::protobuf::util::MessageToJsonString(*m, &text, o); !s.ok()) {
    return absl::InternalError(absl::StrCat("event ", e.event_id(), ": ", s.ToString()));
  }
  return std::optional<json>(json::parse(text));
}

}  // namespace

std::string PositionString(const eventlog::Record& r) {
  return absl::StrCat(r.topic, "/", r.partition, "/", r.offset);
}

std::optional<SourcePosition> ParsePosition(absl::string_view s) {
  std::vector<absl::string_view> parts = absl::StrSplit(s, '/');
  SourcePosition p;
  if (parts.size() != 3 || parts[0].empty() || !absl::SimpleAtoi(parts[1], &p.partition) ||
      !absl::SimpleAtoi(parts[2], &p.offset) || p.partition < 0 || p.offset < 0) {
    return std::nullopt;
  }
  p.topic = std::string(parts[0]);
  return p;
}

absl::StatusOr<std::string> PublicEventJson(const eventlog::Record& record) {
  absl::StatusOr<eventlog::EventEnvelope> env = eventlog::DecodeEnvelope(record.value);
  if (!env.ok()) {
    return absl::DataLossError(absl::StrCat(PositionString(record), ": ", env.status().message()));
  }
  const eventlog::EventEnvelope& e = *env;
  // "crm.customers.v1.CustomerCreated" -> "/crm/customers".
  std::vector<absl::string_view> type_parts = absl::StrSplit(e.event_type(), '.');
  const std::string service = type_parts.size() >= 2 ? std::string(type_parts[1]) : "unknown";
  json ce = {
      {"specversion", "1.0"},
      {"id", e.event_id()},
      {"source", absl::StrCat("/crm/", service)},
      {"type", e.event_type()},
      {"subject", absl::StrCat(e.aggregate_type(), "s/", e.aggregate_id())},
      {"time", TimeUtil::ToString(e.recorded_at())},
      {"crmoccurredat", TimeUtil::ToString(e.has_occurred_at() ? e.occurred_at() : e.recorded_at())},
      {"crmaggregatetype", e.aggregate_type()},
      {"crmaggregateid", e.aggregate_id()},
      {"crmaggregateversion", e.aggregate_version()},
      {"crmactorsource", ActorSourceName(e.actor().source())},
      {"crmposition", PositionString(record)},
  };
  for (const eventlog::Header& h : record.headers) {
    if (h.key == "traceparent") ce["traceparent"] = h.value;
  }
  if (!e.actor().user_id().empty()) ce["crmactor"] = e.actor().user_id();
  if (!e.actor().role().empty()) ce["crmactorrole"] = e.actor().role();
  if (!e.correlation_id().empty()) ce["crmcorrelationid"] = e.correlation_id();
  if (!e.causation_id().empty()) ce["crmcausationid"] = e.causation_id();
  if (!e.tenant_id().empty()) ce["crmtenant"] = e.tenant_id();
  absl::StatusOr<std::optional<json>> data = PayloadJson(e);
  if (!data.ok()) return data.status();
  if (data->has_value()) {
    ce["datacontenttype"] = "application/json";
    ce["dataschema"] = absl::StrCat("urn:crm-backbone:events:v1:", e.event_type());
    ce["data"] = std::move(**data);
  } else {
    ce["datacontenttype"] = "application/protobuf";
    ce["dataschema"] = absl::StrCat("type.googleapis.com/", e.event_type());
    ce["data_base64"] = absl::Base64Escape(e.payload().value());
  }
  return ce.dump(-1, ' ', false, json::error_handler_t::strict);
}

absl::StatusOr<eventlog::Message> PublicEventMessage(const eventlog::Record& record) {
  absl::StatusOr<std::string> body = PublicEventJson(record);
  if (!body.ok()) return body.status();
  eventlog::Message m;
  m.value = *std::move(body);
  m.headers = {{"content-type", kStructuredContentType}, {kPositionHeader, PositionString(record)}};
  return m;
}

}  // namespace crm::integration
