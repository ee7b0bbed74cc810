#include "services/customers/customer.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/field_mask_util.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/grpc_status.h"

namespace crm::customers {
namespace {

using google::protobuf::util::TimeUtil;

// Folds full-width ASCII (U+FF01..U+FF5E) and the ideographic space to ASCII.
std::string FoldFullWidth(absl::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size();) {
    const auto c = static_cast<unsigned char>(in[i]);
    if (c == 0xEF && i + 2 < in.size()) {
      const auto c1 = static_cast<unsigned char>(in[i + 1]);
      const auto c2 = static_cast<unsigned char>(in[i + 2]);
      const int cp = ((c & 0x0F) << 12) | ((c1 & 0x3F) << 6) | (c2 & 0x3F);
      if (cp >= 0xFF01 && cp <= 0xFF5E) {
        out.push_back(static_cast<char>(cp - 0xFF01 + 0x21));
        i += 3;
        continue;
      }
    }
    if (c == 0xE3 && i + 2 < in.size() && static_cast<unsigned char>(in[i + 1]) == 0x80 &&
        static_cast<unsigned char>(in[i + 2]) == 0x80) {
      out.push_back(' ');
      i += 3;
      continue;
    }
    out.push_back(in[i]);
    ++i;
  }
  return out;
}

bool IsValidUtf8(absl::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
    if (n < 0 || i + n >= s.size() + (n == 0 ? 1 : 0)) {
      if (n != 0) return false;
    }
    for (int k = 1; k <= n; ++k) {
      if (i + k >= s.size() || (static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    }
    i += n + 1;
  }
  return true;
}

// Characters, not bytes, for length limits on Chinese text.
size_t Utf8Length(absl::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) >> 6) != 2;
  return n;
}

absl::Status CheckText(const std::string& v, absl::string_view field, size_t max, bool required) {
  if (required && absl::StripAsciiWhitespace(v).empty()) return InvalidFieldError(field, "is required");
  if (!IsValidUtf8(v)) return InvalidFieldError(field, "is not valid UTF-8");
  if (Utf8Length(v) > max) return InvalidFieldError(field, absl::StrCat("is longer than ", max, " characters"));
  return absl::OkStatus();
}

bool Has(const std::vector<std::string>& paths, absl::string_view f) {
  return paths.empty() || std::find(paths.begin(), paths.end(), f) != paths.end();
}

absl::Status CheckVersion(const CustomerState& s, int64_t expected) {
  if (expected != 0 && expected != s.version()) {
    return WithErrorInfo(absl::AbortedError(absl::StrCat("etag mismatch: customer is at version ",
                                                         s.version(), ", request has ", expected)),
                         "ETAG_MISMATCH", {{"current_etag", std::to_string(s.version())}});
  }
  return absl::OkStatus();
}

absl::Status CheckVisible(const CustomerState* s, const Caller& caller) {
  if (s == nullptr) return absl::NotFoundError("customer not found");
  if (!CanSee(caller, *s)) {
    return absl::PermissionDeniedError("the customer belongs to another owner or team");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> NormalizePhone(absl::string_view phone) {
  const std::string folded = FoldFullWidth(phone);
  std::string digits;
  for (size_t i = 0; i < folded.size(); ++i) {
    const char c = folded[i];
    if (absl::ascii_isdigit(c)) {
      digits.push_back(c);
    } else if (c == '+' && digits.empty()) {
      continue;
    } else if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')') {
      continue;
    } else {
      return absl::InvalidArgumentError("has characters other than digits, spaces and dashes");
    }
  }
  if (digits.size() == 15 && absl::StartsWith(digits, "0086")) digits = digits.substr(4);
  if (digits.size() == 13 && absl::StartsWith(digits, "86")) digits = digits.substr(2);
  if (digits.size() != 11 || digits[0] != '1') {
    return absl::InvalidArgumentError("is not a mainland mobile number (11 digits starting with 1)");
  }
  return digits;
}

absl::StatusOr<std::string> NormalizeEmail(absl::string_view email) {
  std::string e = absl::AsciiStrToLower(absl::StripAsciiWhitespace(FoldFullWidth(email)));
  const size_t at = e.find('@');
  if (at == std::string::npos || at == 0 || e.find('@', at + 1) != std::string::npos ||
      e.size() > 254) {
    return absl::InvalidArgumentError("is not an email address");
  }
  const std::string domain = e.substr(at + 1);
  const size_t dot = domain.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 >= domain.size()) {
    return absl::InvalidArgumentError("is not an email address");
  }
  for (char c : e) {
    if (static_cast<unsigned char>(c) <= ' ' || c == ',' || c == ';' || c == '<' || c == '>') {
      return absl::InvalidArgumentError("is not an email address");
    }
  }
  return e;
}

