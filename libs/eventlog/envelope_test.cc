#include "libs/eventlog/envelope.h"

#include <zlib.h>

#include <iterator>
#include <limits>
#include <map>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/unknown_field_set.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "libs/common/sha256.h"

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
  StreamSealer sealer(0, "", "/crm/customers");
  sealer.Seal(e1);
  sealer.Seal(e2);
  EXPECT_EQ(e1.hash().size(), 32u);
  EXPECT_TRUE(VerifyEnvelope(e1, "").ok());
  EXPECT_TRUE(VerifyEnvelope(e2, e1.hash()).ok());

  EventEnvelope tampered = e2;
  tampered.mutable_actor()->set_user_id("mallory");
  EXPECT_EQ(VerifyEnvelope(tampered, e1.hash()).code(), absl::StatusCode::kDataLoss);

  // Replacing an earlier event breaks the link to the next one.
  EventEnvelope e1b = Make(1);
  e1b.mutable_payload()->set_value("y");
  StreamSealer(0, "", "/crm/customers").Seal(e1b);
  EXPECT_EQ(VerifyEnvelope(e2, e1b.hash()).code(), absl::StatusCode::kDataLoss);
}

TEST(EnvelopeTest, DecodeRequiresTheEnvelopeFields) {
  EventEnvelope e = Make(1);
  StreamSealer(0, "", "/crm/customers").Seal(e);
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

// Envelopes from other producers may carry any event id; a short one gives headers, not a
// thrown std::out_of_range.
TEST(EnvelopeTest, CloudEventsHeadersOfAShortEventId) {
  EventEnvelope e = Make(1);
  e.set_event_id("e-1");
  e.clear_correlation_id();
  std::map<std::string, std::string> h;
  for (const Header& x : CloudEventHeaders(e, "/crm/customers")) h[x.key] = x.value;
  EXPECT_EQ(h["ce_id"], "e-1");
  EXPECT_EQ(h["traceparent"], "00-e1--01");
}

// 8702e91's sealing, the reference the one-pass sealer must match byte for byte: set
// prev_hash, hash the envelope serialised without `hash`, then serialise the sealed envelope
// again for the log.
std::string ReferenceSeal(EventEnvelope& e, const std::string& prev_hash) {
  e.set_prev_hash(prev_hash);
  e.set_hash(ComputeEnvelopeHash(e));
  return e.SerializeAsString();
}

// Seals `e` both ways as the next event of a stream at `version`/`prev_hash`; expects the same
// envelope, bytes and headers, and a chain that verifies.
void ExpectSealsAsBefore(const EventEnvelope& e, int64_t version, const std::string& prev_hash,
                         const std::string& why) {
  EventEnvelope old_way = e;
  old_way.set_aggregate_version(version + 1);
  const std::string old_bytes = ReferenceSeal(old_way, prev_hash);
  EventEnvelope new_way = e;
  StreamSealer sealer(version, prev_hash, "/crm/test");
  const Message m = sealer.Seal(new_way);
  EXPECT_EQ(m.value, old_bytes) << why;
  EXPECT_EQ(new_way.SerializeAsString(), old_bytes) << why;
  EXPECT_EQ(m.headers, CloudEventHeaders(old_way, "/crm/test")) << why;
  EXPECT_EQ(sealer.version(), version + 1) << why;
  EXPECT_EQ(sealer.last_hash(), old_way.hash()) << why;
  EXPECT_TRUE(VerifyEnvelope(new_way, prev_hash).ok()) << why;
}

std::string RandomBytes(std::mt19937_64& rng, size_t max) {
  static const std::string kPieces[] = {"", "a", "客户", "上海星辰科技", "😀", "\xc3\xa9", std::string("\0", 1),
                                        "-", "0190f1c4-1111-7000-8000-000000000000", "\xff\xfe"};
  std::string out;
  const size_t n = rng() % (max + 1);
  while (out.size() < n) {
    if (rng() % 2 == 0) {
      out += kPieces[rng() % std::size(kPieces)];
    } else {
      out.push_back(static_cast<char>(rng()));
    }
  }
  return out;
}

// Random envelopes: any field empty or not, unicode and binary strings, negative and extreme
// numbers, payloads up to 1 MiB, stale hashes the sealer must replace.
TEST(StreamSealerTest, SealsRandomEnvelopesByteForByteAsBefore) {
  std::mt19937_64 rng(20261207);
  for (int i = 0; i < 2000; ++i) {
    EventEnvelope e;
    auto maybe = [&](auto set) {
      if (rng() % 4 != 0) set();
    };
    maybe([&] { e.set_event_id(RandomBytes(rng, 40)); });
    maybe([&] { e.set_event_type(RandomBytes(rng, 60)); });
    maybe([&] { e.set_aggregate_type(RandomBytes(rng, 20)); });
    maybe([&] { e.set_aggregate_id(RandomBytes(rng, 40)); });
    maybe([&] { e.mutable_occurred_at()->set_seconds(static_cast<int64_t>(rng()) >> (rng() % 64)); });
    maybe([&] { e.mutable_recorded_at()->set_nanos(static_cast<int32_t>(rng() % 1000000000)); });
    maybe([&] {
      e.mutable_actor()->set_user_id(RandomBytes(rng, 20));
      e.mutable_actor()->set_role(RandomBytes(rng, 8));
      e.mutable_actor()->set_source(static_cast<common::v1::ActorSource>(rng() % 6));
      e.mutable_actor()->set_team_id(RandomBytes(rng, 8));
    });
    maybe([&] { e.set_correlation_id(RandomBytes(rng, 40)); });
    maybe([&] { e.set_causation_id(RandomBytes(rng, 40)); });
    maybe([&] { e.set_tenant_id(RandomBytes(rng, 10)); });
    maybe([&] {
      e.mutable_payload()->set_type_url(RandomBytes(rng, 80));
      e.mutable_payload()->set_value(RandomBytes(rng, i % 100 == 0 ? (1 << 20) : 2000));
    });
    maybe([&] { e.set_prev_hash(RandomBytes(rng, 32)); });
    maybe([&] { e.set_hash(RandomBytes(rng, 32)); });
    const int64_t versions[] = {0, 1, 41, std::numeric_limits<int32_t>::max(), std::numeric_limits<int64_t>::max() - 1,
                                -5};
    const int64_t version = versions[rng() % std::size(versions)];
    const std::string prev = rng() % 3 == 0 ? "" : Sha256({RandomBytes(rng, 10)});
    ExpectSealsAsBefore(e, version, prev, absl::StrCat("envelope ", i));
    if (HasFailure()) return;
  }
}

// An envelope read back from a writer that knows more fields keeps them, after `hash` on the
// wire as protobuf puts them.
TEST(StreamSealerTest, SealsUnknownFieldsAsBefore) {
  EventEnvelope e = Make(1);
  std::string bytes = e.SerializeAsString();
  bytes += std::string("\xa2\x06\x03new", 6);  // field 100, length-delimited "new"
  ASSERT_TRUE(e.ParseFromString(bytes));
  ASSERT_FALSE(e.GetReflection()->GetUnknownFields(e).empty());
  ExpectSealsAsBefore(e, 0, "", "unknown field");
}

// A chain sealed event after event continues from each hash, as before.
TEST(StreamSealerTest, ChainsVersionsAndHashes) {
  StreamSealer sealer(0, "", "/crm/customers");
  std::string prev;
  for (int v = 1; v <= 5; ++v) {
    EventEnvelope e = Make(v), old_way = Make(v);
    e.set_aggregate_version(99);  // the sealer numbers the events
    const Message m = sealer.Seal(e);
    EXPECT_EQ(e.aggregate_version(), v);
    EXPECT_EQ(m.value, ReferenceSeal(old_way, prev));
    EXPECT_TRUE(VerifyEnvelope(e, prev).ok());
    prev = e.hash();
  }
}

// Every event of the log 8702e91 wrote (tests/compat), sealed again from its own fields, is the
// record it wrote: same bytes, same headers.
TEST(StreamSealerTest, ResealsEveryEventOfThe8702e91LogToItsRecord) {
  gzFile f = gzopen(CRM_COMPAT_FIXTURE, "rb");
  ASSERT_NE(f, nullptr) << CRM_COMPAT_FIXTURE;
  std::string dump;
  char buf[1 << 16];
  for (int n; (n = gzread(f, buf, sizeof(buf))) > 0;) dump.append(buf, n);
  gzclose(f);
  int events = 0;
  for (absl::string_view line : absl::StrSplit(dump, '\n', absl::SkipEmpty())) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    if (fields[0] != "R") continue;
    ASSERT_GE(fields.size(), 8u);
    std::string value;
    ASSERT_TRUE(absl::Base64Unescape(fields[6], &value));
    std::vector<Header> headers;
    for (size_t i = 8; i + 1 < fields.size(); i += 2) {
      Header h;
      ASSERT_TRUE(absl::Base64Unescape(fields[i], &h.key) && absl::Base64Unescape(fields[i + 1], &h.value));
      headers.push_back(std::move(h));
    }
    absl::StatusOr<EventEnvelope> e = DecodeEnvelope(value);
    if (!e.ok()) continue;  // not an event (the topic's other records)
    std::string source;
    for (const Header& h : headers) {
      if (h.key == "ce_source") source = h.value;
    }
    StreamSealer sealer(e->aggregate_version() - 1, e->prev_hash(), source);
    EventEnvelope again = *e;
    const Message m = sealer.Seal(again);
    EXPECT_EQ(m.value, value) << line.substr(0, 80);
    EXPECT_EQ(m.headers, headers) << line.substr(0, 80);
    if (HasFailure()) return;
    ++events;
  }
  EXPECT_GT(events, 2000);
}

// Each seal hashes once; each verification once.
TEST(StreamSealerTest, CountsEveryEnvelopeHash) {
  const int64_t before = EnvelopeHashCount();
  StreamSealer sealer(0, "", "/crm/customers");
  EventEnvelope e1 = Make(1), e2 = Make(2);
  sealer.Seal(e1);
  sealer.Seal(e2);
  EXPECT_EQ(EnvelopeHashCount() - before, 2);
  EXPECT_TRUE(VerifyEnvelope(e2, e1.hash()).ok());
  EXPECT_EQ(EnvelopeHashCount() - before, 3);
}

}  // namespace
}  // namespace crm::eventlog
