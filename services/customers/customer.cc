#include "services/customers/customer.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/time/civil_time.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/field_mask_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"
#include "absl/strings/str_join.h"
#include "libs/common/grpc_status.h"
#include "libs/common/money.h"

namespace crm::customers {
namespace {

using google::protobuf::util::TimeUtil;



bool Has(const std::vector<std::string>& paths, absl::string_view f) {
  return paths.empty() || std::find(paths.begin(), paths.end(), f) != paths.end();
}

absl::Status CheckVisible(const CustomerState* s, const Caller& caller) {
  if (s == nullptr || s->purged()) return absl::NotFoundError("customer not found");
  if (!CanSee(caller, *s)) {
    return absl::PermissionDeniedError("the customer belongs to another owner or team");
  }
  if (!s->merged_into().empty()) {
    return WithErrorInfo(absl::FailedPreconditionError(absl::StrCat(
                             "the customer was merged into customers/", s->merged_into())),
                         "MERGED", {{"survivor", absl::StrCat("customers/", s->merged_into())}});
  }
  return absl::OkStatus();
}

absl::Status InPoolError() {
  return WithErrorInfo(absl::FailedPreconditionError("the customer is in the public pool; claim it first"),
                       "IN_POOL", {});
}

// Visible, editable by the caller and not in the recycle bin.
absl::Status CheckEditable(const CustomerState* s, const Caller& caller) {
  if (auto st = CheckVisible(s, caller); !st.ok()) return st;
  if (!CanEdit(caller, *s)) {
    if (s->in_pool()) return InPoolError();
    return absl::PermissionDeniedError("the customer belongs to another owner or team");
  }
  if (s->deleted()) return absl::FailedPreconditionError("customer is in the recycle bin");
  return absl::OkStatus();
}

// Contacts may have a mobile (normalised like customers') or a landline with area code.
absl::StatusOr<std::string> NormalizeContactPhone(absl::string_view phone) {
  if (auto mobile = NormalizePhone(phone); mobile.ok()) return mobile;
  std::string digits;
  for (char c : FoldFullWidth(phone)) {
    if (absl::ascii_isdigit(c)) {
      digits.push_back(c);
    } else if (c != ' ' && c != '-' && c != '(' && c != ')') {
      return absl::InvalidArgumentError("is neither a mobile nor a landline number");
    }
  }
  if (digits.size() < 10 || digits.size() > 16 || digits[0] != '0') {
    return absl::InvalidArgumentError("is neither a mobile nor a landline number with area code");
  }
  return digits;
}

absl::Status ValidateContact(Contact& c, const std::vector<std::string>& paths) {
  if (Has(paths, "name")) {
    if (auto s = CheckText(c.name(), "contact.name", 50, true); !s.ok()) return s;
  }
  if (Has(paths, "title")) {
    if (auto s = CheckText(c.title(), "contact.title", 50, false); !s.ok()) return s;
  }
  if (Has(paths, "wechat")) {
    if (auto s = CheckText(c.wechat(), "contact.wechat", 64, false); !s.ok()) return s;
  }
  if (Has(paths, "notes")) {
    if (auto s = CheckText(c.notes(), "contact.notes", 1000, false, TextKind::kMultiLine); !s.ok()) return s;
  }
  if (Has(paths, "phone")) {
    c.clear_normalized_phone();
    if (!c.phone().empty()) {
      auto n = NormalizeContactPhone(c.phone());
      if (!n.ok()) return InvalidFieldError("contact.phone", n.status().message());
      c.set_normalized_phone(*n);
    }
  }
  if (Has(paths, "email")) {
    c.clear_normalized_email();
    if (!c.email().empty()) {
      auto n = NormalizeEmail(c.email());
      if (!n.ok()) return InvalidFieldError("contact.email", n.status().message());
      c.set_normalized_email(*n);
    }
  }
  return absl::OkStatus();
}

const Contact* FindContact(const CustomerState& s, const std::string& id) {
  for (const auto& c : s.contacts()) {
    if (c.id() == id) return &c;
  }
  return nullptr;
}

// Sets the cooperation dates when the customer starts cooperating or closes a deal.
void TouchCooperation(CustomerState& s, const CustomerProfile& before, absl::Time at) {
  const auto& p = s.profile();
  const bool started = (p.cooperation_status() == v1::COOPERATION_STATUS_ACTIVE &&
                        before.cooperation_status() != v1::COOPERATION_STATUS_ACTIVE) ||
                       (p.lifecycle_status() == v1::LIFECYCLE_STATUS_DEAL &&
                        before.lifecycle_status() != v1::LIFECYCLE_STATUS_DEAL);
  if (!started) return;
  if (!s.has_first_cooperation_time()) *s.mutable_first_cooperation_time() = ToProto(at);
  *s.mutable_last_cooperation_time() = ToProto(at);
}

}  // namespace

bool FieldDiffers(const google::protobuf::Message& a, const google::protobuf::Message& b,
                  const google::protobuf::FieldDescriptor* fd) {
  const auto* r = a.GetReflection();
  if (fd->is_repeated()) {
    if (r->FieldSize(a, fd) != r->FieldSize(b, fd)) return true;
    for (int i = 0; i < r->FieldSize(a, fd); ++i) {
      if (r->GetRepeatedString(a, fd, i) != r->GetRepeatedString(b, fd, i)) return true;
    }
    return false;
  }
  switch (fd->cpp_type()) {
    case google::protobuf::FieldDescriptor::CPPTYPE_ENUM:
      return r->GetEnumValue(a, fd) != r->GetEnumValue(b, fd);
    case google::protobuf::FieldDescriptor::CPPTYPE_BOOL:
      return r->GetBool(a, fd) != r->GetBool(b, fd);
    default:
      return r->GetString(a, fd) != r->GetString(b, fd);
  }
}


void NormalizedKeys(absl::string_view phone, absl::string_view email, std::string* normalized_phone,
                    std::string* normalized_email) {
  normalized_phone->clear();
  normalized_email->clear();
  if (auto n = NormalizePhone(phone); !phone.empty() && n.ok()) *normalized_phone = *n;
  if (auto n = NormalizeEmail(email); !email.empty() && n.ok()) *normalized_email = *n;
}

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
  // The address is kept as typed beside its normal form: no control or bidi characters either.
  if (!TextProblem(email, TextKind::kLine).empty()) return absl::InvalidArgumentError("is not an email address");
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


absl::Status CheckTags(const google::protobuf::RepeatedPtrField<std::string>& tags, absl::string_view field) {
  if (tags.size() > 50) return InvalidFieldError(field, "has more than 50 tags");
  std::set<std::string> seen;
  for (const auto& t : tags) {
    if (auto s = CheckText(t, field, 50, true); !s.ok()) return s;
    if (!seen.insert(t).second) return InvalidFieldError(field, absl::StrCat("repeats '", t, "'"));
  }
  return absl::OkStatus();
}

absl::Status CheckIndustry(const std::string& code, absl::string_view field, const CustomerSettings& settings) {
  if (code.empty()) return absl::OkStatus();
  const auto& list = settings.industries();
  if (std::none_of(list.begin(), list.end(), [&](const v1::Industry& i) { return i.code() == code; })) {
    return InvalidFieldError(field, absl::StrCat("'", code, "' is not in the industry list (ListIndustries)"));
  }
  return absl::OkStatus();
}

const std::vector<std::string>& EditableFields() {
  static const auto* f = new std::vector<std::string>{
      "kind", "display_name", "phone", "email", "lifecycle_status", "tags", "owner_id",
      "team_id", "source", "industry", "address", "notes", "source_channel",
      "cooperation_status", "scale", "churn_reason", "region"};
  return *f;
}

const std::vector<std::string>& ContactFields() {
  static const auto* f =
      new std::vector<std::string>{"name", "title", "phone", "email", "wechat", "primary", "notes"};
  return *f;
}

const std::vector<v1::Industry>& DefaultIndustries() {
  static const auto* list = [] {
    auto* v = new std::vector<v1::Industry>;
    for (const auto& [code, name] : std::vector<std::pair<const char*, const char*>>{
             {"agriculture", "农林牧渔"}, {"mining", "采矿业"}, {"manufacturing", "制造业"},
             {"energy", "电力热力燃气及水"}, {"construction", "建筑业"},
             {"wholesale_retail", "批发和零售业"}, {"logistics", "交通运输仓储和邮政"},
             {"hospitality", "住宿和餐饮业"}, {"it_internet", "信息技术/互联网"},
             {"finance", "金融业"}, {"real_estate", "房地产业"},
             {"business_services", "租赁和商务服务业"}, {"research", "科学研究和技术服务"},
             {"education", "教育"}, {"healthcare", "卫生和社会工作"},
             {"culture_media", "文化体育和娱乐业"}, {"public_sector", "公共管理和社会组织"},
             {"other", "其他"}}) {
      v1::Industry i;
      i.set_code(code);
      i.set_name(name);
      v->push_back(i);
    }
    return v;
  }();
  return *list;
}

CustomerSettings EffectiveSettings(const CustomerSettings& stored) {
  CustomerSettings s = stored;
  if (s.industries().empty()) {
    for (const auto& i : DefaultIndustries()) *s.add_industries() = i;
  }
  if (!s.has_pool_policy()) {
    // Until an admin decides: 20 claims per rep and day, back to the pool after 30 idle days.
    s.mutable_pool_policy()->set_daily_claim_limit(20);
    s.mutable_pool_policy()->set_return_after_days(30);
  }
  return s;
}

absl::Status ValidateProfile(const CustomerProfile& p, const std::vector<std::string>& paths,
                             absl::string_view prefix, const CustomerSettings& settings) {
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
  if (Has(paths, "source_channel") && !v1::SourceChannel_IsValid(p.source_channel())) {
    return InvalidFieldError(field("source_channel"), "is not a SourceChannel");
  }
  if (Has(paths, "cooperation_status") && !v1::CooperationStatus_IsValid(p.cooperation_status())) {
    return InvalidFieldError(field("cooperation_status"), "is not a CooperationStatus");
  }
  if (Has(paths, "scale") && !v1::CompanyScale_IsValid(p.scale())) {
    return InvalidFieldError(field("scale"), "is not a CompanyScale");
  }
  if (Has(paths, "tags")) {
    if (auto s = CheckTags(p.tags(), field("tags")); !s.ok()) return s;
  }
  struct Limit {
    const char* name;
    const std::string& value;
    size_t max;
    TextKind kind = TextKind::kLine;
  };
  for (const Limit& l : {Limit{"owner_id", p.owner_id(), 128}, Limit{"team_id", p.team_id(), 128},
                         Limit{"source", p.source(), 64}, Limit{"industry", p.industry(), 64},
                         Limit{"address", p.address(), 500}, Limit{"notes", p.notes(), 5000, TextKind::kMultiLine},
                         Limit{"churn_reason", p.churn_reason(), 500, TextKind::kMultiLine},
                         Limit{"region", p.region(), 100}}) {
    if (!Has(paths, l.name)) continue;
    if (auto s = CheckText(l.value, field(l.name), l.max, false, l.kind); !s.ok()) return s;
  }
  if (Has(paths, "industry")) {
    if (auto s = CheckIndustry(p.industry(), field("industry"), settings); !s.ok()) return s;
  }
  return absl::OkStatus();
}

bool CanSee(const Caller& c, const CustomerState& s) {
  return !s.purged() && SeesRecord(c, s.profile().owner_id(), s.profile().team_id(), s.in_pool());
}

bool CanEdit(const Caller& c, const CustomerState& s) {
  return !s.purged() && EditsRecord(c, s.profile().owner_id(), s.profile().team_id(), s.in_pool());
}

bool CanAssign(const Caller& c, const std::string& owner, const std::string& team) { return MayAssign(c, owner, team); }

absl::Time LastActivity(const CustomerState& s) {
  return std::max(FromProto(s.owner_since()), FromProto(s.last_follow_up_time()));
}

bool IsLive(const CustomerState& s) {
  return s.version() > 0 && !s.deleted() && !s.purged() && s.merged_into().empty();
}

bool IsOwnedAndLive(const CustomerState& s) {
  return IsLive(s) && !s.in_pool() && !s.profile().owner_id().empty();
}

namespace {

absl::Status CheckChurnReason(const CustomerProfile& p) {
  if (p.lifecycle_status() == v1::LIFECYCLE_STATUS_LOST &&
      absl::StripAsciiWhitespace(p.churn_reason()).empty()) {
    return InvalidFieldError("customer.churn_reason", "is required when lifecycle_status is LIFECYCLE_STATUS_LOST");
  }
  return absl::OkStatus();
}

void SetNormalized(const CustomerProfile& p, std::string* phone, std::string* email) {
  NormalizedKeys(p.phone(), p.email(), phone, email);
}

}  // namespace

Decision Decide(const CustomerState* state, const Caller& caller, const CreateCustomer& cmd) {
  if (state != nullptr) return absl::AlreadyExistsError("customer id already exists");
  if (auto s = ValidateProfile(cmd.profile, {}, "customer", cmd.settings); !s.ok()) return s;
  v1::CustomerCreated e;
  *e.mutable_profile() = cmd.profile;
  auto* p = e.mutable_profile();
  if (p->kind() == v1::CUSTOMER_KIND_UNSPECIFIED) p->set_kind(v1::CUSTOMER_KIND_COMPANY);
  if (p->lifecycle_status() == v1::LIFECYCLE_STATUS_UNSPECIFIED) {
    p->set_lifecycle_status(v1::LIFECYCLE_STATUS_POTENTIAL);
  }
  if (p->cooperation_status() == v1::COOPERATION_STATUS_UNSPECIFIED) {
    p->set_cooperation_status(v1::COOPERATION_STATUS_NONE);
  }
  if (auto s = CheckChurnReason(*p); !s.ok()) return s;
  if (p->owner_id().empty()) p->set_owner_id(caller.user_id);
  if (p->team_id().empty()) p->set_team_id(caller.team);
  if (!CanAssign(caller, p->owner_id(), p->team_id())) {
    return absl::PermissionDeniedError("cannot create a customer for another owner or team");
  }
  SetNormalized(*p, e.mutable_normalized_phone(), e.mutable_normalized_email());
  e.set_customer_number(cmd.customer_number);
  return std::vector<CustomerEvent>{std::move(e)};
}

Decision Decide(const CustomerState* state, const Caller& caller, const UpdateCustomer& cmd) {
  if (auto s = CheckEditable(state, caller); !s.ok()) return s;
  for (const auto& path : cmd.paths) {
    if (std::find(EditableFields().begin(), EditableFields().end(), path) == EditableFields().end()) {
      return InvalidFieldError("update_mask", absl::StrCat("'", path, "' is not an editable field"));
    }
  }
  if (cmd.paths.empty()) return InvalidFieldError("update_mask", "names no field");
  if (auto s = ValidateProfile(cmd.profile, cmd.paths, "customer", cmd.settings); !s.ok()) return s;
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
  if (next.cooperation_status() == v1::COOPERATION_STATUS_UNSPECIFIED) {
    return InvalidFieldError("customer.cooperation_status", "cannot be unset");
  }
  if (auto s = CheckChurnReason(next); !s.ok()) return s;
  if (next.owner_id().empty() && !state->in_pool()) {
    return InvalidFieldError("customer.owner_id", "cannot be unset; release the customer to the pool instead");
  }
  if ((next.owner_id() != state->profile().owner_id() || next.team_id() != state->profile().team_id()) &&
      !CanAssign(caller, next.owner_id(), next.team_id())) {
    return absl::PermissionDeniedError("cannot give the customer to that owner or team");
  }
  v1::CustomerUpdated e;
  for (const auto& f : EditableFields()) {
    if (FieldDiffers(next, state->profile(), CustomerProfile::descriptor()->FindFieldByName(f))) {
      e.add_changed_fields(f);
    }
  }
  if (e.changed_fields().empty()) return std::vector<CustomerEvent>{};  // nothing to record
  *e.mutable_profile() = next;
  SetNormalized(next, e.mutable_normalized_phone(), e.mutable_normalized_email());
  return std::vector<CustomerEvent>{std::move(e)};
}

Decision Decide(const CustomerState* state, const Caller& caller, const DeleteCustomer& cmd) {
  if (auto s = CheckVisible(state, caller); !s.ok()) return s;
  if (!CanEdit(caller, *state)) {
    return state->in_pool() ? InPoolError()
                            : absl::PermissionDeniedError("the customer belongs to another owner or team");
  }
  if (auto s = CheckText(cmd.reason, "reason", 500, false, TextKind::kMultiLine); !s.ok()) return s;
  if (state->deleted()) return absl::FailedPreconditionError("customer is already in the recycle bin");
  v1::CustomerDeleted e;
  e.set_reason(cmd.reason);
  return std::vector<CustomerEvent>{std::move(e)};
}

Decision Decide(const CustomerState* state, const Caller& caller, const UndeleteCustomer&) {
  if (auto s = CheckVisible(state, caller); !s.ok()) return s;
  if (!CanEdit(caller, *state)) return absl::PermissionDeniedError("the customer belongs to another owner or team");
  if (!state->deleted()) return absl::FailedPreconditionError("customer is not in the recycle bin");
  return std::vector<CustomerEvent>{v1::CustomerUndeleted()};
}

Decision Decide(const CustomerState* state, const Caller& caller, const AddContact& cmd) {
  if (auto s = CheckEditable(state, caller); !s.ok()) return s;
  if (state->contacts_size() >= 50) {
    return absl::FailedPreconditionError("a customer has at most 50 contacts");
  }
  Contact c = cmd.contact;
  if (auto s = ValidateContact(c, {}); !s.ok()) return s;
  for (const auto& other : state->contacts()) {
    if (!c.normalized_phone().empty() && other.normalized_phone() == c.normalized_phone()) {
      return WithErrorInfo(absl::AlreadyExistsError(absl::StrCat("contact ", other.id(), " has this phone")),
                           "DUPLICATE_CONTACT", {{"field", "contact.phone"}, {"existing", other.id()}});
    }
  }
  if (state->contacts().empty()) c.set_primary(true);
  v1::ContactAdded e;
  *e.mutable_contact() = std::move(c);
  return std::vector<CustomerEvent>{std::move(e)};
}

Decision Decide(const CustomerState* state, const Caller& caller, const UpdateContact& cmd) {
  if (auto s = CheckEditable(state, caller); !s.ok()) return s;
  const Contact* cur = FindContact(*state, cmd.contact.id());
  if (cur == nullptr) return absl::NotFoundError(absl::StrCat("contact ", cmd.contact.id(), " not found"));
  std::vector<std::string> paths = cmd.paths;
  for (const auto& p : paths) {
    if (std::find(ContactFields().begin(), ContactFields().end(), p) == ContactFields().end()) {
      return InvalidFieldError("update_mask", absl::StrCat("'", p, "' is not an editable contact field"));
    }
  }
  if (paths.empty()) return InvalidFieldError("update_mask", "names no field");
  Contact next = *cur;
  google::protobuf::FieldMask mask;
  for (const auto& p : paths) mask.add_paths(p);
  google::protobuf::util::FieldMaskUtil::MergeMessageTo(cmd.contact, mask, {}, &next);
  if (auto s = ValidateContact(next, paths); !s.ok()) return s;
  if (cur->primary() && !next.primary()) {
    return absl::FailedPreconditionError("make another contact primary instead of unsetting the primary one");
  }
  v1::ContactUpdated e;
  for (const auto& f : ContactFields()) {
    if (FieldDiffers(next, *cur, Contact::descriptor()->FindFieldByName(f))) e.add_changed_fields(f);
  }
  if (e.changed_fields().empty()) return std::vector<CustomerEvent>{};
  *e.mutable_contact() = std::move(next);
  return std::vector<CustomerEvent>{std::move(e)};
}

Decision Decide(const CustomerState* state, const Caller& caller, const RemoveContact& cmd) {
  if (auto s = CheckEditable(state, caller); !s.ok()) return s;
  if (FindContact(*state, cmd.contact_id) == nullptr) {
    return absl::NotFoundError(absl::StrCat("contact ", cmd.contact_id, " not found"));
  }
  v1::ContactRemoved e;
  e.set_contact_id(cmd.contact_id);
  return std::vector<CustomerEvent>{std::move(e)};
}

Decision Decide(const CustomerState* state, const Caller& caller, const RecordFollowUp& cmd) {
  if (auto s = CheckEditable(state, caller); !s.ok()) return s;
  const auto& f = cmd.follow_up;
  if (f.channel() == v1::FOLLOW_UP_CHANNEL_UNSPECIFIED || !v1::FollowUpChannel_IsValid(f.channel())) {
    return InvalidFieldError("follow_up.channel", "is required (PHONE, VISIT, WECHAT, EMAIL or OTHER)");
  }
  if (auto s = CheckText(f.summary(), "follow_up.summary", 2000, true, TextKind::kMultiLine); !s.ok()) return s;
  if (auto s = CheckText(f.feedback(), "follow_up.feedback", 2000, false, TextKind::kMultiLine); !s.ok()) return s;
  if (auto s = CheckText(f.next_step(), "follow_up.next_step", 500, false, TextKind::kMultiLine); !s.ok()) return s;
  if (cmd.when > cmd.now + absl::Minutes(5)) {
    return InvalidFieldError("follow_up.follow_up_time", "is in the future");
  }
  if (f.has_next_follow_up_time() && FromProto(f.next_follow_up_time()) <= cmd.when) {
    return InvalidFieldError("follow_up.next_follow_up_time", "must be after follow_up_time");
  }
  if (!f.contact_id().empty() && FindContact(*state, f.contact_id()) == nullptr) {
    return InvalidFieldError("follow_up.contact_id", "is not a contact of this customer");
  }
  return std::vector<CustomerEvent>{f};
}

Decision Decide(const CustomerState* state, const Caller& caller, const ReleaseToPool& cmd) {
  if (auto s = CheckVisible(state, caller); !s.ok()) return s;
  if (state->in_pool()) {
    return WithErrorInfo(absl::FailedPreconditionError("the customer is in the public pool already"),
                         "IN_POOL", {});
  }
  if (auto s = CheckEditable(state, caller); !s.ok()) return s;
  if (auto s = CheckText(cmd.reason, "reason", 500, false, TextKind::kMultiLine); !s.ok()) return s;
  v1::CustomerReturnedToPool e;
  e.set_previous_owner_id(state->profile().owner_id());
  e.set_cause(v1::POOL_RETURN_CAUSE_RELEASED);
  e.set_reason(cmd.reason);
  return std::vector<CustomerEvent>{std::move(e)};
}

Decision Decide(const CustomerState* state, const Caller& caller, const ClaimFromPool& cmd) {
  if (state == nullptr || state->purged()) return absl::NotFoundError("customer not found");
  // Checked before visibility: the loser of a claim race learns the customer left the pool,
  // not that it cannot see it.
  if (!state->in_pool() || !IsLive(*state)) {
    return WithErrorInfo(absl::FailedPreconditionError("the customer is not in the public pool"),
                         "NOT_IN_POOL", {});
  }
  if (auto s = CheckVisible(state, caller); !s.ok()) return s;
  if (caller.role == "rep" && cmd.daily_limit > 0 && cmd.claims_today >= cmd.daily_limit) {
    return WithErrorInfo(
        absl::FailedPreconditionError(absl::StrCat("daily claim limit of ", cmd.daily_limit, " reached")),
        "CLAIM_LIMIT_REACHED", {{"limit", std::to_string(cmd.daily_limit)}});
  }
  v1::CustomerClaimed e;
  e.set_owner_id(caller.user_id);
  e.set_team_id(state->profile().team_id().empty() ? caller.team : state->profile().team_id());
  e.set_claim_day(cmd.claim_day);
  return std::vector<CustomerEvent>{std::move(e)};
}

Decision Decide(const CustomerState* state, const Caller&, const ReturnIdleToPool& cmd) {
  if (state == nullptr || !IsOwnedAndLive(*state) || cmd.return_after_days <= 0) {
    return std::vector<CustomerEvent>{};
  }
  const absl::Time last = LastActivity(*state);
  if (last + absl::Hours(24) * cmd.return_after_days > cmd.now) return std::vector<CustomerEvent>{};
  v1::CustomerReturnedToPool e;
  e.set_previous_owner_id(state->profile().owner_id());
  e.set_cause(v1::POOL_RETURN_CAUSE_NO_FOLLOW_UP);
  *e.mutable_last_activity_time() = ToProto(last);
  e.set_return_after_days(cmd.return_after_days);
  e.set_reason(absl::StrCat("no follow-up for ", cmd.return_after_days, " days"));
  return std::vector<CustomerEvent>{std::move(e)};
}

Decision Decide(const CustomerState* state, const Caller&, const PurgeDeleted& cmd) {
  if (state == nullptr || !state->deleted() || state->purged()) return std::vector<CustomerEvent>{};
  if (FromProto(state->delete_time()) + kRecycleBinRetention > cmd.now) {
    return std::vector<CustomerEvent>{};
  }
  return std::vector<CustomerEvent>{v1::CustomerPurged()};
}

void Apply(CustomerState& s, const CustomerEvent& event, int64_t version, absl::Time occurred_at,
           const std::string& actor) {
  const auto ts = ToProto(occurred_at);
  const CustomerProfile before = s.profile();
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
          *s.mutable_owner_since() = ts;
          s.set_created_by(actor);
          s.set_lead_id(e.lead_id());
        } else if constexpr (std::is_same_v<T, v1::CustomerUpdated>) {
          // An edited field is the survivor's own again, whatever a merge put there.
          auto* origins = s.mutable_field_origins();
          for (int i = origins->size() - 1; i >= 0; --i) {
            if (std::find(e.changed_fields().begin(), e.changed_fields().end(), origins->Get(i).field()) !=
                e.changed_fields().end()) {
              origins->DeleteSubrange(i, 1);
            }
          }
          *s.mutable_profile() = e.profile();
          s.set_normalized_phone(e.normalized_phone());
          s.set_normalized_email(e.normalized_email());
          if (e.profile().owner_id() != before.owner_id()) {
            *s.mutable_owner_since() = ts;
            if (s.in_pool() && !e.profile().owner_id().empty()) {  // assigned out of the pool
              s.set_in_pool(false);
              s.clear_pool_time();
            }
          }
        } else if constexpr (std::is_same_v<T, v1::CustomerDeleted>) {
          s.set_deleted(true);
          *s.mutable_delete_time() = ts;
        } else if constexpr (std::is_same_v<T, v1::CustomerUndeleted>) {
          s.set_deleted(false);
          s.clear_delete_time();
        } else if constexpr (std::is_same_v<T, v1::ContactAdded>) {
          if (e.contact().primary()) {
            for (auto& c : *s.mutable_contacts()) c.set_primary(false);
          }
          *s.add_contacts() = e.contact();
        } else if constexpr (std::is_same_v<T, v1::ContactUpdated>) {
          for (auto& c : *s.mutable_contacts()) {
            if (e.contact().primary()) c.set_primary(false);
            if (c.id() == e.contact().id()) c = e.contact();
          }
        } else if constexpr (std::is_same_v<T, v1::ContactRemoved>) {
          auto* list = s.mutable_contacts();
          bool was_primary = false;
          for (int i = 0; i < list->size(); ++i) {
            if (list->Get(i).id() == e.contact_id()) {
              was_primary = list->Get(i).primary();
              list->DeleteSubrange(i, 1);
              break;
            }
          }
          if (was_primary && !list->empty()) list->Mutable(0)->set_primary(true);
        } else if constexpr (std::is_same_v<T, v1::FollowUpRecorded>) {
          s.set_follow_up_count(s.follow_up_count() + 1);
          // A backdated record does not move the last follow-up back.
          if (occurred_at >= FromProto(s.last_follow_up_time())) {
            *s.mutable_last_follow_up_time() = ts;
            if (e.has_next_follow_up_time()) {
              *s.mutable_next_follow_up_time() = e.next_follow_up_time();
            } else {
              s.clear_next_follow_up_time();
            }
          }
        } else if constexpr (std::is_same_v<T, v1::CustomerReturnedToPool>) {
          s.set_previous_owner_id(s.profile().owner_id());
          s.mutable_profile()->clear_owner_id();
          s.set_in_pool(true);
          *s.mutable_pool_time() = ts;
        } else if constexpr (std::is_same_v<T, v1::CustomerClaimed>) {
          s.mutable_profile()->set_owner_id(e.owner_id());
          s.mutable_profile()->set_team_id(e.team_id());
          s.set_in_pool(false);
          s.clear_pool_time();
          *s.mutable_owner_since() = ts;
        } else if constexpr (std::is_same_v<T, v1::CustomerPurged>) {
          CustomerState tomb;
          tomb.set_id(s.id());
          tomb.set_version(version);
          tomb.set_purged(true);
          tomb.set_deleted(true);
          *tomb.mutable_update_time() = ts;
          s = std::move(tomb);
        } else {
          ApplyEvent(s, e, ts);
        }
      },
      event);
  if (!s.purged()) TouchCooperation(s, before, occurred_at);
}

