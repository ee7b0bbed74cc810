#include "tools/crmctl_common.h"

#include "absl/strings/strip.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/proto_time.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/grpc_status.h"

namespace crm::ctl {

std::string Name(const std::string& collection, const std::string& id) {
  return absl::StartsWith(id, collection + "/") ? id : absl::StrCat(collection, "/", id);
}

absl::StatusOr<google::protobuf::Timestamp> When(const std::string& flag, const std::string& text) {
  if (std::optional<google::protobuf::Timestamp> t = ParseDayOrTime(text)) return *t;
  return absl::InvalidArgumentError(absl::StrCat(flag, ": '", text, "' is neither yyyy-MM-dd nor RFC 3339 in 1970-2199"));
}

int Fail(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  return 2;
}

void PrintPageFooter(int shown, int total, const std::string& next_page_token) {
  if (total >= 0) {
    std::printf("%d of %d", shown, total);
  } else {
    std::printf("%d (total not counted for this filter)", shown);
  }
  if (!next_page_token.empty()) std::printf("; next page: --page-token %s", next_page_token.c_str());
  std::printf("\n");
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

std::string Time(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "";
  return google::protobuf::util::TimeUtil::ToString(t);
}

namespace {

void PrintRows(const google::protobuf::Message& m, int indent) {
  using google::protobuf::FieldDescriptor;
  const auto* r = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  auto scalar = [&](const FieldDescriptor* f, int i) -> std::string {
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING: return i < 0 ? r->GetString(m, f) : r->GetRepeatedString(m, f, i);
      case FieldDescriptor::CPPTYPE_ENUM: return i < 0 ? r->GetEnum(m, f)->name() : r->GetRepeatedEnum(m, f, i)->name();
      case FieldDescriptor::CPPTYPE_BOOL: return r->GetBool(m, f) ? "true" : "false";
      case FieldDescriptor::CPPTYPE_INT32:
        return std::to_string(i < 0 ? r->GetInt32(m, f) : r->GetRepeatedInt32(m, f, i));
      case FieldDescriptor::CPPTYPE_INT64:
        return std::to_string(i < 0 ? r->GetInt64(m, f) : r->GetRepeatedInt64(m, f, i));
      default: return "";
    }
  };
  for (const FieldDescriptor* f : fields) {
    const std::string pad(indent, ' ');
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->message_type() == google::protobuf::Timestamp::descriptor() && !f->is_repeated()) {
        std::printf("%s%-22s %s\n", pad.c_str(), f->name().c_str(),
                    Time(static_cast<const google::protobuf::Timestamp&>(r->GetMessage(m, f))).c_str());
        continue;
      }
      const int n = f->is_repeated() ? r->FieldSize(m, f) : 1;
      for (int i = 0; i < n; ++i) {
        std::printf("%s%s%s\n", pad.c_str(), f->name().c_str(), f->is_repeated() ? absl::StrCat("[", i, "]").c_str() : "");
        PrintRows(f->is_repeated() ? r->GetRepeatedMessage(m, f, i) : r->GetMessage(m, f), indent + 2);
      }
    } else if (f->is_repeated()) {
      std::vector<std::string> items;
      for (int i = 0; i < r->FieldSize(m, f); ++i) items.push_back(scalar(f, i));
      std::printf("%s%-22s %s\n", pad.c_str(), f->name().c_str(), absl::StrJoin(items, ",").c_str());
    } else {
      std::printf("%s%-22s %s\n", pad.c_str(), f->name().c_str(), scalar(f, -1).c_str());
    }
  }
}

}  // namespace

void Print(const google::protobuf::Message& m, bool json) {
  if (json) {
    std::cout << Json(m);
  } else {
    PrintRows(m, 0);
  }
}

void AddConfirmFlags(CLI::App* cmd, bool* yes, bool* dry_run) {
  cmd->add_flag("--yes", *yes, "Really do it");
  cmd->add_flag("--dry-run", *dry_run, "Print the request it would send, and stop");
}

std::optional<int> Unconfirmed(bool yes, bool dry_run, absl::string_view method, const google::protobuf::Message& req,
                               absl::string_view refusal) {
  if (dry_run) {
    absl::string_view m = method;
    absl::ConsumeSuffix(&m, "Request");
    std::printf("dry run: would call %s with\n%s\n", std::string(m).c_str(), Json(req).c_str());
    return 0;
  }
  if (!yes) return Fail(absl::StrCat(refusal, ": add --yes (or --dry-run to see the request)"));
  return std::nullopt;
}

}  // namespace crm::ctl
