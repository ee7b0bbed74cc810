#ifndef CRM_TOOLS_BENCH_COMMON_H_
#define CRM_TOOLS_BENCH_COMMON_H_

// What crm-bench's workloads share: CPU and peak RSS of the process, percentiles, the write
// kernel's work per command, and the result line every load workload prints.
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <functional>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "libs/server/kernel_metrics.h"
#include "libs/server/logging.h"

namespace crm::bench {

struct Cpu {
  double user = 0, sys = 0;
  long max_rss_kib = 0;
  static Cpu Now() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return {ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
            ru.ru_maxrss};
  }
};

inline double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

// Where a workload reads the kernel counters (crm_kernel_*, libs/server/kernel_metrics.h) of the
// services it drives: the in-process engines, or servers' /metrics (tools/bench_kernel.h).
using KernelSource = std::function<absl::StatusOr<server::KernelCounters>()>;

// What one service's write kernel did per command over a measured window.
struct KernelWork {
  std::string service;
  // Commands the kernel ran: states started from (state reads + cache hits).
  int64_t commands = 0;
  // Per command.
  double state_reads = 0, cache_hits = 0, request_lookups = 0, folds = 0, seals = 0, appends = 0;
  // Rows the projection read and events it folded itself, beside the kernel's (0 when it takes
  // the kernel's folds, as for every command the process wrote).
  double projection_reads = 0, projection_folds = 0;
};

// The work of each service that ran a command between the two readings, by service name.
inline std::vector<KernelWork> KernelWorkBetween(const server::KernelCounters& before,
                                                 const server::KernelCounters& after) {
  std::vector<KernelWork> out;
  for (const auto& [service, a] : after) {
    auto it = before.find(service);
    const kernel::StoreCounters b = it != before.end() ? it->second : kernel::StoreCounters();
    const kernel::StoreCounters d = a.Since(b);
    KernelWork w;
    w.service = service;
    w.commands = d.states();
    if (w.commands <= 0) continue;  // not driven, or restarted in between
    const double n = static_cast<double>(w.commands);
    w.state_reads = d.state_reads / n;
    w.cache_hits = d.cache_hits / n;
    w.request_lookups = d.request_lookups / n;
    w.folds = d.folds / n;
    w.seals = d.seals / n;
    w.appends = d.appends / n;
    w.projection_reads = d.projection_reads / n;
    w.projection_folds = d.projection_folds / n;
    out.push_back(std::move(w));
  }
  return out;
}

struct Result {
  std::string workload, backend;
  int clients = 0;
  int64_t ops = 0, errors = 0;
  // `errors` by gRPC status code (indexed by grpc::StatusCode), so that a run can be judged
  // by every failure, not only by the first.
  std::array<int64_t, 17> errors_by_code{};
  double seconds = 0, p50_ms = 0, p99_ms = 0, p999_ms = 0, cpu_s = 0;
  long rss_mib = 0;
  std::string first_error;
  // The write kernel's work per command in the measured window, of each service that ran a
  // command; empty without a KernelSource. `kernel_error`: why the counters could not be read.
  std::vector<KernelWork> kernel;
  std::string kernel_error;
};

// ,"kernel":{"<service>":{"commands":n,"state_reads":x,...},...} (per command), and
// ,"kernel_error":"..." when the counters could not be read; empty without either.
inline std::string KernelJson(const Result& r) {
  std::string out;
  if (!r.kernel.empty()) {
    out = ",\"kernel\":{";
    for (size_t i = 0; i < r.kernel.size(); ++i) {
      const KernelWork& w = r.kernel[i];
      absl::StrAppend(&out, i > 0 ? "," : "", "\"", w.service, "\":{\"commands\":", w.commands,
                      absl::StrFormat(",\"state_reads\":%.4f,\"cache_hits\":%.4f,\"request_lookups\":%.4f,"
                                      "\"folds\":%.4f,\"seals\":%.4f,\"appends\":%.4f,\"projection_reads\":%.4f,"
                                      "\"projection_folds\":%.4f}",
                                      w.state_reads, w.cache_hits, w.request_lookups, w.folds, w.seals, w.appends,
                                      w.projection_reads, w.projection_folds));
    }
    out += "}";
  }
  if (!r.kernel_error.empty()) absl::StrAppend(&out, ",\"kernel_error\":\"", server::JsonEscape(r.kernel_error), "\"");
  return out;
}

// One line per service: its commands and their work per command.
inline void PrintKernel(const Result& r) {
  for (const KernelWork& w : r.kernel) {
    std::printf("  kernel %-13s %9lld commands; per command %.2f state reads, %.2f cache hits, %.2f request lookups, "
                "%.2f folds, %.2f seals, %.2f appends; projection %.2f reads, %.2f folds of its own\n",
                w.service.c_str(), static_cast<long long>(w.commands), w.state_reads, w.cache_hits, w.request_lookups,
                w.folds, w.seals, w.appends, w.projection_reads, w.projection_folds);
  }
  if (!r.kernel_error.empty()) std::fprintf(stderr, "kernel counters not read: %s\n", r.kernel_error.c_str());
}

