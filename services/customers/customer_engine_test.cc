#include "services/customers/customer_engine.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "libs/common/grpc_status.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/eventlog/log_testing.h"
#include "services/customers/customer_engine_fixture.h"
#include "services/customers/customer_list.h"
#include "services/customers/customer_projections.h"

namespace crm::customers {
namespace {

using namespace enginetest;  // NOLINT: the fixture and its callers

TEST_F(CustomerEngineTest, CreateThenGetWithNumberEtagAndToken) {
  auto c = Create(kRep, "星辰科技", "13812345678", "a@b.cn");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->customer_number(), "C202601010001");
  EXPECT_EQ(c->etag(), "1");
  EXPECT_FALSE(c->consistency_token().empty());
  EXPECT_EQ(c->owner_id(), "u1");
  auto c2 = Create(kRep, "月光商贸", "13912345678");
  EXPECT_EQ(c2->customer_number(), "C202601010002");
  v1::GetCustomerRequest req;
  req.set_name(c->name());
  req.set_min_consistency_token(c2->consistency_token());
  auto got = engine()->queries().Get(kRep, req, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->display_name(), "星辰科技");
  EXPECT_EQ(got->created_by(), "u1");
}

TEST_F(CustomerEngineTest, DuplicatePhoneOrEmailNamesTheExistingCustomer) {
  auto first = Create(kRep, "A", "13812345678", "Li@Example.com");
  ASSERT_TRUE(first.ok());
  auto dup = Create(kRep2, "B", "+86 138-1234-5678");
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);
  auto info = GetErrorInfo(dup.status());
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->reason(), "DUPLICATE_PHONE");
  EXPECT_EQ(info->metadata().at("existing"), first->name());
  auto dup_mail = Create(kRep2, "C", "", "li@EXAMPLE.com");
  EXPECT_EQ(dup_mail.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(GetErrorInfo(dup_mail.status())->reason(), "DUPLICATE_EMAIL");
}

TEST_F(CustomerEngineTest, ConcurrentCreatesWithOnePhoneLetExactlyOneWin) {
  constexpr int kThreads = 16;
  std::atomic<int> ok{0}, dup{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto r = Create(kAdmin, absl::StrCat("racer ", i), i % 2 ? "13800000000" : "+8613800000000");
      if (r.ok()) ++ok;
      if (absl::IsAlreadyExists(r.status())) ++dup;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(dup.load(), kThreads - 1);
}

TEST_F(CustomerEngineTest, CustomerNumbersStayUniqueUnderConcurrency) {
  std::vector<std::thread> threads;
  absl::Mutex mu;
  std::set<std::string> numbers;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        auto r = Create(kAdmin, "n", absl::StrCat("139", absl::Dec(t * 100 + i, absl::kZeroPad8)));
        ASSERT_TRUE(r.ok()) << r.status();
        absl::MutexLock l(&mu);
        EXPECT_TRUE(numbers.insert(r->customer_number()).second);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(numbers.size(), 80u);
  // Numbers continue after a restart instead of starting over.
  Open();
  auto r = Create(kAdmin, "after restart", "13700000000");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->customer_number(), "C202601010081");
}

TEST_F(CustomerEngineTest, CreateAndUpdateReadOnceFoldAndSealOncePerEventAndAnswerTheRowGetReads) {
  auto delta = [](const kernel::StoreCounters& a, const kernel::StoreCounters& b) {
    return std::vector<int64_t>{b.states() - a.states(), b.folds - a.folds, b.seals - a.seals,
                                b.appends - a.appends, b.keys_in_flight};
  };
  using Counts = std::vector<int64_t>;  // reads, folds, seals, appends, keys still held
  kernel::StoreCounters before = engine()->WriteCounters();
  auto c = Create(kRep, "星辰科技", "13812345678", "a@b.cn", "create-1");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(delta(before, engine()->WriteCounters()), (Counts{1, 1, 1, 1, 0})) << "the dedupe keys come from the one fold";
  auto got = Get(kRep, c->name());
  ASSERT_TRUE(got.ok()) << got.status();
  got->set_consistency_token(c->consistency_token());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*got, *c)) << got->DebugString() << c->DebugString();

  before = engine()->WriteCounters();
  v1::UpdateCustomerRequest up;
  up.set_request_id("update-1");
  up.mutable_customer()->set_name(c->name());
  up.mutable_customer()->set_phone("13912345678");
  up.mutable_update_mask()->add_paths("phone");
  auto u = Sync(&CustomerCommands::Update, kRep, up);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(delta(before, engine()->WriteCounters()), (Counts{1, 1, 1, 1, 0}));
  got = Get(kRep, c->name());
  ASSERT_TRUE(got.ok()) << got.status();
  got->set_consistency_token(u->consistency_token());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*got, *u)) << got->DebugString() << u->DebugString();

  // Repeats decide and append nothing: the update's in the store, the create's before it.
  before = engine()->WriteCounters();
  auto again = Sync(&CustomerCommands::Update, kRep, up);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->etag(), u->etag());
  EXPECT_EQ(delta(before, engine()->WriteCounters()), (Counts{1, 0, 0, 0, 0}));
  EXPECT_EQ(engine()->WriteCounters().state_reads, before.state_reads) << "the updated customer came from the cache";
  auto created_again = Create(kRep, "星辰科技", "13812345678", "a@b.cn", "create-1");
  ASSERT_TRUE(created_again.ok()) << created_again.status();
  EXPECT_EQ(created_again->name(), c->name());
  EXPECT_EQ(engine()->WriteCounters().appends, before.appends);
}

TEST_F(CustomerEngineTest, RepeatedRequestIdReturnsTheFirstResult) {
  auto a = Create(kRep, "A", "13812345678", "", "req-1");
  auto b = Create(kRep, "A", "13812345678", "", "req-1");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->name(), b->name());
  v1::ListCustomersRequest list;
  EXPECT_EQ(engine()->queries().List(kAdmin, list, absl::Now() + absl::Seconds(1))->customers_size(), 1);
}

TEST_F(CustomerEngineTest, RepeatedRequestIdOnUpdateAndDeleteDoesNotApplyTwice) {
  auto c = *Create(kRep, "A", "13812345678");
  v1::UpdateCustomerRequest up;
  up.set_request_id("up-1");
  up.mutable_customer()->set_name(c.name());
  up.mutable_customer()->set_etag("1");
  up.mutable_customer()->set_notes("first");
  auto u1 = Sync(&CustomerCommands::Update, kRep, up);
  ASSERT_TRUE(u1.ok()) << u1.status();
  auto u2 = Sync(&CustomerCommands::Update, kRep, up);  // same request again: etag 1 is stale now
  ASSERT_TRUE(u2.ok()) << u2.status();
  EXPECT_EQ(u2->etag(), "2");
  v1::DeleteCustomerRequest del;
  del.set_name(c.name());
  del.set_request_id("del-1");
  ASSERT_TRUE(Sync(&CustomerCommands::Delete, kRep, del).ok());
  auto again = Sync(&CustomerCommands::Delete, kRep, del);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->deleted());
  EXPECT_EQ(again->etag(), "3");
  // A request id belongs to one customer.
  auto other = *Create(kRep, "B", "13912345678");
  del.set_name(other.name());
  EXPECT_EQ(FieldOf(Sync(&CustomerCommands::Delete, kRep, del).status()), "request_id");
}

TEST_F(CustomerEngineTest, UpdateWithStaleEtagIsAbortedAndFreshOneApplies) {
  auto c = *Create(kRep, "A", "13812345678");
  v1::UpdateCustomerRequest up;
  up.mutable_customer()->set_name(c.name());
  up.mutable_customer()->set_etag("1");
  up.mutable_customer()->set_display_name("A2");
  up.mutable_update_mask()->add_paths("display_name");
  auto r1 = Sync(&CustomerCommands::Update, kRep, up);
  ASSERT_TRUE(r1.ok()) << r1.status();
  EXPECT_EQ(r1->etag(), "2");
  auto r2 = Sync(&CustomerCommands::Update, kRep, up);  // still etag 1
  EXPECT_EQ(r2.status().code(), absl::StatusCode::kAborted);
}

// "ETAG_MISMATCH <field> <current_etag>" of an ABORTED answer; the code and message otherwise.
std::string Mismatch(const absl::Status& s) {
  auto info = GetErrorInfo(s);
  if (s.code() != absl::StatusCode::kAborted || !info.has_value()) return s.ToString();
  return absl::StrCat(info->reason(), " ", info->metadata().count("field") ? info->metadata().at("field") : "-", " ",
                      info->metadata().count("current_etag") ? info->metadata().at("current_etag") : "-");
}

TEST_F(CustomerEngineTest, StaleEtagOfEveryCustomerCommandIsAbortedNamingItsField) {
  auto c = *Create(kRep, "A", "13812345678");
  v1::UpdateCustomerRequest up;
  up.mutable_customer()->set_name(c.name());
  up.mutable_customer()->set_display_name("A2");
  up.mutable_update_mask()->add_paths("display_name");
  ASSERT_TRUE(Sync(&CustomerCommands::Update, kRep, up).ok());
  up.mutable_customer()->set_etag("1");
  EXPECT_EQ(Mismatch(Sync(&CustomerCommands::Update, kRep, up).status()), "ETAG_MISMATCH customer.etag 2");
  v1::AddContactRequest add;
  add.set_parent(c.name());
  add.set_etag("1");
  add.mutable_contact()->set_name("李雷");
  add.mutable_contact()->set_phone("13912345678");
  EXPECT_EQ(Mismatch(Sync(&CustomerCommands::AddContact, kRep, add).status()), "ETAG_MISMATCH etag 2");
  v1::ReleaseCustomerRequest release;
  release.set_name(c.name());
  release.set_etag("0");  // "nothing written yet"
  EXPECT_EQ(Mismatch(Sync(&CustomerCommands::Release, kRep, release).status()), "ETAG_MISMATCH etag 2");
  v1::DeleteCustomerRequest del;
  del.set_name(c.name());
  del.set_etag("1");
  EXPECT_EQ(Mismatch(Sync(&CustomerCommands::Delete, kRep, del).status()), "ETAG_MISMATCH etag 2");
  del.set_etag("2");
  ASSERT_TRUE(Sync(&CustomerCommands::Delete, kRep, del).ok());
  v1::UndeleteCustomerRequest undel;
  undel.set_name(c.name());
  undel.set_etag("2");
  EXPECT_EQ(Mismatch(Sync(&CustomerCommands::Undelete, kRep, undel).status()), "ETAG_MISMATCH etag 3");
  EXPECT_EQ(Get(kAdmin, c.name())->etag(), "3") << "no stale command wrote";
}

