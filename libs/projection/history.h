#ifndef CRM_LIBS_PROJECTION_HISTORY_H_
#define CRM_LIBS_PROJECTION_HISTORY_H_

// An aggregate's audit trail as the services' ListEvents return it.
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "crm/common/v1/envelope.pb.h"
#include "google/protobuf/util/json_util.h"
#include "libs/common/request.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/envelope.h"
#include "rocksdb/db.h"

namespace crm::projection {

// The envelopes of aggregate `id` after version `after`, at most `limit`, from its h/ rows.
absl::StatusOr<std::vector<common::v1::EventEnvelope>> HistoryPage(rocksdb::DB* db, const std::string& id,
                                                                   int64_t after, int32_t limit);

// Fills a service's ResourceEvent (every API has one with these fields) from `env`; the
// payload as proto3 JSON with the proto field names.
template <typename ResourceEvent>
void FillResourceEvent(const common::v1::EventEnvelope& env, ResourceEvent* out) {
  out->set_event_id(env.event_id());
  out->set_event_type(env.event_type());
  out->set_version(env.aggregate_version());
  *out->mutable_occurred_at() = env.occurred_at();
  *out->mutable_recorded_at() = env.recorded_at();
  *out->mutable_actor() = env.actor();
  out->set_correlation_id(env.correlation_id());
  out->set_causation_id(env.causation_id());
  out->set_hash_hex(eventlog::HexHash(env.hash()));
  google::protobuf::util::JsonPrintOptions jo;
  jo.preserve_proto_field_names = true;
  std::string json;
  if (google::protobuf::util::MessageToJsonString(env.payload(), &json, jo).ok()) out->set_payload_json(json);
}

// A ListEvents page (any service's response with `events` and `next_page_token`) of aggregate
// `id`, now at `version`, after `offset`; the next page token (for `parent`) while more remain.
template <typename Response>
absl::StatusOr<Response> EventsPage(rocksdb::DB* db, const std::string& id, int64_t version, int64_t offset,
                                    int32_t page_size, const std::string& parent) {
  CRM_ASSIGN_OR_RETURN(auto page, HistoryPage(db, id, offset, page_size));
  Response resp;
  for (const auto& env : page) FillResourceEvent(env, resp.add_events());
  const int64_t last = offset + resp.events_size();
  if (last < version) resp.set_next_page_token(PageToken(last, parent));
  return resp;
}

}  // namespace crm::projection

#endif  // CRM_LIBS_PROJECTION_HISTORY_H_
