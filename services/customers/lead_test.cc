// Given lead events, when a command, then events or an error.
#include "services/customers/lead.h"

#include "gtest/gtest.h"
#include "libs/common/caller_testing.h"
#include "libs/common/grpc_status.h"

namespace crm::customers {
namespace {

using crm::testing::kManager;
using crm::testing::kRep;
using crm::testing::kRep2;
const Caller kMarketing{"mkt", "service", ""};
const absl::Time kT0 = absl::FromUnixSeconds(1767225600);

LeadProfile Profile() {
  LeadProfile p;
  p.set_contact_name("王经理");
  p.set_company("深圳云帆贸易有限公司");
  p.set_phone("13911112222");
  p.set_source_channel(v1::SOURCE_CHANNEL_EXHIBITION);
  p.set_need("需要 200 套门店收银系统");
  return p;
}

LeadState Fold(LeadState s, const std::vector<LeadEvent>& events, const std::string& actor = "u1") {
  for (const auto& e : events) Apply(s, e, s.version() + 1, kT0, actor);
  return s;
}

LeadState Created(const Caller& by, const std::string& owner = "") {
  auto ev = Decide(nullptr, by, CreateLead{Profile(), owner, "east", EffectiveSettings({})});
  EXPECT_TRUE(ev.ok()) << ev.status();
  LeadState s;
  s.set_id("l1");
  return Fold(s, *ev);
}

std::string FieldOf(const absl::Status& s) {
  auto bad = GetBadRequest(s);
  return bad && bad->field_violations_size() ? bad->field_violations(0).field() : "";
}

std::string ReasonOf(const absl::Status& s) {
  auto info = GetErrorInfo(s);
  return info ? info->reason() : "";
}

TEST(LeadTest, RepsOwnWhatTheyCreateAndMarketingLeadsGoToThePool) {
  EXPECT_EQ(Created(kRep).owner_id(), "u1");
  LeadState pooled = Created(kMarketing);
  EXPECT_EQ(pooled.owner_id(), "");
  EXPECT_EQ(pooled.status(), v1::LEAD_STATUS_OPEN);
  EXPECT_TRUE(CanSee(kRep2, pooled)) << "the team's lead pool";
  EXPECT_FALSE(CanEdit(kRep2, pooled)) << "claim first";
  EXPECT_EQ(Created(kMarketing, "u2").owner_id(), "u2");
}

TEST(LeadTest, ALeadNeedsANameAndAWayToReachIt) {
  LeadProfile p;
  p.set_phone("13911112222");
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, CreateLead{p, "", "", EffectiveSettings({})}).status()), "lead.contact_name");
  p.set_company("X");
  p.clear_phone();
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, CreateLead{p, "", "", EffectiveSettings({})}).status()), "lead.phone");
  p.set_phone("12");
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, CreateLead{p, "", "", EffectiveSettings({})}).status()), "lead.phone");
  p.set_phone("");
  p.set_wechat("wx_abc");
  EXPECT_TRUE(Decide(nullptr, kRep, CreateLead{p, "", "", EffectiveSettings({})}).ok());
  p.set_source_channel(static_cast<v1::SourceChannel>(99));
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, CreateLead{p, "", "", EffectiveSettings({})}).status()), "lead.source_channel");
}

TEST(LeadTest, ClaimAssignAndReleaseMoveOwnership) {
  LeadState s = Created(kMarketing);
  auto claim = Decide(&s, kRep, ClaimLead{});
  ASSERT_TRUE(claim.ok()) << claim.status();
  s = Fold(s, *claim);
  EXPECT_EQ(s.owner_id(), "u1");
  EXPECT_EQ(ReasonOf(Decide(&s, kRep2, ClaimLead{}).status()), "NOT_IN_POOL") << "the race loser";
  EXPECT_EQ(Decide(&s, kRep, AssignLead{"u2", ""}).status().code(), absl::StatusCode::kPermissionDenied);
  s = Fold(s, *Decide(&s, kManager, AssignLead{"u2", ""}));
  EXPECT_EQ(s.owner_id(), "u2");
  s = Fold(s, *Decide(&s, kRep2, ReleaseLead{"不是目标客户"}));
  EXPECT_EQ(s.owner_id(), "");
  EXPECT_EQ(ReasonOf(Decide(&s, kRep2, QualifyLead{}).status()), "IN_POOL");
}

