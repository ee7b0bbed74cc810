#ifndef CRM_LIBS_SERVER_ENGINE_HOST_H_
#define CRM_LIBS_SERVER_ENGINE_HOST_H_

// The host of a service built on an engine over projections (customers, opportunities, tasks,
// tickets, analytics): projections opened (rebuilt when asked or built by other code), the
// engine caught up with the log, the gRPC services over it, and two background loops: the
// projection-lag gauges (plus the service's own gauges) every second, and the scheduler. What
// differs per service is an EngineHooks; EngineModule makes the ServiceModule around them.
//
// An engine with `kernel::StoreCounters WriteCounters() const` (thread-safe) has its write
// kernel's counters exported under the module's name (crm_kernel_*, libs/server/kernel_metrics.h).
//
// `Engine` has a nested `Options` with `Clock* clock` (and optionally
// `std::function<void(absl::Duration)> observe_append`, fed to crm_log_append_seconds{topic}),
// and `static absl::StatusOr<std::unique_ptr<Engine>> Open(eventlog::Log*, projection::ProjectionDb*,
// Options)`.
#include <concepts>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "libs/common/clock.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/log.h"
#include "libs/projection/rebuild.h"
#include "libs/server/kernel_metrics.h"
#include "libs/server/logging.h"
#include "libs/server/metrics.h"
#include "libs/server/periodic.h"
#include "libs/server/runtime.h"
#include "libs/server/service_module.h"
#include "libs/server/service_projections.h"

namespace crm::server {

// A service's face beside gRPC (the analytics dashboard): serving until destroyed.
class WebFace {
 public:
  virtual ~WebFace() = default;
  virtual int port() const = 0;
};

// What sets one engine-backed service apart. Plain function pointers: a module is a constant.
template <typename Engine>
struct EngineHooks {
  using Options = typename Engine::Options;

  // The projections of an engine with `options` (Engine::Spec). Its owned source is the topic
  // the module owns, the others the topics it follows. Required.
  projection::ProjectionSpec (*spec)(const Options& options) = nullptr;
  // The gRPC services over `engine`, in registration order; destroyed in reverse, before the
  // engine. Required.
  std::vector<std::unique_ptr<grpc::Service>> (*services)(Engine* engine, Runtime* runtime) = nullptr;
  // Called once by StartLoops to register the scheduler's metrics; the function it returns
  // runs every HostOptions::scheduler_interval (when positive) with the clock's time, and logs
  // what it did. Null: no scheduler. Default: null.
  std::function<void(absl::Time now)> (*scheduler)(Engine* engine, Metrics* metrics) = nullptr;
  // Called once by StartLoops to register gauges beyond projection lag; the function it
  // returns runs every second. Default: null.
  std::function<void()> (*gauges)(Engine* engine, const Options& options, Metrics* metrics) = nullptr;
  // The crm_projection_lag_records label of the view of `topic`, another service's topic.
  // Null: "<name>_view_of_<topic>". The own topic's label is always the module's name.
  // Default: null.
  std::string (*lag_label)(const std::string& topic) = nullptr;
  // Starts the service's dashboard on `listen`; null when it has none (ServiceModule::dashboard
  // says whether it has). Default: null.
  absl::StatusOr<std::unique_ptr<WebFace>> (*dashboard)(Engine* engine, Runtime* runtime,
                                                        const std::string& listen) = nullptr;
};

// EngineHooks::services for services constructed as `Service(engine, runtime)`, in the order
// given: `.services = &ServicesOver<CustomerEngine, CustomersService, LeadsService>`.
template <typename Engine, typename... Services>
std::vector<std::unique_ptr<grpc::Service>> ServicesOver(Engine* engine, Runtime* runtime) {
  std::vector<std::unique_ptr<grpc::Service>> services;
  (services.push_back(std::make_unique<Services>(engine, runtime)), ...);
  return services;
}

// The ServiceHost of an engine-backed module. Not thread-safe; one per module per process.
template <typename Engine>
class EngineHost final : public ServiceHost {
 public:
  using Options = typename Engine::Options;

  // Opens the projections under `options.dir` (rebuilding them first when `options.rebuild`),
  // catches the engine up with the log, and makes the gRPC services on `runtime` (not yet
  // started). INVALID_ARGUMENT without a dir, a clock or metrics; else the projections' or the
  // engine's error. `log`, `runtime` and `options.metrics` must outlive the host.
  static absl::StatusOr<std::unique_ptr<EngineHost>> Open(std::string name, std::string owns,
                                                          const EngineHooks<Engine>& hooks, eventlog::Log* log,
                                                          Runtime* runtime, HostOptions options) {
    if (options.clock == nullptr || options.metrics == nullptr || options.dir.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("the ", name, " host needs a dir, a clock and metrics"));
    }
    std::unique_ptr<EngineHost> h(new EngineHost(std::move(name), std::move(owns), hooks, log, runtime,
                                                 std::move(options)));
    Options& eopts = h->engine_options_;
    eopts.clock = h->options_.clock;
    if constexpr (requires { eopts.observe_append; }) {
      eopts.observe_append = [m = h->options_.metrics, topic = h->owns_](absl::Duration d) {
        m->ObserveAppend(topic, absl::ToDoubleSeconds(d));
      };
    }
    h->spec_ = hooks.spec(eopts);
    CRM_ASSIGN_OR_RETURN(h->db_, OpenServiceProjections(*log, h->spec_, h->options_.dir, h->options_.rebuild, h->name_));
    const absl::Time t0 = absl::Now();
    CRM_ASSIGN_OR_RETURN(h->engine_, Engine::Open(log, h->db_.get(), eopts));
    LogInfo(absl::StrCat(h->name_, " caught up with the log in ", absl::FormatDuration(absl::Now() - t0)));
    if constexpr (requires(const Engine& e) {
                    { e.WriteCounters() } -> std::same_as<kernel::StoreCounters>;
                  }) {
      CRM_ASSIGN_OR_RETURN(h->kernel_counters_, h->options_.metrics->kernel().Add(
                                                    h->name_, [e = h->engine_.get()] { return e->WriteCounters(); }));
    }
    h->services_ = hooks.services(h->engine_.get(), runtime);
    return h;
  }

