#ifndef CRM_LIBS_EVENTLOG_ENVELOPE_H_
#define CRM_LIBS_EVENTLOG_ENVELOPE_H_

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "crm/common/v1/envelope.pb.h"
#include "libs/eventlog/log.h"

namespace crm::eventlog {

using crm::common::v1::EventEnvelope;

// SHA-256 over `prev_hash` followed by the deterministic serialisation of `e` with its
// `hash` field cleared (prev_hash is part of the envelope, so it is covered twice: harmless).
std::string ComputeEnvelopeHash(const EventEnvelope& e);

// How many envelope hashes (SHA-256, sealing and verifying) this process has computed. A
// relaxed counter for tests that count the hashes a command costs: read it before and after
// the command, with nothing else hashing meanwhile.
int64_t EnvelopeHashCount();

// The one way events are sealed: chains an aggregate's events by hash and encodes each as the
// log message that carries it, serialising and hashing each envelope once. A message's bytes
// are the sealed envelope's SerializeAsString(), as every earlier binary wrote them, so logs
// read alike whichever wrote them. Not thread-safe: one per aggregate being written.
class StreamSealer {
 public:
  // Continues the stream whose last event has `version` and hash `last_hash` (0 and "" for a
  // new aggregate). `source` is the producing service's URI reference for the CloudEvents
  // headers, e.g. "/crm/customers".
  StreamSealer(int64_t version, std::string last_hash, std::string source)
      : version_(version), last_hash_(std::move(last_hash)), source_(std::move(source)) {}

  // Makes `e` the stream's next event: sets its aggregate_version, prev_hash and hash (what they
  // held is replaced) and returns the message carrying it, with the CloudEvents headers. Every
  // other field is sealed as `e` holds it.
  Message Seal(EventEnvelope& e);

  // The version and hash of the last event sealed (the constructor's before the first).
  int64_t version() const { return version_; }
  const std::string& last_hash() const { return last_hash_; }

 private:
  int64_t version_;
  std::string last_hash_;
  std::string source_;
};

// OK when e.hash matches its content and e.prev_hash equals `expected_prev_hash`;
// DATA_LOSS naming the aggregate and version otherwise.
absl::Status VerifyEnvelope(const EventEnvelope& e, absl::string_view expected_prev_hash);

// The cheap half of VerifyEnvelope: OK when e.prev_hash equals `expected_prev_hash`, DATA_LOSS
// naming the aggregate and version otherwise. For an envelope whose hash this process computed
// from its own content (Record::sealed); every other envelope gets VerifyEnvelope.
absl::Status VerifyChainLink(const EventEnvelope& e, absl::string_view expected_prev_hash);

// Parses and checks the fields every envelope must have (event_id, event_type,
// aggregate_type, aggregate_id, aggregate_version >= 1, recorded_at, payload).
// DATA_LOSS when the bytes are not an envelope.
absl::StatusOr<EventEnvelope> DecodeEnvelope(absl::string_view bytes);

// The envelope of `r`: a copy of r.sealed when this process sealed it, else
// DecodeEnvelope(r.value).
absl::StatusOr<EventEnvelope> EnvelopeOf(const Record& r);

// CloudEvents 1.0 binary-mode headers (ce_id, ce_source, ce_type, ce_specversion, ce_subject,
// ce_time, content-type) and a W3C traceparent derived from the correlation id.
// `source` is the producing service's URI reference, e.g. "/crm/customers".
std::vector<Header> CloudEventHeaders(const EventEnvelope& e, absl::string_view source);

// Lower-case hex of a binary hash.
std::string HexHash(absl::string_view hash);

// Whether `e` is an event of type `T` (by its event_type).
template <typename T>
bool Is(const common::v1::EventEnvelope& e) {
  return e.event_type() == T::descriptor()->full_name();
}

// The payload of `e` as `T`; DATA_LOSS naming the event when it holds something else.
template <typename T>
absl::StatusOr<T> PayloadAs(const common::v1::EventEnvelope& e) {
  T m;
  if (!e.payload().UnpackTo(&m)) {
    return absl::DataLossError(absl::StrCat("event ", e.event_id(), " (", e.event_type(), ") does not hold a ",
                                            T::descriptor()->full_name()));
  }
  return m;
}

}  // namespace crm::eventlog

#endif  // CRM_LIBS_EVENTLOG_ENVELOPE_H_
