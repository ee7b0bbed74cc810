#include "libs/server/kernel_metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/server/http_client.h"
#include "libs/server/metrics.h"
#include "prometheus/text_serializer.h"

namespace crm::server {
namespace {

kernel::StoreCounters Counters(int64_t base) {
  kernel::StoreCounters c;
  c.state_reads = base + 1;
  c.cache_hits = base + 2;
  c.request_lookups = base + 3;
  c.folds = base + 4;
  c.seals = base + 5;
  c.appends = base + 6;
  c.keys_in_flight = base + 7;
  return c;
}

void ExpectSame(const kernel::StoreCounters& a, const kernel::StoreCounters& b) {
  EXPECT_EQ(a.state_reads, b.state_reads);
  EXPECT_EQ(a.cache_hits, b.cache_hits);
  EXPECT_EQ(a.request_lookups, b.request_lookups);
  EXPECT_EQ(a.folds, b.folds);
  EXPECT_EQ(a.seals, b.seals);
  EXPECT_EQ(a.appends, b.appends);
  EXPECT_EQ(a.keys_in_flight, b.keys_in_flight);
}

std::string Scrape(const prometheus::Collectable& c) { return prometheus::TextSerializer().Serialize(c.Collect()); }

TEST(KernelMetricsTest, ScrapeReadsBackAsTheStoresCounters) {
  auto km = std::make_shared<KernelMetrics>();
  auto customers = km->Add("customers", [] { return Counters(1000); });
  auto tickets = km->Add("tickets", [] { return Counters(9'000'000'000LL); });
  ASSERT_TRUE(customers.ok() && tickets.ok());
  const std::string text = Scrape(*km);
  EXPECT_NE(text.find("crm_kernel_cache_hits_total{service=\"customers\"} 1002"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE crm_kernel_keys_in_flight gauge"), std::string::npos) << text;
  absl::StatusOr<KernelCounters> parsed = ParseKernelCounters(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 2u);
  ExpectSame(parsed->at("customers"), Counters(1000));
  ExpectSame(parsed->at("tickets"), Counters(9'000'000'000LL));
}

TEST(KernelMetricsTest, AServiceGoneIsNeitherReadNorServed) {
  auto km = std::make_shared<KernelMetrics>();
  std::atomic<int> reads{0};
  {
    auto r = km->Add("customers", [&reads] {
      ++reads;
      return Counters(0);
    });
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(km->Read().size(), 1u);
    KernelMetrics::Registration moved = *std::move(r);
    EXPECT_EQ(km->Read().size(), 1u) << "a moved registration still exports";
  }
  const int before = reads.load();
  EXPECT_TRUE(km->Read().empty());
  EXPECT_EQ(Scrape(*km), "");
  EXPECT_EQ(reads.load(), before);
  EXPECT_TRUE(km->Add("customers", [] { return Counters(0); }).ok()) << "the name is free again";
}

TEST(KernelMetricsTest, RefusesBadNamesRepeatsAndTooManyServices) {
  auto km = std::make_shared<KernelMetrics>();
  auto read = [] { return Counters(0); };
  for (const std::string& bad : std::vector<std::string>{"", "Customers", "1st", "a\"b", "a b", std::string(33, 'a')}) {
    EXPECT_EQ(km->Add(bad, read).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(km->Add("customers", nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<KernelMetrics::Registration> held;
  for (size_t i = 0; i < KernelMetrics::kMaxServices; ++i) {
    auto r = km->Add(absl::StrCat("s", i), read);
    ASSERT_TRUE(r.ok()) << r.status();
    held.push_back(*std::move(r));
  }
  EXPECT_EQ(km->Add("s0", read).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(km->Add("one-more", read).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(KernelMetricsTest, MetricsExportsWhatItsKernelHolds) {
  absl::StatusOr<std::unique_ptr<Metrics>> m = Metrics::Start("");
  ASSERT_TRUE(m.ok());
  auto r = (*m)->kernel().Add("opportunities", [] { return Counters(5); });
  ASSERT_TRUE(r.ok());
  ExpectSame((*m)->kernel().Read().at("opportunities"), Counters(5));
}

TEST(KernelMetricsTest, ServedOnMetricsPortAndScrapedBack) {
  absl::StatusOr<std::unique_ptr<Metrics>> m = Metrics::Start("127.0.0.1:0");
  ASSERT_TRUE(m.ok()) << m.status();
  auto r = (*m)->kernel().Add("tasks", [] { return Counters(77); });
  ASSERT_TRUE(r.ok());
  const std::string address = absl::StrCat("127.0.0.1:", (*m)->port());
  absl::StatusOr<KernelCounters> scraped = ScrapeKernelCounters(address, absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(scraped.ok()) << scraped.status();
  ASSERT_EQ(scraped->size(), 1u);
  ExpectSame(scraped->at("tasks"), Counters(77));
  absl::StatusOr<std::string> missing = HttpGet(address, "/nothing-here", absl::Now() + absl::Seconds(10));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kUnavailable) << missing.status();
  EXPECT_EQ(HttpGet(address, "/metrics", absl::Now() + absl::Seconds(10), 16).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(HttpGetTest, RefusesBadAddressesAndPaths) {
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  EXPECT_EQ(HttpGet("localhost", "/metrics", deadline).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpGet(":9464", "/metrics", deadline).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpGet("127.0.0.1:99999", "/metrics", deadline).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpGet("127.0.0.1:1", "metrics", deadline).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpGet("127.0.0.1:1", "/a b", deadline).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpGet("127.0.0.1:1", "/a\r\nX: y", deadline).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HttpGetTest, AServerThatNeverAnswersCostsTheDeadlineOnly) {
  // A listening socket nobody accepts from: the kernel completes the handshake, nothing answers.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof(a);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const absl::Time t0 = absl::Now();
  absl::StatusOr<std::string> r =
      HttpGet(absl::StrCat("127.0.0.1:", ntohs(a.sin_port)), "/metrics", t0 + absl::Milliseconds(300));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_LT(absl::Now() - t0, absl::Seconds(3));
  ::close(fd);
}

TEST(ParseKernelCountersTest, SkipsOtherSeriesAndRefusesMalformedSamples) {
  absl::StatusOr<KernelCounters> ok = ParseKernelCounters(
      "# HELP crm_kernel_seals_total x\n"
      "# TYPE crm_kernel_seals_total counter\n"
      "grpc_server_handled_total{grpc_service=\"a\"} 5\n"
      "crm_kernel_seals_total{service=\"customers\"} 7 1700000000000\n"
      "crm_kernel_seals_total{ service=\"tasks\" , other=\"x\"} 1.2e+06\n"
      "crm_kernel_something_new_total{service=\"customers\"} 3\n");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->at("customers").seals, 7);
  EXPECT_EQ(ok->at("tasks").seals, 1200000);
  EXPECT_EQ(ok->size(), 2u);

  for (const char* bad : {"crm_kernel_seals_total 7\n", "crm_kernel_seals_total{other=\"x\"} 7\n",
                          "crm_kernel_seals_total{service=\"Bad Name\"} 7\n",
                          "crm_kernel_seals_total{service=\"customers\"} seven\n",
                          "crm_kernel_seals_total{service=\"customers\"} -1\n",
                          "crm_kernel_seals_total{service=\"customers\"} NaN\n",
                          "crm_kernel_seals_total{service=\"customers\"} 1e300\n",
                          "crm_kernel_seals_total{service=\"customers\"}\n"}) {
    EXPECT_EQ(ParseKernelCounters(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  std::string many;
  for (size_t i = 0; i <= KernelMetrics::kMaxServices; ++i) {
    absl::StrAppend(&many, "crm_kernel_seals_total{service=\"s", i, "\"} 1\n");
  }
  EXPECT_EQ(ParseKernelCounters(many).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace crm::server