void ApplyEvent(CustomerState& s, const v1::CustomerDealWon&, const google::protobuf::Timestamp& at) {
  s.mutable_profile()->set_lifecycle_status(v1::LIFECYCLE_STATUS_DEAL);
  s.set_deals_won(s.deals_won() + 1);
  *s.mutable_last_deal_time() = at;
}

absl::StatusOr<std::vector<CustomerEvent>> Decide(const CustomerState* state, const Caller&,
                                                  const RecordDealWon& cmd) {
  if (state == nullptr || !IsLive(*state)) return std::vector<CustomerEvent>{};
  return std::vector<CustomerEvent>{cmd.deal};
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
        } else if constexpr (std::is_same_v<T, v1::CustomerDeleted> ||
                             std::is_same_v<T, v1::CustomerUndeleted>) {
          return {"deleted"};
        } else if constexpr (std::is_same_v<T, v1::ContactAdded> || std::is_same_v<T, v1::ContactUpdated> ||
                             std::is_same_v<T, v1::ContactRemoved>) {
          return {"contacts"};
        } else if constexpr (std::is_same_v<T, v1::FollowUpRecorded>) {
          return {"last_follow_up_time", "next_follow_up_time", "follow_up_count"};
        } else if constexpr (std::is_same_v<T, v1::CustomerReturnedToPool>) {
          return {"owner_id", "in_pool", "previous_owner_id"};
        } else if constexpr (std::is_same_v<T, v1::CustomerClaimed>) {
          return {"owner_id", "team_id", "in_pool"};
        } else if constexpr (std::is_same_v<T, v1::CustomersMerged>) {
          std::vector<std::string> out{"merged_from"};
          for (const auto& o : e.origins()) out.push_back(o.field());
          if (!e.contacts().empty()) out.push_back("contacts");
          return out;
        } else if constexpr (std::is_same_v<T, v1::CustomerMergeUndone>) {
          std::vector<std::string> out{"merged_from"};
          out.insert(out.end(), e.restored_fields().begin(), e.restored_fields().end());
          if (!e.removed_contact_ids().empty()) out.push_back("contacts");
          return out;
        } else if constexpr (std::is_same_v<T, v1::CustomerMergedInto> || std::is_same_v<T, v1::CustomerUnmerged>) {
          return {"merged_into"};
        } else if constexpr (std::is_same_v<T, v1::CustomerRuleTagged> || std::is_same_v<T, v1::CustomerRuleUntagged>) {
          return {"rule_tags"};
        } else if constexpr (std::is_same_v<T, v1::CustomerDealWon>) {
          return {"lifecycle_status", "deals_won", "last_deal_time"};
        } else {
          return {"purged"};
        }
      },
      event);
}

