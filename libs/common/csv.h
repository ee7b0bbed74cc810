#ifndef CRM_LIBS_COMMON_CSV_H_
#define CRM_LIBS_COMMON_CSV_H_

// CSV as spreadsheets write it (RFC 4180): reading, writing, encodings (UTF-8 with or without
// BOM, GB18030 as Excel saves it on Chinese Windows) and formula neutralisation.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace crm::csv {

inline constexpr absl::string_view kUtf8Bom = "\xEF\xBB\xBF";

// Reads records from UTF-8 text: fields separated by `delimiter`, records by CRLF or LF (a
// final line break is optional), fields optionally in double quotes, where "" is one quote
// and line breaks are data.
class Reader {
 public:
  explicit Reader(absl::string_view text, char delimiter = ',') : text_(text), delimiter_(delimiter) {}
  // The next record into *fields: true, or false at the end of the text. INVALID_ARGUMENT
  // naming the line for a quote that is never closed or text after a closing quote.
  absl::StatusOr<bool> Next(std::vector<std::string>* fields);
  // The record last returned, counting from 1 (as a spreadsheet numbers its rows).
  int64_t record() const { return record_; }
  // The line the record last returned starts on, counting from 1.
  int64_t line() const { return record_line_; }

 private:
  absl::string_view text_;
  const char delimiter_;
  size_t pos_ = 0;
  int64_t record_ = 0;
  int64_t line_ = 1;
  int64_t record_line_ = 0;
};

// `field` quoted when it holds the delimiter, a quote, CR or LF, or starts or ends with a
// space; as is otherwise.
std::string Quote(absl::string_view field, char delimiter = ',');
// One record: the fields quoted as needed, joined by `delimiter`, ended by CRLF.
std::string FormatRecord(const std::vector<std::string>& fields, char delimiter = ',');

// Against CSV/formula injection: a cell starting with = + - @, tab or CR gets a leading ' so
// that spreadsheets show it as text instead of evaluating it.
std::string NeutralizeFormula(absl::string_view cell);
// The inverse on import: "'=x" -> "=x" (a leading ' before one of those characters only).
std::string RestoreFormula(absl::string_view cell);

enum class Encoding { kAuto, kUtf8, kGb18030 };
// Parses "auto", "utf-8"/"utf8", "gb18030"/"gbk"/"gb2312" (GB18030 is a superset of both).
absl::StatusOr<Encoding> ParseEncoding(absl::string_view name);
const char* EncodingName(Encoding e);

struct Decoded {
  std::string text;         // UTF-8, without a BOM
  Encoding encoding;        // what the bytes were
  bool had_bom = false;
};
// File bytes to UTF-8. A UTF-8 BOM means UTF-8. kAuto: UTF-8 when the bytes are valid UTF-8,
// else GB18030. INVALID_ARGUMENT naming the byte offset for bytes invalid in the encoding,
// and for UTF-16 (with BOM), which is not read.
absl::StatusOr<Decoded> DecodeToUtf8(absl::string_view bytes, Encoding encoding);

// UTF-8 text to GB18030 bytes (what Excel writes on Chinese Windows); INVALID_ARGUMENT naming
// the first byte that is not valid UTF-8.
absl::StatusOr<std::string> EncodeGb18030(absl::string_view utf8);

}  // namespace crm::csv

#endif  // CRM_LIBS_COMMON_CSV_H_
