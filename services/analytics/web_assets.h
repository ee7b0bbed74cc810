#ifndef CRM_SERVICES_ANALYTICS_WEB_ASSETS_H_
#define CRM_SERVICES_ANALYTICS_WEB_ASSETS_H_

// The dashboard's files, built into the binary (web_assets.S.in: the assembler's .incbin of
// services/analytics/web/ and of ECharts from npm, fetched by tools/install-deps.sh).
#include "absl/strings/string_view.h"

extern "C" {
extern const char crm_web_index_html[], crm_web_index_html_end[];
extern const char crm_web_dashboard_js[], crm_web_dashboard_js_end[];
extern const char crm_web_echarts_js[], crm_web_echarts_js_end[];
}

namespace crm::analytics::web {

inline absl::string_view IndexHtml() {
  return {crm_web_index_html, static_cast<size_t>(crm_web_index_html_end - crm_web_index_html)};
}
inline absl::string_view DashboardJs() {
  return {crm_web_dashboard_js, static_cast<size_t>(crm_web_dashboard_js_end - crm_web_dashboard_js)};
}
inline absl::string_view EchartsJs() {
  return {crm_web_echarts_js, static_cast<size_t>(crm_web_echarts_js_end - crm_web_echarts_js)};
}

}  // namespace crm::analytics::web

#endif  // CRM_SERVICES_ANALYTICS_WEB_ASSETS_H_