const std::vector<std::string>& EditableFields() {
  static const auto* f = new std::vector<std::string>{
      "kind", "display_name", "phone", "email", "lifecycle_status", "tags", "owner_id",
      "team_id", "source", "industry", "address", "notes"};
  return *f;
}

absl::Status ValidateProfile(const CustomerProfile& p, const std::vector<std::string>& paths,
                             absl::string_view prefix) {
  auto field = [&](absl::string_view f) { return absl::StrCat(prefix, ".", f); };
  if (Has(paths, "kind") && !v1::CustomerKind_IsValid(p.kind())) {
    return InvalidFieldError(field("kind"), "is not a CustomerKind");
  }
  if (Has(paths, "display_name")) {
    if (auto s = CheckText(p.display_name(), field("display_name"), 200, true); !s.ok()) return s;
  }
  if (Has(paths, "phone") && !p.phone().empty()) {
    if (auto n = NormalizePhone(p.phone()); !n.ok()) {
      return InvalidFieldError(field("phone"), n.status().message());
    }
  }
  if (Has(paths, "email") && !p.email().empty()) {
    if (auto n = NormalizeEmail(p.email()); !n.ok()) {
      return InvalidFieldError(field("email"), n.status().message());
    }
  }
  if (Has(paths, "lifecycle_status") && !v1::LifecycleStatus_IsValid(p.lifecycle_status())) {
    return InvalidFieldError(field("lifecycle_status"), "is not a LifecycleStatus");
  }
  if (Has(paths, "tags")) {
    if (p.tags_size() > 50) return InvalidFieldError(field("tags"), "has more than 50 tags");
    std::set<std::string> seen;
    for (const auto& t : p.tags()) {
      if (auto s = CheckText(t, field("tags"), 50, true); !s.ok()) return s;
      if (!seen.insert(t).second) return InvalidFieldError(field("tags"), absl::StrCat("repeats '", t, "'"));
    }
  }
  struct Limit { const char* name; const std::string& value; size_t max; };
  for (const Limit& l : {Limit{"owner_id", p.owner_id(), 128}, Limit{"team_id", p.team_id(), 128},
                         Limit{"source", p.source(), 64}, Limit{"industry", p.industry(), 64},
                         Limit{"address", p.address(), 500}, Limit{"notes", p.notes(), 5000}}) {
    if (!Has(paths, l.name)) continue;
    if (auto s = CheckText(l.value, field(l.name), l.max, false); !s.ok()) return s;
  }
  return absl::OkStatus();
}

bool CanSee(const Caller& c, const CustomerState& s) {
  if (c.role == "admin" || c.role == "service") return true;
  if (c.role == "manager") return !c.team.empty() && s.profile().team_id() == c.team;
  return s.profile().owner_id() == c.user_id;
}

bool CanAssign(const Caller& c, const std::string& owner, const std::string& team) {
  if (c.role == "admin" || c.role == "service") return true;
  if (c.role == "manager") return team == c.team;
  return owner == c.user_id && team == c.team;
}

