#include "libs/server/kernel_metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "libs/server/http_client.h"

namespace crm::server {
namespace {

// One series: its name, help, type and the field of StoreCounters it shows.
struct Series {
  const char* name;
  const char* help;
  prometheus::MetricType type;
  int64_t kernel::StoreCounters::*field;
};

constexpr Series kSeries[] = {
    {"crm_kernel_state_reads_total", "State rows the write kernel read (one per command not served by its cache).",
     prometheus::MetricType::Counter, &kernel::StoreCounters::state_reads},
    {"crm_kernel_cache_hits_total", "States the write kernel took from its cache instead of reading a row.",
     prometheus::MetricType::Counter, &kernel::StoreCounters::cache_hits},
    {"crm_kernel_request_lookups_total", "Request-id lookups (one per command with a request_id).",
     prometheus::MetricType::Counter, &kernel::StoreCounters::request_lookups},
    {"crm_kernel_folds_total", "Events the write kernel folded into a reply state.", prometheus::MetricType::Counter,
     &kernel::StoreCounters::folds},
    {"crm_kernel_seals_total", "Events the write kernel sealed (one SHA-256 each).", prometheus::MetricType::Counter,
     &kernel::StoreCounters::seals},
    {"crm_kernel_appends_total", "Appends the write kernel handed to the log.", prometheus::MetricType::Counter,
     &kernel::StoreCounters::appends},
    {"crm_kernel_folds_taken_total", "Events whose fold the projection took from the write kernel with the record.",
     prometheus::MetricType::Counter, &kernel::StoreCounters::folds_taken},
    {"crm_kernel_projection_reads_total",
     "State rows the projection read to fold an event itself (records from the log: catch-ups, rebuilds).",
     prometheus::MetricType::Counter, &kernel::StoreCounters::projection_reads},
    {"crm_kernel_projection_folds_total", "Events the projection unpacked and folded itself.",
     prometheus::MetricType::Counter, &kernel::StoreCounters::projection_folds},
    {"crm_kernel_keys_in_flight", "Unique keys and request ids held by commands in flight.",
     prometheus::MetricType::Gauge, &kernel::StoreCounters::keys_in_flight},
};

bool ValidService(absl::string_view s) {
  if (s.empty() || s.size() > 32 || !absl::ascii_islower(s[0])) return false;
  for (char c : s) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '_' && c != '-') return false;
  }
  return true;
}

// The value of label `name` in `labels` (the text between the braces); empty when absent.
// Prometheus escapes \, " and newline in label values; a service name holds none of them, so a
// value with a backslash is no service name of ours and reads as absent.
absl::string_view LabelValue(absl::string_view labels, absl::string_view name) {
  for (absl::string_view pair : absl::StrSplit(labels, ',', absl::SkipWhitespace())) {
    pair = absl::StripAsciiWhitespace(pair);
    const size_t eq = pair.find('=');
    if (eq == absl::string_view::npos || absl::StripAsciiWhitespace(pair.substr(0, eq)) != name) continue;
    absl::string_view v = absl::StripAsciiWhitespace(pair.substr(eq + 1));
    if (v.size() < 2 || v.front() != '"' || v.back() != '"') return {};
    v = v.substr(1, v.size() - 2);
    return v.find('\\') == absl::string_view::npos ? v : absl::string_view();
  }
  return {};
}

}  // namespace

KernelMetrics::Registration::Registration(Registration&& other) noexcept
    : owner_(std::move(other.owner_)), service_(std::move(other.service_)) {
  other.owner_.reset();
}

KernelMetrics::Registration& KernelMetrics::Registration::operator=(Registration&& other) noexcept {
  if (this != &other) {
    Reset();
    owner_ = std::move(other.owner_);
    service_ = std::move(other.service_);
    other.owner_.reset();
  }
  return *this;
}

KernelMetrics::Registration::~Registration() { Reset(); }

void KernelMetrics::Registration::Reset() {
  if (owner_ == nullptr) return;
  {
    absl::MutexLock l(&owner_->mu_);
    owner_->reads_.erase(service_);
  }
  owner_.reset();
}

