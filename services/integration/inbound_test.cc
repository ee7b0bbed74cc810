#include "services/integration/inbound.h"

#include <deque>
#include <filesystem>
#include <map>
#include <set>
#include <variant>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "crm/customers/v1/customers_events.pb.h"
#include "libs/common/grpc_status.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/testing/field_coverage.h"
#include "nlohmann/json.hpp"
#include "services/integration/public_event.h"

namespace crm::integration {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kContract[] = "0190f1c4-0000-7000-8000-0000000000c1";
constexpr char kCustomer[] = "0190f1c4-0000-7000-8000-0000000000a1";

std::string Structured(const std::string& id, const std::string& type, json data) {
  return json{{"specversion", "1.0"}, {"id", id}, {"source", "/erp/sap"}, {"type", type}, {"data", std::move(data)}}
      .dump();
}

eventlog::Record Rec(std::string value, std::vector<eventlog::Header> headers = {}) {
  return {.topic = kInboundTopic, .partition = 0, .offset = 0, .value = std::move(value), .headers = std::move(headers)};
}

std::string FieldOf(const absl::Status& s) {
  auto br = GetBadRequest(s);
  return br && br->field_violations_size() > 0 ? br->field_violations(0).field() : "";
}

TEST(ParseInboundTest, MapsEachTypeToItsCommand) {
  auto pay = ParseInbound(Rec(Structured("pay-1", kErpPaymentReceived,
                                         {{"contract_id", kContract}, {"amount", "12345.67"}, {"paid_at", "2026-03-02"},
                                          {"reference", "B-001"}})));
  ASSERT_TRUE(pay.ok()) << pay.status();
  const auto& p = std::get<opportunities::v1::RecordPaymentRequest>(pay->request);
  EXPECT_EQ(p.name(), absl::StrCat("contracts/", kContract));
  EXPECT_EQ(p.payment().amount_minor(), 1234567);
  EXPECT_EQ(p.payment().paid_at().seconds(), 1772380800);  // 2026-03-02 00:00 UTC+8
  EXPECT_EQ(p.payment().reference(), "B-001");
  EXPECT_EQ(p.request_id(), "inbound:pay-1");
  EXPECT_EQ(pay->currency, "CNY");

  auto create = ParseInbound(Rec(Structured("cus-1", kErpCustomerUpserted,
                                            {{"display_name", "上海星辰科技有限公司"}, {"phone", "13812345678"}})));
  ASSERT_TRUE(create.ok()) << create.status();
  const auto& c = std::get<customers::v1::CreateCustomerRequest>(create->request);
  EXPECT_EQ(c.customer().display_name(), "上海星辰科技有限公司");
  EXPECT_EQ(c.customer().phone(), "13812345678");

  auto update = ParseInbound(Rec(Structured("cus-2", kErpCustomerUpserted,
                                            {{"customer_id", absl::StrCat("customers/", kCustomer)}, {"address", "上海"}})));
  ASSERT_TRUE(update.ok()) << update.status();
  const auto& u = std::get<customers::v1::UpdateCustomerRequest>(update->request);
  EXPECT_EQ(u.customer().name(), absl::StrCat("customers/", kCustomer));
  ASSERT_EQ(u.update_mask().paths_size(), 1);
  EXPECT_EQ(u.update_mask().paths(0), "address");

  auto order = ParseInbound(Rec(Structured("ord-1", kErpOrderCreated,
                                           {{"customer_id", kCustomer}, {"order_no", "SO-9"}, {"amount", 5000},
                                            {"ordered_at", "2026-03-01T10:00:00+08:00"}})));
  ASSERT_TRUE(order.ok()) << order.status();
  const auto& f = std::get<customers::v1::CreateFollowUpRequest>(order->request);
  EXPECT_EQ(f.follow_up().summary(), "ERP 订单 SO-9: 5000.00 CNY");

  auto approve = ParseInbound(Rec(Structured("oa-1", kOaApprovalCompleted,
                                             {{"contract_id", kContract}, {"result", "approved"}, {"approver", "王总"}})));
  ASSERT_TRUE(approve.ok()) << approve.status();
  EXPECT_EQ(std::get<opportunities::v1::ApproveContractRequest>(approve->request).comment(), "OA 王总 审批通过");
  auto reject = ParseInbound(Rec(Structured("oa-2", kOaApprovalCompleted,
                                            {{"contract_id", kContract}, {"result", "rejected"}, {"reason", "价格过低"}})));
  ASSERT_TRUE(reject.ok()) << reject.status();
  EXPECT_EQ(std::get<opportunities::v1::RejectContractRequest>(reject->request).reason(), "OA 审批驳回: 价格过低");
}

// Every customer profile field either reaches UpdateCustomer from an ERP upsert (in the mask,
// with its value) or is listed here with why the ERP does not set it (docs/architecture.md §8).
TEST(ParseInboundTest, ErpUpsertTakesEveryCustomerProfileFieldOrSaysWhyNot) {
  std::set<std::string> taken;
  const auto* d = customers::v1::CustomerProfile::descriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const std::string f = d->field(i)->name();
    const std::string value = f + "-value";
    auto cmd = ParseInbound(Rec(Structured("x", kErpCustomerUpserted, {{"customer_id", kCustomer}, {f, value}})));
    if (!cmd.ok()) continue;
    const auto* req = std::get_if<customers::v1::UpdateCustomerRequest>(&cmd->request);
    if (req == nullptr) continue;
    const auto& paths = req->update_mask().paths();
    const auto* api = customers::v1::Customer::descriptor()->FindFieldByName(f);
    if (std::find(paths.begin(), paths.end(), f) != paths.end() && api != nullptr &&
        (api->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_STRING || api->is_repeated() ||
         req->customer().GetReflection()->GetString(req->customer(), api) == value)) {
      taken.insert(f);
    }
  }
  EXPECT_THAT(crm::testing::CoverageGaps(
                  *d, {.where = "services/integration/inbound.cc (MapCustomerUpserted: its field lists) and README.md's "
                                "com.erp.customer.upserted row",
                       .handled = taken,
                       .excluded = {
                           {"kind", "an ERP customer is a company (set on create); the mapping takes text only"},
                           {"lifecycle_status", "the sales process owns the status; the mapping takes text only"},
                           {"tags", "tags are the CRM users' own; the mapping takes text only"},
                           {"source", "set to \"ERP\" on create: where the customer came from"},
                           {"source_channel", "a CRM classification; the mapping takes text only"},
                           {"cooperation_status", "follows the CRM's contracts; the mapping takes text only"},
                           {"scale", "a CRM classification; the mapping takes text only"},
                           {"churn_reason", "goes with lifecycle_status, which the ERP does not set"},
                       }}),
              ::testing::IsEmpty());
}