TEST_F(CustomerEngineTest, ACommandsOwnRefusalComesBeforeAStaleEtag) {
  auto c = *Create(kRep, "A", "13812345678");
  // A rep may not hand the customer to another rep: that refusal, whatever the etag.
  v1::UpdateCustomerRequest give;
  give.mutable_customer()->set_name(c.name());
  give.mutable_customer()->set_etag("7");
  give.mutable_customer()->set_owner_id("u2");
  give.mutable_update_mask()->add_paths("owner_id");
  EXPECT_EQ(Sync(&CustomerCommands::Update, kRep, give).status().code(), absl::StatusCode::kPermissionDenied);
  // A rep who may not see the customer learns nothing of its version.
  v1::DeleteCustomerRequest del;
  del.set_name(c.name());
  del.set_etag("7");
  EXPECT_EQ(Sync(&CustomerCommands::Delete, kRep2, del).status().code(), absl::StatusCode::kPermissionDenied);
  // An invalid mask is the caller's error to fix first.
  v1::UpdateCustomerRequest bad;
  bad.mutable_customer()->set_name(c.name());
  bad.mutable_customer()->set_etag("7");
  bad.mutable_update_mask()->add_paths("customer_number");
  EXPECT_EQ(FieldOf(Sync(&CustomerCommands::Update, kRep, bad).status()), "update_mask");
  // In the recycle bin: said so, not "stale".
  del.set_etag("1");
  ASSERT_TRUE(Sync(&CustomerCommands::Delete, kRep, del).ok());
  del.set_etag("1");
  EXPECT_EQ(Sync(&CustomerCommands::Delete, kRep, del).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CustomerEngineTest, ConcurrentUpdatesOfOneCustomerKeepVersionsGapless) {
  auto c = *Create(kRep, "A", "13812345678");
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        v1::UpdateCustomerRequest up;
        up.mutable_customer()->set_name(c.name());
        up.mutable_customer()->set_notes(absl::StrCat(t, "-", i));
        up.mutable_update_mask()->add_paths("notes");
        ASSERT_TRUE(Sync(&CustomerCommands::Update, kRep, up).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(Get(kRep, c.name())->etag(), "41");
  v1::ListCustomerEventsRequest h;
  h.set_parent(c.name());
  h.set_page_size(100);
  auto hist = engine()->queries().History(kRep, h, absl::Now() + absl::Seconds(1));
  ASSERT_TRUE(hist.ok());
  ASSERT_EQ(hist->events_size(), 41);
  for (int i = 0; i < 41; ++i) EXPECT_EQ(hist->events(i).version(), i + 1);
}

TEST_F(CustomerEngineTest, RecycleBinFreesThePhoneAndUndeleteChecksIt) {
  auto c = *Create(kRep, "A", "13812345678");
  v1::DeleteCustomerRequest del;
  del.set_name(c.name());
  del.set_reason("entered twice");
  auto d = Sync(&CustomerCommands::Delete, kRep, del);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->deleted());
  // Hidden from lists unless show_deleted; Get still answers (the recycle bin).
  v1::ListCustomersRequest list;
  EXPECT_EQ(engine()->queries().List(kRep, list, absl::Now())->customers_size(), 0);
  list.set_show_deleted(true);
  EXPECT_EQ(engine()->queries().List(kRep, list, absl::Now())->customers_size(), 1);
  // Its phone is free again...
  auto other = Create(kRep, "B", "13812345678");
  ASSERT_TRUE(other.ok()) << other.status();
  // ...so restoring the first now conflicts.
  v1::UndeleteCustomerRequest und;
  und.set_name(c.name());
  EXPECT_EQ(Sync(&CustomerCommands::Undelete, kRep, und).status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(CustomerEngineTest, ListFiltersOrdersPagesAndObeysRoles) {
  for (int i = 0; i < 5; ++i) {
    v1::CreateCustomerRequest req;
    req.mutable_customer()->set_display_name(absl::StrCat("rep1-", i));
    if (i % 2 == 0) req.mutable_customer()->add_tags("vip");
    ASSERT_TRUE(Sync(&CustomerCommands::Create, kRep, req).ok());
    clock().Advance(absl::Seconds(1));
  }
  ASSERT_TRUE(Create(kRep2, "rep2-0", "").ok());
  v1::ListCustomersRequest req;
  req.set_page_size(2);
  req.set_order_by("create_time desc");
  auto p1 = engine()->queries().List(kRep, req, absl::Now());
  ASSERT_TRUE(p1.ok()) << p1.status();
  EXPECT_EQ(p1->total_size(), 5);  // a rep sees only their own
  EXPECT_EQ(p1->customers(0).display_name(), "rep1-4");
  req.set_page_token(p1->next_page_token());
  auto p2 = engine()->queries().List(kRep, req, absl::Now());
  EXPECT_EQ(p2->customers(0).display_name(), "rep1-2");
  req.set_page_token(p1->next_page_token());
  req.set_order_by("display_name");
  EXPECT_EQ(engine()->queries().List(kRep, req, absl::Now()).status().code(), absl::StatusCode::kInvalidArgument);

  v1::ListCustomersRequest tagged;
  tagged.set_filter("tags:\"vip\" AND owner_id = \"u1\"");
  EXPECT_EQ(engine()->queries().List(kManager, tagged, absl::Now())->total_size(), 3);
  v1::ListCustomersRequest all;
  EXPECT_EQ(engine()->queries().List(kManager, all, absl::Now())->total_size(), 6);
  EXPECT_EQ(engine()->queries().List(Caller{"m9", "manager", "west"}, all, absl::Now())->total_size(), 0);
  all.set_filter("lifecycle_status = LIFECYCLE_STATUS_POTENTIAL");
  EXPECT_EQ(engine()->queries().List(kAdmin, all, absl::Now())->total_size(), 6);
}

TEST_F(CustomerEngineTest, RepCannotReadAnotherRepsCustomer) {
  auto c = *Create(kRep, "A", "13812345678");
  EXPECT_EQ(Get(kRep2, c.name()).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Get(kManager, c.name()).ok());
}

TEST_F(CustomerEngineTest, HistoryShowsActorTimeAndChangedFields) {
  auto c = *Create(kRep, "A", "13812345678");
  clock().Advance(absl::Hours(1));
  v1::UpdateCustomerRequest up;
  up.mutable_customer()->set_name(c.name());
  up.mutable_customer()->set_email("x@y.cn");
  ASSERT_TRUE(Sync(&CustomerCommands::Update, kManager, up).ok());  // mask from set fields
  v1::ListCustomerEventsRequest h;
  h.set_parent(c.name());
  auto hist = *engine()->queries().History(kRep, h, absl::Now());
  ASSERT_EQ(hist.events_size(), 2);
  EXPECT_EQ(hist.events(0).event_type(), "crm.customers.v1.CustomerCreated");
  EXPECT_EQ(hist.events(1).actor().user_id(), "m1");
  EXPECT_EQ(hist.events(1).actor().role(), "manager");
  EXPECT_EQ(hist.events(1).occurred_at().seconds(), 1767225600 + 3600);
  EXPECT_EQ(std::vector<std::string>(hist.events(1).changed_fields().begin(),
                                     hist.events(1).changed_fields().end()),
            std::vector<std::string>{"email"});
  EXPECT_EQ(hist.events(1).hash_hex().size(), 64u);
}

TEST_F(CustomerEngineTest, BadInputNamesTheField) {
  v1::GetCustomerRequest g;
  g.set_name("customer/x");
  EXPECT_EQ(FieldOf(engine()->queries().Get(kAdmin, g, absl::Now()).status()), "name");
  g.set_name("customers/not-a-uuid");
  EXPECT_EQ(FieldOf(engine()->queries().Get(kAdmin, g, absl::Now()).status()), "name");
  g.set_name("customers/0190f1c4-0000-7000-8000-000000000000");
  g.set_min_consistency_token("%%%");
  EXPECT_EQ(FieldOf(engine()->queries().Get(kAdmin, g, absl::Now()).status()), "min_consistency_token");

  v1::ListCustomersRequest l;
  l.set_page_size(-1);
  EXPECT_EQ(FieldOf(engine()->queries().List(kAdmin, l, absl::Now()).status()), "page_size");
  l.set_page_size(0);
  l.set_page_token("garbage!");
  EXPECT_EQ(FieldOf(engine()->queries().List(kAdmin, l, absl::Now()).status()), "page_token");
  l.clear_page_token();
  l.set_filter("phone = 1");
  EXPECT_EQ(FieldOf(engine()->queries().List(kAdmin, l, absl::Now()).status()), "filter");
  // Text after the terms used to be ignored (OK, no rows): refused, with where it starts.
  l.set_filter("owner_id = \"w1\" OR 1=1");
  auto injected = engine()->queries().List(kAdmin, l, absl::Now());
  EXPECT_EQ(FieldOf(injected.status()), "filter");
  EXPECT_NE(injected.status().message().find("position 17"), absl::string_view::npos) << injected.status();
  l.set_filter("tags:\"vip\" AND in_pool = true");
  EXPECT_TRUE(engine()->queries().List(kAdmin, l, absl::Now()).ok());
  l.clear_filter();
  l.set_order_by("phone");
  EXPECT_EQ(FieldOf(engine()->queries().List(kAdmin, l, absl::Now()).status()), "order_by");

  v1::CreateCustomerRequest c;
  EXPECT_EQ(FieldOf(Sync(&CustomerCommands::Create, kAdmin, c).status()), "customer");
  c.mutable_customer()->set_display_name("x");
  c.set_request_id(std::string(129, 'r'));
  EXPECT_EQ(FieldOf(Sync(&CustomerCommands::Create, kAdmin, c).status()), "request_id");
  c.clear_request_id();
  c.mutable_customer()->set_name("customers/0190f1c4-0000-7000-8000-000000000000");
  EXPECT_EQ(FieldOf(Sync(&CustomerCommands::Create, kAdmin, c).status()), "customer.name");

  auto made = *Create(kAdmin, "y", "13812345678");
  v1::UpdateCustomerRequest u;
  u.mutable_customer()->set_name(made.name());
  u.mutable_customer()->set_etag("abc");
  EXPECT_EQ(FieldOf(Sync(&CustomerCommands::Update, kAdmin, u).status()), "customer.etag");
  u.mutable_customer()->clear_etag();
  u.mutable_update_mask()->add_paths("nope");
  EXPECT_EQ(FieldOf(Sync(&CustomerCommands::Update, kAdmin, u).status()), "update_mask");
  v1::DeleteCustomerRequest d;
  d.set_name(made.name());
  d.set_etag("-3");
  EXPECT_EQ(FieldOf(Sync(&CustomerCommands::Delete, kAdmin, d).status()), "etag");
}

TEST_F(CustomerEngineTest, RestartAndFreshRebuildGiveTheSameProjections) {
  std::vector<std::string> names;
  for (int i = 0; i < 30; ++i) {
    auto c = Create(kAdmin, absl::StrCat("c", i), absl::StrCat("1380000", absl::Dec(i, absl::kZeroPad4)));
    ASSERT_TRUE(c.ok()) << c.status();
    names.push_back(c->name());
  }
  for (int i = 0; i < 10; ++i) {
    v1::DeleteCustomerRequest d;
    d.set_name(names[i]);
    ASSERT_TRUE(Sync(&CustomerCommands::Delete, kAdmin, d).ok());
  }
  const std::string live = *CustomerEngine::Checksum(*db());
  auto n = CustomerEngine::Rebuild(log(), kTopic, dir() + "/rebuilt");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 40);
  auto rebuilt = *projection::ProjectionDb::Open({.path = dir() + "/rebuilt"});
  EXPECT_EQ(*CustomerEngine::Checksum(*rebuilt), live);
  rebuilt.reset();
  // A service whose projections were lost catches up from the log on start.
  Open("proj-empty");
  EXPECT_EQ(*CustomerEngine::Checksum(*db()), live);
  EXPECT_TRUE(Get(kAdmin, names[20]).ok());
}

TEST_F(CustomerEngineTest, ProjectionsOfAnotherCodeVersionAreRebuiltAndSwappedOnOpen) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(Create(kAdmin, absl::StrCat("v", i), absl::StrCat("1370000000", i)).ok());
  }
  const std::string live = *CustomerEngine::Checksum(*db());
  h_->Close(Service::kCustomers);
  // Pretend an older build wrote these projections, with a row the new code never writes.
  {
    auto old = projection::ProjectionDb::Open({.path = dir() + "/customers"});
    ASSERT_TRUE(old.ok()) << old.status();
    rocksdb::WriteOptions wo;
    ASSERT_TRUE((*old)->db()->Put(wo, "zz/stale", "left by old code").ok());
    ASSERT_TRUE((*old)->SetVersion(kProjectionVersion - 1).ok());
  }
  int64_t rebuilt = 0;
  auto db = CustomerEngine::OpenProjections(log(), dir() + "/customers", {.clock = &clock()}, &rebuilt);
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ(rebuilt, 5);
  EXPECT_EQ((*db)->stored_version(), kProjectionVersion);
  EXPECT_EQ(*CustomerEngine::Checksum(**db), live);
  // Same version: opened as is.
  db->reset();
  auto again = CustomerEngine::OpenProjections(log(), dir() + "/customers", {.clock = &clock()}, &rebuilt);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(rebuilt, 0);
}


using crm::testing::Call;

