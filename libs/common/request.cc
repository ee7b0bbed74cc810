#include "libs/common/request.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/etag.h"
#include "libs/common/grpc_status.h"
#include "libs/common/ids.h"
#include "libs/common/sha256.h"
#include "libs/common/status_macros.h"
#include "libs/common/text.h"

namespace crm {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

namespace {

// The fields CopySameNamed copies from one message type to another: pairs of (from, to) with
// the same name, type, cardinality and message or enum type. Looked up once per pair of types
// and thread (FindFieldByName and the checks took half of CopySameNamed's time on every call).
using FieldPairs = std::vector<std::pair<const FieldDescriptor*, const FieldDescriptor*>>;

const FieldPairs& SameNamedFields(const google::protobuf::Descriptor* from, const google::protobuf::Descriptor* to) {
  thread_local absl::flat_hash_map<std::pair<const google::protobuf::Descriptor*, const google::protobuf::Descriptor*>,
                                   FieldPairs>
      cache;
  auto [it, inserted] = cache.try_emplace({from, to});
  if (!inserted) return it->second;
  for (int i = 0; i < from->field_count(); ++i) {
    const FieldDescriptor* f = from->field(i);
    const FieldDescriptor* t = to->FindFieldByName(f->name());
    if (t == nullptr || t->type() != f->type() || t->is_repeated() != f->is_repeated() ||
        t->message_type() != f->message_type() || t->enum_type() != f->enum_type()) {
      continue;
    }
    it->second.emplace_back(f, t);
  }
  return it->second;
}

// Reads filter and order_by text token by token; every error names `field` and the position
// (in characters, from 1) where the text stopped making sense. Whitespace between tokens is
// skipped.
class Scanner {
 public:
  Scanner(absl::string_view text, absl::string_view field) : text_(text), field_(field) { SkipSpace(); }

  bool AtEnd() const { return at_ == text_.size(); }
  size_t Position() const { return Utf8Length(text_.substr(0, at_)) + 1; }

  // INVALID_ARGUMENT: the text at the current position is not `expected`.
  absl::Status Unexpected(absl::string_view expected) const {
    return InvalidFieldError(field_, AtEnd() ? absl::StrCat("ends where ", expected, " should follow")
                                             : absl::StrCat("has unexpected text at position ", Position(),
                                                            " (expected ", expected, ")"));
  }

  // [A-Za-z_][A-Za-z0-9_.]*
  absl::StatusOr<std::string> Name(absl::string_view what) {
    size_t end = at_;
    while (end < text_.size() && IsNameChar(text_[end]) &&
           (end > at_ || absl::ascii_isalpha(text_[end]) || text_[end] == '_')) {
      ++end;
    }
    if (end == at_) return Unexpected(what);
    return Take(end);
  }

  // A double-quoted string with \" and \\ escapes, or a word of anything but spaces, quotes and
  // parentheses.
  absl::StatusOr<std::string> Value() {
    if (at_ < text_.size() && text_[at_] == '"') {
      const size_t open = at_;
      std::string v;
      for (size_t i = at_ + 1; i < text_.size(); ++i) {
        if (text_[i] == '\\' && i + 1 < text_.size() && (text_[i + 1] == '"' || text_[i + 1] == '\\')) {
          v.push_back(text_[++i]);
        } else if (text_[i] == '"') {
          at_ = i + 1;
          SkipSpace();
          return v;
        } else {
          v.push_back(text_[i]);
        }
      }
      at_ = open;
      return InvalidFieldError(field_, absl::StrCat("has a string at position ", Position(), " without its closing quote"));
    }
    size_t end = at_;
    while (end < text_.size() && !absl::ascii_isspace(text_[end]) && text_[end] != '"' && text_[end] != '(' &&
           text_[end] != ')') {
      ++end;
    }
    if (end == at_) return Unexpected("a value");
    return Take(end);
  }

  // Consumes `token` (punctuation) when it comes next.
  bool Consume(absl::string_view token) {
    if (!absl::StartsWith(text_.substr(at_), token)) return false;
    Take(at_ + token.size());
    return true;
  }

  // Consumes `word` when it comes next as a whole word (not followed by a letter, digit, _ or .).
  bool ConsumeWord(absl::string_view word) {
    const absl::string_view rest = text_.substr(at_);
    if (!absl::StartsWith(rest, word) || (rest.size() > word.size() && IsNameChar(rest[word.size()]))) return false;
    Take(at_ + word.size());
    return true;
  }

 private:
  static bool IsNameChar(char c) { return absl::ascii_isalnum(c) || c == '_' || c == '.'; }
  void SkipSpace() {
    while (at_ < text_.size() && absl::ascii_isspace(text_[at_])) ++at_;
  }
  std::string Take(size_t end) {
    std::string out(text_.substr(at_, end - at_));
    at_ = end;
    SkipSpace();
    return out;
  }

