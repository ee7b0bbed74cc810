#include "services/analytics/report_csv.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/timestamp.pb.h"
#include "libs/common/csv.h"
#include "libs/common/money.h"
#include "libs/common/proto_time.h"
#include "services/analytics/facts.h"

namespace crm::analytics {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

bool IsTable(const FieldDescriptor* f) {
  return f->is_repeated() && f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE;
}

std::string Header(const FieldDescriptor* f) {
  if (absl::EndsWith(f->name(), "_minor")) return f->name().substr(0, f->name().size() - 6);
  return f->name();
}

std::string Cell(const Message& m, const FieldDescriptor* f) {
  const auto* r = m.GetReflection();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING: return csv::NeutralizeFormula(r->GetString(m, f));
    case FieldDescriptor::CPPTYPE_INT64:
      if (absl::EndsWith(f->name(), "_minor")) return money::FormatAmount(r->GetInt64(m, f), 2);
      return absl::StrCat(r->GetInt64(m, f));
    case FieldDescriptor::CPPTYPE_INT32: return absl::StrCat(r->GetInt32(m, f));
    case FieldDescriptor::CPPTYPE_DOUBLE: return absl::StrFormat("%.2f", r->GetDouble(m, f));
    case FieldDescriptor::CPPTYPE_BOOL: return r->GetBool(m, f) ? "true" : "false";
    case FieldDescriptor::CPPTYPE_ENUM: return r->GetEnum(m, f)->name();
    case FieldDescriptor::CPPTYPE_MESSAGE:
      if (f->message_type()->full_name() == "google.protobuf.Timestamp" && r->HasField(m, f)) {
        const auto& t = static_cast<const google::protobuf::Timestamp&>(r->GetMessage(m, f));
        return absl::FormatTime("%Y-%m-%d %H:%M:%S", FromProto(t), ReportZone());
      }
      return "";
    default: return "";
  }
}

}  // namespace

std::vector<std::string> ReportTables(const Message& report) {
  std::vector<std::string> out;
  const auto* d = report.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    if (IsTable(d->field(i))) out.push_back(d->field(i)->name());
  }
  return out;
}

absl::StatusOr<std::string> ReportCsv(const Message& report, const std::string& table) {
  const std::vector<std::string> tables = ReportTables(report);
  if (tables.empty()) return absl::InvalidArgumentError("the report has no table");
  const std::string name = table.empty() ? tables.front() : table;
  const FieldDescriptor* field = report.GetDescriptor()->FindFieldByName(name);
  if (field == nullptr || !IsTable(field)) {
    return absl::InvalidArgumentError(
        absl::StrCat("table: '", name, "' is not one of ", absl::StrJoin(tables, ", ")));
  }
  const auto* row = field->message_type();
  std::vector<const FieldDescriptor*> columns;
  std::vector<std::string> header;
  for (int i = 0; i < row->field_count(); ++i) {
    const FieldDescriptor* f = row->field(i);
    if (f->is_repeated()) continue;
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && f->message_type()->full_name() != "google.protobuf.Timestamp") {
      continue;
    }
    columns.push_back(f);
    header.push_back(Header(f));
  }
  std::string out(csv::kUtf8Bom);
  out += csv::FormatRecord(header);
  const auto* r = report.GetReflection();
  for (int i = 0; i < r->FieldSize(report, field); ++i) {
    const Message& m = r->GetRepeatedMessage(report, field, i);
    std::vector<std::string> cells;
    for (const FieldDescriptor* f : columns) cells.push_back(Cell(m, f));
    out += csv::FormatRecord(cells);
  }
  return out;
}

}  // namespace crm::analytics
