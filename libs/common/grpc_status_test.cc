#include "libs/common/grpc_status.h"

#include <vector>

#include "absl/synchronization/mutex.h"
#include "google/rpc/status.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crm {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

absl::Mutex log_mu;
std::vector<std::string>* logged = new std::vector<std::string>;

void Capture(absl::string_view line) {
  absl::MutexLock l(&log_mu);
  logged->emplace_back(line);
}

// Incident lines go to `logged` while one lives.
class CapturedIncidents {
 public:
  CapturedIncidents() {
    absl::MutexLock l(&log_mu);
    logged->clear();
    SetIncidentLog(&Capture);
  }
  ~CapturedIncidents() { SetIncidentLog(&Ignore); }
  std::vector<std::string> lines() const {
    absl::MutexLock l(&log_mu);
    return *logged;
  }

 private:
  static void Ignore(absl::string_view) {}
};

TEST(GrpcStatusTest, InvalidFieldNamesTheFieldInBadRequest) {
  absl::Status s = InvalidFieldError("customer.phone", "must be 11 digits");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "customer.phone: must be 11 digits");
  auto bad = GetBadRequest(s);
  ASSERT_TRUE(bad.has_value());
  ASSERT_EQ(bad->field_violations_size(), 1);
  EXPECT_EQ(bad->field_violations(0).field(), "customer.phone");
}

TEST(GrpcStatusTest, RoundTripsThroughGrpcWithDetails) {
  absl::Status s = WithErrorInfo(absl::AlreadyExistsError("duplicate phone"), "DUPLICATE_PHONE",
                                 {{"existing", "customers/abc"}});
  grpc::Status g = ToGrpcStatus(s);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(g.error_message(), "duplicate phone");

  // What any gRPC client sees in grpc-status-details-bin.
  google::rpc::Status rpc;
  ASSERT_TRUE(rpc.ParseFromString(g.error_details()));
  EXPECT_EQ(rpc.code(), static_cast<int>(grpc::StatusCode::ALREADY_EXISTS));
  ASSERT_EQ(rpc.details_size(), 1);
  EXPECT_EQ(rpc.details(0).type_url(), "type.googleapis.com/google.rpc.ErrorInfo");

  absl::Status back = FromGrpcStatus(g);
  EXPECT_EQ(back.code(), absl::StatusCode::kAlreadyExists);
  auto info = GetErrorInfo(back);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->reason(), "DUPLICATE_PHONE");
  EXPECT_EQ(info->domain(), "crm.backbone");
  EXPECT_EQ(info->metadata().at("existing"), "customers/abc");
}

TEST(GrpcStatusTest, OkMapsToOk) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
  EXPECT_TRUE(WithErrorInfo(absl::OkStatus(), "X").ok());
}

TEST(GrpcStatusTest, CodesMapOneToOne) {
  for (int c = 1; c <= 16; ++c) {
    absl::Status s(static_cast<absl::StatusCode>(c), "m");
    EXPECT_EQ(static_cast<int>(ToGrpcStatus(s).error_code()), c);
  }
}

TEST(GrpcStatusTest, InternalErrorsReachClientsAsIncidentsLoggedInFull) {
  CapturedIncidents incidents;
  const std::string rocks = "read c/x: IO error: /var/lib/crm/customers/000123.sst: Input/output error";
  for (absl::StatusCode code : {absl::StatusCode::kInternal, absl::StatusCode::kUnknown, absl::StatusCode::kDataLoss,
                                absl::StatusCode::kUnavailable, absl::StatusCode::kResourceExhausted}) {
    grpc::Status g = ToGrpcStatus(absl::Status(code, rocks));
    EXPECT_EQ(static_cast<int>(g.error_code()), static_cast<int>(code));
    EXPECT_THAT(g.error_message(), Not(HasSubstr("/var/lib"))) << code;
    EXPECT_THAT(g.error_message(), HasSubstr("(incident "));
    google::rpc::Status rpc;
    ASSERT_TRUE(rpc.ParseFromString(g.error_details()));
    EXPECT_THAT(rpc.message(), Not(HasSubstr("/var/lib")));
    ASSERT_EQ(rpc.details_size(), 1);
    auto info = GetErrorInfo(FromGrpcStatus(g));
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->reason(), "INCIDENT");
    const std::string id = info->metadata().at("incident");
    EXPECT_THAT(g.error_message(), HasSubstr(id));
    // The operator finds the full text under the id the client quotes.
    const auto lines = incidents.lines();
    ASSERT_FALSE(lines.empty());
    EXPECT_THAT(lines.back(), HasSubstr(id));
    EXPECT_THAT(lines.back(), HasSubstr(rocks));
  }
  EXPECT_EQ(incidents.lines().size(), 5u);
}

TEST(GrpcStatusTest, InternalErrorsLoseTheirDetails) {
  CapturedIncidents incidents;
  absl::Status s = WithErrorInfo(absl::InternalError("x"), "ROCKS", {{"path", "/data/c"}});
  auto back = FromGrpcStatus(ToGrpcStatus(s));
  auto info = GetErrorInfo(back);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->reason(), "INCIDENT");
  EXPECT_EQ(info->metadata().count("path"), 0u);
}

TEST(GrpcStatusTest, ClientSafeRetryableErrorsKeepTheirMessage) {
  CapturedIncidents incidents;
  for (absl::StatusCode code : {absl::StatusCode::kUnavailable, absl::StatusCode::kResourceExhausted}) {
    grpc::Status g = ToGrpcStatus(ClientSafe(absl::Status(code, "3 imports are running; retry later")));
    EXPECT_EQ(g.error_message(), "3 imports are running; retry later");
    // The mark stays in the process.
    google::rpc::Status rpc;
    ASSERT_TRUE(rpc.ParseFromString(g.error_details()));
    EXPECT_EQ(rpc.details_size(), 0);
  }
  EXPECT_TRUE(incidents.lines().empty());
}

TEST(GrpcStatusTest, ClientSafeDoesNotUncoverInternalCodes) {
  CapturedIncidents incidents;
  grpc::Status g = ToGrpcStatus(ClientSafe(absl::DataLossError("undecodable row at /data/x")));
  EXPECT_THAT(g.error_message(), Not(HasSubstr("/data/x")));
  EXPECT_EQ(incidents.lines().size(), 1u);
}

TEST(GrpcStatusTest, ClientErrorsPassAsTheyAre) {
  CapturedIncidents incidents;
  absl::Status s = InvalidFieldError("parent", "must look like customers/{id}");
  grpc::Status g = ToGrpcStatus(s);
  EXPECT_EQ(g.error_message(), "parent: must look like customers/{id}");
  EXPECT_EQ(ForClient(s), s);
  EXPECT_TRUE(incidents.lines().empty());
}

}  // namespace
}  // namespace crm
