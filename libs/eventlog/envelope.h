#ifndef CRM_LIBS_EVENTLOG_ENVELOPE_H_
#define CRM_LIBS_EVENTLOG_ENVELOPE_H_

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

// Sets e.prev_hash = prev_hash and e.hash = ComputeEnvelopeHash(e).
void SealEnvelope(EventEnvelope& e, absl::string_view prev_hash);

// OK when e.hash matches its content and e.prev_hash equals `expected_prev_hash`;
// DATA_LOSS naming the aggregate and version otherwise.
absl::Status VerifyEnvelope(const EventEnvelope& e, absl::string_view expected_prev_hash);

// Parses and checks the fields every envelope must have (event_id, event_type,
// aggregate_type, aggregate_id, aggregate_version >= 1, recorded_at, payload).
// DATA_LOSS when the bytes are not an envelope.
absl::StatusOr<EventEnvelope> DecodeEnvelope(absl::string_view bytes);

// CloudEvents 1.0 binary-mode headers (ce_id, ce_source, ce_type, ce_specversion, ce_subject,
// ce_time, content-type) and a W3C traceparent derived from the correlation id.
// `source` is the producing service's URI reference, e.g. "/crm/customers".
std::vector<Header> CloudEventHeaders(const EventEnvelope& e, absl::string_view source);

// A log message carrying `e`, with the CloudEvents headers.
Message ToMessage(const EventEnvelope& e, absl::string_view source);

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