absl::Time Time(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

class PoolEngineTest : public CustomerEngineTest {
 protected:
  absl::StatusOr<v1::Customer> Release(const Caller& c, const std::string& name) {
    v1::ReleaseCustomerRequest req;
    req.set_name(name);
    return Call(&engine()->customer_commands(), &CustomerCommands::Release, c, req);
  }
  absl::StatusOr<v1::Customer> Claim(const Caller& c, const std::string& name) {
    v1::ClaimCustomerRequest req;
    req.set_name(name);
    return Call(&engine()->customer_commands(), &CustomerCommands::Claim, c, req);
  }
  absl::StatusOr<v1::PoolPolicy> SetPolicy(int32_t limit, int32_t days) {
    v1::UpdatePoolPolicyRequest req;
    req.mutable_policy()->set_daily_claim_limit(limit);
    req.mutable_policy()->set_return_after_days(days);
    return Call(&engine()->settings(), &SettingsCommands::UpdatePoolPolicy, kAdmin, req);
  }
  std::string Checksum() { return *h_->Checksum(Service::kCustomers); }
  static std::string Keys(projection::ProjectionDb& db) {
    std::string out;
    std::unique_ptr<rocksdb::Iterator> it(db.db()->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek("a"); it->Valid(); it->Next()) out += absl::CHexEscape(it->key().ToString()) + "\n";
    return out;
  }
  // The checksum of projections rebuilt from the log; lists both sides' rows when it differs.
  std::string RebuiltChecksum() {
    auto rebuilt = h_->Rebuilt(Service::kCustomers);
    EXPECT_TRUE(rebuilt.ok()) << rebuilt.status();
    if (!rebuilt.ok()) return "";
    const std::string sum = *projection::Checksum(**rebuilt);
    if (sum != Checksum()) ADD_FAILURE() << Keys(**rebuilt) << "--- live\n" << Keys(*db());
    return sum;
  }
};

TEST_F(PoolEngineTest, TwoRepsClaimingTheSamePoolCustomerOneWins) {
  for (int round = 0; round < 10; ++round) {
    auto c = *Create(kRep, absl::StrCat("pool ", round), absl::StrCat("1390000000", round));
    ASSERT_TRUE(Release(kRep, c.name()).ok());
    std::atomic<int> won{0}, lost{0};
    std::vector<std::thread> reps;
    for (const Caller& who : {kRep, kRep2}) {
      reps.emplace_back([&, who] {
        auto r = Claim(who, c.name());
        if (r.ok()) ++won;
        if (absl::IsFailedPrecondition(r.status())) ++lost;
      });
    }
    for (auto& t : reps) t.join();
    EXPECT_EQ(won.load(), 1);
    EXPECT_EQ(lost.load(), 1);
  }
}

TEST_F(PoolEngineTest, DailyClaimLimitHoldsUnderConcurrentClaimsAndResetsNextDay) {
  ASSERT_TRUE(SetPolicy(3, 30).ok());
  std::vector<std::string> names;
  for (int i = 0; i < 8; ++i) {
    auto c = *Create(kManager, absl::StrCat("p", i), absl::StrCat("1360000000", i));
    ASSERT_TRUE(Release(kManager, c.name()).ok());
    names.push_back(c.name());
  }
  std::atomic<int> won{0}, limited{0};
  std::vector<std::thread> claims;
  for (int i = 0; i < 6; ++i) {
    claims.emplace_back([&, i] {
      auto r = Claim(kRep, names[i]);
      if (r.ok()) ++won;
      if (absl::IsFailedPrecondition(r.status())) ++limited;
    });
  }
  for (auto& t : claims) t.join();
  EXPECT_EQ(won.load(), 3);
  EXPECT_EQ(limited.load(), 3);
  // The count survives a restart (it is in the projections) and resets the next day.
  Open();
  EXPECT_EQ(GetErrorInfo(Claim(kRep, names[6]).status())->reason(), "CLAIM_LIMIT_REACHED");
  clock().Advance(absl::Hours(24));
  EXPECT_TRUE(Claim(kRep, names[6]).ok());
}

TEST_F(PoolEngineTest, SchedulerReturnsIdleCustomersAtTheirDueTimeUnderAManualClock) {
  ASSERT_TRUE(SetPolicy(0, 30).ok());
  auto idle = *Create(kRep, "idle", "13500000001");
  auto busy = *Create(kRep, "busy", "13500000002");
  const absl::Time created = clock().Now();
  clock().Advance(absl::Hours(24 * 20));
  v1::CreateFollowUpRequest f;
  f.set_parent(busy.name());
  f.mutable_follow_up()->set_channel(v1::FOLLOW_UP_CHANNEL_WECHAT);
  f.mutable_follow_up()->set_summary("发了方案");
  ASSERT_TRUE(Call(&engine()->customer_commands(), &CustomerCommands::CreateFollowUp, kRep, f).ok());

  clock().Advance(absl::Hours(24 * 9));  // day 29: nothing due
  EXPECT_EQ(engine()->RunScheduler(clock().Now())->returned_to_pool, 0);
  clock().Advance(absl::Hours(24 * 2));  // day 31: idle is due, busy (followed up on day 20) not
  auto run = engine()->RunScheduler(clock().Now());
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->returned_to_pool, 1);
  auto got = *Get(kManager, idle.name());
  EXPECT_TRUE(got.in_pool());
  EXPECT_EQ(got.previous_owner_id(), "u1");
  EXPECT_EQ(Time(got.pool_time()), created + absl::Hours(24 * 30)) << "the due time, not the run time";
  EXPECT_FALSE(Get(kManager, busy.name())->in_pool());
  EXPECT_EQ(engine()->RunScheduler(clock().Now())->returned_to_pool, 0) << "runs are idempotent";

  v1::ListCustomersRequest pool;
  pool.set_filter("in_pool = true");
  auto listed = engine()->queries().List(kRep2, pool, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->customers_size(), 1);
  EXPECT_EQ(listed->customers(0).name(), idle.name());

  v1::ListCustomerEventsRequest h;
  h.set_parent(idle.name());
  auto events = *engine()->queries().History(kManager, h, absl::Now() + absl::Seconds(5));
  EXPECT_EQ(events.events(1).event_type(), "crm.customers.v1.CustomerReturnedToPool");
  EXPECT_EQ(events.events(1).actor().source(), common::v1::ACTOR_SOURCE_SYSTEM);
  EXPECT_EQ(Checksum(), RebuiltChecksum()) << "the rebuild reads no clock";
}

TEST_F(PoolEngineTest, RecycleBinPurgesAfterThirtyDays) {
  auto c = *Create(kRep, "gone", "13500000003");
  v1::DeleteCustomerRequest del;
  del.set_name(c.name());
  ASSERT_TRUE(Sync(&CustomerCommands::Delete, kRep, del).ok());
  v1::ListCustomersRequest bin;
  bin.set_show_deleted(true);
  EXPECT_EQ(engine()->queries().List(kRep, bin, absl::Now() + absl::Seconds(5))->customers_size(), 1);
  clock().Advance(absl::Hours(24 * 30) - absl::Seconds(1));
  EXPECT_EQ(engine()->RunScheduler(clock().Now())->purged, 0);
  clock().Advance(absl::Seconds(1));
  EXPECT_EQ(engine()->RunScheduler(clock().Now())->purged, 1);
  EXPECT_EQ(Get(kRep, c.name()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(engine()->queries().List(kRep, bin, absl::Now() + absl::Seconds(5))->customers_size(), 0);
  v1::UndeleteCustomerRequest undel;
  undel.set_name(c.name());
  EXPECT_EQ(Sync(&CustomerCommands::Undelete, kRep, undel).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Create(kRep, "new holder", "13500000003").ok()) << "the phone is free";
  EXPECT_EQ(Checksum(), RebuiltChecksum());
}

TEST_F(PoolEngineTest, GetAsOfVersionOrTimeShowsTheCustomerAsItWas) {
  auto c = *Create(kRep, "旧名", "13500000004");
  const absl::Time t1 = clock().Now();
  clock().Advance(absl::Hours(1));
  v1::UpdateCustomerRequest up;
  up.mutable_customer()->set_name(c.name());
  up.mutable_customer()->set_display_name("新名");
  ASSERT_TRUE(Sync(&CustomerCommands::Update, kRep, up).ok());

  v1::GetCustomerRequest req;
  req.set_name(c.name());
  req.set_as_of_version(1);
  EXPECT_EQ(engine()->queries().Get(kRep, req, absl::Now() + absl::Seconds(5))->display_name(), "旧名");
  req.set_as_of_version(0);
  *req.mutable_as_of_time() = google::protobuf::util::TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(t1) + 60);
  auto then = engine()->queries().Get(kRep, req, absl::Now() + absl::Seconds(5));
  EXPECT_EQ(then->display_name(), "旧名");
  EXPECT_EQ(then->etag(), "1");
  *req.mutable_as_of_time() = google::protobuf::util::TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(t1) - 60);
  EXPECT_EQ(engine()->queries().Get(kRep, req, absl::Now() + absl::Seconds(5)).status().code(), absl::StatusCode::kNotFound);
  // Outside 1970-2200 the time is the client's mistake, not a customer that did not exist.
  req.mutable_as_of_time()->set_seconds(253402300800);  // 10000-01-01
  EXPECT_EQ(FieldOf(engine()->queries().Get(kRep, req, absl::Now() + absl::Seconds(5)).status()), "as_of_time");
  req.clear_as_of_time();
  req.set_as_of_version(9);
  EXPECT_EQ(FieldOf(engine()->queries().Get(kRep, req, absl::Now() + absl::Seconds(5)).status()), "as_of_version");
  EXPECT_EQ(Get(kRep, c.name())->display_name(), "新名");
}

TEST_F(PoolEngineTest, FollowUpsListNewestFirstAndARetryDoesNotRecordTwice) {
  auto c = *Create(kRep, "跟进", "13500000005");
  v1::CreateFollowUpRequest f;
  f.set_parent(c.name());
  f.mutable_follow_up()->set_channel(v1::FOLLOW_UP_CHANNEL_PHONE);
  for (int i = 0; i < 3; ++i) {
    f.mutable_follow_up()->set_summary(absl::StrCat("第", i, "次"));
    f.set_request_id(absl::StrCat("fu-", i));
    clock().Advance(absl::Minutes(10));
    auto r = Call(&engine()->customer_commands(), &CustomerCommands::CreateFollowUp, kRep, f);
    ASSERT_TRUE(r.ok()) << r.status();
    auto retry = Call(&engine()->customer_commands(), &CustomerCommands::CreateFollowUp, kRep, f);
    ASSERT_TRUE(retry.ok()) << retry.status();
    EXPECT_EQ(retry->name(), r->name());
  }
  v1::ListFollowUpsRequest list;
  list.set_parent(c.name());
  list.set_page_size(2);
  auto page = *engine()->queries().ListFollowUps(kRep, list, absl::Now() + absl::Seconds(5));
  ASSERT_EQ(page.follow_ups_size(), 2);
  EXPECT_EQ(page.follow_ups(0).summary(), "第2次");
  EXPECT_EQ(page.follow_ups(1).summary(), "第1次");
  list.set_page_token(page.next_page_token());
  page = *engine()->queries().ListFollowUps(kRep, list, absl::Now() + absl::Seconds(5));
  ASSERT_EQ(page.follow_ups_size(), 1);
  EXPECT_EQ(page.follow_ups(0).summary(), "第0次");
  EXPECT_TRUE(page.next_page_token().empty());
  auto got = *Get(kRep, c.name());
  EXPECT_EQ(got.follow_up_count(), 3);
  EXPECT_EQ(Time(got.last_follow_up_time()), clock().Now());
  EXPECT_EQ(engine()->queries().ListFollowUps(kRep2, list, absl::Now() + absl::Seconds(5)).status().code(),
            absl::StatusCode::kPermissionDenied);
  // Year 10000 wrapped to 1816, which passed "not in the future"; nothing is recorded.
  f.set_request_id("fu-far");
  f.mutable_follow_up()->mutable_follow_up_time()->set_seconds(253402300800);
  EXPECT_EQ(FieldOf(Call(&engine()->customer_commands(), &CustomerCommands::CreateFollowUp, kRep, f).status()),
            "follow_up.follow_up_time");
  f.clear_follow_up();
  f.mutable_follow_up()->set_channel(v1::FOLLOW_UP_CHANNEL_PHONE);
  f.mutable_follow_up()->set_summary("下次");
  f.mutable_follow_up()->mutable_next_follow_up_time()->set_seconds(-86400);
  EXPECT_EQ(FieldOf(Call(&engine()->customer_commands(), &CustomerCommands::CreateFollowUp, kRep, f).status()),
            "follow_up.next_follow_up_time");
  EXPECT_EQ(Get(kRep, c.name())->follow_up_count(), 3);
}

TEST_F(PoolEngineTest, ContactsAndSettingsGoThroughTheLogAndSurviveARebuild) {
  auto c = *Create(kRep, "联系人", "13500000006");
  v1::AddContactRequest add;
  add.set_parent(c.name());
  add.mutable_contact()->set_name("赵六");
  add.mutable_contact()->set_title("采购经理");
  add.mutable_contact()->set_phone("13700001111");
  auto with = Call(&engine()->customer_commands(), &CustomerCommands::AddContact, kRep, add);
  ASSERT_TRUE(with.ok()) << with.status();
  ASSERT_EQ(with->contacts_size(), 1);
  EXPECT_TRUE(with->contacts(0).primary());
  v1::UpdateContactRequest upd;
  upd.set_parent(c.name());
  upd.mutable_contact()->set_id(with->contacts(0).id());
  upd.mutable_contact()->set_title("总经理");
  auto updated = Call(&engine()->customer_commands(), &CustomerCommands::UpdateContact, kRep, upd);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->contacts(0).title(), "总经理");
  EXPECT_EQ(updated->contacts(0).name(), "赵六");
  // RemoveContact: another rep may not; an unknown id is refused; then the contact is gone
  v1::RemoveContactRequest rm;
  rm.set_parent(c.name());
  rm.set_contact_id(with->contacts(0).id());
  EXPECT_EQ(Call(&engine()->customer_commands(), &CustomerCommands::RemoveContact, kRep2, rm).status().code(),
            absl::StatusCode::kPermissionDenied);
  v1::RemoveContactRequest unknown = rm;
  unknown.set_contact_id("nope");
  EXPECT_EQ(Call(&engine()->customer_commands(), &CustomerCommands::RemoveContact, kRep, unknown).status().code(),
            absl::StatusCode::kNotFound);
  auto removed = Call(&engine()->customer_commands(), &CustomerCommands::RemoveContact, kRep, rm);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(removed->contacts_size(), 0);
  EXPECT_EQ(Get(kRep, c.name())->contacts_size(), 0);

  v1::SetIndustriesRequest ind;
  auto* i = ind.add_industries();
  i->set_code("saas");
  i->set_name("软件服务");
  ASSERT_TRUE(Call(&engine()->settings(), &SettingsCommands::SetIndustries, kAdmin, ind).ok());
  v1::UpdateCustomerRequest up;
  up.mutable_customer()->set_name(c.name());
  up.mutable_customer()->set_industry("manufacturing");
  EXPECT_EQ(FieldOf(Sync(&CustomerCommands::Update, kRep, up).status()), "customer.industry");
  up.mutable_customer()->set_industry("saas");
  EXPECT_TRUE(Sync(&CustomerCommands::Update, kRep, up).ok());
  EXPECT_EQ(engine()->queries().ListIndustries(kRep, {}, absl::Now())->industries_size(), 1);
  ASSERT_TRUE(SetPolicy(7, 14).ok());
  EXPECT_EQ(engine()->queries().GetPoolPolicy(kRep, {}, absl::Now())->daily_claim_limit(), 7);
  EXPECT_EQ(Checksum(), RebuiltChecksum());
  Open();
  EXPECT_EQ(engine()->queries().GetPoolPolicy(kRep, {}, absl::Now())->return_after_days(), 14);
}


