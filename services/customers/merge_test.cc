// Given/when/then tests of the duplicate keys and the pure merge decisions.
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "libs/common/caller_testing.h"
#include "libs/common/grpc_status.h"
#include "services/customers/customer.h"

namespace crm::customers {
namespace {

using crm::testing::kManager;
using crm::testing::kRep;
using crm::testing::kRep2;

std::string FieldOf(const absl::Status& s) {
  auto bad = GetBadRequest(s);
  return bad && bad->field_violations_size() ? bad->field_violations(0).field() : "";
}

TEST(CompanyNameTest, FoldsWidthPunctuationCaseAndLegalSuffixes) {
  const std::string key = NormalizeCompanyName("深圳星河科技有限公司");
  EXPECT_EQ(key, "深圳星河科技");
  EXPECT_EQ(NormalizeCompanyName("深圳星河科技有限责任公司"), key);
  EXPECT_EQ(NormalizeCompanyName("深圳 星河·科技（有限公司）"), "深圳星河科技");
  EXPECT_EQ(NormalizeCompanyName("深圳星河科技股份有限公司"), key);
  EXPECT_EQ(NormalizeCompanyName("深圳星河科技公司"), key);
  EXPECT_EQ(NormalizeCompanyName("ＡＢＣ　Trading Co., Ltd."), "abctrading");
  EXPECT_EQ(NormalizeCompanyName("abc trading limited"), "abctrading");
  EXPECT_EQ(NormalizeCompanyName("A.B.C. Trading, Inc."), "abctrading");
  EXPECT_EQ(NormalizeCompanyName("“星河”科技"), "星河科技");
  EXPECT_NE(NormalizeCompanyName("深圳星河"), key) << "a shorter name is another company";
  EXPECT_EQ(NormalizeCompanyName("有限公司"), "有限公司") << "a suffix alone is not stripped to nothing";
  EXPECT_EQ(NormalizeCompanyName(" ，。"), "");
}

// Given: a live customer built from events.
CustomerState Customer(const std::string& id, const std::string& owner, CustomerProfile p) {
  CustomerState s;
  s.set_id(id);
  p.set_owner_id(owner);
  p.set_team_id("east");
  if (p.kind() == v1::CUSTOMER_KIND_UNSPECIFIED) p.set_kind(v1::CUSTOMER_KIND_COMPANY);
  if (p.lifecycle_status() == v1::LIFECYCLE_STATUS_UNSPECIFIED) p.set_lifecycle_status(v1::LIFECYCLE_STATUS_POTENTIAL);
  v1::CustomerCreated e;
  *e.mutable_profile() = p;
  Apply(s, e, 1, absl::FromUnixSeconds(1767225600), owner);
  return s;
}

void Fold(CustomerState& s, const std::vector<CustomerEvent>& events) {
  for (const auto& e : events) Apply(s, e, s.version() + 1, absl::FromUnixSeconds(1767229200), "u1");
}

TEST(MergeDecisionTest, SurvivorKeepsItsValuesFillsEmptyOnesAndRecordsOrigins) {
  CustomerProfile a, b;
  a.set_display_name("星河科技");
  a.set_phone("13800000001");
  a.add_tags("vip");
  b.set_display_name("星河科技有限公司");
  b.set_email("x@y.cn");
  b.set_address("深圳南山");
  b.add_tags("vip");
  b.add_tags("展会");
  CustomerState s = Customer("s", "u1", a), m = Customer("m", "u1", b);
  v1::Contact c;
  c.set_id("k1");
  c.set_name("张三");
  c.set_primary(true);
  *m.add_contacts() = c;
  MergeFrom cmd;
  cmd.merged = m;
  cmd.contact_ids = {{"k1", "new-k1"}};
  auto events = Decide(&s, kRep, cmd);
  ASSERT_TRUE(events.ok()) << events.status();
  const auto& e = std::get<v1::CustomersMerged>(events->at(0));
  EXPECT_EQ(e.profile().display_name(), "星河科技") << "the survivor's value wins";
  EXPECT_EQ(e.profile().email(), "x@y.cn");
  EXPECT_EQ(e.normalized_email(), "x@y.cn");
  EXPECT_EQ(e.profile().address(), "深圳南山");
  ASSERT_EQ(e.profile().tags_size(), 2);
  EXPECT_EQ(e.profile().tags(1), "展会");
  std::vector<std::string> fields;
  for (const auto& o : e.origins()) fields.push_back(o.field() + "<-" + o.customer_id());
  EXPECT_EQ(fields, (std::vector<std::string>{"email<-m", "tags<-m", "address<-m"}));
  ASSERT_EQ(e.contacts_size(), 1);
  EXPECT_EQ(e.contacts(0).id(), "new-k1");
  EXPECT_TRUE(e.contacts(0).primary()) << "the survivor had no contacts";

  // When the survivor edits the address afterwards, an undo keeps that edit.
  Fold(s, *events);
  v1::CustomerUpdated edit;
  *edit.mutable_profile() = s.profile();
  edit.mutable_profile()->set_address("深圳福田");
  edit.add_changed_fields("address");
  Fold(s, {edit});
  auto undo = Decide(&s, kRep, UndoMerge{"m"});
  ASSERT_TRUE(undo.ok()) << undo.status();
  Fold(s, *undo);
  EXPECT_EQ(s.profile().email(), "");
  EXPECT_EQ(s.profile().address(), "深圳福田");
  EXPECT_EQ(s.profile().tags_size(), 1);
  EXPECT_EQ(s.contacts_size(), 0);
  EXPECT_EQ(s.merges_size(), 0);
  EXPECT_EQ(s.field_origins_size(), 0);
  EXPECT_TRUE(Decide(&s, kRep, UndoMerge{"m"})->empty()) << "undoing twice records nothing";
}

TEST(MergeDecisionTest, ChosenFieldsPermissionsAndRefusals) {
  CustomerProfile a, b;
  a.set_display_name("A");
  b.set_display_name("B");
  CustomerState s = Customer("s", "u1", a), m = Customer("m", "u2", b);
  MergeFrom cmd;
  cmd.merged = m;
  EXPECT_EQ(Decide(&s, kRep, cmd).status().code(), absl::StatusCode::kPermissionDenied)
      << "a rep may not merge another rep's customer";
  cmd.take_from_merged = {"display_name"};
  auto events = Decide(&s, kManager, cmd);
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(std::get<v1::CustomersMerged>(events->at(0)).profile().display_name(), "B");
  cmd.take_from_merged = {"owner_id"};
  EXPECT_EQ(FieldOf(Decide(&s, kManager, cmd).status()), "take_from_merged");
  cmd.take_from_merged = {};
  Fold(m, {[] { v1::CustomerMergedInto e; e.set_survivor_id("x"); return e; }()});
  cmd.merged = m;
  EXPECT_EQ(Decide(&s, kManager, cmd).status().code(), absl::StatusCode::kFailedPrecondition);
  // A merged customer refuses ordinary commands, naming the survivor.
  UpdateCustomer u;
  u.profile.set_notes("x");
  u.paths = {"notes"};
  auto refused = Decide(&m, kManager, u);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(GetErrorInfo(refused.status())->reason(), "MERGED");
  EXPECT_FALSE(IsLive(m));
}

}  // namespace
}  // namespace crm::customers
