#include "services/analytics/analytics_service.h"

#include "libs/server/serve.h"

namespace crm::analytics {

CRM_SERVE_READ(AnalyticsService, GetFunnelReport, v1::GetFunnelReportRequest, v1::FunnelReport, GetFunnelReport)
CRM_SERVE_READ(AnalyticsService, GetTicketsReport, v1::GetTicketsReportRequest, v1::TicketsReport, GetTicketsReport)

}  // namespace crm::analytics