// The settings row holds maps (per-team and per-user pool overrides): written with their
// entries in whatever order the in-memory map iterates, the live row and a rebuilt one
// differed byte for byte and `crmctl verify --projections` reported a mismatch.
TEST_F(PoolEngineTest, PoolOverridesAreStoredInOneByteOrderSoLiveEqualsRebuild) {
  v1::UpdatePoolPolicyRequest req;
  req.mutable_policy()->set_daily_claim_limit(5);
  req.mutable_policy()->set_return_after_days(30);
  for (int i = 0; i < 16; ++i) {
    (*req.mutable_policy()->mutable_team_return_after_days())[absl::StrCat("team-", i)] = 10 + i;
    (*req.mutable_policy()->mutable_user_daily_claim_limit())[absl::StrCat("user-", i)] = 1 + i;
  }
  ASSERT_TRUE(Call(&engine()->settings(), &SettingsCommands::UpdatePoolPolicy, kAdmin, req).ok());
  std::string raw;
  ASSERT_TRUE(db()->db()->Get(rocksdb::ReadOptions(), rows::kSettings, &raw).ok());
  CustomerSettings stored;
  ASSERT_TRUE(stored.ParseFromString(raw));
  EXPECT_EQ(stored.pool_policy().team_return_after_days_size(), 16);
  EXPECT_EQ(raw, projection::DeterministicBytes(stored)) << "the row's map entries are not in key order";
  EXPECT_EQ(Checksum(), RebuiltChecksum());
}

// Crashes between the two writes of a merge, an unmerge and a lead conversion: the restart's
// process managers (CustomerEngine::CompletePendingSteps) write the second step before the
// engine takes commands, and the client's retry with the same request_id is a repeat.

// The event types `name` (customers/{id} or leads/{id}) has in the log, short names.
std::vector<std::string> LoggedTypes(eventlog::Log& log, const std::string& name) {
  auto types = eventlog::testing::EventTypesOf(log, kTopic, name.substr(name.find('/') + 1));
  EXPECT_TRUE(types.ok()) << types.status();
  std::vector<std::string> out;
  for (const auto& t : types.ok() ? *types : std::vector<std::string>()) out.push_back(t.substr(t.rfind('.') + 1));
  return out;
}

// The projection's pm/ rows (second steps still to write): key -> value.
std::map<std::string, std::string> PendingSteps(projection::ProjectionDb& db) {
  std::map<std::string, std::string> out;
  std::unique_ptr<rocksdb::Iterator> it(db.db()->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(rows::kPendingSteps); it->Valid() && it->key().starts_with(rows::kPendingSteps); it->Next()) {
    out[it->key().ToString()] = it->value().ToString();
  }
  return out;
}

// The envelope of version `version` of aggregate `id`, from the projection's history rows.
common::v1::EventEnvelope HistoryEnvelope(projection::ProjectionDb& db, const std::string& id, int64_t version) {
  std::string raw;
  EXPECT_TRUE(db.db()->Get(rocksdb::ReadOptions(), rows::History(id, version), &raw).ok()) << id << " v" << version;
  common::v1::EventEnvelope env;
  EXPECT_TRUE(env.ParseFromString(raw));
  return env;
}

class LeadEngineTest : public PoolEngineTest {
 protected:
  absl::StatusOr<v1::Lead> NewLead(const Caller& c, const std::string& phone, const std::string& rid = "") {
    v1::CreateLeadRequest req;
    req.set_request_id(rid);
    auto* l = req.mutable_lead();
    l->set_contact_name("王经理");
    l->set_company("云帆贸易");
    l->set_title("采购总监");
    l->set_phone(phone);
    l->set_source_channel(v1::SOURCE_CHANNEL_WEBSITE);
    l->set_need("门店收银系统 200 套");
    return Call(&engine()->leads(), &LeadCommands::CreateLead, c, req);
  }
  absl::StatusOr<v1::ConvertLeadResponse> Convert(const Caller& c, const std::string& name,
                                                  const std::string& rid = "") {
    v1::ConvertLeadRequest req;
    req.set_name(name);
    req.set_request_id(rid);
    req.set_create_opportunity(true);
    req.set_opportunity_name("收银系统一期");
    req.set_expected_amount_minor(12000000);
    return Call(engine(), &CustomerEngine::ConvertLead, c, req);
  }
};

TEST_F(LeadEngineTest, LeadAndSettingsRepliesEqualWhatReadsReturnAfterOneReadFoldAndSeal) {
  using Counts = std::vector<int64_t>;  // reads, folds, seals, appends, keys still held
  auto delta = [](const kernel::StoreCounters& a, const kernel::StoreCounters& b) {
    return Counts{b.states() - a.states(), b.folds - a.folds, b.seals - a.seals, b.appends - a.appends,
                  b.keys_in_flight};
  };
  auto same_as_get = [&](const v1::Lead& reply) {
    v1::GetLeadRequest get;
    get.set_name(reply.name());
    auto got = engine()->queries().GetLead(kRep, get, absl::Now() + absl::Seconds(5));
    ASSERT_TRUE(got.ok()) << got.status();
    got->set_consistency_token(reply.consistency_token());
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*got, reply)) << got->DebugString() << reply.DebugString();
  };
  kernel::StoreCounters before = engine()->WriteCounters();
  auto lead = NewLead(kRep, "13911112222", "lead-1");
  ASSERT_TRUE(lead.ok()) << lead.status();
  EXPECT_EQ(delta(before, engine()->WriteCounters()), (Counts{1, 1, 1, 1, 0}));
  same_as_get(*lead);
  v1::QualifyLeadRequest q;
  q.set_name(lead->name());
  auto qualified = Call(&engine()->leads(), &LeadCommands::QualifyLead, kRep, q);
  ASSERT_TRUE(qualified.ok()) << qualified.status();
  same_as_get(*qualified);

  // Settings: the reply is the store's fold of the singleton; the row the projection folds by
  // hand must be the same, or the next write's version and hash chain would not continue it.
  for (int32_t limit : {3, 5}) {
    auto set = SetPolicy(limit, 30);
    ASSERT_TRUE(set.ok()) << set.status();
    v1::GetPoolPolicyRequest get;
    auto got = engine()->queries().GetPoolPolicy(kAdmin, get, absl::Now() + absl::Seconds(5));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*got, *set)) << got->DebugString() << set->DebugString();
    EXPECT_EQ(got->daily_claim_limit(), limit);
  }
  auto row = ReadSettings(db()->db());
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_EQ(row->version(), 2);
  EXPECT_FALSE(row->last_hash().empty());
}

TEST_F(LeadEngineTest, ConvertingANewLeadCreatesTheCustomerWithItsContact) {
  auto lead = NewLead(kRep, "13911112222");
  ASSERT_TRUE(lead.ok()) << lead.status();
  EXPECT_EQ(lead->owner_id(), "u1");
  v1::QualifyLeadRequest q;
  q.set_name(lead->name());
  ASSERT_TRUE(Call(&engine()->leads(), &LeadCommands::QualifyLead, kRep, q).ok());
  auto r = Convert(kRep, lead->name(), "conv-1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->customer_created());
  EXPECT_EQ(r->lead().status(), v1::LEAD_STATUS_CONVERTED);
  EXPECT_EQ(r->lead().customer(), r->customer().name());
  EXPECT_EQ(r->customer().display_name(), "云帆贸易");
  EXPECT_EQ(r->customer().owner_id(), "u1");
  EXPECT_EQ(r->customer().lifecycle_status(), v1::LIFECYCLE_STATUS_INTENT);
  ASSERT_EQ(r->customer().contacts_size(), 1);
  EXPECT_EQ(r->customer().contacts(0).name(), "王经理");
  EXPECT_TRUE(r->customer().contacts(0).primary());

  auto again = Convert(kRep, lead->name(), "conv-1");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->customer().name(), r->customer().name()) << "a retry converts once";
  EXPECT_EQ(GetErrorInfo(Convert(kRep, lead->name()).status())->reason(), "LEAD_CLOSED");
  v1::ListCustomersRequest all;
  EXPECT_EQ(engine()->queries().List(kAdmin, all, absl::Now() + absl::Seconds(5))->customers_size(), 1);
  EXPECT_EQ(Checksum(), RebuiltChecksum());
}

// UpdateLead, AssignLead and ReleaseLead had tests at the domain level only; these go through
// the engine the gRPC service calls, and read the events back from the log.
TEST_F(LeadEngineTest, UpdateAssignAndReleaseGoThroughTheEngineAndTheLog) {
  auto lead = NewLead(kRep, "13911115555");
  ASSERT_TRUE(lead.ok()) << lead.status();
  const std::string id = lead->name().substr(std::string("leads/").size());

  // UpdateLead: the fields of the mask; bad values and fields name the field; others refused
  v1::UpdateLeadRequest up;
  up.mutable_lead()->set_name(lead->name());
  up.mutable_lead()->set_need("门店收银系统 300 套");
  up.mutable_update_mask()->add_paths("need");
  EXPECT_EQ(Call(&engine()->leads(), &LeadCommands::UpdateLead, kRep2, up).status().code(),
            absl::StatusCode::kPermissionDenied);
  auto updated = Call(&engine()->leads(), &LeadCommands::UpdateLead, kRep, up);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->need(), "门店收银系统 300 套");
  EXPECT_EQ(updated->company(), "云帆贸易") << "outside the mask: kept";
  up.mutable_update_mask()->set_paths(0, "owner_id");
  EXPECT_EQ(FieldOf(Call(&engine()->leads(), &LeadCommands::UpdateLead, kRep, up).status()), "update_mask");
  up.mutable_update_mask()->set_paths(0, "email");
  up.mutable_lead()->set_email("not-an-email");
  EXPECT_EQ(FieldOf(Call(&engine()->leads(), &LeadCommands::UpdateLead, kRep, up).status()), "lead.email");
  up.mutable_lead()->set_email("wang@example.com");
  up.mutable_lead()->set_etag("1");  // stale: the update made it 2
  EXPECT_EQ(Call(&engine()->leads(), &LeadCommands::UpdateLead, kRep, up).status().code(), absl::StatusCode::kAborted);
  up.mutable_lead()->set_name("leads/0190a0a0-0000-7000-8000-000000000000");
  up.mutable_lead()->clear_etag();
  EXPECT_EQ(Call(&engine()->leads(), &LeadCommands::UpdateLead, kRep, up).status().code(), absl::StatusCode::kNotFound);

  // AssignLead: a manager within the team; a rep or another team refused; owner_id required
  v1::AssignLeadRequest assign;
  assign.set_name(lead->name());
  assign.set_owner_id("u2");
  EXPECT_EQ(Call(&engine()->leads(), &LeadCommands::AssignLead, kRep, assign).status().code(),
            absl::StatusCode::kPermissionDenied);
  assign.set_team_id("west");
  EXPECT_EQ(Call(&engine()->leads(), &LeadCommands::AssignLead, kManager, assign).status().code(),
            absl::StatusCode::kPermissionDenied);
  assign.clear_team_id();
  assign.clear_owner_id();
  EXPECT_EQ(FieldOf(Call(&engine()->leads(), &LeadCommands::AssignLead, kManager, assign).status()), "owner_id");
  assign.set_owner_id("u2");
  auto assigned = Call(&engine()->leads(), &LeadCommands::AssignLead, kManager, assign);
  ASSERT_TRUE(assigned.ok()) << assigned.status();
  EXPECT_EQ(assigned->owner_id(), "u2");
  EXPECT_EQ(assigned->team_id(), "east");
  // ... and now the first rep may no longer edit it
  up.mutable_lead()->set_name(lead->name());
  EXPECT_EQ(Call(&engine()->leads(), &LeadCommands::UpdateLead, kRep, up).status().code(),
            absl::StatusCode::kPermissionDenied);

  // ReleaseLead: by its owner, into the pool; releasing a pool lead is a broken rule
  v1::ReleaseLeadRequest release;
  release.set_name(lead->name());
  release.set_reason("联系不上");
  EXPECT_EQ(Call(&engine()->leads(), &LeadCommands::ReleaseLead, kRep, release).status().code(),
            absl::StatusCode::kPermissionDenied);
  release.set_reason(std::string(501, 'x'));
  EXPECT_EQ(FieldOf(Call(&engine()->leads(), &LeadCommands::ReleaseLead, kRep2, release).status()), "reason");
  release.set_reason("联系不上");
  auto released = Call(&engine()->leads(), &LeadCommands::ReleaseLead, kRep2, release);
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_TRUE(released->in_pool());
  EXPECT_EQ(released->owner_id(), "");
  EXPECT_EQ(GetErrorInfo(Call(&engine()->leads(), &LeadCommands::ReleaseLead, kRep2, release).status())->reason(),
            "IN_POOL");
  v1::ListLeadsRequest pool;
  pool.set_filter("in_pool = true");
  auto listed = engine()->queries().ListLeads(kRep, pool, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->leads_size(), 1);
  EXPECT_EQ(listed->leads(0).name(), lead->name());

  auto types = eventlog::testing::EventTypesOf(log(), kTopic, id);
  ASSERT_TRUE(types.ok()) << types.status();
  EXPECT_EQ(*types, (std::vector<std::string>{"crm.customers.v1.LeadCreated", "crm.customers.v1.LeadUpdated",
                                              "crm.customers.v1.LeadAssigned", "crm.customers.v1.LeadReleased"}));
  EXPECT_EQ(Checksum(), RebuiltChecksum());
}

