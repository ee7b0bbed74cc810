// The dashboard's JSON errors: what a browser or script may see of a failed report.
#include "services/analytics/dashboard.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/grpc_status.h"

namespace crm::analytics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(DashboardErrorTest, InternalErrorsAnswerWithAnIncidentIdAndNoPath) {
  const std::string rocks = "read af/deal_won: Corruption: block checksum mismatch in /var/lib/crm/analytics/000042.sst";
  for (const absl::Status& s : {absl::DataLossError(rocks), absl::InternalError(rocks), absl::UnavailableError(rocks)}) {
    server::HttpResponse r = ErrorResponse(s);
    EXPECT_EQ(r.status, absl::IsUnavailable(s) ? 503 : 500) << s;
    EXPECT_THAT(r.body, Not(HasSubstr("/var/lib"))) << r.body;
    EXPECT_THAT(r.body, Not(HasSubstr("checksum")));
    EXPECT_THAT(r.body, HasSubstr("(incident "));
  }
  EXPECT_EQ(ErrorResponse(absl::ResourceExhaustedError(rocks)).status, 429);
  EXPECT_THAT(ErrorResponse(absl::ResourceExhaustedError(rocks)).body, Not(HasSubstr("/var/lib")));
}

TEST(DashboardErrorTest, ClientErrorsKeepTheirMessageAndField) {
  server::HttpResponse r = ErrorResponse(InvalidFieldError("from", "'x' is neither yyyy-MM-dd nor RFC 3339"));
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr(R"("code":"INVALID_ARGUMENT")"));
  EXPECT_THAT(r.body, HasSubstr(R"("field":"from")"));
  EXPECT_THAT(r.body, HasSubstr("is neither yyyy-MM-dd"));
  EXPECT_EQ(ErrorResponse(absl::UnauthenticatedError("no token")).headers.at("WWW-Authenticate"), "Bearer");
}

}  // namespace
}  // namespace crm::analytics
