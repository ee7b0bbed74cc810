// crmctl's customers/leads create and update carry every profile field: each field's flag is
// run against a fake server, which records the request crmctl sends. A field added to
// CustomerProfile or LeadProfile without a flag in tools/crmctl.cc (or with a flag that never
// reaches the request) fails here with the field named (docs/architecture.md §8).
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "crm/customers/v1/customers_events.pb.h"
#include "crm/customers/v1/customers_service.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "libs/testing/field_coverage.h"

namespace crm::ctl {
namespace {

namespace v1 = crm::customers::v1;
using google::protobuf::FieldDescriptor;

constexpr char kCustomerId[] = "0190f1c4-0000-7000-8000-0000000000a1";

// Records the last create/update request of customers and leads, and answers with an empty
// resource.
class Recorder final : public v1::CustomerService::Service, public v1::LeadService::Service {
 public:
  grpc::Status CreateCustomer(grpc::ServerContext*, const v1::CreateCustomerRequest* req, v1::Customer*) override {
    return Keep(*req);
  }
  grpc::Status UpdateCustomer(grpc::ServerContext*, const v1::UpdateCustomerRequest* req, v1::Customer*) override {
    return Keep(*req);
  }
  grpc::Status CreateLead(grpc::ServerContext*, const v1::CreateLeadRequest* req, v1::Lead*) override {
    return Keep(*req);
  }
  grpc::Status UpdateLead(grpc::ServerContext*, const v1::UpdateLeadRequest* req, v1::Lead*) override {
    return Keep(*req);
  }

  // The request last received, or nullptr; cleared by each call.
  std::unique_ptr<google::protobuf::Message> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(last_);
  }

 private:
  grpc::Status Keep(const google::protobuf::Message& m) {
    std::lock_guard<std::mutex> lock(mu_);
    last_.reset(m.New());
    last_->CopyFrom(m);
    return grpc::Status::OK;
  }

  std::mutex mu_;
  std::unique_ptr<google::protobuf::Message> last_;
};

class CrmctlFieldsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(static_cast<v1::CustomerService::Service*>(&recorder_));
    b.RegisterService(static_cast<v1::LeadService::Service*>(&recorder_));
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }
  void TearDown() override { server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5)); }

  // Runs crmctl with `args`; the request it sent, or nullptr when it sent none.
  std::unique_ptr<google::protobuf::Message> Run(const std::string& args) {
    recorder_.Take();
    const std::string cmd = absl::StrCat(CRMCTL_PATH, " --addr 127.0.0.1:", port_, " --token t --timeout 10 ", args,
                                         " >/dev/null 2>&1");
    FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr) return nullptr;
    pclose(p);
    return recorder_.Take();
  }

  // The fields of `profile`'s type whose flag (given by `flag_of`) crmctl `verb` puts into the
  // `resource` field of its request with the value given, and for updates into its mask.
  std::set<std::string> Carried(const google::protobuf::Descriptor& profile, const std::string& verb,
                                const std::map<std::string, std::string>& renamed) {
    std::set<std::string> carried;
    const bool update = verb.find(" update") != std::string::npos;
    for (int i = 0; i < profile.field_count(); ++i) {
      const FieldDescriptor* f = profile.field(i);
      auto it = renamed.find(f->name());
      const std::string flag =
          it != renamed.end() ? it->second : absl::StrCat("--", absl::StrReplaceAll(f->name(), {{"_", "-"}}));
      std::string value = absl::StrCat("v", i);
      int enum_number = 0;
      if (f->enum_type() != nullptr) {
        // The CLI takes the value's name without the type's prefix, in lower case.
        const auto* e = f->enum_type();
        const std::string prefix(absl::StripSuffix(e->value(0)->name(), "UNSPECIFIED"));
        value = absl::AsciiStrToLower(absl::StripPrefix(e->value(1)->name(), prefix));
        enum_number = e->value(1)->number();
      }
      if (f->name() == "phone") value = "13800138000";
      if (f->name() == "email") value = "a@example.com";
      auto req = Run(absl::StrCat(verb, update ? absl::StrCat(" ", kCustomerId) : "", " ", flag, " ", value));
      if (req == nullptr) continue;
      const auto* rd = req->GetDescriptor();
      const FieldDescriptor* res = rd->FindFieldByName(rd->name().find("Lead") != std::string::npos ? "lead" : "customer");
      const google::protobuf::Message& m = req->GetReflection()->GetMessage(*req, res);
      const FieldDescriptor* got = m.GetDescriptor()->FindFieldByName(f->name());
      if (got == nullptr || got->cpp_type() != f->cpp_type()) continue;
      const auto* r = m.GetReflection();
      bool same = false;
      if (got->is_repeated()) {
        same = got->cpp_type() == FieldDescriptor::CPPTYPE_STRING && r->FieldSize(m, got) == 1 &&
               r->GetRepeatedString(m, got, 0) == value;
      } else if (got->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
        same = r->GetString(m, got) == value;
      } else if (got->cpp_type() == FieldDescriptor::CPPTYPE_ENUM) {
        same = r->GetEnumValue(m, got) == enum_number;
      }
      if (update) {
        const auto* mask = rd->FindFieldByName("update_mask");
        const auto& paths = static_cast<const google::protobuf::FieldMask&>(req->GetReflection()->GetMessage(*req, mask)).paths();
        same = same && std::find(paths.begin(), paths.end(), f->name()) != paths.end();
      }
      if (same) carried.insert(f->name());
    }
    return carried;
  }

  Recorder recorder_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// Flags whose name is not the field's with - for _.
const std::map<std::string, std::string>& CustomerFlags() {
  static const auto* m = new std::map<std::string, std::string>{
      {"lifecycle_status", "--status"}, {"owner_id", "--owner"},          {"team_id", "--team"},
      {"source_channel", "--channel"},  {"cooperation_status", "--cooperation"}, {"tags", "--tag"}};
  return *m;
}

const std::map<std::string, std::string>& LeadFlags() {
  static const auto* m = new std::map<std::string, std::string>{{"source_channel", "--channel"}, {"tags", "--tag"}};
  return *m;
}

TEST_F(CrmctlFieldsTest, CustomersCreateAndUpdateTakeEveryProfileField) {
  for (const std::string verb : {"customers create", "customers update"}) {
    EXPECT_THAT(crm::testing::CoverageGaps(
                    *v1::CustomerProfile::descriptor(),
                    {.where = absl::StrCat("tools/crmctl.cc (CustomerFlags: Add and Fill), for '", verb, "'"),
                     .handled = Carried(*v1::CustomerProfile::descriptor(), verb, CustomerFlags())}),
                ::testing::IsEmpty());
  }
}

TEST_F(CrmctlFieldsTest, LeadsCreateAndUpdateTakeEveryProfileField) {
  for (const std::string verb : {"leads create", "leads update"}) {
    EXPECT_THAT(crm::testing::CoverageGaps(
                    *v1::LeadProfile::descriptor(),
                    {.where = absl::StrCat("tools/crmctl.cc (LeadFlags: lead_flags and the set(...) list), for '", verb,
                                           "'"),
                     .handled = Carried(*v1::LeadProfile::descriptor(), verb, LeadFlags())}),
                ::testing::IsEmpty());
  }
}

}  // namespace
}  // namespace crm::ctl