absl::StatusOr<KernelMetrics::Registration> KernelMetrics::Add(std::string service,
                                                               std::function<kernel::StoreCounters()> read) {
  if (!ValidService(service)) {
    return absl::InvalidArgumentError("service: 1-32 characters of a-z, 0-9, _ and -, starting with a letter");
  }
  if (!read) return absl::InvalidArgumentError("read: a function is required");
  absl::MutexLock l(&mu_);
  if (reads_.contains(service)) {
    return absl::AlreadyExistsError(absl::StrCat("the kernel counters of ", service, " are exported already"));
  }
  if (reads_.size() >= kMaxServices) {
    return absl::ResourceExhaustedError(
        absl::StrCat("a process exports the kernel counters of at most ", kMaxServices, " services"));
  }
  reads_.emplace(service, std::move(read));
  return Registration(shared_from_this(), std::move(service));
}

KernelCounters KernelMetrics::Read() const {
  KernelCounters out;
  absl::MutexLock l(&mu_);
  for (const auto& [service, read] : reads_) out.emplace(service, read());
  return out;
}

std::vector<prometheus::MetricFamily> KernelMetrics::Collect() const {
  const KernelCounters now = Read();
  std::vector<prometheus::MetricFamily> families;
  if (now.empty()) return families;
  for (const Series& s : kSeries) {
    prometheus::MetricFamily f;
    f.name = s.name;
    f.help = s.help;
    f.type = s.type;
    for (const auto& [service, c] : now) {
      prometheus::ClientMetric m;
      m.label.push_back({"service", service});
      const double v = static_cast<double>(c.*s.field);
      if (s.type == prometheus::MetricType::Counter) {
        m.counter.value = v;
      } else {
        m.gauge.value = v;
      }
      f.metric.push_back(std::move(m));
    }
    families.push_back(std::move(f));
  }
  return families;
}

absl::StatusOr<KernelCounters> ParseKernelCounters(std::string_view text) {
  const absl::string_view exposition(text.data(), text.size());
  KernelCounters out;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(exposition, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (!absl::StartsWith(line, "crm_kernel_")) continue;
    const size_t open = line.find('{');
    const size_t close = line.find('}');
    const Series* series = nullptr;
    const absl::string_view name = line.substr(0, std::min(open, line.find(' ')));
    for (const Series& s : kSeries) {
      if (name == s.name) series = &s;
    }
    if (series == nullptr) continue;  // a series of a newer server
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("metrics line ", line_no, " (", name, "): ", why));
    };
    if (open == absl::string_view::npos || close == absl::string_view::npos || close < open) {
      return bad("no service label");
    }
    const absl::string_view service = LabelValue(line.substr(open + 1, close - open - 1), "service");
    if (!ValidService(service)) return bad("no service label");
    // The value, then an optional timestamp.
    std::vector<absl::string_view> rest = absl::StrSplit(line.substr(close + 1), ' ', absl::SkipWhitespace());
    double v = 0;
    if (rest.empty() || !absl::SimpleAtod(rest[0], &v) || !std::isfinite(v) || v < 0 || v > 9.0e18) {
      return bad("the value is not a count");
    }
    auto it = out.find(std::string(service));
    if (it == out.end()) {
      if (out.size() >= KernelMetrics::kMaxServices) {
        return bad(absl::StrCat("more than ", KernelMetrics::kMaxServices, " services"));
      }
      it = out.emplace(std::string(service), kernel::StoreCounters()).first;
    }
    it->second.*series->field = static_cast<int64_t>(std::llround(v));
  }
  return out;
}

absl::StatusOr<KernelCounters> ScrapeKernelCounters(const std::string& address, absl::Time deadline) {
  absl::StatusOr<std::string> text = HttpGet(address, "/metrics", deadline);
  if (!text.ok()) return text.status();
  return ParseKernelCounters(*text);
}

}  // namespace crm::server
