#include "libs/server/access.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "libs/common/grpc_status.h"

namespace crm::server {
namespace {

using common::v1::Role;

// Every role but ROLE_UNSPECIFIED with its token spelling, from the enum itself, so that a
// role added to access.proto needs no change here.
const std::vector<std::pair<Role, std::string>>& Roles() {
  static const auto* roles = [] {
    auto* out = new std::vector<std::pair<Role, std::string>>;
    const google::protobuf::EnumDescriptor* e = common::v1::Role_descriptor();
    for (int i = 0; i < e->value_count(); ++i) {
      const google::protobuf::EnumValueDescriptor* v = e->value(i);
      if (v->number() == common::v1::ROLE_UNSPECIFIED) continue;
      std::string name(absl::StripPrefix(v->name(), "ROLE_"));
      absl::AsciiStrToLower(&name);
      out->emplace_back(static_cast<Role>(v->number()), std::move(name));
    }
    return out;
  }();
  return *roles;
}

constexpr uint32_t Bit(Role r) { return r > 0 && r < 32 ? uint32_t{1} << r : 0; }

}  // namespace

std::string RoleName(Role role) {
  for (const auto& [r, name] : Roles()) {
    if (r == role) return name;
  }
  return "";
}

Role RoleOf(absl::string_view name) {
  for (const auto& [r, spelling] : Roles()) {
    if (spelling == name) return r;
  }
  return common::v1::ROLE_UNSPECIFIED;
}

bool HasAccessOption(const google::protobuf::MethodDescriptor& method) {
  return method.options().HasExtension(common::v1::access);
}

std::vector<std::string> AdmittedRoles(const google::protobuf::MethodDescriptor& method) {
  const common::v1::Access& access = method.options().GetExtension(common::v1::access);
  std::vector<std::string> out;
  for (const auto& [r, name] : Roles()) {
    for (int listed : access.roles()) {
      if (listed == r) {
        out.push_back(name);
        break;
      }
    }
  }
  return out;
}

MethodAccess::MethodAccess(const google::protobuf::Descriptor* request, absl::string_view rpc) {
  const google::protobuf::MethodDescriptor* found = nullptr;
  int matches = 0;
  const google::protobuf::FileDescriptor* file = request->file();
  for (int i = 0; i < file->service_count(); ++i) {
    const google::protobuf::MethodDescriptor* m = file->service(i)->FindMethodByName(std::string(rpc));
    if (m != nullptr && m->input_type() == request) {
      found = m;
      ++matches;
    }
  }
  if (matches == 1) *this = MethodAccess(found);
}

MethodAccess::MethodAccess(const google::protobuf::MethodDescriptor* method) : method_(method) {
  if (method == nullptr) return;
  for (int r : method->options().GetExtension(common::v1::access).roles()) {
    if (common::v1::Role_IsValid(r)) admitted_ |= Bit(static_cast<Role>(r));
  }
}

bool MethodAccess::Admits(absl::string_view role) const { return (admitted_ & Bit(RoleOf(role))) != 0; }

absl::Status MethodAccess::Check(absl::string_view role) const {
  if (Admits(role)) return absl::OkStatus();
  if (method_ == nullptr) {
    return WithErrorInfo(absl::PermissionDeniedError("this method admits no role"), "ROLE_NOT_ADMITTED", {});
  }
  const std::string roles = absl::StrJoin(AdmittedRoles(*method_), ", ");
  const std::string who =
      RoleOf(role) == common::v1::ROLE_UNSPECIFIED ? "a token without a known role" : absl::StrCat("the role '", role, "'");
  absl::Status denied =
      roles.empty() ? absl::PermissionDeniedError(absl::StrCat(method_->full_name(), " admits no role"))
                    : absl::PermissionDeniedError(absl::StrCat(who, " may not call ", method_->full_name(), " (for ", roles, ")"));
  return WithErrorInfo(std::move(denied), "ROLE_NOT_ADMITTED", {{"method", method_->full_name()}, {"roles", roles}});
}

}  // namespace crm::server
