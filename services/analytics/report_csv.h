#ifndef CRM_SERVICES_ANALYTICS_REPORT_CSV_H_
#define CRM_SERVICES_ANALYTICS_REPORT_CSV_H_

// A report's table as a CSV file for spreadsheets: UTF-8 with a BOM (Excel on Chinese Windows
// reads it as UTF-8 then), CRLF, formulas neutralised. Used by crmctl and the dashboard.
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"

namespace crm::analytics {

// The tables of a report: its repeated message fields ("stages", "periods", "channels", ...).
std::vector<std::string> ReportTables(const google::protobuf::Message& report);

// One table of `report`: a header of the row message's field names, then a row per element.
// Timestamps are local (UTC+8) "yyyy-MM-dd HH:mm:ss"; *_minor amounts are decimals of two
// places under the name without "_minor"; percentages have two decimals. `table` empty: the
// first table. INVALID_ARGUMENT naming the tables for an unknown one.
absl::StatusOr<std::string> ReportCsv(const google::protobuf::Message& report, const std::string& table);

}  // namespace crm::analytics

#endif  // CRM_SERVICES_ANALYTICS_REPORT_CSV_H_
