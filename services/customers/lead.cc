#include "services/customers/lead.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/field_mask_util.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/grpc_status.h"
#include "libs/common/money.h"

namespace crm::customers {
namespace {

using google::protobuf::util::TimeUtil;

bool Has(const std::vector<std::string>& paths, absl::string_view f) {
  return paths.empty() || std::find(paths.begin(), paths.end(), f) != paths.end();
}

bool Closed(const LeadState& s) {
  return s.status() == v1::LEAD_STATUS_CONVERTED || s.status() == v1::LEAD_STATUS_DISQUALIFIED;
}

absl::Status ClosedError(const LeadState& s) {
  return WithErrorInfo(absl::FailedPreconditionError(absl::StrCat(
                           "the lead is ", s.status() == v1::LEAD_STATUS_CONVERTED ? "converted" : "disqualified")),
                       "LEAD_CLOSED", {});
}

absl::Status CheckVisible(const LeadState* s, const Caller& caller) {
  if (s == nullptr) return absl::NotFoundError("lead not found");
  if (!CanSee(caller, *s)) return absl::PermissionDeniedError("the lead belongs to another owner or team");
  return absl::OkStatus();
}

// Visible, editable and not closed.
absl::Status CheckWorkable(const LeadState* s, const Caller& caller) {
  if (auto st = CheckVisible(s, caller); !st.ok()) return st;
  if (!CanEdit(caller, *s)) {
    if (s->owner_id().empty()) {
      return WithErrorInfo(absl::FailedPreconditionError("the lead is in the lead pool; claim it first"),
                           "IN_POOL", {});
    }
    return absl::PermissionDeniedError("the lead belongs to another owner or team");
  }
  if (Closed(*s)) return ClosedError(*s);
  return absl::OkStatus();
}

absl::Status ValidateLead(const LeadProfile& p, const std::vector<std::string>& paths,
                          const CustomerSettings& settings) {
  struct Limit {
    const char* name;
    const std::string& value;
    size_t max;
    TextKind kind = TextKind::kLine;
  };
  for (const Limit& l : {Limit{"contact_name", p.contact_name(), 50}, Limit{"company", p.company(), 200},
                         Limit{"title", p.title(), 50}, Limit{"wechat", p.wechat(), 64},
                         Limit{"source_detail", p.source_detail(), 200},
                         Limit{"need", p.need(), 2000, TextKind::kMultiLine}, Limit{"region", p.region(), 100},
                         Limit{"notes", p.notes(), 5000, TextKind::kMultiLine}}) {
    if (!Has(paths, l.name)) continue;
    if (auto s = CheckText(l.value, absl::StrCat("lead.", l.name), l.max, false, l.kind); !s.ok()) return s;
  }
  if (Has(paths, "phone") && !p.phone().empty()) {
    if (auto n = NormalizePhone(p.phone()); !n.ok()) return InvalidFieldError("lead.phone", n.status().message());
  }
  if (Has(paths, "email") && !p.email().empty()) {
    if (auto n = NormalizeEmail(p.email()); !n.ok()) return InvalidFieldError("lead.email", n.status().message());
  }
  if (Has(paths, "source_channel") && !v1::SourceChannel_IsValid(p.source_channel())) {
    return InvalidFieldError("lead.source_channel", "is not a SourceChannel");
  }
  if (Has(paths, "industry")) {
    if (auto s = CheckIndustry(p.industry(), "lead.industry", settings); !s.ok()) return s;
  }
  if (Has(paths, "tags")) {
    if (auto s = CheckTags(p.tags(), "lead.tags"); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// A lead must say who it is and how to reach them.
absl::Status CheckComplete(const LeadProfile& p) {
  if (absl::StripAsciiWhitespace(p.contact_name()).empty() && absl::StripAsciiWhitespace(p.company()).empty()) {
    return InvalidFieldError("lead.contact_name", "or lead.company is required");
  }
  if (p.phone().empty() && p.email().empty() && p.wechat().empty()) {
    return InvalidFieldError("lead.phone", "or lead.email or lead.wechat is required");
  }
  return absl::OkStatus();
}

void Normalized(const LeadProfile& p, std::string* phone, std::string* email) {
  NormalizedKeys(p.phone(), p.email(), phone, email);
}

}  // namespace

const std::vector<std::string>& LeadFields() {
  static const auto* f = new std::vector<std::string>{
      "contact_name", "company", "title", "phone", "email", "wechat", "source_channel",
      "source_detail", "need", "region", "industry", "notes", "tags"};
  return *f;
}

// A lead without an owner is in the lead pool.
bool CanSee(const Caller& c, const LeadState& s) { return SeesRecord(c, s.owner_id(), s.team_id(), s.owner_id().empty()); }

bool CanEdit(const Caller& c, const LeadState& s) { return EditsRecord(c, s.owner_id(), s.team_id(), s.owner_id().empty()); }

LeadDecision Decide(const LeadState* lead, const Caller& caller, const CreateLead& cmd) {
  if (lead != nullptr) return absl::AlreadyExistsError("lead id already exists");
  if (auto s = ValidateLead(cmd.profile, {}, cmd.settings); !s.ok()) return s;
  if (auto s = CheckComplete(cmd.profile); !s.ok()) return s;
  if (auto s = CheckText(cmd.owner_id, "lead.owner_id", 128, false); !s.ok()) return s;
  if (auto s = CheckText(cmd.team_id, "lead.team_id", 128, false); !s.ok()) return s;
  v1::LeadCreated e;
  *e.mutable_profile() = cmd.profile;
  if (e.profile().source_channel() == v1::SOURCE_CHANNEL_UNSPECIFIED) {
    e.mutable_profile()->set_source_channel(v1::SOURCE_CHANNEL_OTHER);
  }
  e.set_owner_id(cmd.owner_id.empty() && caller.role == "rep" ? caller.user_id : cmd.owner_id);
  e.set_team_id(cmd.team_id.empty() ? caller.team : cmd.team_id);
  // Without an owner, the lead goes to its team's pool: a manager's own team, anyone's for
  // admins and services.
  if (!CanAssign(caller, e.owner_id(), e.team_id())) {
    return absl::PermissionDeniedError("cannot create a lead for another owner or team");
  }
  Normalized(e.profile(), e.mutable_normalized_phone(), e.mutable_normalized_email());
  return std::vector<LeadEvent>{std::move(e)};
}

LeadDecision Decide(const LeadState* lead, const Caller& caller, const UpdateLead& cmd) {
  if (auto s = CheckWorkable(lead, caller); !s.ok()) return s;
  if (cmd.paths.empty()) return InvalidFieldError("update_mask", "names no field");
  for (const auto& p : cmd.paths) {
    if (std::find(LeadFields().begin(), LeadFields().end(), p) == LeadFields().end()) {
      return InvalidFieldError("update_mask", absl::StrCat("'", p, "' is not an editable lead field"));
    }
  }
  if (auto s = ValidateLead(cmd.profile, cmd.paths, cmd.settings); !s.ok()) return s;
  LeadProfile next = lead->profile();
  google::protobuf::FieldMask mask;
  for (const auto& p : cmd.paths) mask.add_paths(p);
  google::protobuf::util::FieldMaskUtil::MergeOptions opts;
  opts.set_replace_repeated_fields(true);
  google::protobuf::util::FieldMaskUtil::MergeMessageTo(cmd.profile, mask, opts, &next);
  if (auto s = CheckComplete(next); !s.ok()) return s;
  v1::LeadUpdated e;
  for (const auto& f : LeadFields()) {
    const auto* fd = LeadProfile::descriptor()->FindFieldByName(f);
    google::protobuf::FieldMask one;
    one.add_paths(f);
    LeadProfile a, b;
    google::protobuf::util::FieldMaskUtil::MergeMessageTo(next, one, opts, &a);
    google::protobuf::util::FieldMaskUtil::MergeMessageTo(lead->profile(), one, opts, &b);
    if (a.SerializeAsString() != b.SerializeAsString()) e.add_changed_fields(fd->name());
  }
  if (e.changed_fields().empty()) return std::vector<LeadEvent>{};
  *e.mutable_profile() = next;
  Normalized(next, e.mutable_normalized_phone(), e.mutable_normalized_email());
  return std::vector<LeadEvent>{std::move(e)};
}

LeadDecision Decide(const LeadState* lead, const Caller& caller, const AssignLead& cmd) {
  if (auto s = CheckVisible(lead, caller); !s.ok()) return s;
  if (Closed(*lead)) return ClosedError(*lead);
  if (cmd.owner_id.empty()) return InvalidFieldError("owner_id", "is required");
  if (auto s = CheckText(cmd.owner_id, "owner_id", 128, true); !s.ok()) return s;
  if (auto s = CheckText(cmd.team_id, "team_id", 128, false); !s.ok()) return s;
  const std::string team = cmd.team_id.empty() ? (lead->team_id().empty() ? caller.team : lead->team_id())
                                               : cmd.team_id;
  if (!CanAssign(caller, cmd.owner_id, team)) {
    return absl::PermissionDeniedError("cannot give the lead to that owner or team");
  }
  if (lead->owner_id() == cmd.owner_id && lead->team_id() == team) return std::vector<LeadEvent>{};
  v1::LeadAssigned e;
  e.set_owner_id(cmd.owner_id);
  e.set_team_id(team);
  return std::vector<LeadEvent>{std::move(e)};
}

LeadDecision Decide(const LeadState* lead, const Caller& caller, const ClaimLead&) {
  if (lead == nullptr) return absl::NotFoundError("lead not found");
  if (!lead->owner_id().empty() || Closed(*lead)) {
    return WithErrorInfo(absl::FailedPreconditionError("the lead is not in the lead pool"), "NOT_IN_POOL", {});
  }
  if (auto s = CheckVisible(lead, caller); !s.ok()) return s;
  v1::LeadAssigned e;
  e.set_owner_id(caller.user_id);
  e.set_team_id(lead->team_id().empty() ? caller.team : lead->team_id());
  e.set_claimed(true);
  return std::vector<LeadEvent>{std::move(e)};
}

LeadDecision Decide(const LeadState* lead, const Caller& caller, const ReleaseLead& cmd) {
  if (auto s = CheckVisible(lead, caller); !s.ok()) return s;
  if (lead->owner_id().empty()) {
    return WithErrorInfo(absl::FailedPreconditionError("the lead is in the lead pool already"), "IN_POOL", {});
  }
  if (auto s = CheckWorkable(lead, caller); !s.ok()) return s;
  if (auto s = CheckText(cmd.reason, "reason", 500, false, TextKind::kMultiLine); !s.ok()) return s;
  v1::LeadReleased e;
  e.set_previous_owner_id(lead->owner_id());
  e.set_reason(cmd.reason);
  return std::vector<LeadEvent>{std::move(e)};
}

LeadDecision Decide(const LeadState* lead, const Caller& caller, const QualifyLead&) {
  if (auto s = CheckWorkable(lead, caller); !s.ok()) return s;
  if (lead->status() == v1::LEAD_STATUS_QUALIFIED) return std::vector<LeadEvent>{};
  return std::vector<LeadEvent>{v1::LeadQualified()};
}

LeadDecision Decide(const LeadState* lead, const Caller& caller, const DisqualifyLead& cmd) {
  if (auto s = CheckWorkable(lead, caller); !s.ok()) return s;
  if (auto s = CheckText(cmd.reason, "reason", 500, true, TextKind::kMultiLine); !s.ok()) return s;
  v1::LeadDisqualified e;
  e.set_reason(cmd.reason);
  return std::vector<LeadEvent>{std::move(e)};
}

absl::Status CheckConvertible(const LeadState* lead, const Caller& caller) {
  return CheckWorkable(lead, caller);
}

LeadDecision Decide(const LeadState* lead, const Caller& caller, const ConvertLead& cmd) {
  if (auto s = CheckConvertible(lead, caller); !s.ok()) return s;
  if (cmd.converted.customer_id().empty()) return absl::InternalError("conversion without a customer");
  if (cmd.converted.opportunity_requested()) {
    if (auto s = CheckText(cmd.converted.opportunity_name(), "opportunity_name", 200, true); !s.ok()) return s;
    if (cmd.converted.expected_amount_minor() < 0) {
      return InvalidFieldError("expected_amount_minor", "must not be negative");
    }
    if (auto s = money::CheckAmount(cmd.converted.expected_amount_minor(), "expected_amount_minor"); !s.ok()) return s;
  }
  return std::vector<LeadEvent>{cmd.converted};
}

void Apply(LeadState& s, const LeadEvent& event, int64_t version, absl::Time occurred_at,
           const std::string& actor) {
  const auto ts = ToProto(occurred_at);
  s.set_version(version);
  *s.mutable_update_time() = ts;
  std::visit(
      [&](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, v1::LeadCreated>) {
          *s.mutable_profile() = e.profile();
          s.set_owner_id(e.owner_id());
          s.set_team_id(e.team_id());
          s.set_status(v1::LEAD_STATUS_OPEN);
          s.set_normalized_phone(e.normalized_phone());
          s.set_normalized_email(e.normalized_email());
          *s.mutable_create_time() = ts;
          if (!e.owner_id().empty()) *s.mutable_assign_time() = ts;
          s.set_created_by(actor);
        } else if constexpr (std::is_same_v<T, v1::LeadUpdated>) {
          *s.mutable_profile() = e.profile();
          s.set_normalized_phone(e.normalized_phone());
          s.set_normalized_email(e.normalized_email());
        } else if constexpr (std::is_same_v<T, v1::LeadAssigned>) {
          s.set_owner_id(e.owner_id());
          s.set_team_id(e.team_id());
          *s.mutable_assign_time() = ts;
        } else if constexpr (std::is_same_v<T, v1::LeadReleased>) {
          s.clear_owner_id();
          s.clear_assign_time();
        } else if constexpr (std::is_same_v<T, v1::LeadQualified>) {
          s.set_status(v1::LEAD_STATUS_QUALIFIED);
        } else if constexpr (std::is_same_v<T, v1::LeadDisqualified>) {
          s.set_status(v1::LEAD_STATUS_DISQUALIFIED);
          s.set_disqualify_reason(e.reason());
        } else {
          s.set_status(v1::LEAD_STATUS_CONVERTED);
          s.set_customer_id(e.customer_id());
          *s.mutable_convert_time() = ts;
        }
      },
      event);
}

std::vector<std::string> ChangedFields(const LeadEvent& event) {
  return std::visit(
      [](const auto& e) -> std::vector<std::string> {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, v1::LeadCreated>) {
          return {"created"};
        } else if constexpr (std::is_same_v<T, v1::LeadUpdated>) {
          return {e.changed_fields().begin(), e.changed_fields().end()};
        } else if constexpr (std::is_same_v<T, v1::LeadAssigned> || std::is_same_v<T, v1::LeadReleased>) {
          return {"owner_id", "team_id"};
        } else if constexpr (std::is_same_v<T, v1::LeadConverted>) {
          return {"status", "customer"};
        } else {
          return {"status"};
        }
      },
      event);
}

CustomerProfile CustomerProfileFromLead(const LeadState& lead) {
  const LeadProfile& l = lead.profile();
  CustomerProfile p;
  const bool company = !l.company().empty();
  p.set_kind(company ? v1::CUSTOMER_KIND_COMPANY : v1::CUSTOMER_KIND_PERSON);
  p.set_display_name(company ? l.company() : l.contact_name());
  // A company's phone and email are its contact's; the contact carries them too.
  p.set_phone(l.phone());
  p.set_email(l.email());
  p.set_lifecycle_status(lead.status() == v1::LEAD_STATUS_QUALIFIED ? v1::LIFECYCLE_STATUS_INTENT
                                                                    : v1::LIFECYCLE_STATUS_POTENTIAL);
  *p.mutable_tags() = l.tags();
  p.set_owner_id(lead.owner_id());
  p.set_team_id(lead.team_id());
  p.set_source(l.source_detail());
  p.set_source_channel(l.source_channel());
  p.set_industry(l.industry());
  p.set_region(l.region());
  p.set_notes(l.need());
  return p;
}

UpdateCustomer FillFromLead(const CustomerState& customer, const LeadState& lead,
                            const CustomerSettings& settings) {
  UpdateCustomer cmd;
  cmd.settings = settings;
  cmd.profile = CustomerProfileFromLead(lead);
  const CustomerProfile& cur = customer.profile();
  // Only fields the customer has empty; identity, ownership and status stay as they are.
  for (const char* f : {"phone", "email", "source", "source_channel", "industry", "region", "notes"}) {
    const auto* fd = CustomerProfile::descriptor()->FindFieldByName(f);
    const auto* r = CustomerProfile::GetReflection();
    if (!r->HasField(cur, fd) && r->HasField(cmd.profile, fd)) cmd.paths.push_back(f);
  }
  return cmd;
}

absl::optional<Contact> ContactFromLead(const CustomerState* customer, const LeadState& lead) {
  const LeadProfile& l = lead.profile();
  if (l.contact_name().empty()) return absl::nullopt;
  if (customer != nullptr) {
    for (const auto& c : customer->contacts()) {
      if (!lead.normalized_phone().empty() && c.normalized_phone() == lead.normalized_phone()) return absl::nullopt;
      if (lead.normalized_phone().empty() && c.name() == l.contact_name()) return absl::nullopt;
    }
  }
  Contact c;
  c.set_name(l.contact_name());
  c.set_title(l.title());
  c.set_phone(l.phone());
  c.set_email(l.email());
  c.set_wechat(l.wechat());
  return c;
}

}  // namespace crm::customers
