#include "services/tickets/ticket.h"

#include "gtest/gtest.h"
#include "libs/common/caller_testing.h"
#include "libs/common/status_testing.h"
#include "services/tickets/domain_testing.h"

namespace crm::tickets {
namespace {

using crm::testing::FieldsOf;

using crm::testing::kManager;
using crm::testing::kRep;
using crm::testing::kRep2;
const absl::Time kT0 = absl::FromUnixSeconds(1767225600);

template <typename Cmd>
absl::Status Fold(TicketState& s, const Caller& c, const Cmd& cmd, absl::Time at) {
  auto events = Decide(s.version() == 0 ? nullptr : &s, c, cmd);
  if (!events.ok()) return events.status();
  for (const auto& e : *events) Apply(s, e, s.version() + 1, at, c.user_id);
  return absl::OkStatus();
}

v1::TicketTypeVersion Version() {
  v1::TicketTypeVersion v;
  v.set_number(1);
  *v.mutable_definition() = testing::RepairDefinition();
  return v;
}

FormValues Values() {
  FormValues v;
  v["serial"].set_text("AB123456");
  v["description"].set_text("屏幕无法点亮，重启无效");
  v["kind"].set_choice("hardware");
  return v;
}

TicketState Created() {
  TicketState s;
  EXPECT_TRUE(Fold(s, kRep, CreateTicket{"t1", Version(), "屏幕故障", "", Values()}, kT0).ok());
  return s;
}

TEST(TicketTest, CreatedWithValidValuesInTheInitialState) {
  TicketState s = Created();
  EXPECT_EQ(s.state(), "new");
  EXPECT_EQ(s.type_version(), 1);
  EXPECT_EQ(s.team_id(), "east");
  EXPECT_EQ(s.priority(), v1::TICKET_PRIORITY_NORMAL);
  EXPECT_EQ(s.values().at("kind").choice(), "hardware");
}

TEST(TicketTest, CreateNamesEveryBadValue) {
  FormValues v = Values();
  v["serial"].set_text("bad");
  v.erase("kind");
  auto d = Decide(nullptr, kRep, CreateTicket{"t1", Version(), "屏幕故障", "", v});
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldsOf(d.status()), (std::vector<std::string>{"ticket.values.serial", "ticket.values.kind"}));
}

TEST(TicketTest, MovesOnlyAlongTheWorkflowWithItsGuards) {
  TicketState s = Created();
  EXPECT_EQ(FieldsOf(Decide(&s, kRep, TakeTransition{Version(), "resolve"}).status()),
            std::vector<std::string>{"transition"});
  ASSERT_TRUE(Fold(s, kRep, TakeTransition{Version(), "start"}, kT0 + absl::Hours(1)).ok());
  EXPECT_EQ(s.state(), "in_progress");
  // Resolving needs the resolution (处理结果) filled in first.
  auto d = Decide(&s, kRep, TakeTransition{Version(), "resolve"});
  EXPECT_EQ(d.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(FieldsOf(d.status()), std::vector<std::string>{"values.resolution"});
  FormValues r;
  r["resolution"].set_text("更换屏幕");
  ASSERT_TRUE(Fold(s, kRep, UpdateValues{Version(), r}, kT0 + absl::Hours(2)).ok());
  ASSERT_TRUE(Fold(s, kRep, TakeTransition{Version(), "resolve"}, kT0 + absl::Hours(3)).ok());
  // Only managers close.
  EXPECT_EQ(Decide(&s, kRep, TakeTransition{Version(), "close"}).status().code(), absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(Fold(s, kManager, TakeTransition{Version(), "close", "客户确认"}, kT0 + absl::Hours(4)).ok());
  EXPECT_TRUE(s.closed());
  EXPECT_EQ(Decide(&s, kManager, UpdateValues{Version(), r}).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(TicketTest, UpdatesRecordOnlyChangesAndKeepRequiredFields) {
  TicketState s = Created();
  FormValues same;
  same["kind"].set_choice("hardware");
  EXPECT_TRUE(Decide(&s, kRep, UpdateValues{Version(), same}).value().empty());
  FormValues clear;
  clear["serial"] = v1::FieldValue();  // clearing a required field
  EXPECT_EQ(FieldsOf(Decide(&s, kRep, UpdateValues{Version(), clear}).status()),
            std::vector<std::string>{"values.serial"});
  FormValues more;
  more["parts"].mutable_choices()->add_keys("screen");
  auto d = Decide(&s, kRep, UpdateValues{Version(), more});
  ASSERT_TRUE(d.ok());
  const auto& changed = std::get<v1::TicketValuesChanged>((*d)[0]);
  ASSERT_EQ(changed.changed_fields_size(), 1);
  EXPECT_EQ(changed.changed_fields(0), "parts");
}

TEST(TicketTest, AssignmentAndVisibility) {
  TicketState s = Created();
  EXPECT_FALSE(CanSee(kRep2, s));
  EXPECT_TRUE(CanSee(kManager, s));
  EXPECT_EQ(Decide(&s, kRep, AssignTicket{"u2"}).status().code(), absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(Fold(s, kManager, AssignTicket{"u2"}, kT0 + absl::Hours(1)).ok());
  EXPECT_TRUE(CanSee(kRep2, s));
  EXPECT_EQ(Decide(&s, kManager, AssignTicket{"u9", "west"}).status().code(), absl::StatusCode::kPermissionDenied);
}

// A manager's token without a team handed out and saw the tickets of no team.
TEST(TicketTest, AManagerWithoutATeamSeesAndAssignsNoTicket) {
  const Caller teamless{"m7", "manager", ""};
  const Caller admin{"a1", "admin", ""};
  CreateTicket create{"t1", Version(), "屏幕故障", "", Values()};
  EXPECT_EQ(Decide(nullptr, teamless, create).status().code(), absl::StatusCode::kPermissionDenied);
  create.assignee_id = "m7";
  TicketState s;
  ASSERT_TRUE(Fold(s, admin, create, kT0).ok());
  EXPECT_EQ(s.team_id(), "");
  EXPECT_FALSE(CanSee(teamless, s));
  EXPECT_EQ(Decide(&s, teamless, AssignTicket{"u2"}).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(CanSee(Caller{"u7", "rep", ""}, s));  // nor a rep without a team
}

TEST(TicketTest, CommentsArePublicOrInternalAndOncePerId) {
  TicketState s = Created();
  ASSERT_TRUE(Fold(s, kRep, CommentTicket{"c1", "已联系客户", false}, kT0 + absl::Hours(1)).ok());
  ASSERT_TRUE(Fold(s, kManager, CommentTicket{"c2", "备件库存不足", true}, kT0 + absl::Hours(2)).ok());
  EXPECT_TRUE(Decide(&s, kRep, CommentTicket{"c1", "已联系客户", false}).value().empty());
  ASSERT_EQ(s.comments_size(), 2);
  EXPECT_TRUE(s.comments(1).internal());
  EXPECT_EQ(s.comments(1).author_id(), "m1");
  EXPECT_EQ(FieldsOf(Decide(&s, kRep, CommentTicket{"c3", "", false}).status()), std::vector<std::string>{"body"});
}

}  // namespace
}  // namespace crm::tickets
