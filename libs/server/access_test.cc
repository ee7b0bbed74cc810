#include "libs/server/access.h"

#include <filesystem>
#include <set>

#include "crm/analytics/v1/analytics_service.pb.h"
#include "crm/customers/v1/customers_service.pb.h"
#include "crm/opportunities/v1/opportunities_service.pb.h"
#include "crm/tasks/v1/tasks_service.pb.h"
#include "crm/tickets/v1/tickets_service.pb.h"
#include "google/protobuf/descriptor.pb.h"
#include "gtest/gtest.h"
#include "libs/common/grpc_status.h"

namespace crm::server {
namespace {

using google::protobuf::DescriptorPool;
using google::protobuf::FileDescriptor;
using google::protobuf::MethodDescriptor;

const std::vector<std::string> kRoles = {"rep", "manager", "admin", "service"};

// Every API file in the repository (proto/crm/<service>/v1/*_service.proto), so that a new
// service cannot be left out of the checks below.
std::vector<std::string> ServiceFiles() {
  std::vector<std::string> out;
  for (const auto& dir : std::filesystem::directory_iterator(std::filesystem::path(CRM_PROTO_DIR) / "crm")) {
    const auto v1 = dir.path() / "v1";
    if (!std::filesystem::is_directory(v1)) continue;
    for (const auto& f : std::filesystem::directory_iterator(v1)) {
      const std::string name = f.path().filename().string();
      if (name.size() > 14 && name.substr(name.size() - 14) == "_service.proto") {
        out.push_back(std::filesystem::relative(f.path(), CRM_PROTO_DIR).string());
      }
    }
  }
  return out;
}

std::vector<const MethodDescriptor*> EveryMethod() {
  // Referenced so that the linker keeps each file's descriptors.
  (void)customers::v1::CreateCustomerRequest::descriptor();
  (void)opportunities::v1::CreateOpportunityRequest::descriptor();
  (void)tasks::v1::CreateTaskRequest::descriptor();
  (void)tickets::v1::CreateTicketRequest::descriptor();
  (void)analytics::v1::GetFunnelReportRequest::descriptor();
  std::vector<const MethodDescriptor*> out;
  for (const std::string& name : ServiceFiles()) {
    const FileDescriptor* file = DescriptorPool::generated_pool()->FindFileByName(name);
    EXPECT_NE(file, nullptr) << name << " is not linked into this test";
    if (file == nullptr) continue;
    for (int s = 0; s < file->service_count(); ++s) {
      for (int m = 0; m < file->service(s)->method_count(); ++m) out.push_back(file->service(s)->method(m));
    }
  }
  return out;
}

TEST(AccessTest, EveryMethodOfEveryServiceHasTheAccessOption) {
  const auto methods = EveryMethod();
  EXPECT_GE(ServiceFiles().size(), 5u);
  EXPECT_GE(methods.size(), 116u);
  for (const MethodDescriptor* m : methods) {
    EXPECT_TRUE(HasAccessOption(*m)) << m->full_name() << " has no (crm.common.v1.access) option";
    EXPECT_FALSE(AdmittedRoles(*m).empty()) << m->full_name() << " admits no role";
    // The lookup the handlers make (CRM_SERVE_READ/WRITE, the streams, the dashboard) finds it.
    EXPECT_EQ(MethodAccess(m->input_type(), m->name()).method(), m) << m->full_name();
  }
}

// Admins define the schemas and settings; no integration does.
TEST(AccessTest, SchemasAndSettingsAreForAdminsOnly) {
  const std::set<std::string> admin_only = {
      "crm.customers.v1.CustomerService.UpdatePoolPolicy",
      "crm.customers.v1.CustomerService.SetIndustries",
      "crm.customers.v1.CustomerService.SetChannelCost",
      "crm.customers.v1.CustomerService.SetTagRules",
      "crm.customers.v1.CustomerService.PreviewTagRule",
      "crm.opportunities.v1.OpportunityService.SetPipelines",
      "crm.opportunities.v1.OpportunityService.SetContractPolicy",
      "crm.tasks.v1.AutomationService.CreateRule",
      "crm.tasks.v1.AutomationService.UpdateRule",
      "crm.tasks.v1.AutomationService.DeleteRule",
      "crm.tickets.v1.TicketTypeService.CreateTicketType",
      "crm.tickets.v1.TicketTypeService.PublishTicketTypeVersion",
      "crm.tickets.v1.TicketTypeService.ArchiveTicketType",
      "crm.tickets.v1.TicketTypeService.MigrateTickets",
      "crm.tickets.v1.SlaService.SetSlaPolicy",
      "crm.tickets.v1.SlaService.DeleteSlaPolicy",
      "crm.tickets.v1.SlaService.SetCalendar",
  };
  int seen = 0;
  for (const MethodDescriptor* m : EveryMethod()) {
    if (!admin_only.contains(m->full_name())) continue;
    ++seen;
    EXPECT_EQ(AdmittedRoles(*m), std::vector<std::string>{"admin"}) << m->full_name();
  }
  EXPECT_EQ(seen, static_cast<int>(admin_only.size()));
}

TEST(AccessTest, RefusesRolesTheOptionDoesNotList) {
  const MethodAccess create_type(tickets::v1::CreateTicketTypeRequest::descriptor(), "CreateTicketType");
  ASSERT_NE(create_type.method(), nullptr);
  EXPECT_TRUE(create_type.Check("admin").ok());
  for (const char* role : {"service", "manager", "rep"}) {
    absl::Status s = create_type.Check(role);
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << role;
    EXPECT_NE(s.message().find("CreateTicketType"), std::string::npos) << s;
    auto info = GetErrorInfo(s);
    ASSERT_TRUE(info.has_value()) << s;
    EXPECT_EQ(info->reason(), "ROLE_NOT_ADMITTED");
    EXPECT_EQ(info->metadata().at("roles"), "admin");
  }
  const MethodAccess get_customer(customers::v1::GetCustomerRequest::descriptor(), "GetCustomer");
  for (const std::string& role : kRoles) EXPECT_TRUE(get_customer.Check(role).ok()) << role;
}

TEST(AccessTest, RefusesRolesThatAreNone) {
  const MethodAccess get_customer(customers::v1::GetCustomerRequest::descriptor(), "GetCustomer");
  for (const char* role : {"", "superuser", "Admin", "ROLE_ADMIN", "unspecified"}) {
    EXPECT_EQ(get_customer.Check(role).code(), absl::StatusCode::kPermissionDenied) << role;
  }
}

// A method nobody annotated, or a handler that names the wrong rpc, admits nobody.
TEST(AccessTest, FailsClosedWithoutTheOptionOrTheMethod) {
  google::protobuf::FileDescriptorProto file;
  file.set_name("bare.proto");
  file.set_package("bare");
  file.set_syntax("proto3");
  file.add_message_type()->set_name("Req");
  auto* service = file.add_service();
  service->set_name("Bare");
  auto* method = service->add_method();
  method->set_name("Do");
  method->set_input_type(".bare.Req");
  method->set_output_type(".bare.Req");
  DescriptorPool pool;
  const FileDescriptor* built = pool.BuildFile(file);
  ASSERT_NE(built, nullptr);
  const MethodAccess bare(built->service(0)->method(0));
  EXPECT_FALSE(HasAccessOption(*bare.method()));
  for (const std::string& role : kRoles) {
    EXPECT_EQ(bare.Check(role).code(), absl::StatusCode::kPermissionDenied) << role;
  }
  const MethodAccess by_lookup(built->message_type(0), "Do");
  EXPECT_EQ(by_lookup.method(), bare.method());
  EXPECT_EQ(by_lookup.Check("admin").code(), absl::StatusCode::kPermissionDenied);

  const MethodAccess wrong_rpc(customers::v1::GetCustomerRequest::descriptor(), "DeleteCustomer");
  EXPECT_EQ(wrong_rpc.method(), nullptr);
  EXPECT_EQ(wrong_rpc.Check("admin").code(), absl::StatusCode::kPermissionDenied);
  const MethodAccess no_rpc(customers::v1::GetCustomerRequest::descriptor(), "NoSuchRpc");
  EXPECT_EQ(no_rpc.Check("admin").code(), absl::StatusCode::kPermissionDenied);
  const MethodAccess none(nullptr);
  EXPECT_EQ(none.Check("admin").code(), absl::StatusCode::kPermissionDenied);
}

TEST(AccessTest, RoleNamesAreTheTokensSpelling) {
  EXPECT_EQ(RoleName(common::v1::ROLE_REP), "rep");
  EXPECT_EQ(RoleName(common::v1::ROLE_SERVICE), "service");
  EXPECT_EQ(RoleName(common::v1::ROLE_UNSPECIFIED), "");
  for (const std::string& role : kRoles) EXPECT_EQ(RoleName(RoleOf(role)), role);
  EXPECT_EQ(RoleOf("unspecified"), common::v1::ROLE_UNSPECIFIED);
}

}  // namespace
}  // namespace crm::server
