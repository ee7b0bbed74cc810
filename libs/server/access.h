#ifndef CRM_LIBS_SERVER_ACCESS_H_
#define CRM_LIBS_SERVER_ACCESS_H_

// The permission matrix (role x RPC) at run time. The matrix is data: the
// `(crm.common.v1.access)` option on every rpc (proto/crm/common/v1/access.proto). The runtime
// checks it for every call before the service sees the call (Runtime::BeginUnary/BeginStream);
// which records a caller then sees is the services' business (libs/common/caller.h).
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "crm/common/v1/access.pb.h"
#include "google/protobuf/descriptor.h"

namespace crm::server {

// The roles one gRPC method admits. Immutable once built, so thread-safe; cheap to check
// (a few string comparisons), so it can run on every call.
class MethodAccess {
 public:
  // The method named `rpc` whose input is `request`, looked up among the services of the
  // .proto file that defines `request` (a service's requests live in its own file). A method
  // that is not found there admits nobody, so a mistake fails closed; access_test proves
  // that every method of every service is found.
  MethodAccess(const google::protobuf::Descriptor* request, absl::string_view rpc);
  // `method` may be null, which admits nobody.
  explicit MethodAccess(const google::protobuf::MethodDescriptor* method);

  // OK when a caller whose token carries `role` may call the method. Otherwise
  // PERMISSION_DENIED naming the method and the roles it admits: for a role the option does
  // not list, for a method without the option (fail closed), for an unknown method, and for a
  // role that is none of the Role enum's.
  absl::Status Check(absl::string_view role) const;
  bool Admits(absl::string_view role) const;

  // The method; null when the lookup found none.
  const google::protobuf::MethodDescriptor* method() const { return method_; }

 private:
  const google::protobuf::MethodDescriptor* method_ = nullptr;
  uint32_t admitted_ = 0;  // bit r: common::v1::Role r
};

// Whether `method` carries the access option (even one that lists no role).
bool HasAccessOption(const google::protobuf::MethodDescriptor& method);

// The roles `method`'s option lists, as tokens spell them ("rep", "admin"), in the enum's
// order and without repeats; empty without the option.
std::vector<std::string> AdmittedRoles(const google::protobuf::MethodDescriptor& method);

// A token's spelling of `role`: the enum value's name without ROLE_, in lower case
// (ROLE_SERVICE -> "service"); empty for ROLE_UNSPECIFIED and unknown values.
std::string RoleName(common::v1::Role role);

// The Role a token's `name` stands for; ROLE_UNSPECIFIED for anything else.
common::v1::Role RoleOf(absl::string_view name);

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_ACCESS_H_
