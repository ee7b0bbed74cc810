#include "libs/eventlog/envelope.h"

#include <map>

#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace crm::eventlog {
namespace {

EventEnvelope Make(int64_t version) {
  EventEnvelope e;
  e.set_event_id("0190f1c4-0000-7000-8000-00000000000" + std::to_string(version));
  e.set_event_type("crm.customers.v1.CustomerUpdated");
  e.set_aggregate_type("customer");
  e.set_aggregate_id("c1");
  e.set_aggregate_version(version);
  *e.mutable_recorded_at() = google::protobuf::util::TimeUtil::SecondsToTimestamp(1767225600);
  e.set_correlation_id("0190f1c4-1111-7000-8000-000000000000");
  e.mutable_payload()->set_type_url("type.googleapis.com/crm.customers.v1.CustomerUpdated");
  e.mutable_payload()->set_value("x");
  return e;
}

TEST(EnvelopeTest, HashChainVerifiesAndDetectsTampering) {
  EventEnvelope e1 = Make(1), e2 = Make(2);
  SealEnvelope(e1, "");
  SealEnvelope(e2, e1.hash());
  EXPECT_EQ(e1.hash().size(), 32u);
  EXPECT_TRUE(VerifyEnvelope(e1, "").ok());
  EXPECT_TRUE(VerifyEnvelope(e2, e1.hash()).ok());

  EventEnvelope tampered = e2;
  tampered.mutable_actor()->set_user_id("mallory");
  EXPECT_EQ(VerifyEnvelope(tampered, e1.hash()).code(), absl::StatusCode::kDataLoss);

  // Replacing an earlier event breaks the link to the next one.
  EventEnvelope e1b = Make(1);
  e1b.mutable_payload()->set_value("y");
  SealEnvelope(e1b, "");
  EXPECT_EQ(VerifyEnvelope(e2, e1b.hash()).code(), absl::StatusCode::kDataLoss);
}

TEST(EnvelopeTest, DecodeRequiresTheEnvelopeFields) {
  EventEnvelope e = Make(1);
  SealEnvelope(e, "");
  auto back = DecodeEnvelope(e.SerializeAsString());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->hash(), e.hash());
  EXPECT_EQ(DecodeEnvelope("\xff\xff garbage").status().code(), absl::StatusCode::kDataLoss);
  EventEnvelope missing = e;
  missing.clear_aggregate_id();
  EXPECT_EQ(DecodeEnvelope(missing.SerializeAsString()).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(EnvelopeTest, CloudEventsBinaryHeaders) {
  EventEnvelope e = Make(3);
  std::map<std::string, std::string> h;
  for (const Header& x : CloudEventHeaders(e, "/crm/customers")) h[x.key] = x.value;
  EXPECT_EQ(h["ce_specversion"], "1.0");
  EXPECT_EQ(h["ce_id"], e.event_id());
  EXPECT_EQ(h["ce_source"], "/crm/customers");
  EXPECT_EQ(h["ce_type"], "crm.customers.v1.CustomerUpdated");
  EXPECT_EQ(h["ce_subject"], "customers/c1");
  EXPECT_EQ(h["ce_time"], "2026-01-01T00:00:00Z");
  EXPECT_EQ(h["content-type"], "application/protobuf");
  // 00-<32 hex trace>-<16 hex span>-01
  EXPECT_EQ(h["traceparent"].size(), 55u);
  EXPECT_EQ(h["traceparent"].substr(0, 36), "00-0190f1c4111170008000000000000000-");
}

}  // namespace
}  // namespace crm::eventlog
