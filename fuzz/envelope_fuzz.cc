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
  // carries CloudEvents headers.
  absl::Status v = crm::eventlog::VerifyEnvelope(*e, e->prev_hash());
  if (!v.ok() && v.code() != absl::StatusCode::kDataLoss) std::abort();
  crm::eventlog::SealEnvelope(*e, e->prev_hash());
  if (!crm::eventlog::VerifyEnvelope(*e, e->prev_hash()).ok()) std::abort();  // sealed, it verifies
  (void)crm::eventlog::ToMessage(*e, "/crm/fuzz");
  return 0;
}
