#ifndef CRM_TOOLS_CRMCTL_BULK_H_
#define CRM_TOOLS_CRMCTL_BULK_H_

// crmctl's CSV import and export of customers (批量导入/导出) over the streaming RPCs.
#include <memory>
#include <string>
#include <vector>

#include "crm/customers/v1/customers_service.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace crm::ctl {

struct ImportFlags {
  std::string file;
  std::vector<std::string> map;  // "column=field"
  std::string policy = "skip";   // skip, update, merge
  std::string encoding = "auto";
  std::string errors;            // error report path; default <file stem>.errors.csv
  std::string import_id;
  bool dry_run = false;
  int batch = 500;
  bool json = false;  // the summary as JSON on stdout
};

// What an import did, for callers that measure it (crm-bench).
struct ImportStats {
  crm::customers::v1::ImportCounts counts;
  int64_t rows = 0;     // data rows sent
  double seconds = 0;   // from opening the stream to its end
};

// Exit codes: 0 every row imported or skipped, 3 some rows failed (listed in the error
// report), 1 the server refused the import, 2 the file or flags are unusable.
int ImportCustomersCsv(crm::customers::v1::CustomerService::Stub* stub, grpc::ClientContext* ctx,
                       const ImportFlags& flags, ImportStats* stats = nullptr);

struct ExportFlags {
  std::string file = "-";  // "-": stdout
  std::string filter, order_by;
  std::vector<std::string> columns;
  bool show_deleted = false;
  bool field_names = false;
};

// UTF-8 with BOM, CRLF, RFC 4180 quoting, formulas neutralised. The file appears only once
// the export is complete. Exit codes: 0, 1 (server), 2 (local).
int ExportCustomersCsv(crm::customers::v1::CustomerService::Stub* stub, grpc::ClientContext* ctx,
                       const ExportFlags& flags);

}  // namespace crm::ctl

#endif  // CRM_TOOLS_CRMCTL_BULK_H_
