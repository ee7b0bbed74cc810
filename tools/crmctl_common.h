#ifndef CRM_TOOLS_CRMCTL_COMMON_H_
#define CRM_TOOLS_CRMCTL_COMMON_H_

// What every crmctl verb uses to report.
#include <string>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"
#include "grpcpp/grpcpp.h"

namespace crm::ctl {

// Prints "error: msg"; returns 2 (bad usage or a local error).
int Fail(const std::string& msg);
// Prints the gRPC code, message, field violations and error details; returns 1.
int RpcFail(const grpc::Status& s);
// The whole file; NOT_FOUND naming it and the reason when it cannot be opened.
absl::StatusOr<std::string> ReadFile(const std::string& path);
// `m` as indented JSON with the proto field names.
std::string Json(const google::protobuf::Message& m);
// RFC 3339, "" for an unset timestamp.
std::string Time(const google::protobuf::Timestamp& t);
// `m` on stdout: JSON, or one "field value" line per set field (nested messages indented,
// enums by name).
void Print(const google::protobuf::Message& m, bool json);

}  // namespace crm::ctl

#endif  // CRM_TOOLS_CRMCTL_COMMON_H_
