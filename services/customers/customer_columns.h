#ifndef CRM_SERVICES_CUSTOMERS_CUSTOMER_COLUMNS_H_
#define CRM_SERVICES_CUSTOMERS_CUSTOMER_COLUMNS_H_

// The columns of bulk import and export (批量导入/导出): which fields a file may carry, their
// Chinese labels, and how a text cell becomes a value and a value a cell. Export writes what
// import reads, so an exported file imports back unchanged.
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "crm/customers/v1/customers_service.pb.h"

namespace crm::customers {

struct ColumnSpec {
  std::string field;                 // "display_name", "contact.phone", "create_time"
  std::string label;                 // 客户名称: the export header and an import name
  std::vector<std::string> aliases;  // other headers an import recognises
  bool importable = true;            // false: output only (ignored on import)
};

// Every column, in export order.
const std::vector<ColumnSpec>& CustomerColumns();
// The column of a field path; nullptr when there is none.
const ColumnSpec* FindColumn(absl::string_view field);
// The column a file header names: its field, label or an alias, compared after trimming,
// folding full-width characters and ASCII case. nullptr when none.
const ColumnSpec* ColumnForHeader(absl::string_view header);

// Sets the importable `field` of `customer`, or of `contact` for contact.*, from `cell`
// (trimmed; empty cells are not passed here). Enums accept their full name, the name without
// the type prefix, any case, or the Chinese label; industry its code or name in `settings`;
// tags a list split at , ; ， ； 、 or |. INVALID_ARGUMENT with the reason (the caller names
// the field).
absl::Status ParseCell(absl::string_view field, absl::string_view cell, const v1::CustomerSettings& settings,
                       v1::Customer* customer, v1::Contact* contact);

// The text of `field` of `c` (contact.*: its primary contact): enums as Chinese labels,
// industry by name, times "yyyy-MM-dd HH:mm:ss" in `zone`, lists joined by ";".
std::string FormatCell(absl::string_view field, const v1::Customer& c, const v1::CustomerSettings& settings,
                       absl::TimeZone zone);

}  // namespace crm::customers

#endif  // CRM_SERVICES_CUSTOMERS_CUSTOMER_COLUMNS_H_