absl::StatusOr<std::vector<CustomerEvent>> Decide(const CustomerState* state, const Caller& caller,
                                                  const CreateCustomer& cmd) {
  if (state != nullptr) return absl::AlreadyExistsError("customer id already exists");
  if (auto s = ValidateProfile(cmd.profile, {}, "customer"); !s.ok()) return s;
  v1::CustomerCreated e;
  *e.mutable_profile() = cmd.profile;
  auto* p = e.mutable_profile();
  if (p->kind() == v1::CUSTOMER_KIND_UNSPECIFIED) p->set_kind(v1::CUSTOMER_KIND_COMPANY);
  if (p->lifecycle_status() == v1::LIFECYCLE_STATUS_UNSPECIFIED) {
    p->set_lifecycle_status(v1::LIFECYCLE_STATUS_POTENTIAL);
  }
  if (p->owner_id().empty()) p->set_owner_id(caller.user_id);
  if (p->team_id().empty()) p->set_team_id(caller.team);
  if (!CanAssign(caller, p->owner_id(), p->team_id())) {
    return absl::PermissionDeniedError("cannot create a customer for another owner or team");
  }
  if (!p->phone().empty()) e.set_normalized_phone(*NormalizePhone(p->phone()));
  if (!p->email().empty()) e.set_normalized_email(*NormalizeEmail(p->email()));
  e.set_customer_number(cmd.customer_number);
  return std::vector<CustomerEvent>{std::move(e)};
}

absl::StatusOr<std::vector<CustomerEvent>> Decide(const CustomerState* state, const Caller& caller,
                                                  const UpdateCustomer& cmd) {
  if (auto s = CheckVisible(state, caller); !s.ok()) return s;
  if (auto s = CheckVersion(*state, cmd.expected_version); !s.ok()) return s;
  if (state->deleted()) return absl::FailedPreconditionError("customer is in the recycle bin");
  for (const auto& path : cmd.paths) {
    if (std::find(EditableFields().begin(), EditableFields().end(), path) == EditableFields().end()) {
      return InvalidFieldError("update_mask", absl::StrCat("'", path, "' is not an editable field"));
    }
  }
  if (cmd.paths.empty()) return InvalidFieldError("update_mask", "names no field");
  if (auto s = ValidateProfile(cmd.profile, cmd.paths, "customer"); !s.ok()) return s;
  CustomerProfile next = state->profile();
  google::protobuf::FieldMask mask;
  for (const auto& p : cmd.paths) mask.add_paths(p);
  google::protobuf::util::FieldMaskUtil::MergeOptions opts;
  opts.set_replace_repeated_fields(true);
  google::protobuf::util::FieldMaskUtil::MergeMessageTo(cmd.profile, mask, opts, &next);
  if (next.kind() == v1::CUSTOMER_KIND_UNSPECIFIED) {
    return InvalidFieldError("customer.kind", "cannot be unset");
  }
  if (next.lifecycle_status() == v1::LIFECYCLE_STATUS_UNSPECIFIED) {
    return InvalidFieldError("customer.lifecycle_status", "cannot be unset");
  }
  if (next.owner_id().empty()) return InvalidFieldError("customer.owner_id", "cannot be unset");
  if ((next.owner_id() != state->profile().owner_id() || next.team_id() != state->profile().team_id()) &&
      !CanAssign(caller, next.owner_id(), next.team_id())) {
    return absl::PermissionDeniedError("cannot give the customer to that owner or team");
  }
  v1::CustomerUpdated e;
  for (const auto& f : EditableFields()) {
    const auto* fd = CustomerProfile::descriptor()->FindFieldByName(f);
    const auto* r = CustomerProfile::GetReflection();
    bool differs;
    if (fd->is_repeated()) {
      differs = r->FieldSize(next, fd) != r->FieldSize(state->profile(), fd);
      for (int i = 0; !differs && i < r->FieldSize(next, fd); ++i) {
        differs = r->GetRepeatedString(next, fd, i) != r->GetRepeatedString(state->profile(), fd, i);
      }
    } else if (fd->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_ENUM) {
      differs = r->GetEnumValue(next, fd) != r->GetEnumValue(state->profile(), fd);
    } else {
      differs = r->GetString(next, fd) != r->GetString(state->profile(), fd);
    }
    if (differs) e.add_changed_fields(f);
  }
  if (e.changed_fields().empty()) return std::vector<CustomerEvent>{};  // nothing to record
  *e.mutable_profile() = next;
  if (!next.phone().empty()) e.set_normalized_phone(*NormalizePhone(next.phone()));
  if (!next.email().empty()) e.set_normalized_email(*NormalizeEmail(next.email()));
  return std::vector<CustomerEvent>{std::move(e)};
}

