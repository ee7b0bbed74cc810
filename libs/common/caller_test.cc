#include "libs/common/caller.h"

#include "gtest/gtest.h"
#include "libs/common/caller_testing.h"

namespace crm {
namespace {

using crm::testing::kAdmin;
using crm::testing::kManager;
using crm::testing::kRep;
const Caller kService{"crm-integration", "service", ""};
const Caller kTeamlessManager{"m2", "manager", ""};
const Caller kTeamlessRep{"u3", "rep", ""};
const Caller kUnknownRole{"x1", "superuser", "east"};

TEST(CallerTest, ReachByRoleAndTeam) {
  EXPECT_EQ(ReachOf(kRep), Reach::kOwn);
  EXPECT_EQ(ReachOf(kTeamlessRep), Reach::kOwn);
  EXPECT_EQ(ReachOf(kManager), Reach::kTeam);
  EXPECT_EQ(ReachOf(kTeamlessManager), Reach::kNone);
  EXPECT_EQ(ReachOf(kAdmin), Reach::kAll);
  EXPECT_EQ(ReachOf(kService), Reach::kAll);
  EXPECT_EQ(ReachOf(kUnknownRole), Reach::kNone);
}

TEST(CallerTest, EachRoleSeesWhatItShould) {
  EXPECT_TRUE(SeesRecord(kRep, "u1", "west"));
  EXPECT_FALSE(SeesRecord(kRep, "u2", "east"));
  EXPECT_TRUE(SeesRecord(kRep, "", "east", /*in_pool=*/true));
  EXPECT_TRUE(SeesRecord(kRep, "", "", /*in_pool=*/true));  // a pool without a team is everyone's
  EXPECT_FALSE(SeesRecord(kRep, "", "west", /*in_pool=*/true));
  EXPECT_TRUE(SeesRecord(kManager, "u2", "east"));
  EXPECT_FALSE(SeesRecord(kManager, "u9", "west"));
  EXPECT_TRUE(SeesRecord(kManager, "m1", "west"));  // their own
  EXPECT_TRUE(SeesRecord(kAdmin, "u9", "west"));
  EXPECT_TRUE(SeesRecord(kService, "u9", "west"));
}

// A token without a team matched every record without a team, and a manager's report scope
// without a team filtered nothing.
TEST(CallerTest, AManagerWithoutATeamSeesNothing) {
  for (const RecordRef& r : {RecordRef{.owner = "u1", .team = ""}, RecordRef{.owner = "", .team = "", .in_pool = true},
                             RecordRef{.owner = "m2", .team = ""}, RecordRef{.owner = "u1", .team = "east"},
                             RecordRef{.owner = "", .team = "", .creator = "m2", .queue_role = "manager"}}) {
    EXPECT_FALSE(SeesRecord(kTeamlessManager, r)) << r.owner << "/" << r.team;
    EXPECT_FALSE(EditsRecord(kTeamlessManager, r)) << r.owner << "/" << r.team;
  }
  EXPECT_FALSE(MayAssign(kTeamlessManager, "u1", ""));
  EXPECT_FALSE(MayAssign(kTeamlessManager, "", ""));
  EXPECT_FALSE(ManagesTeam(kTeamlessManager, ""));
  EXPECT_EQ(FilterRows(kTeamlessManager, Reach::kNone, "", "").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(FilterRows(kTeamlessManager, Reach::kTeam, "", "").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(FilterRows(kTeamlessManager, Reach::kOwn, "", "").status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(CallerTest, ARepWithoutATeamKeepsOwnRecordsAndNoTeamQueueOrPool) {
  EXPECT_TRUE(SeesRecord(kTeamlessRep, "u3", ""));
  EXPECT_TRUE(EditsRecord(kTeamlessRep, "u3", ""));
  EXPECT_FALSE(SeesRecord(kTeamlessRep, "u1", ""));
  EXPECT_FALSE(SeesRecord(kTeamlessRep, "", "east", /*in_pool=*/true));
  // A queue task without a team is no team's queue.
  EXPECT_FALSE(SeesRecord(kTeamlessRep, RecordRef{.owner = "", .team = "", .queue_role = "rep"}));
  EXPECT_FALSE(InQueue(kTeamlessRep, "rep", ""));
  EXPECT_TRUE(InQueue(kRep, "rep", "east"));
  EXPECT_FALSE(ManagesTeam(kTeamlessRep, ""));
  auto f = FilterRows(kTeamlessRep, Reach::kNone, "", "");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->reach, Reach::kOwn);
  EXPECT_EQ(f->owner_id, "u3");
  EXPECT_EQ(FilterRows(kTeamlessRep, Reach::kTeam, "", "").status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(CallerTest, AnUnknownRoleSeesNothing) {
  EXPECT_FALSE(SeesRecord(kUnknownRole, "x1", "east"));
  EXPECT_FALSE(EditsRecord(kUnknownRole, "x1", "east"));
  EXPECT_FALSE(MayAssign(kUnknownRole, "x1", "east"));
  EXPECT_FALSE(InQueue(kUnknownRole, "superuser", "east"));
  EXPECT_EQ(FilterRows(kUnknownRole, Reach::kOwn, "", "").status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(CallerTest, PoolRecordsAreClaimedBeforeTheyAreChanged) {
  EXPECT_FALSE(EditsRecord(kRep, "", "east", /*in_pool=*/true));
  EXPECT_TRUE(EditsRecord(kManager, "", "east", /*in_pool=*/true));
  EXPECT_FALSE(EditsRecord(kManager, "", "west", /*in_pool=*/true));
}

TEST(CallerTest, CreatorsAndQueuesCountForTasksAndTickets) {
  const RecordRef created{.owner = "u2", .team = "east", .creator = "u1"};
  EXPECT_TRUE(SeesRecord(kRep, created));
  EXPECT_TRUE(EditsRecord(kRep, created));
  const RecordRef queued{.owner = "", .team = "east", .queue_role = "rep"};
  EXPECT_TRUE(SeesRecord(kRep, queued));
  EXPECT_FALSE(EditsRecord(kRep, queued));  // taking it off the queue is the service's call
  EXPECT_FALSE(SeesRecord(Caller{"u5", "rep", "west"}, queued));
}

TEST(CallerTest, AssigningStaysWithinReach) {
  EXPECT_TRUE(MayAssign(kRep, "u1", "east"));
  EXPECT_FALSE(MayAssign(kRep, "u2", "east"));
  EXPECT_FALSE(MayAssign(kRep, "u1", "west"));
  EXPECT_TRUE(MayAssign(kTeamlessRep, "u3", ""));
  EXPECT_TRUE(MayAssign(kManager, "u2", "east"));
  EXPECT_TRUE(MayAssign(kManager, "", "east"));
  EXPECT_FALSE(MayAssign(kManager, "u2", "west"));
  EXPECT_TRUE(MayAssign(kAdmin, "u9", "west"));
  EXPECT_TRUE(ManagesTeam(kManager, "east"));
  EXPECT_FALSE(ManagesTeam(kManager, "west"));
  EXPECT_TRUE(ManagesTeam(kService, "west"));
}

TEST(CallerTest, RowFiltersNarrowToTheCallersReach) {
  auto rep = FilterRows(kRep, Reach::kNone, "", "");
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(rep->reach, Reach::kOwn);
  EXPECT_EQ(rep->owner_id, "u1");
  EXPECT_EQ(FilterRows(kRep, Reach::kOwn, "u2", "").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(FilterRows(kRep, Reach::kAll, "", "").status().code(), absl::StatusCode::kPermissionDenied);

  auto manager = FilterRows(kManager, Reach::kNone, "u2", "");
  ASSERT_TRUE(manager.ok());
  EXPECT_EQ(manager->reach, Reach::kTeam);
  EXPECT_EQ(manager->team_id, "east");
  EXPECT_EQ(manager->owner_id, "u2");
  EXPECT_EQ(FilterRows(kManager, Reach::kTeam, "", "west").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(FilterRows(kManager, Reach::kAll, "", "").status().code(), absl::StatusCode::kPermissionDenied);
  auto own = FilterRows(kManager, Reach::kOwn, "", "");
  ASSERT_TRUE(own.ok());
  EXPECT_EQ(own->owner_id, "m1");

  auto admin = FilterRows(kAdmin, Reach::kNone, "", "");
  ASSERT_TRUE(admin.ok());
  EXPECT_EQ(admin->reach, Reach::kAll);
  EXPECT_TRUE(admin->owner_id.empty() && admin->team_id.empty());
  auto team = FilterRows(kAdmin, Reach::kTeam, "", "west");
  ASSERT_TRUE(team.ok());
  EXPECT_EQ(team->team_id, "west");
  auto someone = FilterRows(kService, Reach::kOwn, "u9", "");
  ASSERT_TRUE(someone.ok());
  EXPECT_EQ(someone->owner_id, "u9");
}

}  // namespace
}  // namespace crm
