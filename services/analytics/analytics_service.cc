#include "services/analytics/analytics_service.h"

#include "libs/server/serve.h"

namespace crm::analytics {

CRM_SERVE_READ(AnalyticsService, GetFunnelReport, v1::GetFunnelReportRequest, v1::FunnelReport, GetFunnelReport)
CRM_SERVE_READ(AnalyticsService, GetTicketsReport, v1::GetTicketsReportRequest, v1::TicketsReport, GetTicketsReport)
CRM_SERVE_READ(AnalyticsService, GetChannelsReport, v1::GetChannelsReportRequest, v1::ChannelsReport, GetChannelsReport)
CRM_SERVE_READ(AnalyticsService, GetTeamReport, v1::GetTeamReportRequest, v1::TeamReport, GetTeamReport)
CRM_SERVE_READ(AnalyticsService, GetCustomerValueReport, v1::GetCustomerValueReportRequest, v1::CustomerValueReport,
               GetCustomerValueReport)
CRM_SERVE_READ(AnalyticsService, GetChurnReport, v1::GetChurnReportRequest, v1::ChurnReport, GetChurnReport)
CRM_SERVE_READ(AnalyticsService, GetReceivablesReport, v1::GetReceivablesReportRequest, v1::ReceivablesReport,
               GetReceivablesReport)

}  // namespace crm::analytics