// A manager's token without a team put leads into the pool of no team, and saw that pool.
TEST(LeadTest, AManagerWithoutATeamNeitherCreatesNorSeesLeads) {
  const Caller teamless{"m7", "manager", ""};
  EXPECT_EQ(Decide(nullptr, teamless, CreateLead{Profile(), "", "", EffectiveSettings({})}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Decide(nullptr, teamless, CreateLead{Profile(), "u1", "", EffectiveSettings({})}).status().code(),
            absl::StatusCode::kPermissionDenied);
  LeadState pool = Fold(LeadState(), *Decide(nullptr, kMarketing, CreateLead{Profile(), "", "", EffectiveSettings({})}));
  EXPECT_FALSE(CanSee(teamless, pool));
  EXPECT_TRUE(CanSee(kRep, pool));  // a pool without a team is everyone's
  EXPECT_EQ(Decide(&pool, teamless, AssignLead{"u1", ""}).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(LeadTest, DisqualifyNeedsAReasonAndClosesTheLead) {
  LeadState s = Created(kRep);
  EXPECT_EQ(FieldOf(Decide(&s, kRep, DisqualifyLead{""}).status()), "reason");
  s = Fold(s, *Decide(&s, kRep, DisqualifyLead{"预算不足"}));
  EXPECT_EQ(s.status(), v1::LEAD_STATUS_DISQUALIFIED);
  EXPECT_EQ(s.disqualify_reason(), "预算不足");
  EXPECT_EQ(ReasonOf(Decide(&s, kRep, QualifyLead{}).status()), "LEAD_CLOSED");
  EXPECT_EQ(ReasonOf(CheckConvertible(&s, kRep)), "LEAD_CLOSED");
  UpdateLead up{Profile(), {"need"}, EffectiveSettings({})};
  EXPECT_EQ(ReasonOf(Decide(&s, kRep, up).status()), "LEAD_CLOSED");
}

TEST(LeadTest, ConversionBuildsACustomerAndFillsOnlyEmptyFieldsOfAnExistingOne) {
  LeadState s = Fold(Created(kRep), {v1::LeadQualified()});
  CustomerProfile p = CustomerProfileFromLead(s);
  EXPECT_EQ(p.display_name(), "深圳云帆贸易有限公司");
  EXPECT_EQ(p.kind(), v1::CUSTOMER_KIND_COMPANY);
  EXPECT_EQ(p.lifecycle_status(), v1::LIFECYCLE_STATUS_INTENT) << "a qualified lead is 意向";
  EXPECT_EQ(p.owner_id(), "u1");
  EXPECT_EQ(p.source_channel(), v1::SOURCE_CHANNEL_EXHIBITION);

  CustomerState existing;
  existing.mutable_profile()->set_display_name("云帆");
  existing.mutable_profile()->set_phone("13911112222");
  existing.mutable_profile()->set_notes("老客户");
  UpdateCustomer fill = FillFromLead(existing, s, EffectiveSettings({}));
  EXPECT_EQ(fill.paths, (std::vector<std::string>{"source_channel"}))
      << "phone and notes are set already; display name and owner are never overwritten";

  auto contact = ContactFromLead(nullptr, s);
  ASSERT_TRUE(contact.has_value());
  EXPECT_EQ(contact->name(), "王经理");
  Contact same;
  same.set_normalized_phone("13911112222");
  *existing.add_contacts() = same;
  EXPECT_FALSE(ContactFromLead(&existing, s).has_value()) << "the person is a contact already";

  v1::LeadConverted c;
  c.set_customer_id("c9");
  s = Fold(s, *Decide(&s, kRep, ConvertLead{c}));
  EXPECT_EQ(s.status(), v1::LEAD_STATUS_CONVERTED);
  EXPECT_EQ(s.customer_id(), "c9");
}

}  // namespace
}  // namespace crm::customers