TEST(ParseInboundTest, TakesBinaryMode) {
  auto cmd = ParseInbound(Rec(json{{"contract_id", kContract}, {"result", "approved"}}.dump(),
                              {{"ce_specversion", "1.0"}, {"ce_id", "oa-9"}, {"ce_source", "/oa"},
                               {"ce_type", kOaApprovalCompleted}, {"content-type", "application/json"}}));
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->id, "oa-9");
  EXPECT_EQ(cmd->source, "/oa");
}

TEST(ParseInboundTest, NamesTheFieldOfEveryBadInput) {
  const json pay = {{"contract_id", kContract}, {"amount", "1.00"}, {"paid_at", "2026-03-02"}};
  auto field = [](const std::string& value) { return FieldOf(ParseInbound(Rec(value)).status()); };
  EXPECT_EQ(field("not json"), "value");
  EXPECT_EQ(field(json{{"specversion", "0.3"}, {"id", "x"}, {"source", "/s"}, {"type", kErpPaymentReceived},
                       {"data", pay}}.dump()), "specversion");
  EXPECT_EQ(field(json{{"specversion", "1.0"}, {"source", "/s"}, {"type", kErpPaymentReceived}, {"data", pay}}.dump()),
            "id");
  EXPECT_EQ(field(Structured("has space", kErpPaymentReceived, pay)), "id");
  EXPECT_EQ(field(Structured("x", "com.erp.unknown", pay)), "type");
  json bad = pay;
  bad["amount"] = "12.345";
  EXPECT_EQ(field(Structured("x", kErpPaymentReceived, bad)), "data.amount");
  bad = pay;
  bad["amount"] = "-5";
  EXPECT_EQ(field(Structured("x", kErpPaymentReceived, bad)), "data.amount");
  bad = pay;
  bad["paid_at"] = "yesterday";
  EXPECT_EQ(field(Structured("x", kErpPaymentReceived, bad)), "data.paid_at");
  bad = pay;
  bad["contract_id"] = "HT-1";
  EXPECT_EQ(field(Structured("x", kErpPaymentReceived, bad)), "data.contract_id");
  bad = pay;
  bad["amout"] = "1";
  EXPECT_EQ(field(Structured("x", kErpPaymentReceived, bad)), "data.amout");
  bad = pay;
  bad["currency"] = "XYZ";
  EXPECT_EQ(field(Structured("x", kErpPaymentReceived, bad)), "data.currency");
  EXPECT_EQ(field(Structured("x", kErpCustomerUpserted, {{"phone", "13812345678"}})), "data.display_name");
  EXPECT_EQ(field(Structured("x", kOaApprovalCompleted, {{"contract_id", kContract}, {"result", "maybe"}})),
            "data.result");
  EXPECT_EQ(field(json{{"specversion", "1.0"}, {"id", "x"}, {"source", "/s"}, {"type", kErpPaymentReceived},
                       {"data", "text"}}.dump()), "data");
}

