#include "services/analytics/report_csv.h"

#include "gtest/gtest.h"
#include "libs/common/proto_time.h"
#include "crm/analytics/v1/analytics_service.pb.h"
#include "services/analytics/facts.h"

namespace crm::analytics {
namespace {

TEST(ReportCsvTest, ATableBecomesUtf8WithBomLocalTimesDecimalAmountsAndNeutralisedText) {
  v1::ChurnReport churn;
  auto* r = churn.add_by_reason();
  r->set_reason("=HYPERLINK(\"x\")");
  r->set_churned(2);
  churn.add_by_reason()->set_reason("价格太高, 服务差");
  auto* p = churn.add_periods();
  *p->mutable_start_time() = ToProto(absl::FromCivil(absl::CivilDay(2026, 3, 1), ReportZone()));
  p->set_churned(3);
  EXPECT_EQ(ReportTables(churn), (std::vector<std::string>{"by_reason", "periods"}));

  auto reasons = ReportCsv(churn, "");
  ASSERT_TRUE(reasons.ok()) << reasons.status();
  EXPECT_EQ(*reasons, "\xEF\xBB\xBFreason,churned\r\n\"'=HYPERLINK(\"\"x\"\")\",2\r\n\"价格太高, 服务差\",0\r\n");
  auto periods = ReportCsv(churn, "periods");
  ASSERT_TRUE(periods.ok());
  EXPECT_EQ(*periods, "\xEF\xBB\xBFstart_time,churned,new_customers\r\n2026-03-01 00:00:00,3,0\r\n");

  v1::ReceivablesReport recv;
  auto* q = recv.add_periods();
  q->set_planned_minor(1234567);
  q->set_collected_minor(-5);
  auto money = ReportCsv(recv, "periods");
  ASSERT_TRUE(money.ok());
  EXPECT_EQ(*money, "\xEF\xBB\xBFstart_time,planned,collected,payments\r\n,12345.67,-0.05,0\r\n");

  auto bad = ReportCsv(churn, "nope");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("by_reason, periods"), std::string::npos);
}

}  // namespace
}  // namespace crm::analytics
