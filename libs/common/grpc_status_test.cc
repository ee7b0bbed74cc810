#include "libs/common/grpc_status.h"

#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace crm {
namespace {

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

}  // namespace
}  // namespace crm
