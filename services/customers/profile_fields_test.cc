// Every place a customer or lead profile field must be handled in, checked field by field from
// the descriptors: a field added to CustomerProfile or LeadProfile and forgotten in one of
// these files fails here with the field and the file named (docs/architecture.md §8).
// Exclusions say why a place leaves a field out on purpose.
#include <set>
#include <string>
#include <variant>

#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "libs/common/caller_testing.h"
#include "libs/common/grpc_status.h"
#include "libs/common/request.h"
#include "libs/testing/field_coverage.h"
#include "services/customers/customer.h"
#include "services/customers/customer_columns.h"
#include "services/customers/lead.h"

namespace crm::customers {
namespace {

using crm::testing::CoverageGaps;
using crm::testing::EqualFields;
using crm::testing::FieldPlace;
using crm::testing::FillEveryField;
using google::protobuf::FieldDescriptor;
using ::testing::IsEmpty;

std::string FieldOf(const absl::Status& s) {
  auto bad = GetBadRequest(s);
  return bad && bad->field_violations_size() ? bad->field_violations(0).field() : "";
}

// Sets `f` of `m` to a value every profile check must refuse: text far over any limit, an
// enum number the enum does not have. False for the types that have no such value.
bool SetHostile(google::protobuf::Message* m, const FieldDescriptor* f) {
  const auto* r = m->GetReflection();
  const std::string huge(20000, 'x');
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
    f->is_repeated() ? r->AddString(m, f, huge) : r->SetString(m, f, huge);
    return true;
  }
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_ENUM && !f->is_repeated()) {
    r->SetEnumValue(m, f, 12345);
    return true;
  }
  return false;
}

// The service copies request and state with CopySameNamed: a profile field the API message
// lacks, or has under another name or type, is dropped without a word.
template <typename Profile, typename Api>
std::vector<std::string> ApiGaps(const std::string& where) {
  Profile p;
  FillEveryField(&p);
  Api api;
  CopySameNamed(p, &api);
  Profile back;
  CopySameNamed(api, &back);
  return CoverageGaps(*Profile::descriptor(), {.where = where, .handled = EqualFields(p, back)});
}

// --- customers ---

TEST(CustomerProfileFieldsTest, ApiCustomerCarriesEveryProfileField) {
  EXPECT_THAT((ApiGaps<CustomerProfile, v1::Customer>(
                  "proto/crm/customers/v1/customers_service.proto (message Customer: same name and type)")),
              IsEmpty());
}

TEST(CustomerProfileFieldsTest, EveryApiCustomerFieldIsStoredOrOutputOnly) {
  // A field added to the API's Customer alone is accepted by CreateCustomer and then dropped:
  // it must be in CustomerProfile (written) or CustomerState (output, copied by ToApi).
  v1::Customer api;
  FillEveryField(&api);
  CustomerProfile p;
  CustomerState s;
  CopySameNamed(api, &p);
  CopySameNamed(api, &s);
  v1::Customer back;
  CopySameNamed(p, &back);
  CopySameNamed(s, &back);
  EXPECT_THAT(CoverageGaps(*v1::Customer::descriptor(),
                           {.where = "proto/crm/customers/v1/customers_events.proto (CustomerProfile, or CustomerState "
                                     "when output only)",
                            .handled = EqualFields(api, back),
                            .excluded = {
                                {"name", "output only: set by CustomerEngine::ToApi from the id"},
                                {"etag", "output only: set by ToApi from the version"},
                                {"consistency_token", "output only: set by the service after a write"},
                                {"merged_from", "output only: set by ToApi from CustomerState.merges"},
                            }}),
              IsEmpty());
}

TEST(CustomerProfileFieldsTest, EveryProfileFieldIsEditable) {
  const auto& editable = EditableFields();
  EXPECT_THAT(CoverageGaps(*CustomerProfile::descriptor(),
                           {.where = "services/customers/customer.cc (EditableFields: the update_mask paths)",
                            .handled = {editable.begin(), editable.end()}}),
              IsEmpty());
}

