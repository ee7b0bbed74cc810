#include "tools/crmctl_bulk.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "libs/common/csv.h"
#include "tools/crmctl_common.h"

namespace crm::ctl {
namespace {

namespace v1 = crm::customers::v1;

std::string DefaultErrorsPath(const std::string& file) {
  std::filesystem::path p(file);
  return (p.parent_path() / (p.stem().string() + ".errors.csv")).string();
}

const char* OutcomeName(v1::ImportOutcome o) {
  switch (o) {
    case v1::IMPORT_OUTCOME_CREATED: return "created";
    case v1::IMPORT_OUTCOME_UPDATED: return "updated";
    case v1::IMPORT_OUTCOME_SKIPPED: return "skipped";
    case v1::IMPORT_OUTCOME_FAILED: return "failed";
    default: return "?";
  }
}

// The rows of a CSV file, read in batches.
class RowSource {
 public:
  explicit RowSource(std::string text) : text_(std::move(text)), reader_(text_) {}
  absl::StatusOr<std::vector<std::string>> Header() {
    std::vector<std::string> h;
    auto more = reader_.Next(&h);
    if (!more.ok()) return more.status();
    if (!*more) return absl::InvalidArgumentError("the file is empty (the first row must name the columns)");
    for (auto& c : h) c = std::string(absl::StripAsciiWhitespace(c));
    return h;
  }
  // Up to `n` rows into *out (blank rows are left out); false once none are left.
  absl::StatusOr<bool> Next(int n, google::protobuf::RepeatedPtrField<v1::ImportRow>* out) {
    std::vector<std::string> fields;
    while (out->size() < n) {
      auto more = reader_.Next(&fields);
      if (!more.ok()) return more.status();
      if (!*more) break;
      if (std::all_of(fields.begin(), fields.end(), [](const std::string& f) {
            return absl::StripAsciiWhitespace(f).empty();
          })) {
        continue;
      }
      v1::ImportRow* row = out->Add();
      row->set_row_number(reader_.record());
      for (const auto& f : fields) row->add_cells(csv::RestoreFormula(f));
    }
    return !out->empty();
  }

