#include "services/analytics/report_params.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/timestamp.pb.h"
#include "libs/common/grpc_status.h"
#include "libs/common/proto_time.h"
#include "services/analytics/facts.h"

namespace crm::analytics {
namespace {

using google::protobuf::FieldDescriptor;

struct Param {
  const char* name;
  const char* field;
};

constexpr Param kParams[] = {
    {"from", "start_time"},   {"to", "end_time"},       {"as_of", "as_of"},
    {"group_by", "group_by"}, {"scope", "scope"},       {"owner", "owner_id"},
    {"team", "team_id"},      {"currency", "currency"}, {"pipeline", "pipeline_id"},
    {"ticket_type", "ticket_type"}, {"limit", "limit"}, {"consistency_token", "min_consistency_token"},
};

absl::Status Bad(const char* param, const std::string& value, absl::string_view why) {
  return InvalidFieldError(param, absl::StrCat("'", value, "' ", why));
}

}  // namespace

absl::Status FillReportRequest(const std::map<std::string, std::string>& params, google::protobuf::Message* req) {
  const auto* d = req->GetDescriptor();
  const auto* r = req->GetReflection();
  for (const Param& p : kParams) {
    auto it = params.find(p.name);
    if (it == params.end() || it->second.empty()) continue;
    const std::string& value = it->second;
    const FieldDescriptor* f = d->FindFieldByName(p.field);
    if (f == nullptr) return InvalidFieldError(p.name, "this report does not take it");
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_MESSAGE: {
        std::optional<google::protobuf::Timestamp> t = ParseDayOrTime(value);
        if (!t) return Bad(p.name, value, "is neither yyyy-MM-dd nor RFC 3339 in 1970-2199");
        r->MutableMessage(req, f)->CopyFrom(*t);
        break;
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        const std::string prefix = f->name() == "scope" ? "REPORT_SCOPE_" : "GROUP_BY_";
        const auto* v = f->enum_type()->FindValueByName(absl::StrCat(prefix, absl::AsciiStrToUpper(value)));
        if (v == nullptr || v->number() == 0) {
          return Bad(p.name, value, f->name() == "scope" ? "is not own, team or all" : "is not day, week or month");
        }
        r->SetEnum(req, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_INT32: {
        int32_t n = 0;
        if (!absl::SimpleAtoi(value, &n)) return Bad(p.name, value, "is not a number");
        r->SetInt32(req, f, n);
        break;
      }
      default: r->SetString(req, f, value);
    }
  }
  return absl::OkStatus();
}

}  // namespace crm::analytics