// The customers and opportunities services stand behind this sink in crm-integration
// (tests/integration_kafka_test.py runs them); here it answers from a script, so that the
// processor's ordering, retry and dead-letter rules can be driven one by one.
class ScriptedSink : public CommandSink {
 public:
  absl::Status Execute(const InboundCommand& c) override {
    absl::MutexLock l(&mu_);
    calls.push_back(c.id);
    if (auto it = answers.find(c.id); it != answers.end() && !it->second.empty()) {
      absl::Status s = it->second.front();
      it->second.pop_front();
      return s;
    }
    return absl::OkStatus();
  }
  std::vector<std::string> Calls() {
    absl::MutexLock l(&mu_);
    return calls;
  }
  absl::Mutex mu_;
  std::vector<std::string> calls;
  std::map<std::string, std::deque<absl::Status>> answers;
};

class InboundProcessorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           absl::StrCat("inbound_test_", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto log = eventlog::OpenEmbeddedLog({.path = (dir_ / "log").string()});
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
    ASSERT_TRUE(log_->CreateTopic(kInboundTopic, 2).ok());
    auto w = log_->OpenWriter(kInboundTopic);  // the ERP system's producer
    ASSERT_TRUE(w.ok());
    erp_ = *std::move(w);
  }
  void TearDown() override {
    erp_.reset();
    log_.reset();
    fs::remove_all(dir_);
  }
  void Send(const std::string& key, const std::string& value) { ASSERT_TRUE(erp_->AppendSync(key, {{.value = value}}).ok()); }
  void Pay(const std::string& id) {
    Send(kContract, Structured(id, kErpPaymentReceived,
                               {{"contract_id", kContract}, {"amount", "100"}, {"paid_at", "2026-03-02"}}));
  }
  std::unique_ptr<InboundProcessor> Start() {
    auto p = InboundProcessor::Start(log_.get(), &sink_, {.dir = (dir_ / "inbound").string(),
                                                          .retry_after = absl::Milliseconds(30)});
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : nullptr;
  }
  std::vector<eventlog::Record> Letters() {
    auto recs = eventlog::ReadToEnd(*log_, absl::StrCat(kInboundTopic, ".dlq"), {{0, 0}, {1, 0}});
    EXPECT_TRUE(recs.ok()) << recs.status();
    return recs.ok() ? *recs : std::vector<eventlog::Record>{};
  }
  static std::map<std::string, std::string> Headers(const eventlog::Record& r) {
    std::map<std::string, std::string> h;
    for (const auto& x : r.headers) h[x.key] = x.value;
    return h;
  }

  fs::path dir_;
  std::unique_ptr<eventlog::Log> log_;
  std::unique_ptr<eventlog::Writer> erp_;
  ScriptedSink sink_;
};