  // Stops the dashboard and the loops, then closes the services, the engine and the projections.
  ~EngineHost() override {
    dashboard_.reset();
    loops_.Stop();
    while (!services_.empty()) services_.pop_back();
    kernel_counters_ = KernelMetrics::Registration();  // no scrape reads the engine from here on
    engine_.reset();
    db_.reset();
  }

  std::vector<grpc::Service*> services() override {
    std::vector<grpc::Service*> out;
    for (const auto& s : services_) out.push_back(s.get());
    return out;
  }

  void StartLoops() override {
    std::function<void()> gauges;
    if (hooks_.gauges != nullptr) gauges = hooks_.gauges(engine_.get(), engine_options_, options_.metrics);
    std::vector<std::pair<std::string, std::string>> lags;  // topic, label
    for (const projection::Source& s : spec_.sources) {
      std::string label = s.owned                        ? name_
                          : hooks_.lag_label != nullptr ? hooks_.lag_label(s.topic)
                                                        : absl::StrCat(name_, "_view_of_", s.topic);
      lags.emplace_back(s.topic, std::move(label));
    }
    loops_.Every(absl::Seconds(1), [this, gauges = std::move(gauges), lags = std::move(lags)] {
      if (gauges) gauges();
      for (const auto& [topic, label] : lags) {
        if (auto lag = projection::LagRecords(*log_, *db_, topic); lag.ok()) {
          options_.metrics->SetProjectionLag(label, static_cast<double>(*lag));
        }
      }
    });
    if (hooks_.scheduler == nullptr) return;
    std::function<void(absl::Time)> run = hooks_.scheduler(engine_.get(), options_.metrics);
    if (options_.scheduler_interval <= absl::ZeroDuration()) return;
    loops_.Every(options_.scheduler_interval, [this, run = std::move(run)] { run(options_.clock->Now()); });
  }

  absl::Status StartDashboard(const std::string& listen) override {
    if (hooks_.dashboard == nullptr) return ServiceHost::StartDashboard(listen);
    CRM_ASSIGN_OR_RETURN(dashboard_, hooks_.dashboard(engine_.get(), runtime_, listen));
    return absl::OkStatus();
  }
  int dashboard_port() const override { return dashboard_ ? dashboard_->port() : 0; }

  Engine* engine() { return engine_.get(); }

 private:
  EngineHost(std::string name, std::string owns, const EngineHooks<Engine>& hooks, eventlog::Log* log,
             Runtime* runtime, HostOptions options)
      : name_(std::move(name)),
        owns_(std::move(owns)),
        hooks_(hooks),
        log_(log),
        runtime_(runtime),
        options_(std::move(options)) {}

  const std::string name_;
  const std::string owns_;
  const EngineHooks<Engine> hooks_;
  eventlog::Log* const log_;
  Runtime* const runtime_;
  const HostOptions options_;
  Options engine_options_;
  projection::ProjectionSpec spec_;
  std::unique_ptr<projection::ProjectionDb> db_;
  std::unique_ptr<Engine> engine_;
  KernelMetrics::Registration kernel_counters_;
  std::vector<std::unique_ptr<grpc::Service>> services_;
  server::Periodic loops_;
  std::unique_ptr<WebFace> dashboard_;
};

// `module` with open and spec made from `hooks`, and owns and follows from the spec of the
// engine's default options (so they cannot disagree with what the engine reads). `module.name`
// must be set.
template <typename Engine>
ServiceModule EngineModule(ServiceModule module, EngineHooks<Engine> hooks) {
  module.spec = [hooks] {
    typename Engine::Options o;
    o.clock = SystemClock::Get();
    return hooks.spec(o);
  };
  module.owns.clear();
  module.follows.clear();
  for (const projection::Source& s : module.spec().sources) {
    if (s.owned) {
      module.owns = s.topic;
    } else {
      module.follows.push_back(s.topic);
    }
  }
  module.open = [hooks, name = module.name, owns = module.owns](
                    eventlog::Log* log, Runtime* runtime, HostOptions options,
                    const ModuleFlags*) -> absl::StatusOr<std::unique_ptr<ServiceHost>> {
    CRM_ASSIGN_OR_RETURN(std::unique_ptr<EngineHost<Engine>> host,
                         EngineHost<Engine>::Open(name, owns, hooks, log, runtime, std::move(options)));
    return std::unique_ptr<ServiceHost>(std::move(host));
  };
  return module;
}

// The engine of `host` when an EngineHost<Engine> opened it; null otherwise (or when host is null).
template <typename Engine>
Engine* EngineOf(ServiceHost* host) {
  auto* h = dynamic_cast<EngineHost<Engine>*>(host);
  return h != nullptr ? h->engine() : nullptr;
}

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_ENGINE_HOST_H_