// {"CODE":n,...} of the codes that occurred, e.g. {"RESOURCE_EXHAUSTED":3}.
inline std::string ErrorsByCodeJson(const Result& r) {
  std::string out = "{";
  for (size_t c = 0; c < r.errors_by_code.size(); ++c) {
    if (r.errors_by_code[c] == 0) continue;
    absl::StrAppend(&out, out.size() > 1 ? "," : "", "\"", absl::StatusCodeToString(static_cast<absl::StatusCode>(c)),
                    "\":", r.errors_by_code[c]);
  }
  return out + "}";
}

inline void Print(const Result& r, bool json) {
  if (json) {
    std::printf(
        "{\"workload\":\"%s\",\"backend\":\"%s\",\"clients\":%d,\"ops\":%lld,\"errors\":%lld,"
        "\"seconds\":%.3f,\"throughput\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,"
        "\"cpu_seconds\":%.2f,\"peak_rss_mib\":%ld,\"errors_by_code\":%s%s}\n",
        r.workload.c_str(), r.backend.c_str(), r.clients, static_cast<long long>(r.ops),
        static_cast<long long>(r.errors), r.seconds, r.ops / r.seconds, r.p50_ms, r.p99_ms, r.p999_ms,
        r.cpu_s, r.rss_mib, ErrorsByCodeJson(r).c_str(), KernelJson(r).c_str());
  } else {
    std::printf("%-8s %-9s %7s %9s %10s %9s %9s %9s %7s %8s %6s\n", "workload", "backend", "clients", "ops",
                "ops/s", "p50_ms", "p99_ms", "p99.9_ms", "cpu_s", "rss_MiB", "errors");
    std::printf("%-8s %-9s %7d %9lld %10.1f %9.3f %9.3f %9.3f %7.2f %8ld %6lld\n", r.workload.c_str(),
                r.backend.c_str(), r.clients, static_cast<long long>(r.ops), r.ops / r.seconds, r.p50_ms,
                r.p99_ms, r.p999_ms, r.cpu_s, r.rss_mib, static_cast<long long>(r.errors));
    PrintKernel(r);
  }
  if (!r.first_error.empty()) {
    std::fprintf(stderr, "first error: %s\nerrors by code: %s\n", r.first_error.c_str(), ErrorsByCodeJson(r).c_str());
  }
}

// Keeps `clients` calls in flight for `duration` after `warmup`: each client is a chain whose
// completion issues its next call. `call(client, done)` starts one call and calls `done` with
// its status (on any thread). Latencies and errors count for calls started and finished inside
// the measured window. With `kernel`, Result::kernel is the services' work per command from the
// window's start to the last answer (Result::kernel_error when the counters could not be read).
inline Result RunClosedLoop(int clients, absl::Duration duration, absl::Duration warmup,
                            std::function<void(int, std::function<void(const grpc::Status&)>)> call,
                            const KernelSource& kernel = nullptr) {
  absl::Mutex mu;
  std::vector<double> lat_ms;
  int64_t errors = 0;
  std::array<int64_t, 17> by_code{};
  std::string first_error;
  int active = clients;
  const absl::Time measure_from = absl::Now() + warmup;
  const absl::Time end = measure_from + duration;
  std::function<void(int)> next = [&](int client) {
    const absl::Time start = absl::Now();
    call(client, [&, client, start](const grpc::Status& s) {
      const absl::Time now = absl::Now();
      bool more;
      {
        absl::MutexLock l(&mu);
        if (start >= measure_from && now <= end) {
          if (s.ok()) {
            lat_ms.push_back(absl::ToDoubleMilliseconds(now - start));
          } else {
            ++errors;
            ++by_code[std::min<size_t>(static_cast<size_t>(s.error_code()), by_code.size() - 1)];
            if (first_error.empty()) {
              first_error = absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code())),
                                         ": ", s.error_message());
            }
          }
        }
        more = now < end;
        if (!more) --active;
      }
      if (more) next(client);
    });
  };
  const Cpu cpu0 = Cpu::Now();
  for (int i = 0; i < clients; ++i) next(i);
  absl::StatusOr<server::KernelCounters> kernel_before;
  if (kernel) {
    if (const absl::Time now = absl::Now(); now < measure_from) absl::SleepFor(measure_from - now);
    kernel_before = kernel();
  }
  {
    absl::MutexLock l(&mu);
    mu.Await(absl::Condition(+[](int* a) { return *a == 0; }, &active));
  }
  const Cpu cpu1 = Cpu::Now();
  Result r;
  if (kernel) {
    absl::StatusOr<server::KernelCounters> kernel_after = kernel_before.ok() ? kernel() : kernel_before;
    if (kernel_after.ok() && kernel_after->empty()) {
      r.kernel_error = "no service exports kernel counters there (crm_kernel_*: a server older than this crm-bench?)";
    } else if (kernel_after.ok()) {
      r.kernel = KernelWorkBetween(*kernel_before, *kernel_after);
    } else {
      r.kernel_error = std::string(kernel_after.status().message());
    }
  }
  r.clients = clients;
  r.ops = static_cast<int64_t>(lat_ms.size());
  r.errors = errors;
  r.errors_by_code = by_code;
  r.first_error = first_error;
  r.seconds = absl::ToDoubleSeconds(duration);
  r.p50_ms = Percentile(lat_ms, 0.5);
  r.p99_ms = Percentile(lat_ms, 0.99);
  r.p999_ms = Percentile(lat_ms, 0.999);
  r.cpu_s = (cpu1.user + cpu1.sys) - (cpu0.user + cpu0.sys);
  r.rss_mib = cpu1.max_rss_kib / 1024;
  return r;
}

