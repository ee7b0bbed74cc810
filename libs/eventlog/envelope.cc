#include "libs/eventlog/envelope.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/sha256.h"

namespace crm::eventlog {

std::string ComputeEnvelopeHash(const EventEnvelope& e) {
  EventEnvelope copy = e;
  copy.clear_hash();
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream sos(&bytes);
    google::protobuf::io::CodedOutputStream out(&sos);
    out.SetSerializationDeterministic(true);
    copy.SerializeToCodedStream(&out);
  }
  return Sha256({e.prev_hash(), bytes});
}

void SealEnvelope(EventEnvelope& e, absl::string_view prev_hash) {
  e.set_prev_hash(std::string(prev_hash));
  e.set_hash(ComputeEnvelopeHash(e));
}

absl::Status VerifyEnvelope(const EventEnvelope& e, absl::string_view expected_prev_hash) {
  if (e.prev_hash() != expected_prev_hash) {
    return absl::DataLossError(absl::StrCat("hash chain broken at ", e.aggregate_type(), " ",
                                            e.aggregate_id(), " v", e.aggregate_version(),
                                            ": prev_hash does not match the previous event"));
  }
  if (ComputeEnvelopeHash(e) != e.hash()) {
    return absl::DataLossError(absl::StrCat("hash mismatch at ", e.aggregate_type(), " ",
                                            e.aggregate_id(), " v", e.aggregate_version(),
                                            ": the event was altered"));
  }
  return absl::OkStatus();
}

absl::StatusOr<EventEnvelope> DecodeEnvelope(absl::string_view bytes) {
  EventEnvelope e;
  if (!e.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError("record is not an EventEnvelope");
  }
  if (e.event_id().empty() || e.event_type().empty() || e.aggregate_type().empty() ||
      e.aggregate_id().empty() || e.aggregate_version() < 1 || !e.has_recorded_at() ||
      !e.has_payload()) {
    return absl::DataLossError("EventEnvelope lacks a required field");
  }
  return e;
}

std::string HexHash(absl::string_view hash) { return absl::BytesToHexString(hash); }

std::vector<Header> CloudEventHeaders(const EventEnvelope& e, absl::string_view source) {
  using google::protobuf::util::TimeUtil;
  // traceparent: version 00, a 16-byte trace id from the correlation id (a UUID when we made
  // it), an 8-byte span id from the event id, sampled.
  std::string trace = absl::StrReplaceAll(e.correlation_id(), {{"-", ""}});
  if (trace.size() != 32) trace = absl::StrReplaceAll(e.event_id(), {{"-", ""}});
  const std::string span = absl::StrReplaceAll(e.event_id(), {{"-", ""}}).substr(16, 16);
  return {
      {"ce_specversion", "1.0"},
      {"ce_id", e.event_id()},
      {"ce_source", std::string(source)},
      {"ce_type", e.event_type()},
      {"ce_subject", absl::StrCat(e.aggregate_type(), "s/", e.aggregate_id())},
      {"ce_time", TimeUtil::ToString(e.recorded_at())},
      {"content-type", "application/protobuf"},
      {"ce_dataschema", absl::StrCat("type.googleapis.com/", e.event_type())},
      {"traceparent", absl::StrCat("00-", trace, "-", span, "-01")},
  };
}

Message ToMessage(const EventEnvelope& e, absl::string_view source) {
  Message m;
  m.value = e.SerializeAsString();
  m.headers = CloudEventHeaders(e, source);
  return m;
}

}  // namespace crm::eventlog