  const absl::string_view text_;
  const absl::string_view field_;
  size_t at_ = 0;
};

}  // namespace

// Copies every field of `from` into the field of `to` with the same name and type (the API
// messages mirror the state's names). Unset message fields are cleared.
void CopySameNamed(const Message& from, Message* to) {
  const auto* fr = from.GetReflection();
  const auto* tr = to->GetReflection();
  for (const auto& [f, t] : SameNamedFields(from.GetDescriptor(), to->GetDescriptor())) {
    tr->ClearField(to, t);
    if (f->is_repeated()) {
      for (int j = 0; j < fr->FieldSize(from, f); ++j) {
        switch (f->cpp_type()) {
          case FieldDescriptor::CPPTYPE_STRING: tr->AddString(to, t, fr->GetRepeatedString(from, f, j)); break;
          case FieldDescriptor::CPPTYPE_ENUM: tr->AddEnumValue(to, t, fr->GetRepeatedEnumValue(from, f, j)); break;
          case FieldDescriptor::CPPTYPE_MESSAGE: tr->AddMessage(to, t)->CopyFrom(fr->GetRepeatedMessage(from, f, j)); break;
          case FieldDescriptor::CPPTYPE_INT32: tr->AddInt32(to, t, fr->GetRepeatedInt32(from, f, j)); break;
          case FieldDescriptor::CPPTYPE_INT64: tr->AddInt64(to, t, fr->GetRepeatedInt64(from, f, j)); break;
          case FieldDescriptor::CPPTYPE_BOOL: tr->AddBool(to, t, fr->GetRepeatedBool(from, f, j)); break;
          default: break;
        }
      }
      continue;
    }
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING: tr->SetString(to, t, fr->GetString(from, f)); break;
      case FieldDescriptor::CPPTYPE_ENUM: tr->SetEnumValue(to, t, fr->GetEnumValue(from, f)); break;
      case FieldDescriptor::CPPTYPE_BOOL: tr->SetBool(to, t, fr->GetBool(from, f)); break;
      case FieldDescriptor::CPPTYPE_INT32: tr->SetInt32(to, t, fr->GetInt32(from, f)); break;
      case FieldDescriptor::CPPTYPE_INT64: tr->SetInt64(to, t, fr->GetInt64(from, f)); break;
      case FieldDescriptor::CPPTYPE_MESSAGE:
        if (fr->HasField(from, f)) tr->MutableMessage(to, t)->CopyFrom(fr->GetMessage(from, f));
        break;
      default: break;
    }
  }
}

// The fields of `m` (among `names`) that are set: AIP-134's "no mask means every field set".
std::vector<std::string> SetFields(const Message& m, const std::vector<std::string>& names) {
  std::vector<std::string> out;
  const auto* r = m.GetReflection();
  for (const auto& name : names) {
    const auto* fd = m.GetDescriptor()->FindFieldByName(name);
    if (fd->is_repeated() ? r->FieldSize(m, fd) > 0 : r->HasField(m, fd)) out.push_back(name);
  }
  return out;
}

absl::StatusOr<int64_t> ParseEtag(const std::string& etag, absl::string_view field) {
  if (etag.empty()) return 0;
  int64_t v = 0;
  if (!absl::SimpleAtoi(etag, &v) || v < 0) return InvalidFieldError(field, "is not an etag this service issued");
  return v == 0 ? kEtagNothingWritten : v;
}

absl::StatusOr<std::string> ParseName(const std::string& name, absl::string_view field,
                                      absl::string_view collection) {
  const std::string prefix = absl::StrCat(collection, "/");
  if (!absl::StartsWith(name, prefix)) {
    return InvalidFieldError(field, absl::StrCat("must look like ", collection, "/{id}"));
  }
  std::string id = name.substr(prefix.size());
  if (!IsCanonicalUuid(id)) return InvalidFieldError(field, "has an id that is not a UUID");
  return id;
}