TEST_F(LeadEngineTest, ALeadMatchingACustomerConvertsIntoItAndFillsOnlyEmptyFields) {
  auto existing = *Create(kRep, "云帆（老客户）", "13911113333");
  auto lead = *NewLead(kRep, "+86 139 1111 3333");
  auto r = Convert(kRep, lead.name());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->customer_created());
  EXPECT_EQ(r->customer().name(), existing.name());
  EXPECT_EQ(r->customer().display_name(), "云帆（老客户）") << "not overwritten";
  EXPECT_EQ(r->customer().source_channel(), v1::SOURCE_CHANNEL_WEBSITE) << "was empty: filled";
  EXPECT_EQ(r->customer().notes(), "门店收银系统 200 套");
  EXPECT_EQ(r->customer().contacts_size(), 1);

  // Another rep's customer: the rep may not convert into it; a manager may.
  auto theirs = *Create(kRep2, "别人的客户", "13911114444");
  auto lead2 = *NewLead(kRep, "13911114444");
  auto refused = Convert(kRep, lead2.name());
  EXPECT_EQ(GetErrorInfo(refused.status())->reason(), "DUPLICATE_CUSTOMER");
  EXPECT_EQ(engine()->queries().List(kAdmin, {}, absl::Now() + absl::Seconds(5))->customers_size(), 2) << "nothing written";
  auto by_manager = Convert(kManager, lead2.name());
  ASSERT_TRUE(by_manager.ok()) << by_manager.status();
  EXPECT_EQ(by_manager->customer().name(), theirs.name());
  EXPECT_EQ(Checksum(), RebuiltChecksum());
}

// The conversion writes the customer, then the lead's LeadConverted.
TEST_F(LeadEngineTest, ConvertCrashBetweenWrites_RestartCompletesIt_SameRequestIdIsARepeat) {
  auto lead = NewLead(kRep, "13911112222");
  ASSERT_TRUE(lead.ok()) << lead.status();
  RefuseNext(v1::LeadConverted::descriptor()->full_name());
  auto crashed = Convert(kRep, lead->name(), "conv-crash");
  EXPECT_EQ(crashed.status().code(), absl::StatusCode::kUnavailable) << crashed.status();
  Restart("after-crash");

  // Completed on restart, without the client: each write once, the lead converted into the
  // customer the first write created, with the opportunity the request asked for.
  const std::string lead_id = lead->name().substr(std::string("leads/").size());
  const std::string customer_id = DerivedId(lead_id, "customer");
  const std::string customer = absl::StrCat("customers/", customer_id);
  EXPECT_EQ(LoggedTypes(log(), customer), (std::vector<std::string>{"CustomerCreated", "ContactAdded"}));
  EXPECT_EQ(LoggedTypes(log(), lead->name()), (std::vector<std::string>{"LeadCreated", "LeadConverted"}));
  v1::GetLeadRequest get;
  get.set_name(lead->name());
  auto converted = engine()->queries().GetLead(kRep, get, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(converted.ok()) << converted.status();
  EXPECT_EQ(converted->status(), v1::LEAD_STATUS_CONVERTED);
  EXPECT_EQ(converted->customer(), customer);
  const common::v1::EventEnvelope first = HistoryEnvelope(*db(), customer_id, 1);
  const common::v1::EventEnvelope second = HistoryEnvelope(*db(), lead_id, 2);
  v1::LeadConverted payload;
  ASSERT_TRUE(second.payload().UnpackTo(&payload));
  EXPECT_EQ(payload.customer_id(), customer_id);
  EXPECT_TRUE(payload.customer_created());
  EXPECT_TRUE(payload.opportunity_requested());
  EXPECT_EQ(payload.opportunity_name(), "收银系统一期");
  EXPECT_EQ(payload.expected_amount_minor(), 12000000);
  EXPECT_EQ(second.correlation_id(), "conv-crash");
  EXPECT_EQ(second.causation_id(), first.event_id());
  EXPECT_EQ(second.actor().user_id(), kRep.user_id);
  EXPECT_EQ(second.actor().source(), common::v1::ACTOR_SOURCE_SYSTEM);
  EXPECT_TRUE(PendingSteps(*db()).empty());
  EXPECT_EQ(RebuiltChecksum(), Checksum());

  // The client's retry with the same request_id: the completed result, nothing written.
  const std::string before = Checksum();
  auto same = Convert(kRep, lead->name(), "conv-crash");
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->lead().status(), v1::LEAD_STATUS_CONVERTED);
  EXPECT_EQ(same->lead().customer(), customer);
  EXPECT_EQ(same->customer().name(), customer);
  EXPECT_TRUE(same->customer_created());
  EXPECT_EQ(same->customer().contacts_size(), 1);
  EXPECT_EQ(Checksum(), before);
  EXPECT_EQ(LoggedTypes(log(), customer), (std::vector<std::string>{"CustomerCreated", "ContactAdded"}));
  EXPECT_EQ(LoggedTypes(log(), lead->name()), (std::vector<std::string>{"LeadCreated", "LeadConverted"}));
  v1::ListCustomersRequest list;
  EXPECT_EQ(engine()->queries().List(kRep, list, absl::Now() + absl::Seconds(5))->customers_size(), 1);
}

// A crash while the restart completes the conversion: the next restart completes it. Until
// then, the client's retry with the same request_id completes it first and is answered with it.
TEST_F(LeadEngineTest, ConvertCrashDuringCompletion_NextRestartOrTheSameRequestCompletesIt) {
  for (const bool client_first : {false, true}) {
    SCOPED_TRACE(client_first ? "the client's retry first" : "the next restart first");
    auto lead = NewLead(kRep, client_first ? "13911113333" : "13911112222");
    ASSERT_TRUE(lead.ok()) << lead.status();
    const std::string rid = absl::StrCat("conv-", client_first);
    RefuseNext(v1::LeadConverted::descriptor()->full_name());
    EXPECT_EQ(Convert(kRep, lead->name(), rid).status().code(), absl::StatusCode::kUnavailable);
    RestartRefusing(absl::StrCat("refused-", client_first), v1::LeadConverted::descriptor()->full_name());
    ASSERT_NE(engine(), nullptr) << "a step the log refuses does not stop the engine from opening";
    EXPECT_EQ(LoggedTypes(log(), lead->name()), (std::vector<std::string>{"LeadCreated"}));
    EXPECT_EQ(PendingSteps(*db()).size(), 1u);
    EXPECT_EQ(RebuiltChecksum(), Checksum());

    if (client_first) {
      auto same = Convert(kRep, lead->name(), rid);
      ASSERT_TRUE(same.ok()) << same.status();
      EXPECT_EQ(same->lead().status(), v1::LEAD_STATUS_CONVERTED);
      EXPECT_TRUE(same->customer_created());
    }
    Restart(absl::StrCat("completed-", client_first));
    EXPECT_EQ(LoggedTypes(log(), lead->name()), (std::vector<std::string>{"LeadCreated", "LeadConverted"}));
    EXPECT_TRUE(PendingSteps(*db()).empty());
    EXPECT_EQ(RebuiltChecksum(), Checksum());
    auto same = Convert(kRep, lead->name(), rid);
    ASSERT_TRUE(same.ok()) << same.status();
    EXPECT_EQ(same->lead().status(), v1::LEAD_STATUS_CONVERTED);
    EXPECT_EQ(LoggedTypes(log(), lead->name()), (std::vector<std::string>{"LeadCreated", "LeadConverted"}));
  }
}

TEST_F(LeadEngineTest, PoolLeadsGoToExactlyOneClaimer) {
  for (int round = 0; round < 10; ++round) {
    auto lead = *NewLead(Caller{"mkt", "service", "east"}, absl::StrCat("1381111000", round));
    ASSERT_TRUE(lead.in_pool());
    std::atomic<int> won{0};
    std::vector<std::thread> reps;
    for (const Caller& who : {kRep, kRep2}) {
      reps.emplace_back([&, who] {
        v1::ClaimLeadRequest req;
        req.set_name(lead.name());
        if (Call(&engine()->leads(), &LeadCommands::ClaimLead, who, req).ok()) ++won;
      });
    }
    for (auto& t : reps) t.join();
    EXPECT_EQ(won.load(), 1);
  }
  v1::ListLeadsRequest pool;
  pool.set_filter("in_pool = true");
  EXPECT_EQ(engine()->queries().ListLeads(kRep, pool, absl::Now() + absl::Seconds(5))->leads_size(), 0);
  v1::ListLeadsRequest mine;
  mine.set_filter("owner_id = \"u1\"");
  auto listed = engine()->queries().ListLeads(kManager, mine, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(listed.ok()) << listed.status();
  v1::ListLeadsRequest theirs;
  theirs.set_filter("owner_id = \"u2\"");
  EXPECT_EQ(listed->total_size() + engine()->queries().ListLeads(kManager, theirs, absl::Now() + absl::Seconds(5))->total_size(), 10);
  v1::ListLeadsRequest bad;
  bad.set_filter("colour = red");
  EXPECT_EQ(FieldOf(engine()->queries().ListLeads(kRep, bad, absl::Now()).status()), "filter");
  bad.set_filter("owner_id = \"u1\" OR 1=1");
  EXPECT_EQ(FieldOf(engine()->queries().ListLeads(kManager, bad, absl::Now()).status()), "filter");
}

TEST_F(LeadEngineTest, LeadPagesAreNewestFirstForEveryRoleAndFilter) {
  std::vector<std::string> names;
  const Caller market{"mkt", "service", "east"};
  for (int i = 0; i < 14; ++i) {
    const Caller& who = i % 3 == 0 ? kRep : i % 3 == 1 ? kRep2 : market;  // market's leads go to the pool
    auto l = NewLead(who, absl::StrCat("1382222", absl::Dec(i, absl::kZeroPad4)));
    ASSERT_TRUE(l.ok()) << l.status();
    names.push_back(l->name());
  }
  v1::DisqualifyLeadRequest dq;
  dq.set_name(names[2]);  // a pool lead leaves the pool
  dq.set_reason("空号");
  ASSERT_TRUE(Call(&engine()->leads(), &LeadCommands::DisqualifyLead, kAdmin, dq).ok());
  v1::ClaimLeadRequest claim;
  claim.set_name(names[5]);
  ASSERT_TRUE(Call(&engine()->leads(), &LeadCommands::ClaimLead, kRep, claim).ok());

  struct Case {
    std::string filter;
    std::function<bool(const v1::Lead&)> pass;
    bool counted;
  };
  const std::vector<Case> cases = {
      {"", [](const v1::Lead&) { return true; }, true},
      {"in_pool = true", [](const v1::Lead& l) { return l.in_pool(); }, true},
      {"owner_id = \"u1\"", [](const v1::Lead& l) { return l.owner_id() == "u1"; }, true},
      {"status = LEAD_STATUS_DISQUALIFIED", [](const v1::Lead& l) { return l.status() == v1::LEAD_STATUS_DISQUALIFIED; },
       false},
  };
  for (const auto& k : cases) {
    for (const Caller& who : {kAdmin, kManager, kRep, kRep2}) {
      std::vector<std::string> want;
      for (const auto& n : names) {
        v1::GetLeadRequest g;
        g.set_name(n);
        auto l = engine()->queries().GetLead(who, g, absl::Now());
        if (l.ok() && k.pass(*l)) want.push_back(n);
      }
      std::sort(want.rbegin(), want.rend());  // newest first: UUIDv7 ids descending
      for (int size : {1, 3, 100}) {
        v1::ListLeadsRequest req;
        req.set_filter(k.filter);
        req.set_page_size(size);
        std::vector<std::string> got;
        for (int page = 0; page < 100; ++page) {
          auto r = engine()->queries().ListLeads(who, req, absl::Now() + absl::Seconds(5));
          ASSERT_TRUE(r.ok()) << r.status();
          if (k.counted || page == 0) {
            EXPECT_EQ(r->total_size(), static_cast<int32_t>(want.size())) << who.user_id << " " << k.filter;
          }
          if (page > 0) {
            EXPECT_GT(r->leads_size(), 0);
          }
          for (const auto& l : r->leads()) got.push_back(l.name());
          if (r->next_page_token().empty()) break;
          req.set_page_token(r->next_page_token());
        }
        EXPECT_EQ(got, want) << who.user_id << " " << k.filter << " " << size;
      }
    }
  }
  EXPECT_EQ(Checksum(), RebuiltChecksum());
}

}  // namespace
}  // namespace crm::customers

