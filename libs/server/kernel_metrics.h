#ifndef CRM_LIBS_SERVER_KERNEL_METRICS_H_
#define CRM_LIBS_SERVER_KERNEL_METRICS_H_

// The work of each service's write kernel (kernel::StoreCounters) as Prometheus series, read
// from the stores when /metrics is scraped, with one `service` label (a module's name):
//   crm_kernel_state_reads_total       state rows read
//   crm_kernel_cache_hits_total        states taken from the store's cache instead
//   crm_kernel_request_lookups_total   request-id prefix seeks
//   crm_kernel_folds_total             events folded into a reply state
//   crm_kernel_seals_total             events sealed
//   crm_kernel_appends_total           appends handed to the log
//   crm_kernel_keys_in_flight          unique keys and request ids held now (a gauge)
// Commands run = state_reads + cache_hits (one state each). docs/benchmarks.md shows how
// crm-bench reads them per command.
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/kernel/aggregate_store.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace crm::server {

// Counters by service name.
using KernelCounters = std::map<std::string, kernel::StoreCounters>;

// The services whose kernel counters a process exports. Thread-safe; make it with
// std::make_shared (a Registration keeps it alive).
class KernelMetrics final : public prometheus::Collectable, public std::enable_shared_from_this<KernelMetrics> {
 public:
  // Most services one process exports: the label set stays bounded whatever registers.
  static constexpr size_t kMaxServices = 16;

  // Keeps one service's counters exported until it is destroyed; once its destructor returned,
  // its `read` is not called again. Move-only.
  class Registration {
   public:
    Registration() = default;
    Registration(Registration&& other) noexcept;
    Registration& operator=(Registration&& other) noexcept;
    ~Registration();

   private:
    friend class KernelMetrics;
    Registration(std::shared_ptr<KernelMetrics> owner, std::string service)
        : owner_(std::move(owner)), service_(std::move(service)) {}
    void Reset();
    std::shared_ptr<KernelMetrics> owner_;
    std::string service_;
  };

  // Exports `read()` (called on the scraping thread, so it must be thread-safe and not block)
  // as the counters of `service` until the registration is destroyed. INVALID_ARGUMENT when
  // `service` is not 1-32 characters of [a-z0-9_-] starting with a letter or `read` is null;
  // ALREADY_EXISTS when `service` is exported already; RESOURCE_EXHAUSTED beyond kMaxServices.
  absl::StatusOr<Registration> Add(std::string service, std::function<kernel::StoreCounters()> read);

  // The counters of every exported service, now.
  KernelCounters Read() const;

  // The crm_kernel_* families of Read(), for the exposer.
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::function<kernel::StoreCounters()>> reads_ ABSL_GUARDED_BY(mu_);
};

// The crm_kernel_* series of a Prometheus text exposition (a scrape of /metrics), by service;
// other series are skipped. INVALID_ARGUMENT naming the line when a crm_kernel_* sample has no
// `service` label or no number, or when it names more than KernelMetrics::kMaxServices services.
absl::StatusOr<KernelCounters> ParseKernelCounters(std::string_view exposition);

// The kernel counters the process serving /metrics on `address` (host:port) exports, read by
// `deadline`: HttpGet's errors (libs/server/http_client.h), then ParseKernelCounters'.
absl::StatusOr<KernelCounters> ScrapeKernelCounters(const std::string& address, absl::Time deadline);

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_KERNEL_METRICS_H_
