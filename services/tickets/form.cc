#include "services/tickets/form.h"

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "libs/common/grpc_status.h"
#include "libs/common/ids.h"
#include "libs/common/money.h"
#include "libs/common/proto_time.h"
#include "libs/common/text.h"
#include "re2/re2.h"

namespace crm::tickets {
namespace {

constexpr int kMaxFields = 100;
constexpr int64_t kMaxLongText = 10000;
constexpr int64_t kMaxText = 500;

using Violations = std::vector<std::pair<std::string, std::string>>;

bool ValidOptionKey(const std::string& k) {
  return !k.empty() && k.size() <= 40 && std::all_of(k.begin(), k.end(), [](char c) {
    return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_';
  });
}

bool IsText(v1::FieldType t) {
  return t == v1::FIELD_TYPE_TEXT || t == v1::FIELD_TYPE_LONG_TEXT || t == v1::FIELD_TYPE_URL;
}
bool IsChoice(v1::FieldType t) { return t == v1::FIELD_TYPE_SINGLE_CHOICE || t == v1::FIELD_TYPE_MULTI_CHOICE; }
bool IsNumeric(v1::FieldType t) { return t == v1::FIELD_TYPE_NUMBER || t == v1::FIELD_TYPE_MONEY; }

int64_t TextLimit(v1::FieldType t) { return t == v1::FIELD_TYPE_LONG_TEXT ? kMaxLongText : kMaxText; }

// The schema problem of one field, "" when none: (part, description).
std::pair<std::string, std::string> FieldProblem(const v1::FormField& f) {
  if (!ValidIdentifier(f.key())) return {"key", "must be [a-z][a-z0-9_]{0,39}"};
  if (auto s = CheckText(f.label(), "label", 40, true); !s.ok()) {
    return {"label", "must be 1-40 printable characters on one line"};
  }
  if (auto s = CheckText(f.help(), "help", 500, false, TextKind::kMultiLine); !s.ok()) {
    return {"help", "must be at most 500 printable characters"};
  }
  if (!v1::FieldType_IsValid(f.type()) || f.type() == v1::FIELD_TYPE_UNSPECIFIED) return {"type", "is not a FieldType"};
  const v1::FieldType t = f.type();
  if (f.min_length() < 0 || f.max_length() < 0) return {"min_length", "must not be negative"};
  if (f.max_length() != 0 && f.min_length() > f.max_length()) return {"min_length", "is above max_length"};
  if ((f.min_length() != 0 || f.max_length() != 0) && !IsText(t) && t != v1::FIELD_TYPE_MULTI_CHOICE) {
    return {"max_length", "applies to text, URL and multiple-choice fields"};
  }
  if (IsText(t) && f.max_length() > TextLimit(t)) {
    return {"max_length", absl::StrCat("is at most ", TextLimit(t), " for this type")};
  }
  if ((f.has_min() || f.has_max()) && !IsNumeric(t)) return {"min", "applies to number and money fields"};
  if (f.has_min() && f.has_max() && f.min() > f.max()) return {"min", "is above max"};
  if (f.scale() < 0 || f.scale() > 6) return {"scale", "must be 0-6"};
  if (f.scale() != 0 && t != v1::FIELD_TYPE_NUMBER) return {"scale", "applies to number fields"};
  if (!f.currency().empty() && t != v1::FIELD_TYPE_MONEY) return {"currency", "applies to money fields"};
  if (t == v1::FIELD_TYPE_MONEY && !f.currency().empty() && !money::MinorDigits(f.currency()).ok()) {
    return {"currency", absl::StrCat("'", f.currency(), "' is not a known currency")};
  }
  if (!f.pattern().empty()) {
    if (t != v1::FIELD_TYPE_TEXT && t != v1::FIELD_TYPE_LONG_TEXT) return {"pattern", "applies to text fields"};
    if (f.pattern().size() > 500) return {"pattern", "is longer than 500 bytes"};
    RE2 re(f.pattern(), RE2::Quiet);
    if (!re.ok()) return {"pattern", absl::StrCat("does not compile: ", re.error())};
  }
  if (IsChoice(t)) {
    if (f.options().empty()) return {"options", "a choice field needs options"};
    if (f.options_size() > 200) return {"options", "at most 200"};
    std::set<std::string> keys;
    for (int i = 0; i < f.options_size(); ++i) {
      const auto& o = f.options(i);
      if (!ValidOptionKey(o.key())) {
        return {absl::StrCat("options[", i, "].key"), "must be [a-z0-9_]{1,40}"};
      }
      if (!keys.insert(o.key()).second) return {absl::StrCat("options[", i, "].key"), "appears twice"};
      if (auto s = CheckText(o.label(), "label", 40, true); !s.ok()) {
        return {absl::StrCat("options[", i, "].label"), "must be 1-40 printable characters on one line"};
      }
    }
    if (t == v1::FIELD_TYPE_MULTI_CHOICE && f.max_length() > f.options_size()) {
      return {"max_length", "is more than the options"};
    }
  } else if (!f.options().empty()) {
    return {"options", "apply to choice fields"};
  }
  return {"", ""};
}

bool ValidUrl(const std::string& u) {
  const bool http = absl::StartsWith(u, "http://") || absl::StartsWith(u, "https://");
  if (!http) return false;
  const size_t host = u.find("://") + 3;
  if (host >= u.size() || u[host] == '/' || u[host] == '?' || u[host] == '#') return false;
  return std::none_of(u.begin(), u.end(), [](unsigned char c) { return c <= ' ' || c == 0x7f; });
}

// The problem of one value, "" when it fits.
std::string ValueProblem(const v1::FormField& f, const v1::FieldValue& v) {
  using V = v1::FieldValue;
  switch (f.type()) {
    case v1::FIELD_TYPE_TEXT:
    case v1::FIELD_TYPE_LONG_TEXT:
    case v1::FIELD_TYPE_URL: {
      if (v.value_case() != V::kText) return "expects text";
      const std::string& s = v.text();
      if (std::string problem =
              TextProblem(s, f.type() == v1::FIELD_TYPE_LONG_TEXT ? TextKind::kMultiLine : TextKind::kLine);
          !problem.empty()) {
        return problem;
      }
      const int64_t n = static_cast<int64_t>(Utf8Length(s));
      const int64_t max = f.max_length() != 0 ? f.max_length() : TextLimit(f.type());
      if (n > max) return absl::StrCat("is longer than ", max, " characters");
      if (n < f.min_length()) return absl::StrCat("is shorter than ", f.min_length(), " characters");
      if (f.type() == v1::FIELD_TYPE_URL && !ValidUrl(s)) return "is not an http(s) URL";
      if (!f.pattern().empty() && !RE2::FullMatch(s, RE2(f.pattern(), RE2::Quiet))) {
        return absl::StrCat("does not match ", f.pattern());
      }
      return "";
    }
    case v1::FIELD_TYPE_NUMBER:
    case v1::FIELD_TYPE_MONEY: {
      if (v.value_case() != V::kNumber) return "expects a number";
      if (f.type() == v1::FIELD_TYPE_MONEY && !money::CheckAmount(v.number(), "").ok()) {
        return "is beyond 10^15 minor units, the largest amount this service holds";
      }
      if (f.has_min() && v.number() < f.min()) return absl::StrCat("is below ", f.min());
      if (f.has_max() && v.number() > f.max()) return absl::StrCat("is above ", f.max());
      return "";
    }
    case v1::FIELD_TYPE_DATE: {
      if (v.value_case() != V::kDate) return "expects a date";
      if (!ParseClientDate(v.date(), "").ok()) return "is not a yyyy-MM-dd date in 1970-2199";
      return "";
    }
    case v1::FIELD_TYPE_DATETIME:
      if (v.value_case() != V::kDatetime) return "expects a date and time";
      if (!ClientTime(v.datetime(), "").ok()) return "is not a time in 1970-2199";
      return "";
    case v1::FIELD_TYPE_SINGLE_CHOICE: {
      if (v.value_case() != V::kChoice) return "expects one option";
      for (const auto& o : f.options()) {
        if (o.key() == v.choice()) return "";
      }
      return absl::StrCat("'", v.choice(), "' is not an option");
    }
    case v1::FIELD_TYPE_MULTI_CHOICE: {
      if (v.value_case() != V::kChoices) return "expects a list of options";
      std::set<std::string> seen;
      for (const auto& k : v.choices().keys()) {
        if (std::none_of(f.options().begin(), f.options().end(), [&](const auto& o) { return o.key() == k; })) {
          return absl::StrCat("'", k, "' is not an option");
        }
        if (!seen.insert(k).second) return absl::StrCat("'", k, "' is picked twice");
      }
      const int64_t n = v.choices().keys_size();
      if (f.max_length() != 0 && n > f.max_length()) return absl::StrCat("at most ", f.max_length(), " options");
      if (n < f.min_length()) return absl::StrCat("at least ", f.min_length(), " options");
      return "";
    }
    case v1::FIELD_TYPE_USER:
      if (v.value_case() != V::kText) return "expects a user id";
      if (v.text().size() > 64 || std::any_of(v.text().begin(), v.text().end(), [](unsigned char c) {
            return c <= ' ' || c == 0x7f;
          })) {
        return "is not a user id";
      }
      return "";
    case v1::FIELD_TYPE_CUSTOMER:
      if (v.value_case() != V::kText) return "expects customers/{id}";
      if (!absl::StartsWith(v.text(), "customers/") || !IsCanonicalUuid(v.text().substr(10))) {
        return "is not customers/{id}";
      }
      return "";
    default: return "has a field type this service does not know";
  }
}

}  // namespace

bool ValidIdentifier(const std::string& k) {
  if (k.empty() || k.size() > 40 || !absl::ascii_islower(k[0])) return false;
  for (char c : k) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '_') return false;
  }
  return true;
}