absl::StatusOr<std::vector<CustomerEvent>> Decide(const CustomerState* state, const Caller& caller,
                                                  const DeleteCustomer& cmd) {
  if (auto s = CheckVisible(state, caller); !s.ok()) return s;
  if (auto s = CheckVersion(*state, cmd.expected_version); !s.ok()) return s;
  if (auto s = CheckText(cmd.reason, "reason", 500, false); !s.ok()) return s;
  if (state->deleted()) return absl::FailedPreconditionError("customer is already in the recycle bin");
  v1::CustomerDeleted e;
  e.set_reason(cmd.reason);
  return std::vector<CustomerEvent>{std::move(e)};
}

absl::StatusOr<std::vector<CustomerEvent>> Decide(const CustomerState* state, const Caller& caller,
                                                  const UndeleteCustomer& cmd) {
  if (auto s = CheckVisible(state, caller); !s.ok()) return s;
  if (auto s = CheckVersion(*state, cmd.expected_version); !s.ok()) return s;
  if (!state->deleted()) return absl::FailedPreconditionError("customer is not in the recycle bin");
  return std::vector<CustomerEvent>{v1::CustomerUndeleted()};
}

void Apply(CustomerState& s, const CustomerEvent& event, int64_t version, absl::Time occurred_at,
           const std::string& actor) {
  const auto ts = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(occurred_at));
  s.set_version(version);
  *s.mutable_update_time() = ts;
  std::visit(
      [&](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, v1::CustomerCreated>) {
          s.set_customer_number(e.customer_number());
          *s.mutable_profile() = e.profile();
          s.set_normalized_phone(e.normalized_phone());
          s.set_normalized_email(e.normalized_email());
          *s.mutable_create_time() = ts;
          s.set_created_by(actor);
        } else if constexpr (std::is_same_v<T, v1::CustomerUpdated>) {
          *s.mutable_profile() = e.profile();
          s.set_normalized_phone(e.normalized_phone());
          s.set_normalized_email(e.normalized_email());
        } else if constexpr (std::is_same_v<T, v1::CustomerDeleted>) {
          s.set_deleted(true);
          *s.mutable_delete_time() = ts;
        } else {
          s.set_deleted(false);
          s.clear_delete_time();
        }
      },
      event);
}

std::vector<std::string> ChangedFields(const CustomerEvent& event) {
  return std::visit(
      [](const auto& e) -> std::vector<std::string> {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, v1::CustomerCreated>) {
          std::vector<std::string> out{"customer_number"};
          for (const auto& f : EditableFields()) {
            const auto* fd = CustomerProfile::descriptor()->FindFieldByName(f);
            const auto* r = CustomerProfile::GetReflection();
            if (fd->is_repeated() ? r->FieldSize(e.profile(), fd) > 0 : r->HasField(e.profile(), fd)) {
              out.push_back(f);
            }
          }
          return out;
        } else if constexpr (std::is_same_v<T, v1::CustomerUpdated>) {
          return {e.changed_fields().begin(), e.changed_fields().end()};
        } else if constexpr (std::is_same_v<T, v1::CustomerDeleted>) {
          return {"deleted"};
        } else {
          return {"deleted"};
        }
      },
      event);
}

}  // namespace crm::customers