namespace crm::customers {
namespace {

class MergeEngineTest : public PoolEngineTest {
 protected:
  absl::StatusOr<v1::MergeCustomersResponse> Merge(const Caller& c, const std::string& survivor,
                                                   const std::string& merged, const std::string& rid = "") {
    v1::MergeCustomersRequest req;
    req.set_survivor(survivor);
    req.set_merged(merged);
    req.set_request_id(rid);
    return Call(engine(), &CustomerEngine::MergeCustomers, c, req);
  }
  absl::StatusOr<v1::MergeCustomersResponse> Unmerge(const Caller& c, const std::string& survivor,
                                                     const std::string& merged, const std::string& rid = "") {
    v1::UnmergeCustomersRequest req;
    req.set_survivor(survivor);
    req.set_merged(merged);
    req.set_request_id(rid);
    return Call(engine(), &CustomerEngine::UnmergeCustomers, c, req);
  }
  absl::StatusOr<v1::FindDuplicatesResponse> Find(const Caller& c, v1::FindDuplicatesRequest req) {
    return engine()->queries().FindDuplicates(c, req, absl::Now() + absl::Seconds(5));
  }
  // Two customers whose merge (request "merge-crash") stopped after the survivor's
  // CustomersMerged, reopened on a log that refused the CustomerMergedInto again: one merge step
  // pending.
  std::pair<v1::Customer, v1::Customer> HalfDoneMerge() {
    auto s = *Create(kRep, "星河科技", "13800000001");
    auto m = *Create(kRep, "星河科技有限公司", "", "li@xinghe.cn");
    RefuseNext(v1::CustomerMergedInto::descriptor()->full_name());
    EXPECT_EQ(Merge(kRep, s.name(), m.name(), "merge-crash").status().code(), absl::StatusCode::kUnavailable);
    RestartRefusing("refused", v1::CustomerMergedInto::descriptor()->full_name());
    return {s, m};
  }
};

TEST_F(MergeEngineTest, FindDuplicatesMatchesNormalisedPhoneEmailAndCompanyName) {
  auto a = *Create(kRep, "深圳星河科技有限公司", "13800000001", "li@xinghe.cn");
  auto b = *Create(kRep2, "深圳 星河科技（有限责任公司）", "13800000002");
  auto c = *Create(kRep, "其他公司", "13800000003", "");
  v1::FindDuplicatesRequest probe;
  probe.set_display_name("深圳星河科技股份有限公司");
  probe.set_phone("+86 138-0000-0003");
  auto r = Find(kRep, probe);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->normalized_company_name(), "深圳星河科技");
  ASSERT_EQ(r->matches_size(), 3);
  EXPECT_EQ(r->matches(0).customer().name(), c.name());
  EXPECT_EQ(r->matches(0).matched_on(0), "phone");
  // kRep does not own b: the match names it and its owner, without its data.
  for (const auto& m : r->matches()) {
    if (m.customer().name() != b.name()) continue;
    EXPECT_FALSE(m.visible());
    EXPECT_EQ(m.customer().owner_id(), "u2");
    EXPECT_TRUE(m.customer().phone().empty());
  }
  v1::FindDuplicatesRequest of;
  of.set_customer(a.name());
  r = Find(kManager, of);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->matches_size(), 1) << "not itself";
  EXPECT_EQ(r->matches(0).customer().name(), b.name());
  EXPECT_TRUE(r->matches(0).visible());
  v1::FindDuplicatesRequest bad;
  bad.set_phone("12345");
  EXPECT_EQ(FieldOf(Find(kRep, bad).status()), "phone");
  EXPECT_EQ(FieldOf(Find(kRep, v1::FindDuplicatesRequest()).status()), "display_name");
}

TEST_F(MergeEngineTest, MergeThenUnmergeRestoresBothAndMatchesARebuild) {
  auto s = *Create(kRep, "星河科技", "13800000001");
  auto m = *Create(kRep, "星河科技有限公司", "", "li@xinghe.cn");
  v1::AddContactRequest ac;
  ac.set_parent(m.name());
  ac.mutable_contact()->set_name("李雷");
  ac.mutable_contact()->set_phone("13900000009");
  ASSERT_TRUE(Call(&engine()->customer_commands(), &CustomerCommands::AddContact, kRep, ac).ok());
  v1::CreateFollowUpRequest f;
  f.set_parent(m.name());
  f.mutable_follow_up()->set_channel(v1::FOLLOW_UP_CHANNEL_VISIT);
  f.mutable_follow_up()->set_summary("拜访");
  clock().Advance(absl::Hours(1));
  ASSERT_TRUE(Call(&engine()->customer_commands(), &CustomerCommands::CreateFollowUp, kRep, f).ok());
  const auto s_before = *Get(kRep, s.name());
  const auto m_before = *Get(kRep, m.name());

  auto merged = Merge(kRep, s.name(), m.name(), "merge-1");
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->survivor().email(), "li@xinghe.cn");
  EXPECT_EQ(merged->survivor().contacts_size(), 1);
  EXPECT_EQ(merged->survivor().follow_up_count(), 1);
  ASSERT_EQ(merged->survivor().merged_from_size(), 1);
  ASSERT_EQ(merged->survivor().field_origins_size(), 1);
  EXPECT_EQ(merged->survivor().field_origins(0).field(), "email");
  EXPECT_EQ(merged->merged().merged_into(), s.name());
  v1::ListFollowUpsRequest lf;
  lf.set_parent(s.name());
  EXPECT_EQ(engine()->queries().ListFollowUps(kRep, lf, absl::Now() + absl::Seconds(5))->follow_ups_size(), 1);
  // The merged customer is out of lists and duplicate searches and refuses changes; its email
  // now belongs to the survivor.
  v1::ListCustomersRequest list;
  EXPECT_EQ(engine()->queries().List(kRep, list, absl::Now() + absl::Seconds(5))->customers_size(), 1);
  v1::FindDuplicatesRequest probe;
  probe.set_email("LI@xinghe.cn");
  auto dups = Find(kRep, probe);
  ASSERT_EQ(dups->matches_size(), 1);
  EXPECT_EQ(dups->matches(0).customer().name(), s.name());
  EXPECT_EQ(Create(kRep2, "x", "", "li@xinghe.cn").status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Release(kRep, m.name()).status().code(), absl::StatusCode::kFailedPrecondition);
  // A retry with the same request id changes nothing.
  const std::string after_merge = Checksum();
  ASSERT_TRUE(Merge(kRep, s.name(), m.name(), "merge-1").ok());
  EXPECT_EQ(Checksum(), after_merge);
  EXPECT_EQ(RebuiltChecksum(), after_merge);

  auto undone = Unmerge(kRep, s.name(), m.name());
  ASSERT_TRUE(undone.ok()) << undone.status();
  auto s_after = *Get(kRep, s.name());
  auto m_after = *Get(kRep, m.name());
  for (auto* c : {&s_after, &m_after}) {
    c->clear_etag();
    c->clear_update_time();
  }
  auto sb = s_before, mb = m_before;
  for (auto* c : {&sb, &mb}) {
    c->clear_etag();
    c->clear_update_time();
  }
  EXPECT_EQ(s_after.DebugString(), sb.DebugString());
  EXPECT_EQ(m_after.DebugString(), mb.DebugString());
  EXPECT_EQ(engine()->queries().List(kRep, list, absl::Now() + absl::Seconds(5))->customers_size(), 2);
  EXPECT_EQ(engine()->queries().ListFollowUps(kRep, lf, absl::Now() + absl::Seconds(5))->follow_ups_size(), 0);
  EXPECT_EQ(RebuiltChecksum(), Checksum());
  auto again = Unmerge(kRep, s.name(), m.name());
  EXPECT_EQ(GetErrorInfo(again.status())->reason(), "NOT_MERGED");
}

TEST_F(MergeEngineTest, ConcurrentOppositeMergesOfOnePairDoNotDeadlockAndOneWins) {
  auto a = *Create(kRep, "A", "13800000001");
  auto b = *Create(kRep, "B", "13800000002");
  absl::StatusOr<v1::MergeCustomersResponse> r1, r2;
  std::thread t1([&] { r1 = Merge(kRep, a.name(), b.name()); });
  std::thread t2([&] { r2 = Merge(kRep, b.name(), a.name()); });
  t1.join();
  t2.join();
  EXPECT_NE(r1.ok(), r2.ok()) << r1.status() << " / " << r2.status();
  EXPECT_EQ(engine()->queries().List(kRep, v1::ListCustomersRequest(), absl::Now() + absl::Seconds(5))->customers_size(), 1);
  EXPECT_EQ(RebuiltChecksum(), Checksum());
}

TEST_F(MergeEngineTest, MergeCrashBetweenWrites_RestartCompletesIt_SameRequestIdIsARepeat) {
  auto s = *Create(kRep, "星河科技", "13800000001");
  auto m = *Create(kRep, "星河科技有限公司", "", "li@xinghe.cn");
  // The survivor's CustomersMerged is written; the process dies before the merged customer's
  // CustomerMergedInto.
  RefuseNext(v1::CustomerMergedInto::descriptor()->full_name());
  auto crashed = Merge(kRep, s.name(), m.name(), "merge-crash");
  EXPECT_EQ(crashed.status().code(), absl::StatusCode::kUnavailable) << crashed.status();
  Restart("after-crash");

  // Completed on restart: each write once, one customer listed.
  EXPECT_EQ(LoggedTypes(log(), s.name()), (std::vector<std::string>{"CustomerCreated", "CustomersMerged"}));
  EXPECT_EQ(LoggedTypes(log(), m.name()), (std::vector<std::string>{"CustomerCreated", "CustomerMergedInto"}));
  auto loser = *Get(kRep, m.name());
  EXPECT_EQ(loser.merged_into(), s.name());
  auto survivor = *Get(kRep, s.name());
  EXPECT_EQ(survivor.email(), "li@xinghe.cn");
  ASSERT_EQ(survivor.merged_from_size(), 1);
  const std::string merged_id = m.name().substr(std::string("customers/").size());
  const common::v1::EventEnvelope second = HistoryEnvelope(*db(), merged_id, 2);
  EXPECT_EQ(second.correlation_id(), "merge-crash");
  EXPECT_EQ(second.causation_id(), HistoryEnvelope(*db(), s.name().substr(10), 2).event_id());
  EXPECT_EQ(second.actor().source(), common::v1::ACTOR_SOURCE_SYSTEM);
  v1::ListCustomersRequest list;
  EXPECT_EQ(engine()->queries().List(kRep, list, absl::Now() + absl::Seconds(5))->customers_size(), 1);
  EXPECT_TRUE(PendingSteps(*db()).empty());
  EXPECT_EQ(RebuiltChecksum(), Checksum());

  // The client's retry with the same request_id: the completed result, nothing written.
  const std::string before = Checksum();
  auto retried = Merge(kRep, s.name(), m.name(), "merge-crash");
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->merged().merged_into(), s.name());
  EXPECT_EQ(retried->survivor().merged_from_size(), 1);
  EXPECT_EQ(Checksum(), before);
  EXPECT_EQ(LoggedTypes(log(), m.name()), (std::vector<std::string>{"CustomerCreated", "CustomerMergedInto"}));
}

