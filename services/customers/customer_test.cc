// Given events, when a command, then events or an error.
#include "services/customers/customer.h"

#include "gtest/gtest.h"
#include "libs/common/grpc_status.h"

namespace crm::customers {
namespace {

const Caller kRep{"u1", "rep", "east"};
const Caller kOtherRep{"u2", "rep", "east"};
const Caller kManager{"m1", "manager", "east"};
const Caller kWestManager{"m2", "manager", "west"};
const Caller kAdmin{"a1", "admin", ""};

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

TEST(CustomerTest, UpdateRecordsOnlyChangedFields) {
  CustomerState s = Created();
  CustomerProfile p;
  p.set_display_name("星辰科技");
  p.set_phone("13812345678");  // same number, other spelling: no change
  auto ev = Decide(&s, kRep, UpdateCustomer{p, {"display_name", "phone"}, 1});
  ASSERT_TRUE(ev.ok()) << ev.status();
  const auto& u = std::get<v1::CustomerUpdated>(ev->front());
  EXPECT_EQ(std::vector<std::string>(u.changed_fields().begin(), u.changed_fields().end()),
            (std::vector<std::string>{"display_name", "phone"}));
  EXPECT_EQ(u.profile().email(), "Li.Lei@Example.COM");  // untouched fields kept
}

TEST(CustomerTest, UpdateWithNoChangeRecordsNothing) {
  CustomerState s = Created();
  auto ev = Decide(&s, kRep, UpdateCustomer{Profile(), {"display_name"}, 0});
  ASSERT_TRUE(ev.ok());
  EXPECT_TRUE(ev->empty());
}

TEST(CustomerTest, StaleEtagIsAborted) {
  CustomerState s = Created();
  CustomerProfile p;
  p.set_display_name("x");
  EXPECT_EQ(Decide(&s, kRep, UpdateCustomer{p, {"display_name"}, 7}).status().code(),
            absl::StatusCode::kAborted);
}

TEST(CustomerTest, UnknownMaskPathNamesUpdateMask) {
  CustomerState s = Created();
  auto st = Decide(&s, kRep, UpdateCustomer{Profile(), {"customer_number"}, 0}).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(st), "update_mask");
}

TEST(CustomerTest, RepsSeeOnlyTheirOwnManagersTheirTeam) {
  CustomerState s = Created();
  CustomerProfile p;
  p.set_notes("n");
  EXPECT_EQ(Decide(&s, kOtherRep, UpdateCustomer{p, {"notes"}, 0}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Decide(&s, kManager, UpdateCustomer{p, {"notes"}, 0}).ok());
  EXPECT_EQ(Decide(&s, kWestManager, UpdateCustomer{p, {"notes"}, 0}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Decide(&s, kAdmin, UpdateCustomer{p, {"notes"}, 0}).ok());
}

TEST(CustomerTest, RepCannotHandCustomerToAnotherRep) {
  CustomerState s = Created();
  CustomerProfile p;
  p.set_owner_id("u2");
  EXPECT_EQ(Decide(&s, kRep, UpdateCustomer{p, {"owner_id"}, 0}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Decide(&s, kManager, UpdateCustomer{p, {"owner_id"}, 0}).ok());
}

TEST(CustomerTest, DeleteThenUndeleteThroughTheRecycleBin) {
  CustomerState s = Created();
  auto del = Decide(&s, kRep, DeleteCustomer{"duplicate entry", 1});
  ASSERT_TRUE(del.ok());
  Apply(s, del->front(), 2, absl::FromUnixSeconds(1767225700), "u1");
  EXPECT_TRUE(s.deleted());
  EXPECT_EQ(Decide(&s, kRep, DeleteCustomer{"", 0}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  CustomerProfile p;
  p.set_notes("x");
  EXPECT_EQ(Decide(&s, kRep, UpdateCustomer{p, {"notes"}, 0}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto undel = Decide(&s, kRep, UndeleteCustomer{2});
  ASSERT_TRUE(undel.ok());
  Apply(s, undel->front(), 3, absl::FromUnixSeconds(1767225800), "u1");
  EXPECT_FALSE(s.deleted());
  EXPECT_EQ(s.version(), 3);
  EXPECT_EQ(Decide(&s, kRep, UndeleteCustomer{0}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(CustomerTest, MissingCustomerIsNotFound) {
  EXPECT_EQ(Decide(nullptr, kRep, DeleteCustomer{"", 0}).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace crm::customers