const v1::FormField* FindField(const v1::FormSchema& schema, const std::string& key) {
  for (const auto& f : schema.fields()) {
    if (f.key() == key) return &f;
  }
  return nullptr;
}

bool HasValue(const FormValues& values, const std::string& key) {
  auto it = values.find(key);
  if (it == values.end()) return false;
  const v1::FieldValue& v = it->second;
  switch (v.value_case()) {
    case v1::FieldValue::kText: return !v.text().empty();
    case v1::FieldValue::kDate: return !v.date().empty();
    case v1::FieldValue::kChoice: return !v.choice().empty();
    case v1::FieldValue::kChoices: return !v.choices().keys().empty();
    case v1::FieldValue::VALUE_NOT_SET: return false;
    default: return true;
  }
}

absl::Status ValidateSchema(const v1::FormSchema& schema, const std::string& prefix) {
  if (schema.fields_size() > kMaxFields) return InvalidFieldError(absl::StrCat(prefix, ".fields"), "at most 100");
  std::set<std::string> keys;
  for (int i = 0; i < schema.fields_size(); ++i) {
    const auto& f = schema.fields(i);
    const std::string at = absl::StrCat(prefix, ".fields[", i, "]");
    auto [part, problem] = FieldProblem(f);
    if (!part.empty()) return InvalidFieldError(absl::StrCat(at, ".", part), problem);
    if (!keys.insert(f.key()).second) return InvalidFieldError(absl::StrCat(at, ".key"), "appears twice");
  }
  return absl::OkStatus();
}

absl::Status ValidateValues(const v1::FormSchema& schema, const FormValues& values, const std::string& prefix,
                            bool require) {
  Violations out;
  for (const auto& [key, value] : values) {
    const v1::FormField* f = FindField(schema, key);
    const std::string at = absl::StrCat(prefix, ".", key);
    if (f == nullptr) {
      out.push_back({at, "is not a field of this ticket type's form"});
      continue;
    }
    if (!HasValue(values, key)) continue;  // an empty value clears the field
    if (std::string problem = ValueProblem(*f, value); !problem.empty()) out.push_back({at, problem});
  }
  if (require) {
    for (const auto& f : schema.fields()) {
      if (f.required() && !HasValue(values, f.key())) out.push_back({absl::StrCat(prefix, ".", f.key()), "is required"});
    }
  }
  return InvalidFieldsError(out);
}

}  // namespace crm::tickets