TEST_F(MergeEngineTest, UnmergeCrashBetweenWrites_RestartCompletesIt_SameRequestIdIsARepeat) {
  auto s = *Create(kRep, "星河科技", "13800000001");
  auto m = *Create(kRep, "星河科技有限公司", "", "li@xinghe.cn");
  ASSERT_TRUE(Merge(kRep, s.name(), m.name(), "merge-1").ok());
  // The merged customer's CustomerUnmerged is written; the process dies before the survivor's
  // CustomerMergeUndone.
  RefuseNext(v1::CustomerMergeUndone::descriptor()->full_name());
  auto crashed = Unmerge(kRep, s.name(), m.name(), "unmerge-crash");
  EXPECT_EQ(crashed.status().code(), absl::StatusCode::kUnavailable) << crashed.status();
  Restart("after-crash");

  // Completed on restart: the survivor gave back the field it took, both listed.
  EXPECT_EQ(LoggedTypes(log(), s.name()),
            (std::vector<std::string>{"CustomerCreated", "CustomersMerged", "CustomerMergeUndone"}));
  EXPECT_EQ(LoggedTypes(log(), m.name()),
            (std::vector<std::string>{"CustomerCreated", "CustomerMergedInto", "CustomerUnmerged"}));
  auto survivor = *Get(kRep, s.name());
  EXPECT_EQ(survivor.merged_from_size(), 0);
  EXPECT_EQ(survivor.email(), "");
  EXPECT_EQ(Get(kRep, m.name())->email(), "li@xinghe.cn");
  v1::ListCustomersRequest list;
  EXPECT_EQ(engine()->queries().List(kRep, list, absl::Now() + absl::Seconds(5))->customers_size(), 2);
  EXPECT_TRUE(PendingSteps(*db()).empty());
  EXPECT_EQ(RebuiltChecksum(), Checksum());

  // The client's retry with the same request_id: the completed result, nothing written.
  const std::string before = Checksum();
  auto retried = Unmerge(kRep, s.name(), m.name(), "unmerge-crash");
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->survivor().merged_from_size(), 0);
  EXPECT_EQ(retried->survivor().email(), "");
  EXPECT_EQ(Checksum(), before);
}

// The pm/ rows count first steps against second steps, so the order in which a rebuild reads
// the two customers' partitions does not matter: the topic applied last partition first (a
// merged customer's steps before its survivor's, for pairs on partitions in that order) leaves
// the rows the live projection holds.
TEST_F(MergeEngineTest, PendingStepRowsDoNotDependOnThePartitionOrderARebuildReads) {
  for (int i = 0; i < 6; ++i) {
    auto s = *Create(kRep, absl::StrCat("S", i), absl::StrCat("1380000010", i));
    auto m = *Create(kRep, absl::StrCat("M", i), absl::StrCat("1380000020", i));
    ASSERT_TRUE(Merge(kRep, s.name(), m.name()).ok());
    ASSERT_TRUE(Unmerge(kRep, s.name(), m.name()).ok());
    ASSERT_TRUE(Merge(kRep, s.name(), m.name()).ok());
  }
  auto [s, m] = HalfDoneMerge();
  const auto live = PendingSteps(*db());
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live.begin()->first, rows::PendingMerge(s.name().substr(10), m.name().substr(10)));

  auto partitions = log().PartitionCount(kTopic);
  ASSERT_TRUE(partitions.ok()) << partitions.status();
  auto reversed = projection::ProjectionDb::Open({.path = dir() + "/reversed"});
  ASSERT_TRUE(reversed.ok()) << reversed.status();
  for (int32_t p = *partitions - 1; p >= 0; --p) {
    auto records = eventlog::ReadToEnd(log(), kTopic, {{p, 0}});
    ASSERT_TRUE(records.ok()) << records.status();
    if (records->empty()) continue;
    const absl::Status applied = (*reversed)->ApplyAndCommit(
        kTopic, *records, [&](const eventlog::Record& r, projection::Batch& b) {
          return ApplyCustomersRecord(**reversed, r, b);
        });
    ASSERT_TRUE(applied.ok()) << applied;
  }
  EXPECT_EQ(PendingSteps(**reversed), live);
}

// A step the restart could not write is written by the next scheduler run.
TEST_F(MergeEngineTest, AStepARestartCouldNotWriteCompletesAtTheNextSchedulerRun) {
  auto [s, m] = HalfDoneMerge();
  ASSERT_EQ(PendingSteps(*db()).size(), 1u);

  auto run = engine()->RunScheduler(clock().Now());
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->completed_steps, 1);
  EXPECT_EQ(LoggedTypes(log(), m.name()), (std::vector<std::string>{"CustomerCreated", "CustomerMergedInto"}));
  EXPECT_TRUE(PendingSteps(*db()).empty());
  EXPECT_EQ(RebuiltChecksum(), Checksum());
  run = engine()->RunScheduler(clock().Now());
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->completed_steps, 0);
}

// A half-done merge the user undid (an unmerge gives the survivor's copy back) is superseded:
// its second step is never written, whatever runs later.
TEST_F(MergeEngineTest, AHalfDoneMergeTheUserUnmergedIsNeverCompleted) {
  auto [s, m] = HalfDoneMerge();
  auto undone = Unmerge(kRep, s.name(), m.name(), "undo");
  ASSERT_TRUE(undone.ok()) << undone.status();
  EXPECT_EQ(undone->survivor().merged_from_size(), 0);

  auto run = engine()->RunScheduler(clock().Now());
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->completed_steps, 0);
  Restart("after-undo");
  EXPECT_EQ(LoggedTypes(log(), m.name()), (std::vector<std::string>{"CustomerCreated"}));
  EXPECT_EQ(LoggedTypes(log(), s.name()),
            (std::vector<std::string>{"CustomerCreated", "CustomersMerged", "CustomerMergeUndone"}));
  EXPECT_EQ(Get(kRep, m.name())->merged_into(), "");
  v1::ListCustomersRequest list;
  EXPECT_EQ(engine()->queries().List(kRep, list, absl::Now() + absl::Seconds(5))->customers_size(), 2);
  EXPECT_EQ(RebuiltChecksum(), Checksum());
}

// A crash while the restart completes the merge: the next restart completes it.
TEST_F(MergeEngineTest, MergeCrashDuringCompletion_NextRestartCompletesIt) {
  auto [s, m] = HalfDoneMerge();
  ASSERT_NE(engine(), nullptr) << "a step the log refuses does not stop the engine from opening";
  EXPECT_EQ(LoggedTypes(log(), m.name()), (std::vector<std::string>{"CustomerCreated"}));
  EXPECT_EQ(PendingSteps(*db()).size(), 1u);
  EXPECT_EQ(RebuiltChecksum(), Checksum());

  Restart("completed");
  EXPECT_EQ(LoggedTypes(log(), s.name()), (std::vector<std::string>{"CustomerCreated", "CustomersMerged"}));
  EXPECT_EQ(LoggedTypes(log(), m.name()), (std::vector<std::string>{"CustomerCreated", "CustomerMergedInto"}));
  EXPECT_EQ(Get(kRep, m.name())->merged_into(), s.name());
  EXPECT_TRUE(PendingSteps(*db()).empty());
  EXPECT_EQ(RebuiltChecksum(), Checksum());
  auto retried = Merge(kRep, s.name(), m.name(), "merge-crash");
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(LoggedTypes(log(), m.name()), (std::vector<std::string>{"CustomerCreated", "CustomerMergedInto"}));
}

}  // namespace
}  // namespace crm::customers

namespace crm::customers {
namespace {

class TagRuleEngineTest : public PoolEngineTest {
 protected:
  static v1::TagRule PhoneRule() {
    v1::TagRule r;
    r.set_id("active-intent");
    r.set_tag("高活跃意向客户");
    r.set_event_type("crm.customers.v1.FollowUpRecorded");
    r.set_measure(v1::TAG_RULE_MEASURE_COUNT);
    r.set_match_field("channel");
    r.set_match_value("FOLLOW_UP_CHANNEL_PHONE");
    r.set_window_days(30);
    r.set_threshold(3);
    r.set_enabled(true);
    return r;
  }
  void FollowUp(const std::string& name, v1::FollowUpChannel ch) {
    v1::CreateFollowUpRequest f;
    f.set_parent(name);
    f.mutable_follow_up()->set_channel(ch);
    f.mutable_follow_up()->set_summary("来电咨询");
    ASSERT_TRUE(Call(&engine()->customer_commands(), &CustomerCommands::CreateFollowUp, kRep, f).ok());
  }
  absl::StatusOr<v1::ListTagRulesResponse> SetRules(std::vector<v1::TagRule> rules) {
    v1::SetTagRulesRequest req;
    for (auto& r : rules) *req.add_rules() = r;
    return Call(&engine()->settings(), &SettingsCommands::SetTagRules, kAdmin, req);
  }
};

TEST_F(TagRuleEngineTest, PreviewListsWhomTheRuleWouldTagAndTheSchedulerTagsThenUntagsByEventTime) {
  auto hot = *Create(kRep, "热客户", "13800000001");
  auto warm = *Create(kRep, "温客户", "13800000002");
  for (int i = 0; i < 3; ++i) {
    clock().Advance(absl::Hours(24));
    FollowUp(hot.name(), v1::FOLLOW_UP_CHANNEL_PHONE);
    FollowUp(warm.name(), i == 0 ? v1::FOLLOW_UP_CHANNEL_PHONE : v1::FOLLOW_UP_CHANNEL_WECHAT);
  }
  v1::PreviewTagRuleRequest preview;
  *preview.mutable_rule() = PhoneRule();
  auto p = engine()->queries().PreviewTagRule(kAdmin, preview, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->total_hits(), 1);
  EXPECT_EQ(p->hits(0).customer(), hot.name());
  EXPECT_EQ(p->hits(0).measure(), 3);
  EXPECT_FALSE(p->hits(0).already_tagged());
  EXPECT_GE(p->events_scanned(), 8);
  preview.set_days(1);  // only the last day's follow-up
  EXPECT_EQ(engine()->queries().PreviewTagRule(kAdmin, preview, absl::Now() + absl::Seconds(5))->total_hits(), 0);

  ASSERT_TRUE(SetRules({PhoneRule()}).ok());
  auto run = engine()->RunScheduler(clock().Now());
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->tagged, 1);
  auto got = *Get(kRep, hot.name());
  ASSERT_EQ(got.rule_tags_size(), 1);
  EXPECT_EQ(got.rule_tags(0).tag(), "高活跃意向客户");
  EXPECT_EQ(Get(kRep, warm.name())->rule_tags_size(), 0);
  v1::ListCustomersRequest list;
  list.set_filter("tags:\"高活跃意向客户\"");
  EXPECT_EQ(engine()->queries().List(kRep, list, absl::Now() + absl::Seconds(5))->customers_size(), 1);
  EXPECT_EQ(engine()->RunScheduler(clock().Now())->tagged, 0) << "a second run changes nothing";

  // Just over 28 days on, the first follow-up left the 30-day window: 2 < 3.
  clock().Advance(absl::Hours(24 * 28) + absl::Minutes(1));
  run = engine()->RunScheduler(clock().Now());
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->untagged, 1);
  EXPECT_EQ(Get(kRep, hot.name())->rule_tags_size(), 0);
  EXPECT_EQ(RebuiltChecksum(), Checksum());
}

TEST_F(TagRuleEngineTest, ListTagRulesShowsTheRulesInForceToEveryRole) {
  auto none = engine()->queries().ListTagRules(kRep, v1::ListTagRulesRequest(), absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->rules_size(), 0);
  v1::TagRule off = PhoneRule();
  off.set_id("dormant");
  off.set_enabled(false);
  ASSERT_TRUE(SetRules({PhoneRule(), off}).ok());
  for (const Caller& who : {kRep, kManager, kAdmin}) {
    auto listed = engine()->queries().ListTagRules(who, v1::ListTagRulesRequest(), absl::Now() + absl::Seconds(5));
    ASSERT_TRUE(listed.ok()) << listed.status();
    ASSERT_EQ(listed->rules_size(), 2);
    EXPECT_EQ(listed->rules(0).id(), "active-intent");
    EXPECT_TRUE(listed->rules(0).enabled());
    EXPECT_EQ(listed->rules(0).threshold(), 3);
    EXPECT_EQ(listed->rules(1).id(), "dormant");
    EXPECT_FALSE(listed->rules(1).enabled());
  }
  // Replacing the list with none leaves none
  ASSERT_TRUE(SetRules({}).ok());
  EXPECT_EQ(engine()->queries().ListTagRules(kRep, v1::ListTagRulesRequest(), absl::Now() + absl::Seconds(5))->rules_size(), 0);
}

