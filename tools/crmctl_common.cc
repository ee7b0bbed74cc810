#include "tools/crmctl_common.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "libs/common/grpc_status.h"

namespace crm::ctl {

int Fail(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  return 2;
}

int RpcFail(const grpc::Status& s) {
  absl::Status st = crm::FromGrpcStatus(s);
  std::fprintf(stderr, "error: %s: %s\n", absl::StatusCodeToString(st.code()).c_str(),
               std::string(st.message()).c_str());
  if (auto bad = crm::GetBadRequest(st)) {
    for (const auto& v : bad->field_violations()) {
      std::fprintf(stderr, "  field %s: %s\n", v.field().c_str(), v.description().c_str());
    }
  }
  if (auto info = crm::GetErrorInfo(st)) {
    for (const auto& [k, v] : info->metadata()) std::fprintf(stderr, "  %s: %s\n", k.c_str(), v.c_str());
  }
  return 1;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read ", path));
  return ss.str();
}

std::string Json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

}  // namespace crm::ctl