absl::Status CheckRequestId(const std::string& rid, absl::string_view field) {
  if (rid.size() > 128) return InvalidFieldError(field, "is longer than 128 characters");
  for (char c : rid) {
    if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f) {
      return InvalidFieldError(field, "must be printable ASCII without spaces");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Target> ParseTarget(const std::string& request_id, const std::string& name,
                                   absl::string_view name_field, const std::string& etag,
                                   absl::string_view etag_field, absl::string_view collection) {
  CRM_RETURN_IF_ERROR(CheckRequestId(request_id));
  Target t;
  CRM_ASSIGN_OR_RETURN(t.id, ParseName(name, name_field, collection));
  CRM_ASSIGN_OR_RETURN(t.etag, ParseEtag(etag, etag_field));
  t.request_id = request_id;
  t.etag_field = std::string(etag_field);
  return t;
}

// A UUID-shaped id derived from a name (RFC 9562 version 8, SHA-256): a retried request
// with the same request_id creates the same sub-resource id.
std::string DerivedId(absl::string_view a, absl::string_view b) {
  std::string h = Sha256({a, "/", b});
  h[6] = static_cast<char>((h[6] & 0x0f) | 0x80);
  h[8] = static_cast<char>((h[8] & 0x3f) | 0x80);
  const std::string hex = absl::BytesToHexString(h.substr(0, 16));
  return absl::StrCat(hex.substr(0, 8), "-", hex.substr(8, 4), "-", hex.substr(12, 4), "-",
                      hex.substr(16, 4), "-", hex.substr(20, 12));
}

// Uses "days" in the configured zone as yyyymmdd.
std::string Day(absl::Time t, absl::TimeZone zone) { return absl::FormatTime("%Y%m%d", t, zone); }

// Page tokens carry the offset and a fingerprint of the query they belong to.
std::string PageToken(int64_t offset, const std::string& fingerprint) {
  std::string out;
  absl::WebSafeBase64Escape(absl::StrCat(offset, ":", fingerprint), &out);
  return out;
}

absl::StatusOr<int64_t> ParsePageToken(const std::string& token, const std::string& fingerprint) {
  if (token.empty()) return 0;
  std::string raw;
  int64_t offset = 0;
  if (!absl::WebSafeBase64Unescape(token, &raw)) return InvalidFieldError("page_token", "is not a page token");
  std::pair<std::string, std::string> parts = absl::StrSplit(raw, absl::MaxSplits(':', 1));
  if (!absl::SimpleAtoi(parts.first, &offset) || offset < 0) {
    return InvalidFieldError("page_token", "is not a page token");
  }
  if (parts.second != fingerprint) {
    return InvalidFieldError("page_token", "belongs to a query with other filter, order_by or show_deleted");
  }
  return offset;
}

absl::StatusOr<int32_t> PageSize(int32_t requested, absl::string_view field) {
  if (requested < 0) return InvalidFieldError(field, "must not be negative");
  if (requested == 0) return 50;
  return std::min(requested, 1000);
}

absl::StatusOr<std::vector<FilterTerm>> ParseFilterTerms(const std::string& text,
                                                        const std::vector<std::string>& allowed,
                                                        const std::vector<std::string>& has_fields) {
  std::vector<FilterTerm> out;
  Scanner in(text, "filter");
  if (in.AtEnd()) return out;
  for (;;) {
    const size_t at = in.Position();
    FilterTerm t;
    CRM_ASSIGN_OR_RETURN(t.field, in.Name("a field name"));
    if (std::find(allowed.begin(), allowed.end(), t.field) == allowed.end()) {
      return InvalidFieldError("filter", absl::StrCat("cannot filter on '", t.field, "' at position ", at, " (",
                                                      absl::StrJoin(allowed, ", "), ")"));
    }
    const bool has = std::find(has_fields.begin(), has_fields.end(), t.field) != has_fields.end();
    if (has && in.Consume(":")) {
      t.op = ':';
    } else if (!in.Consume("=")) {
      return in.Unexpected(has ? "= or :" : "=");
    }
    CRM_ASSIGN_OR_RETURN(t.value, in.Value());
    if (t.value.empty()) return InvalidFieldError("filter", absl::StrCat("'", t.field, "' has no value"));
    for (const FilterTerm& o : out) {
      if (o.field == t.field) {
        return InvalidFieldError("filter", absl::StrCat("names '", t.field, "' twice (at position ", at, ")"));
      }
    }
    out.push_back(std::move(t));
    if (in.AtEnd()) return out;
    if (!in.ConsumeWord("AND")) return in.Unexpected("AND or the end");
  }
}

absl::StatusOr<OrderBy> ParseOrderBy(const std::string& text, const std::vector<std::string>& allowed,
                                     const std::string& fallback) {
  OrderBy o{fallback, false};
  Scanner in(text, "order_by");
  if (in.AtEnd()) return o;
  CRM_ASSIGN_OR_RETURN(o.field, in.Name("a field name"));
  if (std::find(allowed.begin(), allowed.end(), o.field) == allowed.end()) {
    return InvalidFieldError("order_by", absl::StrCat("is one of ", absl::StrJoin(allowed, ", "),
                                                      ", optionally followed by desc"));
  }
  if (in.ConsumeWord("desc")) {
    o.desc = true;
  } else {
    in.ConsumeWord("asc");
  }
  if (!in.AtEnd()) return in.Unexpected("asc, desc or the end");
  return o;
}

std::string TimeSortKey(const google::protobuf::Timestamp& t) {
  return absl::StrFormat("%020d%09d", t.seconds(), t.nanos());
}

}  // namespace crm
