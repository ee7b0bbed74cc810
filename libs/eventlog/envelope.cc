#include "libs/eventlog/envelope.h"

#include <atomic>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/unknown_field_set.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/sha256.h"

namespace crm::eventlog {
namespace {

std::atomic<int64_t> envelope_hashes{0};

// The hash of an envelope serialised without `hash` (`bytes`) that follows `prev_hash`.
std::string HashEnvelope(absl::string_view prev_hash, absl::string_view bytes) {
  envelope_hashes.fetch_add(1, std::memory_order_relaxed);
  return Sha256({prev_hash, bytes});
}

// The wire tag of EventEnvelope.hash: field 14, length-delimited. It is the envelope's last
// field, so protobuf serialises it after every other known field.
constexpr char kHashTag = (14 << 3) | 2;

}  // namespace

int64_t EnvelopeHashCount() { return envelope_hashes.load(std::memory_order_relaxed); }

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
  return HashEnvelope(e.prev_hash(), bytes);
}

Message StreamSealer::Seal(EventEnvelope& e) {
  e.set_aggregate_version(++version_);
  e.set_prev_hash(last_hash_);
  e.clear_hash();
  Message m;
  // The bytes hashed are the envelope without `hash`; the log's bytes are the same with `hash`
  // appended, which is what serialising the sealed envelope gives (no field follows it, and the
  // envelope has no maps, so the deterministic and the default order agree).
  const size_t size = e.ByteSizeLong();
  m.value.reserve(size + 2 + 32);
  m.value.resize(size);
  {
    google::protobuf::io::ArrayOutputStream aos(m.value.data(), static_cast<int>(size));
    google::protobuf::io::CodedOutputStream out(&aos);
    out.SetSerializationDeterministic(true);
    e.SerializeWithCachedSizes(&out);
  }
  last_hash_ = HashEnvelope(last_hash_, m.value);
  e.set_hash(last_hash_);
  if (e.GetReflection()->GetUnknownFields(e).empty()) {
    // A SHA-256 digest is 32 bytes: its length is one varint byte.
    m.value.push_back(kHashTag);
    m.value.push_back(static_cast<char>(last_hash_.size()));
    m.value.append(last_hash_);
  } else {
    // Fields this binary does not know (an envelope read back from a newer writer) are
    // serialised after the known ones, after `hash` too.
    m.value = e.SerializeAsString();
  }
  m.headers = CloudEventHeaders(e, source_);
  return m;
}

absl::Status VerifyChainLink(const EventEnvelope& e, absl::string_view expected_prev_hash) {
  if (e.prev_hash() == expected_prev_hash) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat("hash chain broken at ", e.aggregate_type(), " ", e.aggregate_id(), " v",
                                          e.aggregate_version(), ": prev_hash does not match the previous event"));
}

absl::Status VerifyEnvelope(const EventEnvelope& e, absl::string_view expected_prev_hash) {
  if (absl::Status s = VerifyChainLink(e, expected_prev_hash); !s.ok()) return s;
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

absl::StatusOr<EventEnvelope> EnvelopeOf(const Record& r) {
  if (r.sealed != nullptr) return *r.sealed;
  return DecodeEnvelope(r.value);
}

std::string HexHash(absl::string_view hash) { return absl::BytesToHexString(hash); }

std::vector<Header> CloudEventHeaders(const EventEnvelope& e, absl::string_view source) {
  using google::protobuf::util::TimeUtil;
  // traceparent: version 00, a 16-byte trace id from the correlation id (a UUID when we made
  // it), an 8-byte span id from the event id, sampled.
  std::string trace = absl::StrReplaceAll(e.correlation_id(), {{"-", ""}});
  if (trace.size() != 32) trace = absl::StrReplaceAll(e.event_id(), {{"-", ""}});
  const std::string id = absl::StrReplaceAll(e.event_id(), {{"-", ""}});
  const std::string span = id.size() > 16 ? id.substr(16, 16) : "";  // a foreign id may be short
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

}  // namespace crm::eventlog