TEST_F(InboundProcessorTest, AppliesOnceDeadLettersTheRestAndRetriesTransientFailures) {
  sink_.answers["p2"] = {absl::UnavailableError("customers service down"), absl::UnavailableError("still down")};
  sink_.answers["p3"] = {absl::FailedPreconditionError("contract is not active")};
  Pay("p1");
  Pay("p1");  // the ERP system's retry: same id
  Pay("p2");  // fails twice, then goes through
  Pay("p3");  // refused by the service
  Send(kContract, "{broken");
  Pay("p4");  // after p2 in the same partition: only after p2 went through
  auto p = Start();
  ASSERT_TRUE(p->WaitCaughtUp(absl::Seconds(10)).ok()) << p->status();
  EXPECT_EQ(sink_.Calls(), (std::vector<std::string>{"p1", "p2", "p2", "p2", "p3", "p4"}));
  const InboundProcessor::Stats st = p->stats();
  EXPECT_EQ(st.applied, 3);
  EXPECT_EQ(st.duplicates, 1);
  EXPECT_EQ(st.dead_lettered, 2);

  std::vector<eventlog::Record> letters = Letters();
  ASSERT_EQ(letters.size(), 2u);
  auto refused = Headers(letters[0]);
  EXPECT_EQ(refused["crm_dlq_code"], "FAILED_PRECONDITION");
  EXPECT_EQ(refused["crm_dlq_reason"], "contract is not active");
  EXPECT_EQ(refused[kPositionHeader].rfind(absl::StrCat(kInboundTopic, "/"), 0), 0u);
  EXPECT_EQ(json::parse(letters[0].value)["id"], "p3");  // the message as it came
  auto broken = Headers(letters[1]);
  EXPECT_EQ(broken["crm_dlq_code"], "INVALID_ARGUMENT");
  EXPECT_EQ(broken["crm_dlq_field"], "value");
  EXPECT_EQ(letters[1].value, "{broken");
}

// A crash after dead letters and commands but before their positions were stored: the store
// is put back to what it held before. The restarted processor reads the letters back, so none
// is written twice and the records before them are done (a command after the last letter
// would be repeated with its request id, which the services answer with the first result).
TEST_F(InboundProcessorTest, CrashBeforeStoringPositionsWritesNoLetterTwice) {
  auto p = Start();
  p.reset();
  fs::copy(dir_ / "inbound", dir_ / "inbound-before", fs::copy_options::recursive);
  p = Start();
  sink_.answers["p2"] = {absl::NotFoundError("no such contract")};
  Pay("p1");
  Pay("p2");
  Send(kContract, "[]");
  ASSERT_TRUE(p->WaitCaughtUp(absl::Seconds(10)).ok());
  ASSERT_EQ(Letters().size(), 2u);
  p.reset();
  fs::remove_all(dir_ / "inbound");
  fs::rename(dir_ / "inbound-before", dir_ / "inbound");
  p = Start();
  ASSERT_TRUE(p->WaitCaughtUp(absl::Seconds(10)).ok());
  EXPECT_EQ(Letters().size(), 2u);
  EXPECT_EQ(p->stats().dead_lettered, 0);
  Pay("p5");
  ASSERT_TRUE(p->WaitCaughtUp(absl::Seconds(10)).ok());
  // p1 was before the last letter of its partition, so it is taken as done, not repeated.
  EXPECT_EQ(sink_.Calls(), (std::vector<std::string>{"p1", "p2", "p5"}));
}

}  // namespace
}  // namespace crm::integration