absl::StatusOr<std::vector<SettingsEvent>> DecideSettings(const CustomerSettings& state,
                                                          const Caller& caller,
                                                          const v1::PoolPolicy& policy) {
  auto days = [](int32_t d, const std::string& field) -> absl::Status {
    if (d < 0 || d > 3650) return InvalidFieldError(field, "must be between 0 and 3650 days");
    return absl::OkStatus();
  };
  auto limit = [](int32_t n, const std::string& field) -> absl::Status {
    if (n < 0 || n > 10000) return InvalidFieldError(field, "must be between 0 and 10000");
    return absl::OkStatus();
  };
  if (auto s = limit(policy.daily_claim_limit(), "policy.daily_claim_limit"); !s.ok()) return s;
  if (auto s = days(policy.return_after_days(), "policy.return_after_days"); !s.ok()) return s;
  for (const auto& [team, d] : policy.team_return_after_days()) {
    if (team.empty() || team.size() > 128 || !TextProblem(team, TextKind::kLine).empty()) {
      return InvalidFieldError("policy.team_return_after_days", "has an empty, over-long or unprintable team id");
    }
    if (auto s = days(d, absl::StrCat("policy.team_return_after_days[", team, "]")); !s.ok()) return s;
  }
  for (const auto& [user, n] : policy.user_daily_claim_limit()) {
    if (user.empty() || user.size() > 128 || !TextProblem(user, TextKind::kLine).empty()) {
      return InvalidFieldError("policy.user_daily_claim_limit", "has an empty, over-long or unprintable user id");
    }
    if (auto s = limit(n, absl::StrCat("policy.user_daily_claim_limit[", user, "]")); !s.ok()) return s;
  }
  if (state.has_pool_policy() &&
      google::protobuf::util::MessageDifferencer::Equals(state.pool_policy(), policy)) {
    return std::vector<SettingsEvent>{};
  }
  v1::PoolPolicySet e;
  *e.mutable_policy() = policy;
  return std::vector<SettingsEvent>{std::move(e)};
}

