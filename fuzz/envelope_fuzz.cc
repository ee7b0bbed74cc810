// Envelope decoding: bytes read back from the log (or a Kafka topic any client can write to)
// are decoded and their hash chain checked. Anything but DATA_LOSS for bad bytes is a bug.
#include <cstdlib>

#include "libs/eventlog/envelope.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto e = crm::eventlog::DecodeEnvelope(bytes);
  if (!e.ok()) {
    if (e.status().code() != absl::StatusCode::kDataLoss) std::abort();
    return 0;
  }
  // A decoded envelope hashes, verifies against its own prev_hash or reports DATA_LOSS, and
  // seals again in one pass to the bytes sealing it the long way gives (hash, then serialise
  // the sealed envelope), with CloudEvents headers.
  absl::Status v = crm::eventlog::VerifyEnvelope(*e, e->prev_hash());
  if (!v.ok() && v.code() != absl::StatusCode::kDataLoss) std::abort();
  crm::eventlog::EventEnvelope reference = *e;
  reference.set_hash(crm::eventlog::ComputeEnvelopeHash(reference));
  crm::eventlog::StreamSealer sealer(e->aggregate_version() - 1, e->prev_hash(), "/crm/fuzz");
  const crm::eventlog::Message m = sealer.Seal(*e);
  if (m.value != reference.SerializeAsString()) std::abort();
  if (!crm::eventlog::VerifyEnvelope(*e, e->prev_hash()).ok()) std::abort();  // sealed, it verifies
  return 0;
}
