#include "services/analytics/analytics_module.h"

#include "libs/common/status_macros.h"
#include "libs/server/engine_host.h"
#include "services/analytics/analytics_engine.h"
#include "services/analytics/analytics_service.h"
#include "services/analytics/dashboard.h"

namespace crm::analytics {
namespace {

class DashboardFace final : public server::WebFace {
 public:
  explicit DashboardFace(std::unique_ptr<Dashboard> d) : dashboard_(std::move(d)) {}
  int port() const override { return dashboard_->port(); }

 private:
  std::unique_ptr<Dashboard> dashboard_;
};

}  // namespace

const server::ServiceModule& Module() {
  static const server::ServiceModule* const kModule = new server::ServiceModule(server::EngineModule<AnalyticsEngine>(
      {.name = "analytics",
       .kafka = {.listen = "127.0.0.1:50065",
                 .metrics_listen = "127.0.0.1:9469",
                 .scheduler_help = "none: analytics has no scheduler",
                 .dashboard_listen = "127.0.0.1:8065"},
       .dashboard = true},
      {.spec = &AnalyticsEngine::Spec,
       .services = &server::ServicesOver<AnalyticsEngine, AnalyticsService>,
       .dashboard = [](AnalyticsEngine* engine, server::Runtime* runtime,
                       const std::string& listen) -> absl::StatusOr<std::unique_ptr<server::WebFace>> {
         CRM_ASSIGN_OR_RETURN(std::unique_ptr<Dashboard> d,
                              Dashboard::Start({.listen = listen, .auth = runtime->authenticator(), .engine = engine}));
         return std::make_unique<DashboardFace>(std::move(d));
       }}));
  return *kModule;
}

}  // namespace crm::analytics
