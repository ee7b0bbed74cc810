#ifndef CRM_LIBS_COMMON_GRPC_STATUS_H_
#define CRM_LIBS_COMMON_GRPC_STATUS_H_

#include <map>
#include "absl/types/optional.h"
#include <string>
#include <utility>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "google/rpc/error_details.pb.h"
#include "grpcpp/support/status.h"

namespace crm {

// The ErrorInfo.domain of every error this project raises.
inline constexpr absl::string_view kErrorDomain = "crm.backbone";

// INVALID_ARGUMENT whose google.rpc.BadRequest names `field` (a request field path such as
// "customer.phone"). The message is "<field>: <description>".
absl::Status InvalidFieldError(absl::string_view field, absl::string_view description);
// The same with OUT_OF_RANGE: the value is well-formed but beyond what the service holds (an
// amount above money::kMaxAmountMinor, a sum that would leave 64 bits).
absl::Status OutOfRangeFieldError(absl::string_view field, absl::string_view description);
// The same for several fields at once (a form with three bad values names all three), in
// order; the message names the first and how many more. OK when `violations` is empty.
absl::Status InvalidFieldsError(const std::vector<std::pair<std::string, std::string>>& violations);

// Returns `status` with a google.rpc.ErrorInfo detail (reason in UPPER_SNAKE_CASE, e.g.
// "DUPLICATE_PHONE", and metadata such as {"existing": "customers/..."}). OK stays OK.
absl::Status WithErrorInfo(absl::Status status, absl::string_view reason,
                           const std::map<std::string, std::string>& metadata = {});

absl::optional<google::rpc::BadRequest> GetBadRequest(const absl::Status& status);
absl::optional<google::rpc::ErrorInfo> GetErrorInfo(const absl::Status& status);

// Marks `status` as one whose message our own code wrote for clients, with no text from a
// foreign library (RocksDB, librdkafka, another server) in it: ForClient passes an UNAVAILABLE
// or RESOURCE_EXHAUSTED status on only with this mark. No effect on other codes, since
// INTERNAL, UNKNOWN and DATA_LOSS never reach a client and the rest always do. OK stays OK.
absl::Status ClientSafe(absl::Status status);
// Whether `status` carries the ClientSafe mark.
bool IsClientSafe(const absl::Status& status);

// What a client may see of `status`. Internal errors are INTERNAL, UNKNOWN, DATA_LOSS, and
// UNAVAILABLE or RESOURCE_EXHAUSTED without the ClientSafe mark (their text may name files or
// come from a foreign library): each is logged in full with a new incident id, and the client
// gets the same code with a fixed message naming the id and only an ErrorInfo
// {reason: "INCIDENT", metadata: {incident: id}} as detail. Any other status is returned as it
// is. Thread-safe.
absl::Status ForClient(const absl::Status& status);

// Where ForClient writes its incident lines ("incident <id>: <CODE>: <message>"), e.g. the
// process's JSON log with personal data masked. Default: spdlog's default logger at error
// level, the message escaped for a JSON string. Thread-safe; `log` must be thread-safe.
void SetIncidentLog(void (*log)(absl::string_view line));

// absl::Status -> grpc::Status, of ForClient(status); details travel as a serialised
// google.rpc.Status in grpc-status-details-bin, so any gRPC client library can decode them.
grpc::Status ToGrpcStatus(const absl::Status& status);

// grpc::Status -> absl::Status, keeping the google.rpc details that ToGrpcStatus attached.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace crm

#endif  // CRM_LIBS_COMMON_GRPC_STATUS_H_