TEST_F(TagRuleEngineTest, SumRulesAndSwitchingARuleOffTakesItsTagsBack) {
  auto c = *Create(kRep, "大客户", "13800000003");
  for (int i = 0; i < 2; ++i) FollowUp(c.name(), v1::FOLLOW_UP_CHANNEL_VISIT);
  v1::TagRule many = PhoneRule();
  many.set_id("visited");
  many.set_tag("常拜访");
  many.clear_match_field();
  many.clear_match_value();
  many.set_window_days(0);
  many.set_threshold(2);
  ASSERT_TRUE(SetRules({many}).ok());
  EXPECT_EQ(engine()->RunScheduler(clock().Now())->tagged, 1);
  many.set_enabled(false);
  ASSERT_TRUE(SetRules({many}).ok());
  EXPECT_EQ(engine()->RunScheduler(clock().Now())->untagged, 1);
  EXPECT_EQ(Get(kRep, c.name())->rule_tags_size(), 0);

  v1::TagRule bad = many;
  bad.set_measure(v1::TAG_RULE_MEASURE_SUM);
  bad.set_sum_field("summary");
  EXPECT_EQ(FieldOf(SetRules({bad}).status()), "rules[0].sum_field");
  bad.set_sum_field("");
  bad.set_measure(v1::TAG_RULE_MEASURE_COUNT);
  bad.set_event_type("crm.nope.v1.Thing");
  EXPECT_EQ(FieldOf(SetRules({bad}).status()), "rules[0].event_type");
  bad = PhoneRule();
  bad.set_match_value("FOLLOW_UP_CHANNEL_FAX");
  EXPECT_EQ(FieldOf(SetRules({bad}).status()), "rules[0].match_value");
  EXPECT_EQ(FieldOf(SetRules({PhoneRule(), PhoneRule()}).status()), "rules[1].id");
}

// ListCustomers walks an index per order; paging through it must give exactly the customers
// a sort of all of them gives, for every order, direction, page size and role.
class ListEngineTest : public PoolEngineTest {
 protected:
  struct Row {
    std::string key, id, name;
    v1::Customer c;
  };
  // Every customer the test made, as the engine answers now.
  std::vector<v1::Customer> All() {
    std::vector<v1::Customer> out;
    for (const auto& n : names_) out.push_back(*Get(kAdmin, n));
    return out;
  }
  static std::string Key(const v1::Customer& c, const std::string& field) {
    if (field == "display_name") return c.display_name();
    if (field == "customer_number") return c.customer_number();
    return TimeSortKey(field == "update_time" ? c.update_time() : c.create_time());
  }
  std::vector<std::string> Expected(const Caller& who, const std::string& field, bool desc, bool show_deleted,
                                    absl::FunctionRef<bool(const v1::Customer&)> pass) {
    std::vector<std::pair<std::string, std::string>> rows;  // key, id
    for (const auto& c : All()) {
      if ((c.deleted() && !show_deleted) || !SeesRecord(who, c.owner_id(), c.team_id(), c.in_pool()) || !pass(c)) {
        continue;
      }
      rows.emplace_back(Key(c, field), c.name());
    }
    std::sort(rows.begin(), rows.end());
    if (desc) std::reverse(rows.begin(), rows.end());
    std::vector<std::string> out;
    for (auto& r : rows) out.push_back(r.second);
    return out;
  }
  // Pages through List; checks total_size on every page when `total` >= 0.
  std::vector<std::string> Pages(const Caller& who, v1::ListCustomersRequest req, int64_t total) {
    std::vector<std::string> out;
    for (int page = 0; page < 1000; ++page) {
      auto r = engine()->queries().List(who, req, absl::Now() + absl::Seconds(5));
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok()) break;
      if (total >= 0) {
        EXPECT_EQ(r->total_size(), total) << req.ShortDebugString();
      }
      // No page after the first is empty: a page that ends the list has no token.
      if (page > 0) {
        EXPECT_GT(r->customers_size(), 0) << req.ShortDebugString();
      }
      for (const auto& c : r->customers()) out.push_back(c.name());
      if (r->next_page_token().empty()) break;
      req.set_page_token(r->next_page_token());
    }
    return out;
  }
  void Make() {
    // Names that share prefixes and bytes, two customers per create time, updates that move
    // update_time and display_name, the recycle bin and the pool.
    const std::vector<std::string> names = {"a", "a b", "ab", "A", "张三", "张三丰", "b", "a", "", "Z"};
    for (int i = 0; i < 30; ++i) {
      v1::CreateCustomerRequest req;
      std::string n = names[i % names.size()];
      req.mutable_customer()->set_display_name(n.empty() ? "客户" : absl::StrCat(n, i % 3 ? "" : "-x"));
      if (i % 4 == 0) req.mutable_customer()->add_tags("vip");
      auto c = Sync(&CustomerCommands::Create, i % 3 == 2 ? kRep2 : kRep, req);
      ASSERT_TRUE(c.ok()) << c.status();
      names_.push_back(c->name());
      if (i % 2) clock().Advance(absl::Seconds(1));
    }
    for (int i = 0; i < 3; ++i) {
      v1::CreateCustomerRequest req;
      req.mutable_customer()->set_display_name(absl::StrCat("u3-", 2 - i));
      req.mutable_customer()->set_owner_id("u3");
      req.mutable_customer()->set_team_id("east");
      auto c = Sync(&CustomerCommands::Create, kAdmin, req);
      ASSERT_TRUE(c.ok()) << c.status();
      names_.push_back(c->name());
    }
    for (int i = 0; i < 30; i += 5) {
      v1::UpdateCustomerRequest up;
      up.mutable_customer()->set_name(names_[i]);
      up.mutable_customer()->set_display_name(absl::StrCat("renamed ", 30 - i));
      up.mutable_update_mask()->add_paths("display_name");
      ASSERT_TRUE(Sync(&CustomerCommands::Update, kAdmin, up).ok());
      clock().Advance(absl::Seconds(1));
    }
    for (int i = 1; i < 30; i += 7) {
      v1::DeleteCustomerRequest del;
      del.set_name(names_[i]);
      del.set_reason("test");
      ASSERT_TRUE(Sync(&CustomerCommands::Delete, kAdmin, del).ok());
    }
    for (int i = 3; i < 30; i += 6) {
      auto r = Release(kAdmin, names_[i]);
      ASSERT_TRUE(r.ok() || (i - 1) % 7 == 0) << i << " " << r.status();
    }
    ASSERT_TRUE(Claim(kRep2, names_[9]).ok());
  }
  std::vector<std::string> names_;
};

TEST_F(ListEngineTest, PagesGiveEveryOrderOfASortOfAll) {
  Make();
  const auto any = [](const v1::Customer&) { return true; };
  for (const std::string field : {"create_time", "update_time", "display_name", "customer_number"}) {
    for (bool desc : {false, true}) {
      for (int size : {1, 7, 100}) {
        for (bool deleted : {false, true}) {
          v1::ListCustomersRequest req;
          req.set_order_by(desc ? field + " desc" : field);
          req.set_page_size(size);
          req.set_show_deleted(deleted);
          for (const Caller& who : {kAdmin, kManager, kRep, kRep2}) {
            const auto want = Expected(who, field, desc, deleted, any);
            EXPECT_EQ(Pages(who, req, static_cast<int64_t>(want.size())), want)
                << who.user_id << " " << req.ShortDebugString();
          }
        }
      }
    }
  }
  EXPECT_EQ(RebuiltChecksum(), Checksum());
}

TEST_F(ListEngineTest, FiltersOnOwnerPoolAndTagsPageLikeTheSort) {
  Make();
  struct Case {
    std::string filter;
    std::function<bool(const v1::Customer&)> pass;
    bool counted;
  };
  const std::vector<Case> cases = {
      {"owner_id = \"u1\"", [](const v1::Customer& c) { return c.owner_id() == "u1"; }, true},
      // u3 holds 3 of 33: their pages read them by the owner index and sort them.
      {"owner_id = \"u3\"", [](const v1::Customer& c) { return c.owner_id() == "u3"; }, true},
      {"in_pool = true", [](const v1::Customer& c) { return c.in_pool(); }, true},
      {"in_pool = false AND team_id = \"east\"",
       [](const v1::Customer& c) { return !c.in_pool() && c.team_id() == "east"; }, true},
      {"tags:\"vip\"",
       [](const v1::Customer& c) { return std::find(c.tags().begin(), c.tags().end(), "vip") != c.tags().end(); },
       false},
  };
  for (const auto& k : cases) {
    for (const Caller& who : {kAdmin, kManager, kRep, kRep2}) {
      for (int size : {1, 4, 100}) {
        v1::ListCustomersRequest req;
        req.set_filter(k.filter);
        req.set_order_by("display_name desc");
        req.set_page_size(size);
        const auto want = Expected(who, "display_name", true, false, k.pass);
        EXPECT_EQ(Pages(who, req, k.counted ? static_cast<int64_t>(want.size()) : -2), want)
            << who.user_id << " " << k.filter;
        // Without counts the first page still tells the size when it read every row.
        if (!k.counted) {
          EXPECT_EQ(engine()->queries().List(who, req, absl::Now())->total_size(), static_cast<int32_t>(want.size()));
        }
      }
    }
  }
}

TEST_F(ListEngineTest, AWalkOutOfBudgetResumesWhereItStopped) {
  Make();
  auto query = *ParseListQuery("tags:\"vip\"", "update_time desc", true);
  std::vector<std::string> got;
  std::string after;
  int walks = 0;
  for (bool end = false; !end && walks < 100; ++walks) {
    auto w = WalkCustomers(db()->db(), rocksdb::ReadOptions(), kAdmin, query, after, 2, 2,
                           [&](CustomerState&& s, absl::string_view) -> absl::StatusOr<bool> {
                             got.push_back(absl::StrCat("customers/", s.id()));
                             return true;
                           });
    ASSERT_TRUE(w.ok()) << w.status();
    end = w->reached_end;
    if (!end) {
      EXPECT_FALSE(w->last_position.empty());
      after = w->last_position;
    }
  }
  EXPECT_EQ(walks, static_cast<int>(names_.size() + 1) / 2);  // two rows per walk
  EXPECT_EQ(got, Expected(kAdmin, "update_time", true, true, [](const v1::Customer& c) {
              return std::find(c.tags().begin(), c.tags().end(), "vip") != c.tags().end();
            }));
}

TEST_F(ListEngineTest, ATokenOfAnotherQueryOrNoneOfOursIsRefused) {
  Make();
  v1::ListCustomersRequest req;
  req.set_page_size(2);
  auto p1 = engine()->queries().List(kAdmin, req, absl::Now());
  ASSERT_FALSE(p1->next_page_token().empty());
  req.set_page_token(p1->next_page_token());
  req.set_filter("in_pool = true");
  EXPECT_EQ(FieldOf(engine()->queries().List(kAdmin, req, absl::Now()).status()), "page_token");
  req.set_filter("");
  for (const std::string& bad : std::vector<std::string>{"!!", "MTI6eA", "cDk5OTp4"}) {
    req.set_page_token(bad);
    auto r = engine()->queries().List(kAdmin, req, absl::Now());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(FieldOf(r.status()), "page_token") << bad;
  }
}

TEST_F(LeadEngineTest, StaleLeadEtagIsAbortedNamingItsFieldAfterTheCommandsOwnRefusal) {
  auto lead = NewLead(kRep, "13700001111");
  ASSERT_TRUE(lead.ok()) << lead.status();
  v1::UpdateLeadRequest up;
  up.mutable_lead()->set_name(lead->name());
  up.mutable_lead()->set_need("300 套");
  up.mutable_update_mask()->add_paths("need");
  ASSERT_TRUE(Call(&engine()->leads(), &LeadCommands::UpdateLead, kRep, up).ok());
  up.mutable_lead()->set_etag("1");
  EXPECT_EQ(Mismatch(Call(&engine()->leads(), &LeadCommands::UpdateLead, kRep, up).status()), "ETAG_MISMATCH lead.etag 2");
  v1::QualifyLeadRequest qualify;
  qualify.set_name(lead->name());
  qualify.set_etag("1");
  EXPECT_EQ(Mismatch(Call(&engine()->leads(), &LeadCommands::QualifyLead, kRep, qualify).status()), "ETAG_MISMATCH etag 2");
  v1::ConvertLeadRequest convert;
  convert.set_name(lead->name());
  convert.set_etag("1");
  EXPECT_EQ(Mismatch(Call(engine(), &CustomerEngine::ConvertLead, kRep, convert).status()), "ETAG_MISMATCH etag 2");
  // A rep may not give the lead to another rep: that refusal comes first.
  v1::AssignLeadRequest assign;
  assign.set_name(lead->name());
  assign.set_etag("1");
  assign.set_owner_id("u2");
  EXPECT_EQ(Call(&engine()->leads(), &LeadCommands::AssignLead, kRep, assign).status().code(),
            absl::StatusCode::kPermissionDenied);
  v1::GetLeadRequest get;
  get.set_name(lead->name());
  EXPECT_EQ(engine()->queries().GetLead(kRep, get, absl::Now() + absl::Seconds(5))->etag(), "2") << "no stale command wrote";
}

}  // namespace
}  // namespace crm::customers
