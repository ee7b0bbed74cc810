#ifndef CRM_SERVICES_ANALYTICS_DASHBOARD_H_
#define CRM_SERVICES_ANALYTICS_DASHBOARD_H_

// The web dashboard (数据看板) of the analytics service, over HTTP: the page, its script and
// ECharts (bundled into the binary at build time, so it works without internet access), and
// a JSON/CSV face of every report:
//   GET /                                   the page (token in the fragment: /#token=...)
//   GET /api/v1/reports/<report>            the report as proto3 JSON
//   GET /api/v1/reports/<report>.csv        one table as CSV, UTF-8 with BOM (?table=)
// <report>: funnel, tickets, channels, team, value, churn, receivables. Query parameters as
// report_params.h names them. Every /api call needs `Authorization: Bearer <token>`, whose
// role is checked against the report rpc's access option and then scoped as the gRPC calls
// are (docs/permissions.md). Errors are JSON
// {"code", "message", "field"} with 400, 401, 403, 404, 429, 500, 503 or 504.
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "libs/server/auth.h"
#include "libs/server/http_server.h"
#include "services/analytics/analytics_engine.h"

namespace crm::analytics {

// The JSON error answering `status`: its code, message and first BadRequest field, with the
// HTTP status for the code. Internal errors answer as ToGrpcStatus's do (ForClient): a fixed
// message and an incident id, the full text in the log.
server::HttpResponse ErrorResponse(const absl::Status& status);

class Dashboard {
 public:
  struct Options {
    std::string listen;  // host:port; port 0 picks one
    const server::Authenticator* auth = nullptr;
    AnalyticsEngine* engine = nullptr;
  };
  // `auth` and `engine` must outlive it.
  static absl::StatusOr<std::unique_ptr<Dashboard>> Start(Options options);

  int port() const { return http_ ? http_->port() : 0; }

  // One request, without a socket.
  server::HttpResponse Handle(const server::HttpRequest& req) const;

 private:
  explicit Dashboard(Options o) : options_(std::move(o)) {}
  Options options_;
  std::unique_ptr<server::HttpServer> http_;
};

}  // namespace crm::analytics

#endif  // CRM_SERVICES_ANALYTICS_DASHBOARD_H_
