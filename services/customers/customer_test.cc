// Given events, when a command, then events or an error.
#include "services/customers/customer.h"

#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "libs/common/caller_testing.h"
#include "libs/common/grpc_status.h"

namespace crm::customers {
namespace {

using crm::testing::kAdmin;
using crm::testing::kManager;
using crm::testing::kRep;
using crm::testing::kRep2;
const Caller kWestManager{"m2", "manager", "west"};

CustomerProfile Profile() {
  CustomerProfile p;
  p.set_display_name("上海星辰科技有限公司");
  p.set_phone("+86 138 1234 5678");
  p.set_email("Li.Lei@Example.COM");
  return p;
}

// Given: the events of a customer created by kRep.
CustomerState Given(std::vector<CustomerEvent> history) {
  CustomerState s;
  s.set_id("c1");
  int64_t v = 0;
  for (const auto& e : history) Apply(s, e, ++v, absl::FromUnixSeconds(1767225600), "u1");
  return s;
}

CustomerState Created() {
  auto ev = Decide(nullptr, kRep, CreateCustomer{Profile(), "C202601010001"});
  EXPECT_TRUE(ev.ok()) << ev.status();
  return Given(*ev);
}

std::string FieldOf(const absl::Status& s) {
  auto bad = GetBadRequest(s);
  return bad && bad->field_violations_size() ? bad->field_violations(0).field() : "";
}

TEST(NormalizeTest, PhonesFoldToElevenDigits) {
  EXPECT_EQ(*NormalizePhone("13812345678"), "13812345678");
  EXPECT_EQ(*NormalizePhone("+86 138-1234-5678"), "13812345678");
  EXPECT_EQ(*NormalizePhone("0086 13812345678"), "13812345678");
  EXPECT_EQ(*NormalizePhone("8613812345678"), "13812345678");
  EXPECT_EQ(*NormalizePhone("１３８１２３４５６７８"), "13812345678");  // full-width digits
  EXPECT_FALSE(NormalizePhone("23812345678").ok());  // must start with 1
  EXPECT_FALSE(NormalizePhone("1381234567").ok());   // 10 digits
  EXPECT_FALSE(NormalizePhone("138123456789").ok()); // 12 digits
  EXPECT_FALSE(NormalizePhone("138abc45678").ok());
}

TEST(NormalizeTest, EmailsFoldCaseAndWidth) {
  EXPECT_EQ(*NormalizeEmail(" Li.Lei@Example.COM "), "li.lei@example.com");
  EXPECT_EQ(*NormalizeEmail("ａ@ｂ.cn"), "a@b.cn");
  EXPECT_FALSE(NormalizeEmail("no-at.example.com").ok());
  EXPECT_FALSE(NormalizeEmail("a@b").ok());
  EXPECT_FALSE(NormalizeEmail("a@@b.cn").ok());
}

TEST(CustomerTest, CreateDefaultsOwnerTeamKindAndStatusAndNormalises) {
  auto ev = Decide(nullptr, kRep, CreateCustomer{Profile(), "C202601010001"});
  ASSERT_TRUE(ev.ok()) << ev.status();
  ASSERT_EQ(ev->size(), 1u);
  const auto& c = std::get<v1::CustomerCreated>(ev->front());
  EXPECT_EQ(c.profile().owner_id(), "u1");
  EXPECT_EQ(c.profile().team_id(), "east");
  EXPECT_EQ(c.profile().kind(), v1::CUSTOMER_KIND_COMPANY);
  EXPECT_EQ(c.profile().lifecycle_status(), v1::LIFECYCLE_STATUS_POTENTIAL);
  EXPECT_EQ(c.normalized_phone(), "13812345678");
  EXPECT_EQ(c.normalized_email(), "li.lei@example.com");
  EXPECT_EQ(c.customer_number(), "C202601010001");
}

TEST(CustomerTest, CreateRejectsEachBadFieldByName) {
  struct Case { std::function<void(CustomerProfile&)> mutate; std::string field; };
  std::vector<Case> cases = {
      {[](auto& p) { p.set_display_name(""); }, "customer.display_name"},
      {[](auto& p) { p.set_display_name(std::string(201, 'x')); }, "customer.display_name"},
      {[](auto& p) { p.set_display_name("\xff\xfe"); }, "customer.display_name"},
      {[](auto& p) { p.set_phone("12345"); }, "customer.phone"},
      {[](auto& p) { p.set_email("nobody"); }, "customer.email"},
      {[](auto& p) { p.set_kind(static_cast<v1::CustomerKind>(99)); }, "customer.kind"},
      {[](auto& p) { p.set_lifecycle_status(static_cast<v1::LifecycleStatus>(99)); }, "customer.lifecycle_status"},
      {[](auto& p) { p.add_tags(""); }, "customer.tags"},
      {[](auto& p) { p.add_tags("vip"); p.add_tags("vip"); }, "customer.tags"},
      {[](auto& p) { p.set_notes(std::string(5001, 'n')); }, "customer.notes"},
      {[](auto& p) { p.set_address(std::string(501, 'a')); }, "customer.address"},
      {[](auto& p) { p.set_source(std::string(65, 's')); }, "customer.source"},
      {[](auto& p) { p.set_industry(std::string(65, 'i')); }, "customer.industry"},
      {[](auto& p) { p.set_owner_id(std::string(129, 'o')); }, "customer.owner_id"},
      {[](auto& p) { p.set_team_id(std::string(129, 't')); }, "customer.team_id"},
      // Control and bidirectional-override characters in names: every name-like field.
      {[](auto& p) { p.set_display_name("星辰\xE2\x80\xAE科技"); }, "customer.display_name"},
      {[](auto& p) { p.set_display_name("星辰\n科技"); }, "customer.display_name"},
      {[](auto& p) { p.set_display_name(std::string("a\0b", 3)); }, "customer.display_name"},
      {[](auto& p) { p.add_tags("vip\xE2\x81\xA6"); }, "customer.tags"},
      {[](auto& p) { p.set_region("华东\x1b[2J"); }, "customer.region"},
      {[](auto& p) { p.set_address("杭州\xC2\x85"); }, "customer.address"},
      {[](auto& p) { p.set_owner_id("u\x7f"); }, "customer.owner_id"},
      {[](auto& p) { p.set_email("a\xE2\x80\xAE@b.cn"); }, "customer.email"},
      {[](auto& p) { p.set_notes("ok\n\tbut \xE2\x80\xAE not"); }, "customer.notes"},
  };
  for (const auto& c : cases) {
    CustomerProfile p = Profile();
    c.mutate(p);
    auto ev = Decide(nullptr, kAdmin, CreateCustomer{p, "C1"});
    EXPECT_EQ(ev.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_EQ(FieldOf(ev.status()), c.field);
  }
}

TEST(CustomerTest, RepCannotCreateForSomeoneElse) {
  CustomerProfile p = Profile();
  p.set_owner_id("u2");
  EXPECT_EQ(Decide(nullptr, kRep, CreateCustomer{p, "C1"}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Decide(nullptr, kManager, CreateCustomer{p, "C1"}).ok());  // same team
  p.set_team_id("east");
  EXPECT_EQ(Decide(nullptr, kWestManager, CreateCustomer{p, "C1"}).status().code(),
            absl::StatusCode::kPermissionDenied);
}

// A manager's token without a team gave customers of no team to anyone, and saw none: the
// same token now does neither.
TEST(CustomerTest, AManagerWithoutATeamCreatesAndSeesNoCustomer) {
  const Caller teamless{"m7", "manager", ""};
  CustomerProfile p = Profile();
  p.set_owner_id("u2");
  EXPECT_EQ(Decide(nullptr, teamless, CreateCustomer{p, "C1"}).status().code(), absl::StatusCode::kPermissionDenied);
  p.set_owner_id("m7");
  EXPECT_EQ(Decide(nullptr, teamless, CreateCustomer{p, "C1"}).status().code(), absl::StatusCode::kPermissionDenied);
  CustomerState s = Created();
  EXPECT_FALSE(CanSee(teamless, s));
}

TEST(CustomerTest, UpdateRecordsOnlyChangedFields) {
  CustomerState s = Created();
  CustomerProfile p;
  p.set_display_name("星辰科技");
  p.set_phone("13812345678");  // same number, other spelling: no change
  auto ev = Decide(&s, kRep, UpdateCustomer{p, {"display_name", "phone"}});
  ASSERT_TRUE(ev.ok()) << ev.status();
  const auto& u = std::get<v1::CustomerUpdated>(ev->front());
  EXPECT_EQ(std::vector<std::string>(u.changed_fields().begin(), u.changed_fields().end()),
            (std::vector<std::string>{"display_name", "phone"}));
  EXPECT_EQ(u.profile().email(), "Li.Lei@Example.COM");  // untouched fields kept
}

TEST(CustomerTest, UpdateWithNoChangeRecordsNothing) {
  CustomerState s = Created();
  auto ev = Decide(&s, kRep, UpdateCustomer{Profile(), {"display_name"}});
  ASSERT_TRUE(ev.ok());
  EXPECT_TRUE(ev->empty());
}

TEST(CustomerTest, UnknownMaskPathNamesUpdateMask) {
  CustomerState s = Created();
  auto st = Decide(&s, kRep, UpdateCustomer{Profile(), {"customer_number"}}).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(st), "update_mask");
}

TEST(CustomerTest, RepsSeeOnlyTheirOwnManagersTheirTeam) {
  CustomerState s = Created();
  CustomerProfile p;
  p.set_notes("n");
  EXPECT_EQ(Decide(&s, kRep2, UpdateCustomer{p, {"notes"}}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Decide(&s, kManager, UpdateCustomer{p, {"notes"}}).ok());
  EXPECT_EQ(Decide(&s, kWestManager, UpdateCustomer{p, {"notes"}}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Decide(&s, kAdmin, UpdateCustomer{p, {"notes"}}).ok());
}

TEST(CustomerTest, RepCannotHandCustomerToAnotherRep) {
  CustomerState s = Created();
  CustomerProfile p;
  p.set_owner_id("u2");
  EXPECT_EQ(Decide(&s, kRep, UpdateCustomer{p, {"owner_id"}}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Decide(&s, kManager, UpdateCustomer{p, {"owner_id"}}).ok());
}

TEST(CustomerTest, DeleteThenUndeleteThroughTheRecycleBin) {
  CustomerState s = Created();
  auto del = Decide(&s, kRep, DeleteCustomer{"duplicate entry"});
  ASSERT_TRUE(del.ok());
  Apply(s, del->front(), 2, absl::FromUnixSeconds(1767225700), "u1");
  EXPECT_TRUE(s.deleted());
  EXPECT_EQ(Decide(&s, kRep, DeleteCustomer{""}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  CustomerProfile p;
  p.set_notes("x");
  EXPECT_EQ(Decide(&s, kRep, UpdateCustomer{p, {"notes"}}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto undel = Decide(&s, kRep, UndeleteCustomer{});
  ASSERT_TRUE(undel.ok());
  Apply(s, undel->front(), 3, absl::FromUnixSeconds(1767225800), "u1");
  EXPECT_FALSE(s.deleted());
  EXPECT_EQ(s.version(), 3);
  EXPECT_EQ(Decide(&s, kRep, UndeleteCustomer{}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(CustomerTest, MissingCustomerIsNotFound) {
  EXPECT_EQ(Decide(nullptr, kRep, DeleteCustomer{""}).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace crm::customers

namespace crm::customers {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1767225600);

// Folds `events` into `s` at time `at`, continuing its versions.
void Fold(CustomerState& s, const std::vector<CustomerEvent>& events, absl::Time at,
          const std::string& actor = "u1") {
  for (const auto& e : events) Apply(s, e, s.version() + 1, at, actor);
}

CustomerState Decided(CustomerState s, const Caller& c, const auto& cmd, absl::Time at = kT0) {
  auto ev = Decide(&s, c, cmd);
  EXPECT_TRUE(ev.ok()) << ev.status();
  if (ev.ok()) Fold(s, *ev, at, c.user_id);
  return s;
}

std::string ReasonOf(const absl::Status& s) {
  auto info = GetErrorInfo(s);
  return info ? info->reason() : "";
}

TEST(PoolTest, ReleasedCustomerHasNoOwnerAndAnotherRepOfTheTeamClaimsIt) {
  CustomerState s = Decided(Created(), kRep, ReleaseToPool{"budget frozen"});
  EXPECT_TRUE(s.in_pool());
  EXPECT_EQ(s.profile().owner_id(), "");
  EXPECT_EQ(s.previous_owner_id(), "u1");
  EXPECT_TRUE(CanSee(kRep2, s)) << "the team's pool is visible to its reps";
  EXPECT_FALSE(CanSee(Caller{"w1", "rep", "west"}, s)) << "not to other teams' reps";

  auto claimed = Decide(&s, kRep2, ClaimFromPool{"20260101", 0, 5});
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  Fold(s, *claimed, kT0 + absl::Hours(1), "u2");
  EXPECT_FALSE(s.in_pool());
  EXPECT_EQ(s.profile().owner_id(), "u2");
  EXPECT_EQ(s.owner_since().seconds(), absl::ToUnixSeconds(kT0 + absl::Hours(1)));

  auto again = Decide(&s, kRep, ClaimFromPool{"20260101", 0, 5});
  EXPECT_EQ(ReasonOf(again.status()), "NOT_IN_POOL") << "claimed by u2 first";
  CustomerState west_pool = Decided(Created(), kRep, ReleaseToPool{""});
  EXPECT_EQ(Decide(&west_pool, Caller{"w1", "rep", "west"}, ClaimFromPool{"20260101", 0, 5}).status().code(),
            absl::StatusCode::kPermissionDenied)
      << "another team's pool";
}

TEST(PoolTest, DailyClaimLimitStopsRepsButNotManagers) {
  CustomerState s = Decided(Created(), kRep, ReleaseToPool{""});
  auto over = Decide(&s, kRep2, ClaimFromPool{"20260101", 5, 5});
  EXPECT_EQ(over.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReasonOf(over.status()), "CLAIM_LIMIT_REACHED");
  EXPECT_TRUE(Decide(&s, kRep2, ClaimFromPool{"20260101", 4, 5}).ok());
  EXPECT_TRUE(Decide(&s, kRep2, ClaimFromPool{"20260101", 99, 0}).ok()) << "0 means no limit";
  EXPECT_TRUE(Decide(&s, kManager, ClaimFromPool{"20260101", 99, 5}).ok());
}

TEST(PoolTest, RepsMustClaimBeforeEditingAndManagersAssignOutOfThePool) {
  CustomerState s = Decided(Created(), kRep, ReleaseToPool{""});
  UpdateCustomer rename{Profile(), {"display_name"}};
  rename.profile.set_display_name("新名字");
  EXPECT_EQ(ReasonOf(Decide(&s, kRep, rename).status()), "IN_POOL");
  EXPECT_EQ(ReasonOf(Decide(&s, kRep, RecordFollowUp{{}, kT0, kT0}).status()), "IN_POOL");
  EXPECT_EQ(ReasonOf(Decide(&s, kRep, ReleaseToPool{""}).status()), "IN_POOL");

  UpdateCustomer assign;
  assign.profile.set_owner_id("u2");
  assign.paths = {"owner_id"};
  s = Decided(s, kManager, assign, kT0 + absl::Hours(2));
  EXPECT_FALSE(s.in_pool());
  EXPECT_EQ(s.profile().owner_id(), "u2");
  EXPECT_EQ(s.owner_since().seconds(), absl::ToUnixSeconds(kT0 + absl::Hours(2)));
}

TEST(PoolTest, IdleCustomersReturnAfterTheirDaysCountedFromTheLastFollowUp) {
  CustomerState s = Created();  // owner since kT0
  const absl::Duration day = absl::Hours(24);
  EXPECT_TRUE(Decide(&s, kAdmin, ReturnIdleToPool{kT0 + 30 * day - absl::Seconds(1), 30})->empty());
  auto due = Decide(&s, kAdmin, ReturnIdleToPool{kT0 + 30 * day, 30});
  ASSERT_EQ(due->size(), 1u);
  const auto& e = std::get<v1::CustomerReturnedToPool>((*due)[0]);
  EXPECT_EQ(e.cause(), v1::POOL_RETURN_CAUSE_NO_FOLLOW_UP);
  EXPECT_EQ(e.last_activity_time().seconds(), absl::ToUnixSeconds(kT0));
  EXPECT_TRUE(Decide(&s, kAdmin, ReturnIdleToPool{kT0 + 999 * day, 0})->empty()) << "0 days: never";

  // A follow-up on day 10 moves the due day to 40.
  v1::FollowUpRecorded f;
  f.set_channel(v1::FOLLOW_UP_CHANNEL_PHONE);
  f.set_summary("聊了报价");
  s = Decided(s, kRep, RecordFollowUp{f, kT0 + 10 * day, kT0 + 10 * day}, kT0 + 10 * day);
  EXPECT_TRUE(Decide(&s, kAdmin, ReturnIdleToPool{kT0 + 39 * day, 30})->empty());
  EXPECT_EQ(Decide(&s, kAdmin, ReturnIdleToPool{kT0 + 40 * day, 30})->size(), 1u);
}

TEST(RecycleBinTest, PurgeComesThirtyDaysAfterDeletionAndLeavesATombstone) {
  CustomerState s = Decided(Created(), kRep, DeleteCustomer{"dup"}, kT0 + absl::Hours(1));
  EXPECT_TRUE(Decide(&s, kAdmin, PurgeDeleted{kT0 + absl::Hours(1) + kRecycleBinRetention - absl::Seconds(1)})->empty());
  auto purge = Decide(&s, kAdmin, PurgeDeleted{kT0 + absl::Hours(1) + kRecycleBinRetention});
  ASSERT_EQ(purge->size(), 1u);
  Fold(s, *purge, kT0 + kRecycleBinRetention);
  EXPECT_TRUE(s.purged());
  EXPECT_EQ(s.profile().display_name(), "");
  EXPECT_EQ(s.normalized_phone(), "");
  EXPECT_FALSE(CanSee(kAdmin, s));
  EXPECT_EQ(Decide(&s, kAdmin, UndeleteCustomer{}).status().code(), absl::StatusCode::kNotFound);
  CustomerState live = Created();
  EXPECT_TRUE(Decide(&live, kAdmin, PurgeDeleted{kT0 + 9999 * absl::Hours(24)})->empty()) << "only the bin";
}

TEST(ContactTest, FirstContactIsPrimaryAndPrimaryMovesOnAddAndRemove) {
  Contact a;
  a.set_id("k1");
  a.set_name("张三");
  a.set_phone("138 0000 1111");
  CustomerState s = Decided(Created(), kRep, AddContact{a});
  ASSERT_EQ(s.contacts_size(), 1);
  EXPECT_TRUE(s.contacts(0).primary());
  EXPECT_EQ(s.contacts(0).normalized_phone(), "13800001111");

  Contact b;
  b.set_id("k2");
  b.set_name("李四");
  b.set_phone("010-8888 6666");  // landline with area code
  b.set_primary(true);
  s = Decided(s, kRep, AddContact{b});
  EXPECT_FALSE(s.contacts(0).primary());
  EXPECT_TRUE(s.contacts(1).primary());
  EXPECT_EQ(s.contacts(1).normalized_phone(), "01088886666");

  Contact dup = a;
  dup.set_id("k3");
  EXPECT_EQ(ReasonOf(Decide(&s, kRep, AddContact{dup}).status()), "DUPLICATE_CONTACT");

  Contact unset;
  unset.set_id("k2");
  EXPECT_EQ(Decide(&s, kRep, UpdateContact{unset, {"primary"}}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  s = Decided(s, kRep, RemoveContact{"k2"});
  ASSERT_EQ(s.contacts_size(), 1);
  EXPECT_TRUE(s.contacts(0).primary()) << "the remaining contact becomes primary";
  EXPECT_EQ(Decide(&s, kRep, RemoveContact{"k2"}).status().code(), absl::StatusCode::kNotFound);
}

TEST(ContactTest, BadContactFieldsAreNamed) {
  CustomerState s = Created();
  Contact c;
  EXPECT_EQ(FieldOf(Decide(&s, kRep, AddContact{c}).status()), "contact.name");
  c.set_name("王五");
  c.set_phone("12345");
  EXPECT_EQ(FieldOf(Decide(&s, kRep, AddContact{c}).status()), "contact.phone");
  c.set_phone("");
  c.set_email("not-mail");
  EXPECT_EQ(FieldOf(Decide(&s, kRep, AddContact{c}).status()), "contact.email");
  c.set_email("");
  c.set_name("王\xE2\x80\xAD五");
  EXPECT_EQ(FieldOf(Decide(&s, kRep, AddContact{c}).status()), "contact.name");
  c.set_name("王五");
  c.set_notes("第一行\n第二行\t缩进");
  EXPECT_TRUE(Decide(&s, kRep, AddContact{c}).ok());
  EXPECT_EQ(Decide(&s, kRep2, AddContact{c}).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(FollowUpTest, RecordsMoveLastFollowUpForwardOnlyAndValidate) {
  CustomerState s = Created();
  v1::FollowUpRecorded f;
  EXPECT_EQ(FieldOf(Decide(&s, kRep, RecordFollowUp{f, kT0, kT0}).status()), "follow_up.channel");
  f.set_channel(v1::FOLLOW_UP_CHANNEL_VISIT);
  EXPECT_EQ(FieldOf(Decide(&s, kRep, RecordFollowUp{f, kT0, kT0}).status()), "follow_up.summary");
  f.set_summary("上门拜访，客户关注交付周期");
  EXPECT_EQ(FieldOf(Decide(&s, kRep, RecordFollowUp{f, kT0 + absl::Hours(1), kT0}).status()),
            "follow_up.follow_up_time");
  *f.mutable_next_follow_up_time() = google::protobuf::util::TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(kT0) - 60);
  EXPECT_EQ(FieldOf(Decide(&s, kRep, RecordFollowUp{f, kT0, kT0}).status()), "follow_up.next_follow_up_time");
  f.set_contact_id("nobody");
  f.clear_next_follow_up_time();
  EXPECT_EQ(FieldOf(Decide(&s, kRep, RecordFollowUp{f, kT0, kT0}).status()), "follow_up.contact_id");
  f.clear_contact_id();

  *f.mutable_next_follow_up_time() = google::protobuf::util::TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(kT0) + 86400);
  s = Decided(s, kRep, RecordFollowUp{f, kT0, kT0}, kT0);
  EXPECT_EQ(s.last_follow_up_time().seconds(), absl::ToUnixSeconds(kT0));
  EXPECT_EQ(s.next_follow_up_time().seconds(), absl::ToUnixSeconds(kT0) + 86400);
  // A backdated record counts but does not move the last follow-up back.
  f.clear_next_follow_up_time();
  s = Decided(s, kRep, RecordFollowUp{f, kT0 - absl::Hours(48), kT0}, kT0 - absl::Hours(48));
  EXPECT_EQ(s.follow_up_count(), 2);
  EXPECT_EQ(s.last_follow_up_time().seconds(), absl::ToUnixSeconds(kT0));
  EXPECT_EQ(s.next_follow_up_time().seconds(), absl::ToUnixSeconds(kT0) + 86400);
}

TEST(LifecycleTest, LostNeedsAChurnReasonAndCooperationDatesFollowStatus) {
  CustomerState s = Created();
  UpdateCustomer lost;
  lost.profile.set_lifecycle_status(v1::LIFECYCLE_STATUS_LOST);
  lost.paths = {"lifecycle_status"};
  EXPECT_EQ(FieldOf(Decide(&s, kRep, lost).status()), "customer.churn_reason");
  lost.profile.set_churn_reason("价格不合适");
  lost.paths.push_back("churn_reason");
  EXPECT_TRUE(Decide(&s, kRep, lost).ok());

  UpdateCustomer active;
  active.profile.set_cooperation_status(v1::COOPERATION_STATUS_ACTIVE);
  active.paths = {"cooperation_status"};
  s = Decided(s, kRep, active, kT0 + absl::Hours(24));
  EXPECT_EQ(s.first_cooperation_time().seconds(), absl::ToUnixSeconds(kT0 + absl::Hours(24)));
  active.profile.set_cooperation_status(v1::COOPERATION_STATUS_PAUSED);
  s = Decided(s, kRep, active, kT0 + absl::Hours(48));
  active.profile.set_cooperation_status(v1::COOPERATION_STATUS_ACTIVE);
  s = Decided(s, kRep, active, kT0 + absl::Hours(72));
  EXPECT_EQ(s.first_cooperation_time().seconds(), absl::ToUnixSeconds(kT0 + absl::Hours(24)));
  EXPECT_EQ(s.last_cooperation_time().seconds(), absl::ToUnixSeconds(kT0 + absl::Hours(72)));
}

// Who edits settings is the permission matrix's (the rpcs' access options; access_test).
TEST(SettingsTest, IndustriesComeFromTheListAndSettingsAreValidated) {
  CreateCustomer cmd{Profile(), "C1", EffectiveSettings({})};
  cmd.profile.set_industry("manufacturing");
  EXPECT_TRUE(Decide(nullptr, kRep, cmd).ok());
  cmd.profile.set_industry("made-up");
  EXPECT_EQ(FieldOf(Decide(nullptr, kRep, cmd).status()), "customer.industry");

  v1::PoolPolicy p;
  p.set_return_after_days(-1);
  EXPECT_EQ(FieldOf(DecideSettings({}, kAdmin, p).status()), "policy.return_after_days");
  p.set_return_after_days(15);
  (*p.mutable_team_return_after_days())["east"] = 7;
  EXPECT_EQ(DecideSettings({}, kAdmin, p)->size(), 1u);

  v1::Industry bad;
  bad.set_code("Bad Code");
  bad.set_name("x");
  EXPECT_EQ(FieldOf(DecideSettings({}, kAdmin, std::vector<v1::Industry>{bad}).status()), "industries[0].code");
  EXPECT_EQ(FieldOf(DecideSettings({}, kAdmin, std::vector<v1::Industry>{}).status()), "industries");
}

}  // namespace
}  // namespace crm::customers