TEST(CustomerProfileFieldsTest, ValidateProfileBoundsEveryField) {
  // Unbounded text reaches the log, every projection and every export.
  const CustomerSettings settings = EffectiveSettings({});
  std::set<std::string> bounded;
  const auto* d = CustomerProfile::descriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    CustomerProfile p;
    if (!SetHostile(&p, f)) continue;
    const absl::Status s = ValidateProfile(p, {f->name()}, "customer", settings);
    if (s.code() == absl::StatusCode::kInvalidArgument && FieldOf(s) == "customer." + f->name()) {
      bounded.insert(f->name());
    }
  }
  EXPECT_THAT(CoverageGaps(*d, {.where = "services/customers/customer.cc (ValidateProfile: a length limit or a "
                                         "value check naming the field)",
                                .handled = bounded}),
              IsEmpty());
}

TEST(CustomerProfileFieldsTest, ImportAndExportCarryEveryProfileField) {
  // A field without a column is left out of every export and cannot be imported; one whose
  // column ParseCell or FormatCell does not understand does not survive export then import.
  const CustomerSettings settings = EffectiveSettings({});
  v1::Customer c;
  FillEveryField(&c);
  c.set_industry(settings.industries(0).code());  // import takes only industries in the list
  std::set<std::string> carried;
  const auto* d = CustomerProfile::descriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const std::string& f = d->field(i)->name();
    const ColumnSpec* column = FindColumn(f);
    if (column == nullptr || !column->importable) continue;
    const std::string cell = FormatCell(f, c, settings, absl::UTCTimeZone());
    v1::Customer back;
    v1::Contact contact;
    if (!ParseCell(f, cell, settings, &back, &contact).ok()) continue;
    const auto* api = v1::Customer::descriptor()->FindFieldByName(f);
    if (api != nullptr &&
        google::protobuf::util::MessageDifferencer().CompareWithFields(c, back, {api}, {api})) {
      carried.insert(f);
    }
  }
  EXPECT_THAT(CoverageGaps(*d, {.where = "services/customers/customer_columns.cc (MakeColumns: the column with its "
                                         "Chinese label; ParseCell/FormatCell for a new type)",
                                .handled = carried}),
              IsEmpty());
}

TEST(CustomerProfileFieldsTest, MergeTakesEveryProfileFieldItIsAskedFor) {
  // MergeableFields follows EditableFields, but merge.cc copies and compares fields by hand
  // (ProfileFieldEmpty, CopyField, FieldDiffers): a field of a type they do not know is lost.
  const auto* d = CustomerProfile::descriptor();
  CustomerProfile survivor, merged;
  FillEveryField(&merged);
  merged.set_phone("13800138000");
  merged.set_email("m@example.com");
  merged.set_industry(EffectiveSettings({}).industries(0).code());
  merged.set_lifecycle_status(v1::LIFECYCLE_STATUS_POTENTIAL);
  survivor.set_display_name("甲");
  for (int i = 0; i < d->field_count(); ++i) {  // enums: a value the merged one does not have
    const FieldDescriptor* f = d->field(i);
    if (f->enum_type() != nullptr && !f->is_repeated()) {
      survivor.GetReflection()->SetEnumValue(&survivor, f, f->enum_type()->value(2)->number());
    }
  }
  auto live = [](const std::string& id, const CustomerProfile& p) {
    CustomerState s;
    s.set_id(id);
    v1::CustomerCreated e;
    *e.mutable_profile() = p;
    Apply(s, e, 1, absl::FromUnixSeconds(1767225600), "u1");
    return s;
  };
  CustomerState s = live("s", survivor);
  MergeFrom cmd;
  cmd.merged = live("m", merged);
  cmd.take_from_merged = MergeableFields();
  auto events = Decide(&s, crm::testing::kAdmin, cmd);
  ASSERT_TRUE(events.ok()) << events.status();
  const CustomerProfile& out = std::get<v1::CustomersMerged>(events->at(0)).profile();
  const std::set<std::string> was_same = EqualFields(survivor, merged);
  std::set<std::string> taken;
  for (const auto& f : EqualFields(merged, out)) {
    if (was_same.count(f) == 0) taken.insert(f);
  }
  EXPECT_THAT(CoverageGaps(*d, {.where = "services/customers/merge.cc (MergeableFields; ProfileFieldEmpty and CopyField, "
                                         "and FieldDiffers in customer.cc, for a new type)",
                                .handled = taken,
                                .excluded = {
                                    {"owner_id", "the survivor keeps its owner (MergeableFields leaves it out)"},
                                    {"team_id", "the survivor keeps its team (MergeableFields leaves it out)"},
                                }}),
              IsEmpty());
}

// --- leads ---

LeadProfile CompleteLead() {
  LeadProfile p;
  p.set_contact_name("王经理");
  p.set_phone("13800138000");
  return p;
}