absl::StatusOr<std::vector<SettingsEvent>> DecideSettings(
    const CustomerSettings&, const Caller& caller, const std::vector<v1::Industry>& industries) {
  if (industries.empty() || industries.size() > 200) {
    return InvalidFieldError("industries", "must have 1 to 200 entries");
  }
  std::set<std::string> codes;
  for (size_t i = 0; i < industries.size(); ++i) {
    const auto& ind = industries[i];
    const std::string field = absl::StrCat("industries[", i, "]");
    const bool code_ok = !ind.code().empty() && ind.code().size() <= 40 &&
                         std::all_of(ind.code().begin(), ind.code().end(), [](char c) {
                           return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_';
                         });
    if (!code_ok) return InvalidFieldError(field + ".code", "must match [a-z0-9_]{1,40}");
    if (!codes.insert(ind.code()).second) return InvalidFieldError(field + ".code", "repeats an earlier code");
    if (auto s = CheckText(ind.name(), field + ".name", 40, true); !s.ok()) return s;
  }
  v1::IndustriesSet e;
  for (const auto& i : industries) *e.add_industries() = i;
  return std::vector<SettingsEvent>{std::move(e)};
}

absl::StatusOr<std::vector<SettingsEvent>> DecideSettings(const CustomerSettings& state, const Caller& caller,
                                                          const v1::ChannelCost& cost) {
  if (cost.source_channel() == v1::SOURCE_CHANNEL_UNSPECIFIED || !v1::SourceChannel_IsValid(cost.source_channel())) {
    return InvalidFieldError("cost.source_channel", "must be a SourceChannel other than UNSPECIFIED");
  }
  absl::CivilMonth month;
  if (cost.month().size() != 7 || !absl::ParseCivilTime(cost.month(), &month) ||
      absl::FormatCivilTime(month) != cost.month()) {
    return InvalidFieldError("cost.month", "must be a month as yyyy-MM");
  }
  if (cost.amount_minor() < 0) return InvalidFieldError("cost.amount_minor", "must not be negative");
  if (auto s = money::CheckAmount(cost.amount_minor(), "cost.amount_minor"); !s.ok()) return s;
  v1::ChannelCost c = cost;
  if (c.currency().empty()) c.set_currency("CNY");
  if (!money::MinorDigits(c.currency()).ok()) return InvalidFieldError("cost.currency", "is not a currency we accept");
  if (auto s = CheckText(c.note(), "cost.note", 200, false, TextKind::kMultiLine); !s.ok()) return s;
  for (const auto& old : state.channel_costs()) {
    if (old.source_channel() == c.source_channel() && old.month() == c.month() &&
        google::protobuf::util::MessageDifferencer::Equals(old, c)) {
      return std::vector<SettingsEvent>{};
    }
  }
  const bool exists = std::any_of(state.channel_costs().begin(), state.channel_costs().end(), [&](const auto& old) {
    return old.source_channel() == c.source_channel() && old.month() == c.month();
  });
  if (c.amount_minor() == 0 && !exists) return std::vector<SettingsEvent>{};
  v1::ChannelCostSet e;
  *e.mutable_cost() = std::move(c);
  return std::vector<SettingsEvent>{std::move(e)};
}

void ApplySettings(CustomerSettings& s, const SettingsEvent& event, int64_t version) {
  s.set_version(version);
  std::visit(
      [&](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, v1::PoolPolicySet>) {
          *s.mutable_pool_policy() = e.policy();
        } else if constexpr (std::is_same_v<T, v1::IndustriesSet>) {
          *s.mutable_industries() = e.industries();
        } else if constexpr (std::is_same_v<T, v1::ChannelCostSet>) {
          auto* costs = s.mutable_channel_costs();
          for (int i = 0; i < costs->size(); ++i) {
            if (costs->Get(i).source_channel() == e.cost().source_channel() && costs->Get(i).month() == e.cost().month()) {
              costs->erase(costs->begin() + i);
              break;
            }
          }
          if (e.cost().amount_minor() > 0) {
            *costs->Add() = e.cost();
            std::sort(costs->begin(), costs->end(), [](const v1::ChannelCost& a, const v1::ChannelCost& b) {
              return std::make_pair(a.source_channel(), a.month()) < std::make_pair(b.source_channel(), b.month());
            });
          }
        } else {
          *s.mutable_tag_rules() = e.rules();
        }
      },
      event);
}

}  // namespace crm::customers
