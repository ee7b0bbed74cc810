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
#include "libs/common/grpc_status.h"
#include "libs/common/ids.h"
#include "libs/common/sha256.h"
#include "libs/common/status_macros.h"

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
  if (!absl::SimpleAtoi(etag, &v) || v < 1) return InvalidFieldError(field, "is not an etag this service issued");
  return v;
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

absl::StatusOr<std::vector<FilterTerm>> ParseFilterTerms(const std::string& text,
                                                        const std::vector<std::string>& allowed) {
  std::vector<FilterTerm> out;
  if (absl::StripAsciiWhitespace(text).empty()) return out;
  for (absl::string_view term : absl::StrSplit(text, " AND ")) {
    const size_t eq = term.find('=');
    if (eq == absl::string_view::npos) return InvalidFieldError("filter", absl::StrCat("cannot parse '", term, "'"));
    FilterTerm t{std::string(absl::StripAsciiWhitespace(term.substr(0, eq))),
                 std::string(absl::StripAsciiWhitespace(term.substr(eq + 1)))};
    if (t.value.size() >= 2 && t.value.front() == '"' && t.value.back() == '"') t.value = t.value.substr(1, t.value.size() - 2);
    if (t.value.empty()) return InvalidFieldError("filter", absl::StrCat("'", t.field, "' has no value"));
    if (std::find(allowed.begin(), allowed.end(), t.field) == allowed.end()) {
      return InvalidFieldError("filter", absl::StrCat("cannot filter on '", t.field, "' (", absl::StrJoin(allowed, ", "), ")"));
    }
    out.push_back(std::move(t));
  }
  return out;
}

absl::StatusOr<int32_t> PageSize(int32_t requested, absl::string_view field) {
  if (requested < 0) return InvalidFieldError(field, "must not be negative");
  if (requested == 0) return 50;
  return std::min(requested, 1000);
}

absl::StatusOr<OrderBy> ParseOrderBy(const std::string& text, const std::vector<std::string>& allowed,
                                     const std::string& fallback) {
  std::vector<std::string> words = absl::StrSplit(text, ' ', absl::SkipEmpty());
  OrderBy o{fallback, false};
  if (words.empty()) return o;
  if (words.size() > 2 || (words.size() == 2 && words[1] != "desc" && words[1] != "asc") ||
      std::find(allowed.begin(), allowed.end(), words[0]) == allowed.end()) {
    return InvalidFieldError("order_by", absl::StrCat("is one of ", absl::StrJoin(allowed, ", "),
                                                      ", optionally followed by desc"));
  }
  o.field = words[0];
  o.desc = words.size() == 2 && words[1] == "desc";
  return o;
}

std::string TimeSortKey(const google::protobuf::Timestamp& t) {
  return absl::StrFormat("%020d%09d", t.seconds(), t.nanos());
}

}  // namespace crm