TEST(LeadProfileFieldsTest, ApiLeadCarriesEveryProfileField) {
  EXPECT_THAT((ApiGaps<LeadProfile, v1::Lead>(
                  "proto/crm/customers/v1/customers_service.proto (message Lead: same name and type)")),
              IsEmpty());
}

TEST(LeadProfileFieldsTest, EveryProfileFieldIsEditable) {
  const auto& editable = LeadFields();
  EXPECT_THAT(CoverageGaps(*LeadProfile::descriptor(),
                           {.where = "services/customers/lead.cc (LeadFields: the update_mask paths)",
                            .handled = {editable.begin(), editable.end()}}),
              IsEmpty());
}

TEST(LeadProfileFieldsTest, CreateLeadBoundsEveryField) {
  const CustomerSettings settings = EffectiveSettings({});
  std::set<std::string> bounded;
  const auto* d = LeadProfile::descriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    LeadProfile p = CompleteLead();
    p.GetReflection()->ClearField(&p, f);
    if (!SetHostile(&p, f)) continue;
    const LeadDecision e = Decide(nullptr, crm::testing::kRep, CreateLead{p, "", "", settings});
    if (e.status().code() == absl::StatusCode::kInvalidArgument && FieldOf(e.status()) == "lead." + f->name()) {
      bounded.insert(f->name());
    }
  }
  EXPECT_THAT(CoverageGaps(*d, {.where = "services/customers/lead.cc (ValidateLead: a length limit or a value check "
                                         "naming the field)",
                                .handled = bounded}),
              IsEmpty());
}

TEST(LeadProfileFieldsTest, ConversionCarriesEveryFieldACustomerHasToo) {
  LeadState lead;
  FillEveryField(lead.mutable_profile());
  // What a same-named copy would give the customer; the conversion must match it field by field.
  CustomerProfile same_named;
  CopySameNamed(lead.profile(), &same_named);
  const CustomerProfile converted = CustomerProfileFromLead(lead);
  std::set<std::string> carried;
  for (const auto& f : EqualFields(same_named, converted)) {
    if (LeadProfile::descriptor()->FindFieldByName(f) != nullptr) carried.insert(f);
  }
  EXPECT_THAT(CoverageGaps(*LeadProfile::descriptor(),
                           {.where = "services/customers/lead.cc (CustomerProfileFromLead)",
                            .handled = carried,
                            .excluded = {
                                {"contact_name", "becomes the display name of a person, and the contact"},
                                {"company", "becomes the display name of a company"},
                                {"title", "goes to the contact (ContactFromLead)"},
                                {"wechat", "goes to the contact (ContactFromLead)"},
                                {"source_detail", "becomes the customer's source"},
                                {"need", "becomes the customer's notes"},
                                {"notes", "the lead's notes stay on the lead; the customer's notes take its need"},
                            }}),
              IsEmpty());
}

TEST(LeadProfileFieldsTest, ConversionIntoAnExistingCustomerFillsItsEmptyFields) {
  LeadState lead;
  FillEveryField(lead.mutable_profile());
  CustomerProfile same_named;
  CopySameNamed(lead.profile(), &same_named);
  const UpdateCustomer fill = FillFromLead(CustomerState(), lead, EffectiveSettings({}));
  const std::set<std::string> equal = EqualFields(same_named, fill.profile);
  std::set<std::string> filled;  // in the mask, with the lead's same-named value
  for (const auto& path : fill.paths) {
    if (LeadProfile::descriptor()->FindFieldByName(path) != nullptr && equal.count(path) > 0) filled.insert(path);
  }
  EXPECT_THAT(CoverageGaps(*LeadProfile::descriptor(),
                           {.where = "services/customers/lead.cc (FillFromLead: the fields an empty customer field "
                                     "takes from the lead)",
                            .handled = filled,
                            .excluded = {
                                {"contact_name", "the customer keeps its name; the lead's person becomes a contact"},
                                {"company", "the customer keeps its name"},
                                {"title", "goes to the contact (ContactFromLead)"},
                                {"wechat", "goes to the contact (ContactFromLead)"},
                                {"source_detail", "fills the customer's source"},
                                {"need", "fills the customer's notes"},
                                {"notes", "the lead's notes stay on the lead; the customer's notes take its need"},
                                {"tags", "an existing customer keeps its own tags"},
                            }}),
              IsEmpty());
}

}  // namespace
}  // namespace crm::customers
