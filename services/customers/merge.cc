// Duplicate detection keys and the pure decisions of merging customers (查重合并).
#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/grpc_status.h"
#include "services/customers/customer.h"

namespace crm::customers {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::util::TimeUtil;

// Code points removed from company names: CJK punctuation and brackets, middle dots, dashes,
// quotes. ASCII punctuation and whitespace are removed by class.
bool IsCjkPunct(uint32_t cp) {
  if (cp >= 0x3000 && cp <= 0x303F) return true;  // CJK symbols and punctuation: 、。「」【】《》
  if (cp >= 0x2010 && cp <= 0x206F) return true;  // general punctuation: — ‘ ’ “ ” … ·
  if (cp == 0x00B7 || cp == 0x30FB || cp == 0xFF65) return true;  // middle dots
  return false;
}

// Decodes one UTF-8 sequence at `in[i]`; returns its length (1 for a stray byte).
size_t Decode(absl::string_view in, size_t i, uint32_t* cp) {
  const auto c = static_cast<unsigned char>(in[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
  if (i + n > in.size()) n = 1;
  if (n == 1) {
    *cp = c;
    return 1;
  }
  uint32_t v = c & (0xFF >> (n + 1));
  for (size_t k = 1; k < n; ++k) v = (v << 6) | (static_cast<unsigned char>(in[i + k]) & 0x3F);
  *cp = v;
  return n;
}

// Legal-form suffixes, longest first so that 股份有限公司 goes before 有限公司 and 公司.
const std::vector<std::string>& LegalSuffixes() {
  static const auto* s = new std::vector<std::string>{
      "股份有限公司", "有限责任公司", "集团有限公司", "有限公司", "分公司", "公司",
      "corporation", "company", "limited", "colimited", "coltd", "corp", "ltd", "inc", "llc", "co"};
  return *s;
}

bool ProfileFieldEmpty(const CustomerProfile& p, const FieldDescriptor* fd) {
  const auto* r = p.GetReflection();
  if (fd->is_repeated()) return r->FieldSize(p, fd) == 0;
  if (fd->cpp_type() == FieldDescriptor::CPPTYPE_ENUM) return r->GetEnumValue(p, fd) == 0;
  return r->GetString(p, fd).empty();
}

void CopyField(const CustomerProfile& from, const FieldDescriptor* fd, CustomerProfile* to) {
  const auto* r = from.GetReflection();
  r->ClearField(to, fd);
  if (fd->is_repeated()) {
    for (int i = 0; i < r->FieldSize(from, fd); ++i) r->AddString(to, fd, r->GetRepeatedString(from, fd, i));
  } else if (fd->cpp_type() == FieldDescriptor::CPPTYPE_ENUM) {
    r->SetEnumValue(to, fd, r->GetEnumValue(from, fd));
  } else {
    r->SetString(to, fd, r->GetString(from, fd));
  }
}

absl::Status CheckMergeable(const CustomerState* s, const Caller& caller, int64_t expected, absl::string_view which,
                            absl::string_view etag_field) {
  if (s == nullptr || s->purged()) return absl::NotFoundError(absl::StrCat(which, " customer not found"));
  if (!CanSee(caller, *s) || !CanEdit(caller, *s)) {
    return absl::PermissionDeniedError(absl::StrCat("you may not change the ", which, " customer"));
  }
  if (auto st = CheckEtag(s->version(), expected, absl::StrCat("the ", which, " customer"), etag_field); !st.ok()) {
    return st;
  }
  if (s->deleted()) return absl::FailedPreconditionError(absl::StrCat("the ", which, " customer is in the recycle bin"));
  return absl::OkStatus();
}

// Keeps "never followed up" distinct from the epoch.
void SetLastFollowUp(CustomerState* s, bool has, const google::protobuf::Timestamp& v) {
  if (has) {
    *s->mutable_last_follow_up_time() = v;
  } else {
    s->clear_last_follow_up_time();
  }
}

}  // namespace

std::string NormalizeCompanyName(absl::string_view name) {
  const std::string folded = FoldFullWidth(name);
  std::string out;
  for (size_t i = 0; i < folded.size();) {
    uint32_t cp = 0;
    const size_t n = Decode(folded, i, &cp);
    if (n == 1 && cp < 0x80) {
      const char c = static_cast<char>(cp);
      if (absl::ascii_isalnum(c)) out.push_back(absl::ascii_tolower(c));
    } else if (!IsCjkPunct(cp)) {
      out.append(folded, i, n);
    }
    i += n;
  }
  // Strip legal forms from the end, repeatedly ("xx有限公司 分公司" and "Foo Co., Ltd.").
  for (bool stripped = true; stripped;) {
    stripped = false;
    for (const auto& suffix : LegalSuffixes()) {
      if (out == suffix) break;  // a bare legal form is all the name there is
      if (out.size() > suffix.size() && absl::EndsWith(out, suffix)) {
        out.resize(out.size() - suffix.size());
        stripped = true;
        break;
      }
    }
  }
  return out;
}

const std::vector<std::string>& MergeableFields() {
  static const auto* f = [] {
    auto* v = new std::vector<std::string>;
    for (const auto& name : EditableFields()) {
      if (name != "owner_id" && name != "team_id") v->push_back(name);
    }
    return v;
  }();
  return *f;
}

Decision Decide(const CustomerState* state, const Caller& caller, const MergeFrom& cmd) {
  const CustomerState& m = cmd.merged;
  if (state != nullptr && state->id() == m.id()) return InvalidFieldError("merged", "must differ from survivor");
  // Already merged (a retry, or a repair after a crash before the merged side was marked).
  if (state != nullptr) {
    for (const auto& r : state->merges()) {
      if (r.merged_id() == m.id()) return std::vector<CustomerEvent>{};
    }
  }
  if (auto s = CheckMergeable(state, caller, cmd.expected_version, "survivor", "survivor_etag"); !s.ok()) return s;
  if (!state->merged_into().empty()) {
    return absl::FailedPreconditionError(absl::StrCat("the survivor was itself merged into customers/", state->merged_into()));
  }
  if (auto s = CheckMergeable(&m, caller, cmd.merged_expected_version, "merged", "merged_etag"); !s.ok()) return s;
  if (!m.merged_into().empty()) {
    return absl::FailedPreconditionError(absl::StrCat("the merged customer was merged into customers/", m.merged_into(), " already"));
  }
  if (!m.merges().empty()) {
    return absl::FailedPreconditionError("the merged customer is itself a survivor of merges; unmerge those first");
  }
  for (const auto& f : cmd.take_from_merged) {
    if (std::find(MergeableFields().begin(), MergeableFields().end(), f) == MergeableFields().end()) {
      return InvalidFieldError("take_from_merged", absl::StrCat("'", f, "' is not a field a merge can take"));
    }
  }

  v1::CustomersMerged e;
  e.set_merged_id(m.id());
  CustomerProfile next = state->profile();
  auto take = [&](const std::string& f) {
    const auto* fd = CustomerProfile::descriptor()->FindFieldByName(f);
    if (!FieldDiffers(next, m.profile(), fd)) return;
    CopyField(m.profile(), fd, &next);
    auto* o = e.add_origins();
    o->set_field(f);
    o->set_customer_id(m.id());
  };
  for (const auto& f : MergeableFields()) {
    const auto* fd = CustomerProfile::descriptor()->FindFieldByName(f);
    const bool chosen = std::find(cmd.take_from_merged.begin(), cmd.take_from_merged.end(), f) != cmd.take_from_merged.end();
    if (f == "tags") {
      if (chosen) {
        take(f);
      } else {  // union, the survivor's first
        std::set<std::string> have(next.tags().begin(), next.tags().end());
        bool added = false;
        for (const auto& t : m.profile().tags()) {
          if (have.insert(t).second && next.tags_size() < 50) {
            next.add_tags(t);
            added = true;
          }
        }
        if (added) {
          auto* o = e.add_origins();
          o->set_field(f);
          o->set_customer_id(m.id());
        }
      }
    } else if (chosen || (ProfileFieldEmpty(next, fd) && !ProfileFieldEmpty(m.profile(), fd))) {
      take(f);
    }
  }
  // A lost status needs its reason; take the merged one's when the survivor has none.
  if (next.lifecycle_status() == v1::LIFECYCLE_STATUS_LOST && absl::StripAsciiWhitespace(next.churn_reason()).empty()) {
    take("churn_reason");
  }
  *e.mutable_profile() = next;
  NormalizedKeys(next.phone(), next.email(), e.mutable_normalized_phone(), e.mutable_normalized_email());

  // Contacts: the merged customer's, unless the survivor has one with the same phone or email.
  std::set<std::string> phones, emails;
  for (const auto& c : state->contacts()) {
    if (!c.normalized_phone().empty()) phones.insert(c.normalized_phone());
    if (!c.normalized_email().empty()) emails.insert(c.normalized_email());
  }
  for (const auto& c : m.contacts()) {
    if ((!c.normalized_phone().empty() && phones.count(c.normalized_phone())) ||
        (!c.normalized_email().empty() && emails.count(c.normalized_email()))) {
      continue;
    }
    auto it = cmd.contact_ids.find(c.id());
    if (it == cmd.contact_ids.end()) return absl::InternalError("no id for a copied contact");
    Contact copy = c;
    copy.set_id(it->second);
    copy.set_primary(state->contacts().empty() && e.contacts().empty() && c.primary());
    *e.add_contacts() = copy;
  }
  if (state->contacts_size() + e.contacts_size() > 50) {
    return absl::FailedPreconditionError(absl::StrCat("the merged customer would have ", state->contacts_size() + e.contacts_size(),
                                                      " contacts; a customer has at most 50"));
  }
  const auto& later = TimeUtil::TimestampToNanoseconds(m.last_follow_up_time()) >
                              TimeUtil::TimestampToNanoseconds(state->last_follow_up_time())
                          ? m.last_follow_up_time()
                          : state->last_follow_up_time();
  if (later.seconds() != 0 || later.nanos() != 0) *e.mutable_last_follow_up_time() = later;

  v1::MergeRecord* r = e.mutable_record();
  r->set_merged_id(m.id());
  *r->mutable_previous_profile() = state->profile();
  for (const auto& o : e.origins()) r->add_fields(o.field());
  for (const auto& c : e.contacts()) r->add_contact_ids(c.id());
  if (state->has_last_follow_up_time()) *r->mutable_previous_last_follow_up_time() = state->last_follow_up_time();
  if (e.has_last_follow_up_time()) *r->mutable_last_follow_up_time_after() = later;
  return std::vector<CustomerEvent>{std::move(e)};
}

Decision Decide(const CustomerState* state, const Caller& caller, const MarkMerged& cmd) {
  if (state == nullptr || state->purged()) return absl::NotFoundError("merged customer not found");
  if (state->merged_into() == cmd.survivor_id) return std::vector<CustomerEvent>{};  // a retry
  if (!state->merged_into().empty()) {
    return absl::FailedPreconditionError(absl::StrCat("the merged customer was merged into customers/", state->merged_into()));
  }
  if (!CanEdit(caller, *state)) return absl::PermissionDeniedError("you may not change the merged customer");
  v1::CustomerMergedInto e;
  e.set_survivor_id(cmd.survivor_id);
  return std::vector<CustomerEvent>{std::move(e)};
}

Decision Decide(const CustomerState* state, const Caller& caller, const Unmerge& cmd) {
  if (state == nullptr || state->purged()) return absl::NotFoundError("merged customer not found");
  if (state->merged_into().empty()) return std::vector<CustomerEvent>{};  // undone already (or a retry)
  if (state->merged_into() != cmd.survivor_id) {
    return absl::FailedPreconditionError(absl::StrCat("the customer was merged into customers/", state->merged_into(),
                                                      ", not customers/", cmd.survivor_id));
  }
  if (!CanEdit(caller, *state)) return absl::PermissionDeniedError("you may not change the merged customer");
  v1::CustomerUnmerged e;
  e.set_survivor_id(cmd.survivor_id);
  return std::vector<CustomerEvent>{std::move(e)};
}

Decision Decide(const CustomerState* state, const Caller& caller, const UndoMerge& cmd) {
  if (state == nullptr || state->purged()) return absl::NotFoundError("survivor customer not found");
  const v1::MergeRecord* rec = nullptr;
  for (const auto& r : state->merges()) {
    if (r.merged_id() == cmd.merged_id) rec = &r;
  }
  if (rec == nullptr) return std::vector<CustomerEvent>{};  // nothing (left) to undo
  if (!CanEdit(caller, *state)) return absl::PermissionDeniedError("you may not change the survivor customer");
  v1::CustomerMergeUndone e;
  e.set_merged_id(cmd.merged_id);
  CustomerProfile next = state->profile();
  // Only fields still carrying the merged customer's value: later edits are the survivor's.
  for (const auto& o : state->field_origins()) {
    if (o.customer_id() != cmd.merged_id) continue;
    CopyField(rec->previous_profile(), CustomerProfile::descriptor()->FindFieldByName(o.field()), &next);
    e.add_restored_fields(o.field());
  }
  *e.mutable_profile() = next;
  NormalizedKeys(next.phone(), next.email(), e.mutable_normalized_phone(), e.mutable_normalized_email());
  std::set<std::string> copied(rec->contact_ids().begin(), rec->contact_ids().end());
  for (const auto& c : state->contacts()) {
    if (copied.count(c.id())) e.add_removed_contact_ids(c.id());
  }
  // The merge's follow-up time goes back unless the survivor was followed up since.
  const bool untouched = TimeUtil::TimestampToNanoseconds(state->last_follow_up_time()) ==
                         TimeUtil::TimestampToNanoseconds(rec->last_follow_up_time_after());
  const auto& last = untouched ? rec->previous_last_follow_up_time() : state->last_follow_up_time();
  if (last.seconds() != 0 || last.nanos() != 0) *e.mutable_last_follow_up_time() = last;
  return std::vector<CustomerEvent>{std::move(e)};
}

void ApplyEvent(CustomerState& s, const v1::CustomersMerged& e, const google::protobuf::Timestamp& at) {
  *s.mutable_profile() = e.profile();
  s.set_normalized_phone(e.normalized_phone());
  s.set_normalized_email(e.normalized_email());
  auto* origins = s.mutable_field_origins();
  for (const auto& o : e.origins()) {
    for (int i = origins->size() - 1; i >= 0; --i) {
      if (origins->Get(i).field() == o.field()) origins->DeleteSubrange(i, 1);
    }
    *origins->Add() = o;
  }
  for (const auto& c : e.contacts()) *s.add_contacts() = c;
  SetLastFollowUp(&s, e.has_last_follow_up_time(), e.last_follow_up_time());
  v1::MergeRecord* r = s.add_merges();
  *r = e.record();
  *r->mutable_merge_time() = at;
}

void ApplyEvent(CustomerState& s, const v1::CustomerMergedInto& e, const google::protobuf::Timestamp&) {
  s.set_merged_into(e.survivor_id());
}

void ApplyEvent(CustomerState& s, const v1::CustomerUnmerged&, const google::protobuf::Timestamp&) {
  s.clear_merged_into();
}

void ApplyEvent(CustomerState& s, const v1::CustomerMergeUndone& e, const google::protobuf::Timestamp&) {
  *s.mutable_profile() = e.profile();
  s.set_normalized_phone(e.normalized_phone());
  s.set_normalized_email(e.normalized_email());
  auto* origins = s.mutable_field_origins();
  for (int i = origins->size() - 1; i >= 0; --i) {
    if (origins->Get(i).customer_id() == e.merged_id()) origins->DeleteSubrange(i, 1);
  }
  std::set<std::string> removed(e.removed_contact_ids().begin(), e.removed_contact_ids().end());
  auto* contacts = s.mutable_contacts();
  bool primary_removed = false;
  for (int i = contacts->size() - 1; i >= 0; --i) {
    if (removed.count(contacts->Get(i).id())) {
      primary_removed |= contacts->Get(i).primary();
      contacts->DeleteSubrange(i, 1);
    }
  }
  if (primary_removed && !contacts->empty()) contacts->Mutable(0)->set_primary(true);
  SetLastFollowUp(&s, e.has_last_follow_up_time(), e.last_follow_up_time());
  auto* merges = s.mutable_merges();
  for (int i = merges->size() - 1; i >= 0; --i) {
    if (merges->Get(i).merged_id() == e.merged_id()) merges->DeleteSubrange(i, 1);
  }
}

}  // namespace crm::customers
