#include "services/tasks/rule.h"

#include "crm/customers/v1/customers_events.pb.h"
#include "crm/opportunities/v1/opportunities_events.pb.h"
#include "gtest/gtest.h"
#include "libs/common/status_testing.h"
#include "libs/common/proto_time.h"
#include "services/tasks/task_engine.h"

namespace crm::tasks {
namespace {

using crm::testing::FieldOf;

const Caller kAdmin{"admin1", "admin", ""};
const Caller kRep{"rep1", "rep", "east"};
const absl::Time kT0 = absl::FromUnixSeconds(1767225600);

common::v1::EventEnvelope Envelope(const google::protobuf::Message& m, const std::string& aggregate_type) {
  common::v1::EventEnvelope e;
  e.set_event_type(m.GetDescriptor()->full_name());
  e.set_aggregate_type(aggregate_type);
  e.set_aggregate_id("a1");
  e.mutable_payload()->PackFrom(m);
  return e;
}

RuleDefinition LostRule() {
  for (const auto& d : DefaultRules()) {
    if (d.key == "default.lost_customer_care") return d.definition;
  }
  return {};
}

TEST(RuleTest, EveryDefaultRuleIsValid) {
  ASSERT_EQ(DefaultRules().size(), 7u);
  for (const auto& d : DefaultRules()) EXPECT_TRUE(ValidateRule(d.definition, "rule").ok()) << d.key;
}

// Who may call CreateRule is the permission matrix's (the rpc's access option; access_test).
TEST(RuleTest, AdminsDefineRules) {
  EXPECT_TRUE(Decide(nullptr, kAdmin, CreateRule{LostRule(), ""}).ok());
}

TEST(RuleTest, RejectsUnknownEventTypesAndFieldsNamingThem) {
  RuleDefinition d = LostRule();
  d.mutable_event()->set_event_type("crm.customers.v1.NoSuchEvent");
  EXPECT_EQ(FieldOf(ValidateRule(d, "rule")), "rule.event.event_type");
  d = LostRule();
  d.mutable_event()->mutable_conditions(1)->set_field("profile.no_such_field");
  EXPECT_EQ(FieldOf(ValidateRule(d, "rule")), "rule.event.conditions[1].field");
  d = LostRule();
  d.mutable_event()->mutable_conditions(0)->clear_values();
  EXPECT_EQ(FieldOf(ValidateRule(d, "rule")), "rule.event.conditions[0].values");
  d = LostRule();
  d.mutable_event()->mutable_conditions(1)->set_values(0, "LIFECYCLE_STATUS_GONE");  // a typo never fires
  EXPECT_EQ(FieldOf(ValidateRule(d, "rule")), "rule.event.conditions[1].values");
  d = LostRule();
  d.mutable_action()->set_due_field("profile.display_name");
  EXPECT_EQ(FieldOf(ValidateRule(d, "rule")), "rule.action.due_field");
  d = LostRule();
  d.mutable_action()->set_assignee(v1::ASSIGNEE_KIND_USER);
  EXPECT_EQ(FieldOf(ValidateRule(d, "rule")), "rule.action.assignee_id");
  d = LostRule();
  d.clear_event();
  EXPECT_EQ(FieldOf(ValidateRule(d, "rule")), "rule.trigger");
}

TEST(RuleTest, ConditionsReadEnumNamesRepeatedFieldsAndNestedMessages) {
  customers::v1::CustomerUpdated lost;
  lost.mutable_profile()->set_lifecycle_status(customers::v1::LIFECYCLE_STATUS_LOST);
  lost.add_changed_fields("lifecycle_status");
  auto payload = DecodePayload(Envelope(lost, "customer"));
  ASSERT_NE(payload, nullptr);
  EXPECT_TRUE(Matches(*payload, LostRule().event()));
  customers::v1::CustomerUpdated renamed = lost;
  renamed.clear_changed_fields();
  renamed.add_changed_fields("display_name");
  EXPECT_FALSE(Matches(*DecodePayload(Envelope(renamed, "customer")), LostRule().event()));

  opportunities::v1::OpportunityWon won;
  won.mutable_amount()->set_amount_minor(500000);
  v1::EventTrigger t;
  auto* c = t.add_conditions();
  c->set_field("amount.amount_minor");
  c->set_op(v1::CONDITION_OP_GT);
  c->add_values("100000");
  EXPECT_TRUE(Matches(won, t));
  c->set_op(v1::CONDITION_OP_LT);
  EXPECT_FALSE(Matches(won, t));
  c->set_op(v1::CONDITION_OP_NOT_EXISTS);
  c->clear_values();
  c->set_field("reason");
  EXPECT_TRUE(Matches(won, t));
}

TEST(RuleTest, RecordRefsFollowOwnersNamesAndThePublicPool) {
  customers::v1::CustomerCreated created;
  created.mutable_profile()->set_display_name("华为");
  created.mutable_profile()->set_owner_id("rep1");
  created.mutable_profile()->set_team_id("east");
  v1::RecordRef ref;
  auto env = Envelope(created, "customer");
  ASSERT_TRUE(UpdateRecordRef(env, *DecodePayload(env), &ref));
  EXPECT_EQ(ref.owner_id(), "rep1");
  EXPECT_EQ(ref.display_name(), "华为");
  // An update carries only its changed fields: the others keep their values.
  customers::v1::CustomerUpdated notes;
  notes.mutable_profile()->set_notes("x");
  notes.add_changed_fields("notes");
  env = Envelope(notes, "customer");
  UpdateRecordRef(env, *DecodePayload(env), &ref);
  EXPECT_EQ(ref.owner_id(), "rep1");
  customers::v1::CustomerReturnedToPool pooled;
  pooled.set_previous_owner_id("rep1");
  env = Envelope(pooled, "customer");
  UpdateRecordRef(env, *DecodePayload(env), &ref);
  EXPECT_TRUE(ref.owner_id().empty());
  EXPECT_EQ(ref.team_id(), "east");
  EXPECT_EQ(FillTemplate("联系：{record_name}", ref, "customers/a1", ""), "联系：华为");
}

TEST(RuleTest, DatesAreMidnightInTheZoneOrTimestamps) {
  opportunities::v1::ContractDrafted d;
  d.mutable_terms()->set_end_date("2026-12-31");
  auto v = ReadPath(d, "terms.end_date");
  ASSERT_TRUE(v.ok());
  absl::Time at;
  std::string text;
  ASSERT_TRUE(DateOf(*v, absl::FixedTimeZone(8 * 3600), &at, &text));
  EXPECT_EQ(at, absl::FromUnixSeconds(1798646400));  // 2026-12-31 00:00 UTC+8
  customers::v1::FollowUpRecorded f;
  *f.mutable_next_follow_up_time() = ToProto(kT0);
  v = ReadPath(f, "next_follow_up_time");
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(DateOf(*v, absl::UTCTimeZone(), &at, &text));
  EXPECT_EQ(at, kT0);
  EXPECT_FALSE(ReadPath(f, "no_such").ok());
}

TEST(RuleTest, TheRevisionInForceWhenACauseWasRecordedApplies) {
  RuleState s;
  auto created = Decide(nullptr, kAdmin, CreateRule{LostRule(), ""});
  ASSERT_TRUE(created.ok());
  Apply(s, (*created)[0], 1, kT0, "admin1");
  RuleDefinition off = LostRule();
  off.set_enabled(false);
  auto updated = Decide(&s, kAdmin, UpdateRule{off});
  ASSERT_TRUE(updated.ok());
  Apply(s, (*updated)[0], 2, kT0 + absl::Hours(1), "admin1");
  int64_t version = 0;
  EXPECT_EQ(InForce(s, kT0 - absl::Seconds(1), &version), nullptr);  // before the rule existed
  ASSERT_NE(InForce(s, kT0 + absl::Minutes(30), &version), nullptr);
  EXPECT_EQ(version, 1);
  EXPECT_EQ(InForce(s, kT0 + absl::Hours(2), &version), nullptr);  // disabled since
}

}  // namespace
}  // namespace crm::tasks
