#include "services/tickets/ticket_type.h"

#include "gtest/gtest.h"
#include "libs/common/caller_testing.h"
#include "libs/common/status_testing.h"
#include "services/tickets/domain_testing.h"

namespace crm::tickets {
namespace {

using crm::testing::FieldOf;

using testing::RepairDefinition;

using crm::testing::kAdmin;
using crm::testing::kManager;
const absl::Time kT0 = absl::FromUnixSeconds(1767225600);

template <typename Cmd>
absl::Status Fold(TicketTypeState& s, const Caller& c, const Cmd& cmd, absl::Time at) {
  auto events = Decide(s.version() == 0 ? nullptr : &s, c, cmd);
  if (!events.ok()) return events.status();
  for (const auto& e : *events) Apply(s, e, s.version() + 1, at, c.user_id);
  return absl::OkStatus();
}

// Who may define types is the permission matrix's (the rpcs' access options; access_test).
TEST(TicketTypeTest, AdminsDefineTypes) {
  TicketTypeState s;
  ASSERT_TRUE(Fold(s, kAdmin, CreateTicketType{RepairDefinition()}, kT0).ok());
  ASSERT_NE(CurrentVersion(s), nullptr);
  EXPECT_EQ(CurrentVersion(s)->number(), 1);
}

TEST(TicketTypeTest, ADefinitionErrorNamesItsPart) {
  auto d = RepairDefinition();
  d.mutable_workflow()->set_initial_state("gone");
  EXPECT_EQ(FieldOf(Decide(nullptr, kAdmin, CreateTicketType{d}).status()),
            "ticket_type.definition.workflow.initial_state");
  d = RepairDefinition();
  d.mutable_form()->mutable_fields(0)->set_pattern("(");
  EXPECT_EQ(FieldOf(Decide(nullptr, kAdmin, CreateTicketType{d}).status()),
            "ticket_type.definition.form.fields[0].pattern");
  d = RepairDefinition();
  d.clear_display_name();
  EXPECT_EQ(FieldOf(Decide(nullptr, kAdmin, CreateTicketType{d}).status()), "ticket_type.definition.display_name");
}

TEST(TicketTypeTest, PublishingKeepsEveryVersion) {
  TicketTypeState s;
  ASSERT_TRUE(Fold(s, kAdmin, CreateTicketType{RepairDefinition()}, kT0).ok());
  EXPECT_TRUE(Decide(&s, kAdmin, PublishTicketType{RepairDefinition()}).value().empty());  // unchanged
  auto d = RepairDefinition();
  d.mutable_form()->mutable_fields(1)->set_max_length(3000);
  ASSERT_TRUE(Fold(s, kAdmin, PublishTicketType{d}, kT0 + absl::Hours(1)).ok());
  ASSERT_EQ(s.versions_size(), 2);
  EXPECT_EQ(CurrentVersion(s)->number(), 2);
  EXPECT_EQ(FindVersion(s, 1)->definition().form().fields(1).max_length(), 2000);  // v1 as it was
  ASSERT_TRUE(Fold(s, kAdmin, ArchiveTicketType{"合并到新流程"}, kT0 + absl::Hours(2)).ok());
  EXPECT_EQ(Decide(&s, kAdmin, PublishTicketType{RepairDefinition()}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace crm::tickets
