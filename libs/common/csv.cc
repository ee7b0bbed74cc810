#include "libs/common/csv.h"

#include <errno.h>
#include <iconv.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/text.h"

namespace crm::csv {

absl::StatusOr<bool> Reader::Next(std::vector<std::string>* fields) {
  fields->clear();
  if (pos_ >= text_.size()) return false;
  ++record_;
  record_line_ = line_;
  std::string field;
  for (;;) {
    // One field, at pos_.
    field.clear();
    if (pos_ < text_.size() && text_[pos_] == '"') {
      const int64_t opened = line_;
      ++pos_;
      for (;;) {
        if (pos_ >= text_.size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("line ", opened, ": a quoted field is never closed"));
        }
        const char c = text_[pos_++];
        if (c == '"') {
          if (pos_ < text_.size() && text_[pos_] == '"') {
            field.push_back('"');
            ++pos_;
            continue;
          }
          break;
        }
        if (c == '\n') ++line_;
        field.push_back(c);
      }
      if (pos_ < text_.size() && text_[pos_] != delimiter_ && text_[pos_] != '\n' &&
          !(text_[pos_] == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') &&
          !(text_[pos_] == '\r' && pos_ + 1 == text_.size())) {
        return absl::InvalidArgumentError(
            absl::StrCat("line ", line_, ": text after the closing quote of a field"));
      }
    } else {
      while (pos_ < text_.size() && text_[pos_] != delimiter_ && text_[pos_] != '\n') {
        if (text_[pos_] == '\r' && (pos_ + 1 == text_.size() || text_[pos_ + 1] == '\n')) break;
        field.push_back(text_[pos_++]);
      }
    }
    fields->push_back(field);
    // What ends the field: a delimiter (another field follows), a line break or the end.
    if (pos_ < text_.size() && text_[pos_] == delimiter_) {
      ++pos_;
      continue;
    }
    if (pos_ < text_.size() && text_[pos_] == '\r') ++pos_;
    if (pos_ < text_.size() && text_[pos_] == '\n') {
      ++pos_;
      ++line_;
    }
    return true;
  }
}

std::string Quote(absl::string_view field, char delimiter) {
  const bool needs = field.find_first_of(std::string{delimiter, '"', '\r', '\n'}) != absl::string_view::npos ||
                     (!field.empty() && (field.front() == ' ' || field.back() == ' '));
  if (!needs) return std::string(field);
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string FormatRecord(const std::vector<std::string>& fields, char delimiter) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out.push_back(delimiter);
    out += Quote(fields[i], delimiter);
  }
  out += "\r\n";
  return out;
}

namespace {
bool IsFormulaStart(char c) { return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r'; }
}  // namespace

std::string NeutralizeFormula(absl::string_view cell) {
  if (!cell.empty() && IsFormulaStart(cell.front())) return absl::StrCat("'", cell);
  return std::string(cell);
}

std::string RestoreFormula(absl::string_view cell) {
  if (cell.size() >= 2 && cell.front() == '\'' && IsFormulaStart(cell[1])) return std::string(cell.substr(1));
  return std::string(cell);
}

absl::StatusOr<Encoding> ParseEncoding(absl::string_view name) {
  const std::string n = absl::AsciiStrToLower(name);
  if (n == "auto") return Encoding::kAuto;
  if (n == "utf-8" || n == "utf8") return Encoding::kUtf8;
  if (n == "gb18030" || n == "gbk" || n == "gb2312") return Encoding::kGb18030;
  return absl::InvalidArgumentError(absl::StrCat("unknown encoding '", name, "' (auto, utf-8, gb18030)"));
}

const char* EncodingName(Encoding e) {
  switch (e) {
    case Encoding::kUtf8: return "utf-8";
    case Encoding::kGb18030: return "gb18030";
    default: return "auto";
  }
}

namespace {

// `in` from one iconv encoding to another; INVALID_ARGUMENT naming the first byte that is not
// valid `from_name`.
absl::StatusOr<std::string> Convert(absl::string_view in, const char* to, const char* from, absl::string_view from_name) {
  iconv_t cd = iconv_open(to, from);
  if (cd == reinterpret_cast<iconv_t>(-1)) {
    return absl::InternalError(absl::StrCat("iconv cannot convert ", from, " to ", to, " on this system"));
  }
  std::string out;
  out.resize(in.size() * 2 + 16);
  char* src = const_cast<char*>(in.data());
  size_t src_left = in.size();
  char* dst = out.data();
  size_t dst_left = out.size();
  absl::Status status;
  while (src_left > 0) {
    if (iconv(cd, &src, &src_left, &dst, &dst_left) != static_cast<size_t>(-1)) break;
    if (errno == E2BIG) {
      const size_t used = dst - out.data();
      out.resize(out.size() * 2);
      dst = out.data() + used;
      dst_left = out.size() - used;
      continue;
    }
    status = absl::InvalidArgumentError(absl::StrCat("byte ", src - in.data(), " is not valid ", from_name,
                                                     errno == EINVAL ? " (the file ends inside a character)" : ""));
    break;
  }
  iconv_close(cd);
  if (!status.ok()) return status;
  out.resize(dst - out.data());
  return out;
}

absl::StatusOr<std::string> FromGb18030(absl::string_view in) { return Convert(in, "UTF-8", "GB18030", "GB18030"); }

}  // namespace

absl::StatusOr<Decoded> DecodeToUtf8(absl::string_view bytes, Encoding encoding) {
  Decoded d;
  if (absl::StartsWith(bytes, "\xFF\xFE") || absl::StartsWith(bytes, "\xFE\xFF")) {
    return absl::InvalidArgumentError("the file is UTF-16 (Excel's \"Unicode text\"); save it as CSV UTF-8 or CSV");
  }
  if (absl::StartsWith(bytes, kUtf8Bom)) {
    if (encoding == Encoding::kGb18030) {
      return absl::InvalidArgumentError("the file starts with a UTF-8 byte order mark but gb18030 was asked for");
    }
    bytes.remove_prefix(kUtf8Bom.size());
    d.had_bom = true;
    encoding = Encoding::kUtf8;
  }
  size_t bad = 0;
  if (encoding == Encoding::kAuto) encoding = IsValidUtf8(bytes) ? Encoding::kUtf8 : Encoding::kGb18030;
  d.encoding = encoding;
  if (encoding == Encoding::kUtf8) {
    if (!IsValidUtf8(bytes, &bad)) {
      return absl::InvalidArgumentError(absl::StrCat("byte ", bad + (d.had_bom ? kUtf8Bom.size() : 0),
                                                     " is not valid UTF-8 (try --encoding gb18030)"));
    }
    d.text = std::string(bytes);
    return d;
  }
  auto text = FromGb18030(bytes);
  if (!text.ok()) return text.status();
  d.text = *std::move(text);
  return d;
}

absl::StatusOr<std::string> EncodeGb18030(absl::string_view utf8) {
  return Convert(utf8, "GB18030", "UTF-8", "UTF-8");
}

}  // namespace crm::csv
