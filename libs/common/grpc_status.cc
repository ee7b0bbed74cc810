#include "libs/common/grpc_status.h"

#include <atomic>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/rpc/status.pb.h"
#include "libs/common/ids.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace crm {
namespace {

constexpr char kTypePrefix[] = "type.googleapis.com/";
// The ClientSafe mark: a payload of ours that never leaves the process.
constexpr char kClientSafe[] = "crm.backbone/client-safe";

void LogToSpdlog(absl::string_view line) {
  // The JSON logger's pattern puts the message inside a JSON string: escape it (and replace
  // bytes that are not UTF-8, which foreign messages may hold) without the outer quotes.
  const std::string quoted =
      nlohmann::json(std::string(line)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  spdlog::error("{}", quoted.substr(1, quoted.size() - 2));
}

std::atomic<void (*)(absl::string_view)> incident_log{&LogToSpdlog};

bool Internal(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss:
      return true;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
      return !s.GetPayload(kClientSafe).has_value();
    default:
      return false;
  }
}

absl::string_view FixedMessage(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable: return "the service is unavailable for now; retry with backoff";
    case absl::StatusCode::kResourceExhausted: return "the service is out of capacity or storage for now; retry later";
    default: return "internal error";
  }
}

std::string TypeUrl(const google::protobuf::Message& m) {
  return absl::StrCat(kTypePrefix, m.GetDescriptor()->full_name());
}

template <typename T>
absl::optional<T> GetDetail(const absl::Status& status) {
  T msg;
  absl::optional<absl::Cord> payload = status.GetPayload(TypeUrl(msg));
  if (!payload.has_value() || !msg.ParseFromString(std::string(*payload))) return absl::nullopt;
  return msg;
}

absl::Status FieldError(absl::StatusCode code, absl::string_view field, absl::string_view description) {
  absl::Status status(code, absl::StrCat(field, ": ", description));
  google::rpc::BadRequest bad;
  auto* v = bad.add_field_violations();
  v->set_field(std::string(field));
  v->set_description(std::string(description));
  status.SetPayload(TypeUrl(bad), absl::Cord(bad.SerializeAsString()));
  return WithErrorInfo(std::move(status), code == absl::StatusCode::kOutOfRange ? "OUT_OF_RANGE" : "INVALID_FIELD",
                       {{"field", std::string(field)}});
}

}  // namespace

absl::Status InvalidFieldError(absl::string_view field, absl::string_view description) {
  return FieldError(absl::StatusCode::kInvalidArgument, field, description);
}

absl::Status OutOfRangeFieldError(absl::string_view field, absl::string_view description) {
  return FieldError(absl::StatusCode::kOutOfRange, field, description);
}

absl::Status InvalidFieldsError(const std::vector<std::pair<std::string, std::string>>& violations) {
  if (violations.empty()) return absl::OkStatus();
  if (violations.size() == 1) return InvalidFieldError(violations[0].first, violations[0].second);
  absl::Status status(absl::StatusCode::kInvalidArgument,
                      absl::StrCat(violations[0].first, ": ", violations[0].second, " (and ", violations.size() - 1,
                                   " more)"));
  google::rpc::BadRequest bad;
  for (const auto& [field, description] : violations) {
    auto* v = bad.add_field_violations();
    v->set_field(field);
    v->set_description(description);
  }
  status.SetPayload(TypeUrl(bad), absl::Cord(bad.SerializeAsString()));
  return WithErrorInfo(std::move(status), "INVALID_FIELD", {{"field", violations[0].first}});
}

absl::Status WithErrorInfo(absl::Status status, absl::string_view reason,
                           const std::map<std::string, std::string>& metadata) {
  if (status.ok()) return status;
  google::rpc::ErrorInfo info;
  info.set_reason(std::string(reason));
  info.set_domain(std::string(kErrorDomain));
  for (const auto& [k, v] : metadata) (*info.mutable_metadata())[k] = v;
  status.SetPayload(TypeUrl(info), absl::Cord(info.SerializeAsString()));
  return status;
}

absl::optional<google::rpc::BadRequest> GetBadRequest(const absl::Status& status) {
  return GetDetail<google::rpc::BadRequest>(status);
}

absl::optional<google::rpc::ErrorInfo> GetErrorInfo(const absl::Status& status) {
  return GetDetail<google::rpc::ErrorInfo>(status);
}

absl::Status ClientSafe(absl::Status status) {
  if (!status.ok()) status.SetPayload(kClientSafe, absl::Cord());
  return status;
}

bool IsClientSafe(const absl::Status& status) { return status.GetPayload(kClientSafe).has_value(); }

void SetIncidentLog(void (*log)(absl::string_view line)) { incident_log.store(log); }

absl::Status ForClient(const absl::Status& status) {
  if (!Internal(status)) return status;
  // A UUIDv7: unique, and its first bits tell the operator when it happened.
  const std::string id = NewUuidV7(absl::Now());
  incident_log.load()(absl::StrCat("incident ", id, ": ", absl::StatusCodeToString(status.code()), ": ",
                                   status.message()));
  return WithErrorInfo(
      absl::Status(status.code(), absl::StrCat(FixedMessage(status.code()), " (incident ", id, ")")), "INCIDENT",
      {{"incident", id}});
}

grpc::Status ToGrpcStatus(const absl::Status& original) {
  if (original.ok()) return grpc::Status::OK;
  const absl::Status status = ForClient(original);
  google::rpc::Status rpc;
  rpc.set_code(static_cast<int>(status.code()));
  rpc.set_message(std::string(status.message()));
  status.ForEachPayload([&rpc](absl::string_view type_url, const absl::Cord& payload) {
    if (type_url == kClientSafe) return;
    auto* any = rpc.add_details();
    any->set_type_url(std::string(type_url));
    any->set_value(std::string(payload));
  });
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()), rpc.SerializeAsString());
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status out(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  google::rpc::Status rpc;
  if (!status.error_details().empty() && rpc.ParseFromString(status.error_details())) {
    for (const auto& any : rpc.details()) out.SetPayload(any.type_url(), absl::Cord(any.value()));
  }
  return out;
}

}  // namespace crm