// What an open loop saw: calls sent on a schedule, whatever the server answered.
struct OpenLoopResult {
  double rate = 0, seconds = 0;
  int64_t sent = 0, ok = 0, rejected = 0, other = 0;
  // OK answers that came after the client's patience ran out: not goodput (a user who gave
  // up after `patience` did not get them), counted apart from `ok`.
  int64_t ok_late = 0;
  double patience_ms = 0;
  // DEADLINE_EXCEEDED: the call's deadline (the client's patience, when it sets one) passed
  // before an answer; neither goodput nor a refusal, and the write's outcome is open.
  int64_t expired = 0;
  // Calls not sent because `max_outstanding` were unanswered already (the server stopped
  // answering at the rate asked, refusals included).
  int64_t not_sent = 0;
  double ok_p50_ms = 0, ok_p99_ms = 0, rejected_p50_ms = 0, rejected_p99_ms = 0, rejected_max_ms = 0;
  double cpu_s = 0;
  std::string first_other;
};

// Starts `rate` calls per second for `duration`, evenly spaced and without waiting for
// answers (an open loop: offered load does not fall when the server slows, as it does with a
// closed loop), then waits for every answer. An OK answer counts when it came within
// `patience` of its scheduled start, else as late. RESOURCE_EXHAUSTED counts as rejected; its
// latency, from the scheduled start to the answer, is what a shed call costs the client.
// DEADLINE_EXCEEDED counts as expired.
inline OpenLoopResult RunOpenLoop(double rate, absl::Duration duration, absl::Duration patience,
                                  int64_t max_outstanding,
                                  std::function<void(int, std::function<void(const grpc::Status&)>)> call) {
  absl::Mutex mu;
  std::vector<double> ok_ms, rejected_ms;
  OpenLoopResult r;
  r.rate = rate;
  r.seconds = absl::ToDoubleSeconds(duration);
  r.patience_ms = absl::ToDoubleMilliseconds(patience);
  int64_t outstanding = 0;
  const Cpu cpu0 = Cpu::Now();
  const absl::Time start = absl::Now();
  const int64_t total = static_cast<int64_t>(rate * r.seconds);
  for (int64_t i = 0; i < total; ++i) {
    const absl::Time due = start + absl::Seconds(static_cast<double>(i) / rate);
    if (const absl::Time now = absl::Now(); due > now) absl::SleepFor(due - now);
    {
      absl::MutexLock l(&mu);
      if (outstanding >= max_outstanding) {
        ++r.not_sent;
        continue;
      }
      ++outstanding;
      ++r.sent;
    }
    call(static_cast<int>(i), [&, due](const grpc::Status& s) {
      const double ms = absl::ToDoubleMilliseconds(absl::Now() - due);
      absl::MutexLock l(&mu);
      --outstanding;
      if (s.ok()) {
        ++(ms <= r.patience_ms ? r.ok : r.ok_late);
        ok_ms.push_back(ms);
      } else if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
        ++r.rejected;
        rejected_ms.push_back(ms);
      } else if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
        ++r.expired;
      } else {
        if (r.other++ == 0) {
          r.first_other = absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code())),
                                       ": ", s.error_message());
        }
      }
    });
  }
  {
    absl::MutexLock l(&mu);
    mu.Await(absl::Condition(+[](int64_t* n) { return *n == 0; }, &outstanding));
  }
  const Cpu cpu1 = Cpu::Now();
  r.cpu_s = (cpu1.user + cpu1.sys) - (cpu0.user + cpu0.sys);
  r.ok_p50_ms = Percentile(ok_ms, 0.5);
  r.ok_p99_ms = Percentile(ok_ms, 0.99);
  r.rejected_p50_ms = Percentile(rejected_ms, 0.5);
  r.rejected_p99_ms = Percentile(rejected_ms, 0.99);
  r.rejected_max_ms = rejected_ms.empty() ? 0 : *std::max_element(rejected_ms.begin(), rejected_ms.end());
  return r;
}

}  // namespace crm::bench

#endif  // CRM_TOOLS_BENCH_COMMON_H_
