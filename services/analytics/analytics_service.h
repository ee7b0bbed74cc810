#ifndef CRM_SERVICES_ANALYTICS_ANALYTICS_SERVICE_H_
#define CRM_SERVICES_ANALYTICS_ANALYTICS_SERVICE_H_

#include "crm/analytics/v1/analytics_service.grpc.pb.h"
#include "libs/server/runtime.h"
#include "services/analytics/analytics_engine.h"

namespace crm::analytics {

// gRPC face of AnalyticsEngine: proto in, proto out, absl::Status -> grpc::Status. No rules.
// `engine` and `runtime` must outlive it.
class AnalyticsService final : public v1::AnalyticsService::CallbackService {
 public:
  AnalyticsService(AnalyticsEngine* engine, server::Runtime* runtime) : engine_(engine), runtime_(runtime) {}
  grpc::ServerUnaryReactor* GetFunnelReport(grpc::CallbackServerContext* ctx, const v1::GetFunnelReportRequest* req,
                                            v1::FunnelReport* resp) override;
  grpc::ServerUnaryReactor* GetTicketsReport(grpc::CallbackServerContext* ctx, const v1::GetTicketsReportRequest* req,
                                             v1::TicketsReport* resp) override;
  grpc::ServerUnaryReactor* GetChannelsReport(grpc::CallbackServerContext* ctx,
                                              const v1::GetChannelsReportRequest* req,
                                              v1::ChannelsReport* resp) override;
  grpc::ServerUnaryReactor* GetTeamReport(grpc::CallbackServerContext* ctx, const v1::GetTeamReportRequest* req,
                                          v1::TeamReport* resp) override;
  grpc::ServerUnaryReactor* GetCustomerValueReport(grpc::CallbackServerContext* ctx,
                                                   const v1::GetCustomerValueReportRequest* req,
                                                   v1::CustomerValueReport* resp) override;
  grpc::ServerUnaryReactor* GetChurnReport(grpc::CallbackServerContext* ctx, const v1::GetChurnReportRequest* req,
                                           v1::ChurnReport* resp) override;
  grpc::ServerUnaryReactor* GetReceivablesReport(grpc::CallbackServerContext* ctx,
                                                 const v1::GetReceivablesReportRequest* req,
                                                 v1::ReceivablesReport* resp) override;

 private:
  AnalyticsEngine* engine_;
  server::Runtime* runtime_;
};

}  // namespace crm::analytics

#endif  // CRM_SERVICES_ANALYTICS_ANALYTICS_SERVICE_H_
