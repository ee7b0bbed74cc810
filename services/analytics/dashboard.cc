#include "services/analytics/dashboard.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/await.h"
#include "google/protobuf/util/json_util.h"
#include "libs/common/grpc_status.h"
#include "libs/server/access.h"
#include "libs/server/logging.h"
#include "services/analytics/report_csv.h"
#include "services/analytics/report_params.h"
#include "services/analytics/web_assets.h"

namespace crm::analytics {
namespace {

using server::HttpRequest;
using server::HttpResponse;

HttpResponse Asset(absl::string_view bytes, const char* type) {
  HttpResponse r;
  r.content_type = type;
  r.body = std::string(bytes);
  return r;
}

// Runs one report, the HTTP face of the rpc `rpc`: the rpc's permission matrix entry (as the
// gRPC runtime checks it), request from the query, read-your-writes wait, engine call, JSON
// or CSV.
template <typename Req, typename Resp>
HttpResponse Run(AnalyticsEngine* engine, const Caller& caller, const HttpRequest& http, bool csv, const char* rpc,
                 absl::StatusOr<Resp> (AnalyticsEngine::*method)(const Caller&, const Req&, absl::Time)) {
  static const server::MethodAccess access(Req::descriptor(), rpc);  // one rpc per request type
  if (auto s = access.Check(caller.role); !s.ok()) return ErrorResponse(s);
  Req req;
  if (auto s = FillReportRequest(http.query, &req); !s.ok()) return ErrorResponse(s);
  // An HTTP request has no deadline of its own: the gRPC runtime's cap on any wait applies
  // (RuntimeOptions::max_wait), so a token that is never reached holds a worker no longer.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  if (!req.min_consistency_token().empty()) {
    const absl::Status waited = AwaitCallback<absl::Status>(
        [&](auto done) { engine->AfterToken(req.min_consistency_token(), "consistency_token", deadline, std::move(done)); },
        deadline, "the consistency token");
    if (!waited.ok()) return ErrorResponse(waited);
  }
  absl::StatusOr<Resp> report = (engine->*method)(caller, req, deadline);
  if (!report.ok()) return ErrorResponse(report.status());
  HttpResponse r;
  if (csv) {
    auto table = http.query.find("table");
    auto bytes = ReportCsv(*report, table == http.query.end() ? "" : table->second);
    if (!bytes.ok()) return ErrorResponse(bytes.status());
    r.content_type = "text/csv; charset=utf-8";
    r.body = std::move(*bytes);
    return r;
  }
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  if (!google::protobuf::util::MessageToJsonString(*report, &r.body, o).ok()) {
    return ErrorResponse(absl::InternalError("cannot print the report as JSON"));
  }
  r.content_type = "application/json; charset=utf-8";
  return r;
}

}  // namespace

HttpResponse ErrorResponse(const absl::Status& status) {
  // What ToGrpcStatus sends a gRPC client: internal errors become incidents.
  const absl::Status s = ForClient(status);
  HttpResponse r;
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange: r.status = 400; break;
    case absl::StatusCode::kUnauthenticated: r.status = 401; break;
    case absl::StatusCode::kPermissionDenied: r.status = 403; break;
    case absl::StatusCode::kNotFound: r.status = 404; break;
    case absl::StatusCode::kDeadlineExceeded: r.status = 504; break;
    case absl::StatusCode::kResourceExhausted: r.status = 429; break;
    case absl::StatusCode::kUnavailable: r.status = 503; break;
    default: r.status = 500;
  }
  if (r.status == 401) r.headers["WWW-Authenticate"] = "Bearer";
  std::string field;
  if (auto bad = GetBadRequest(s); bad && bad->field_violations_size() > 0) field = bad->field_violations(0).field();
  r.content_type = "application/json; charset=utf-8";
  r.body = absl::StrCat("{\"code\":\"", absl::StatusCodeToString(s.code()), "\",\"message\":\"",
                        server::JsonEscape(s.message()), "\",\"field\":\"", server::JsonEscape(field), "\"}\n");
  return r;
}

absl::StatusOr<std::unique_ptr<Dashboard>> Dashboard::Start(Options options) {
  if (options.auth == nullptr || options.engine == nullptr) {
    return absl::InvalidArgumentError("the dashboard needs an authenticator and an engine");
  }
  std::unique_ptr<Dashboard> d(new Dashboard(std::move(options)));
  Dashboard* self = d.get();
  auto http = server::HttpServer::Start(d->options_.listen, [self](const HttpRequest& r) { return self->Handle(r); });
  if (!http.ok()) return http.status();
  d->http_ = std::move(*http);
  return d;
}

HttpResponse Dashboard::Handle(const HttpRequest& req) const {
  if (req.path == "/" || req.path == "/index.html") return Asset(web::IndexHtml(), "text/html; charset=utf-8");
  if (req.path == "/dashboard.js") return Asset(web::DashboardJs(), "text/javascript; charset=utf-8");
  if (req.path == "/vendor/echarts.min.js") return Asset(web::EchartsJs(), "text/javascript; charset=utf-8");
  if (req.path == "/healthz") return Asset("ok\n", "text/plain; charset=utf-8");
  constexpr absl::string_view kApi = "/api/v1/reports/";
  if (!absl::StartsWith(req.path, kApi)) return ErrorResponse(absl::NotFoundError(absl::StrCat("no page ", req.path)));
  std::string name = req.path.substr(kApi.size());
  const bool csv = absl::EndsWith(name, ".csv");
  if (csv) name.resize(name.size() - 4);
  auto claims = options_.auth->AuthenticateHeader(req.authorization);
  if (!claims.ok()) return ErrorResponse(claims.status());
  const Caller caller{claims->sub, claims->role, claims->team};
  AnalyticsEngine* e = options_.engine;
  HttpResponse r;
  if (name == "funnel") {
    r = Run(e, caller, req, csv, "GetFunnelReport", &AnalyticsEngine::GetFunnelReport);
  } else if (name == "tickets") {
    r = Run(e, caller, req, csv, "GetTicketsReport", &AnalyticsEngine::GetTicketsReport);
  } else if (name == "channels") {
    r = Run(e, caller, req, csv, "GetChannelsReport", &AnalyticsEngine::GetChannelsReport);
  } else if (name == "team") {
    r = Run(e, caller, req, csv, "GetTeamReport", &AnalyticsEngine::GetTeamReport);
  } else if (name == "value") {
    r = Run(e, caller, req, csv, "GetCustomerValueReport", &AnalyticsEngine::GetCustomerValueReport);
  } else if (name == "churn") {
    r = Run(e, caller, req, csv, "GetChurnReport", &AnalyticsEngine::GetChurnReport);
  } else if (name == "receivables") {
    r = Run(e, caller, req, csv, "GetReceivablesReport", &AnalyticsEngine::GetReceivablesReport);
  } else {
    return ErrorResponse(absl::NotFoundError(
        absl::StrCat("no report '", name, "': funnel, tickets, channels, team, value, churn or receivables")));
  }
  if (csv && r.status == 200) r.headers["Content-Disposition"] = absl::StrCat("attachment; filename=\"", name, ".csv\"");
  return r;
}

}  // namespace crm::analytics
