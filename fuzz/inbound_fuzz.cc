// Inbound integration: any ERP/OA system that can write to crm.inbound.v1 hands us a record,
// as a structured CloudEvent (JSON) or in binary mode (ce_* headers). ParseInbound must refuse
// bad records with INVALID_ARGUMENT naming the field, and what it accepts is a command with the
// event's id carried into request_id.
#include <cstdlib>
#include <string>

#include "fuzz/fuzz_input.h"
#include "services/integration/inbound.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  crm::fuzz::Input in(data, size);
  crm::eventlog::Record r;
  r.topic = crm::integration::kInboundTopic;
  // Binary mode when the first byte is odd: a few ce_* headers, then the data.
  if (in.Byte() % 2) {
    static const char* kKeys[] = {"ce_id", "ce_type", "ce_source", "ce_specversion", "content-type", "ce_time"};
    for (const char* k : kKeys) r.headers.push_back({k, in.Short()});
  }
  r.value = std::string(in.Rest());
  auto cmd = crm::integration::ParseInbound(r);
  if (!cmd.ok()) {
    if (cmd.status().code() != absl::StatusCode::kInvalidArgument || cmd.status().message().empty()) std::abort();
    return 0;
  }
  if (cmd->id.empty() || cmd->type.empty()) std::abort();
  return 0;
}