 private:
  std::string text_;
  csv::Reader reader_;
};

}  // namespace

int ImportCustomersCsv(v1::CustomerService::Stub* stub, grpc::ClientContext* ctx, const ImportFlags& f,
                       ImportStats* stats) {
  // Everything local is checked before the server hears of the import.
  v1::ImportOptions options;
  static const std::map<std::string, v1::DedupePolicy> kPolicies = {
      {"skip", v1::DEDUPE_POLICY_SKIP}, {"update", v1::DEDUPE_POLICY_UPDATE}, {"merge", v1::DEDUPE_POLICY_MERGE}};
  auto policy = kPolicies.find(f.policy);
  if (policy == kPolicies.end()) return Fail("--policy must be skip, update or merge");
  options.set_dedupe_policy(policy->second);
  options.set_dry_run(f.dry_run);
  options.set_import_id(f.import_id);
  if (f.batch < 1 || f.batch > 1000) return Fail("--batch must be between 1 and 1000");
  for (const auto& m : f.map) {
    const size_t eq = m.rfind('=');
    if (eq == std::string::npos || eq == 0) return Fail(absl::StrCat("--map '", m, "' is not COLUMN=FIELD"));
    (*options.mutable_mapping())[std::string(absl::StripAsciiWhitespace(m.substr(0, eq)))] =
        std::string(absl::StripAsciiWhitespace(m.substr(eq + 1)));
  }
  auto encoding = csv::ParseEncoding(f.encoding);
  if (!encoding.ok()) return Fail(absl::StrCat("--encoding: ", encoding.status().message()));
  auto bytes = ReadFile(f.file);
  if (!bytes.ok()) return Fail(std::string(bytes.status().message()));
  auto decoded = csv::DecodeToUtf8(*bytes, *encoding);
  if (!decoded.ok()) return Fail(absl::StrCat(f.file, ": ", decoded.status().message()));
  bytes->clear();
  bytes->shrink_to_fit();
  RowSource source(std::move(decoded->text));
  auto header = source.Header();
  if (!header.ok()) return Fail(absl::StrCat(f.file, ": ", header.status().message()));
  for (const auto& c : *header) options.add_columns(c);
  std::fprintf(stderr, "%s: %s%s, %zu columns\n", f.file.c_str(), csv::EncodingName(decoded->encoding),
               decoded->had_bom ? " with BOM" : "", header->size());

  // The error report: failed and skipped rows with the reason and the row as it was.
  const std::string errors_path = f.errors.empty() ? DefaultErrorsPath(f.file) : f.errors;
  const std::string errors_tmp = errors_path + ".part";
  std::ofstream errors;
  int64_t reported = 0;
  auto report = [&](const v1::ImportRowResult& r, const v1::ImportRow& row) -> bool {
    if (!errors.is_open()) {
      errors.open(errors_tmp, std::ios::binary | std::ios::trunc);
      if (!errors) return false;
      errors << csv::kUtf8Bom;
      std::vector<std::string> h = {"row", "result", "field", "column", "message", "customer"};
      h.insert(h.end(), header->begin(), header->end());
      errors << csv::FormatRecord(h);
    }
    std::vector<std::string> cells = {absl::StrCat(r.row_number()), OutcomeName(r.outcome()), r.field(),
                                      r.column(), r.message(), r.customer()};
    for (const auto& c : row.cells()) cells.push_back(c);
    for (auto& c : cells) c = csv::NeutralizeFormula(c);
    errors << csv::FormatRecord(cells);
    ++reported;
    return static_cast<bool>(errors);
  };

  // The report keeps what was answered even when the import stops half way.
  auto close_report = [&]() -> bool {
    if (!errors.is_open()) return true;
    errors.close();
    std::error_code ec;
    std::filesystem::rename(errors_tmp, errors_path, ec);
    if (ec) Fail(absl::StrCat("cannot write ", errors_path, ": ", ec.message()));
    return !ec;
  };
  const absl::Time t0 = absl::Now();
  auto stream = stub->ImportCustomers(ctx);
  v1::ImportCustomersRequest req;
  *req.mutable_options() = options;
  v1::ImportCustomersResponse resp;
  v1::ImportCounts counts;
  int64_t sent = 0, next_progress = 20000;
  bool first = true;
  for (;;) {
    auto more = source.Next(f.batch, req.mutable_rows());
    if (!more.ok()) {
      stream->WritesDone();
      ctx->TryCancel();
      (void)stream->Finish();
      close_report();
      return Fail(absl::StrCat(f.file, ": ", more.status().message(), "; the rows before it were answered (",
                               counts.created(), " created, ", counts.updated(), " updated, ", counts.skipped(),
                               " skipped, ", counts.failed(), " failed)"));
    }
    if (!first && !*more) break;
    const google::protobuf::RepeatedPtrField<v1::ImportRow> rows = req.rows();
    if (!stream->Write(req) || !stream->Read(&resp)) break;  // Finish has the reason
    if (first) {
      std::vector<std::string> mapped;
      for (const auto& c : *header) {
        if (auto it = resp.mapping().find(c); it != resp.mapping().end()) mapped.push_back(absl::StrCat(c, "=", it->second));
      }
      std::fprintf(stderr, "import %s%s: %s\n", resp.import_id().c_str(), resp.dry_run() ? " (dry run)" : "",
                   absl::StrJoin(mapped, ", ").c_str());
      if (resp.ignored_columns_size() > 0) {
        std::fprintf(stderr, "ignored columns: %s\n", absl::StrJoin(resp.ignored_columns(), ", ").c_str());
      }
      first = false;
    }
    for (int i = 0; i < resp.results_size() && i < rows.size(); ++i) {
      const auto& r = resp.results(i);
      if (r.outcome() == v1::IMPORT_OUTCOME_FAILED || r.outcome() == v1::IMPORT_OUTCOME_SKIPPED) {
        if (!report(r, rows[i])) {
          ctx->TryCancel();
          (void)stream->Finish();
          return Fail(absl::StrCat("cannot write ", errors_tmp));
        }
      }
    }
    counts = resp.counts();
    sent += rows.size();
    if (sent >= next_progress) {
      std::fprintf(stderr, "... %lld rows, %.0f rows/s\n", static_cast<long long>(sent),
                   sent / std::max(1e-9, absl::ToDoubleSeconds(absl::Now() - t0)));
      next_progress += 20000;
    }
    req.Clear();
    if (!*more) break;
  }
  stream->WritesDone();
  bool done = false;
  while (stream->Read(&resp)) {
    counts = resp.counts();
    done = done || resp.done();
  }
  grpc::Status status = stream->Finish();
  if (!close_report()) return 2;
  if (!status.ok()) {
    RpcFail(status);
    std::fprintf(stderr, "rows answered before the failure: %lld created, %lld updated, %lld skipped, %lld failed\n",
                 static_cast<long long>(counts.created()), static_cast<long long>(counts.updated()),
                 static_cast<long long>(counts.skipped()), static_cast<long long>(counts.failed()));
    return 1;
  }
  if (!done) return Fail("the server ended the import without its final answer");
  const double secs = absl::ToDoubleSeconds(absl::Now() - t0);
  if (stats != nullptr) {
    stats->counts = counts;
    stats->rows = sent;
    stats->seconds = secs;
  }
  if (f.json) {
    v1::ImportCustomersResponse summary;
    *summary.mutable_counts() = counts;
    summary.set_import_id(resp.import_id());
    summary.set_dry_run(f.dry_run);
    std::cout << Json(summary);
  }
  std::fprintf(stderr, "%s%lld rows in %.1f s (%.0f rows/s): %lld created, %lld updated, %lld skipped, %lld failed\n",
               f.dry_run ? "dry run, nothing written: " : "", static_cast<long long>(sent), secs,
               sent / std::max(1e-9, secs), static_cast<long long>(counts.created()),
               static_cast<long long>(counts.updated()), static_cast<long long>(counts.skipped()),
               static_cast<long long>(counts.failed()));
  if (reported > 0) std::fprintf(stderr, "failed and skipped rows: %s\n", errors_path.c_str());
  return counts.failed() > 0 ? 3 : 0;
}

int ExportCustomersCsv(v1::CustomerService::Stub* stub, grpc::ClientContext* ctx, const ExportFlags& f) {
  v1::ExportCustomersRequest req;
  req.set_filter(f.filter);
  req.set_order_by(f.order_by);
  req.set_show_deleted(f.show_deleted);
  req.set_field_names(f.field_names);
  for (const auto& c : f.columns) req.add_columns(c);
  const bool to_stdout = f.file == "-";
  const std::string tmp = f.file + ".part";
  std::ofstream file;
  if (!to_stdout) {
    file.open(tmp, std::ios::binary | std::ios::trunc);
    if (!file) return Fail(absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
  }
  std::ostream& out = to_stdout ? std::cout : file;
  auto stream = stub->ExportCustomers(ctx, req);
  v1::ExportCustomersResponse resp;
  int64_t rows = 0;
  std::vector<std::string> cells;
  out << csv::kUtf8Bom;
  while (stream->Read(&resp)) {
    if (resp.columns_size() > 0) out << csv::FormatRecord({resp.columns().begin(), resp.columns().end()});
    for (const auto& r : resp.rows()) {
      cells.clear();
      for (const auto& c : r.cells()) cells.push_back(csv::NeutralizeFormula(c));
      out << csv::FormatRecord(cells);
      ++rows;
    }
  }
  grpc::Status status = stream->Finish();
  out.flush();
  if (!status.ok() || !out) {
    if (!to_stdout) std::filesystem::remove(tmp);
    if (!status.ok()) return RpcFail(status);
    return Fail(absl::StrCat("cannot write ", to_stdout ? "stdout" : tmp));
  }
  if (!to_stdout) {
    file.close();
    std::error_code ec;
    std::filesystem::rename(tmp, f.file, ec);
    if (ec) return Fail(absl::StrCat("cannot write ", f.file, ": ", ec.message()));
  }
  std::fprintf(stderr, "exported %lld customers%s%s\n", static_cast<long long>(rows), to_stdout ? "" : " to ",
               to_stdout ? "" : f.file.c_str());
  return 0;
}

}  // namespace crm::ctl
