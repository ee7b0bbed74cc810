#ifndef CRM_LIBS_SERVER_SERVICE_MODULE_H_
#define CRM_LIBS_SERVER_SERVICE_MODULE_H_

// A service as the processes compose it: what crmd, the single-service mains (crm-<name>),
// crm-bench and crmctl need to know about it without naming its classes. Each service defines
// one ServiceModule (services/<name>/<name>_module.h); services/registry/registry.h lists them.
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "libs/eventlog/log.h"
#include "libs/projection/rebuild.h"
#include "libs/server/runtime.h"
#include "libs/server/service_projections.h"

namespace CLI {
class App;
}

namespace crm::server {

// A service opened in a process: its gRPC services and its background loops. Destroying it
// stops the loops and closes the service's storage; destroy it after the runtime drained.
// Not thread-safe.
class ServiceHost {
 public:
  virtual ~ServiceHost() = default;

  // The gRPC services to register, in order; they live as long as the host.
  virtual std::vector<grpc::Service*> services() = 0;
  // Starts the background loops (gauges, scheduler). Call once, after the runtime started.
  virtual void StartLoops() = 0;
  // Serves the module's web dashboard over HTTP on `listen` (host:port, port 0 picks one).
  // UNIMPLEMENTED for a module without one (ServiceModule::dashboard); UNAVAILABLE when the
  // address cannot be bound.
  virtual absl::Status StartDashboard(const std::string& listen) {
    return absl::UnimplementedError("this service has no dashboard");
  }
  // The dashboard's port; 0 when it is not serving.
  virtual int dashboard_port() const { return 0; }
};

// The defaults of a service's own main on Kafka (crm-<name>, kafka_service_main.h).
struct KafkaServiceDefaults {
  // gRPC address. Required.
  std::string listen;
  // Prometheus /metrics address. Required.
  std::string metrics_listen;
  // What the scheduler does, for --scheduler-interval's help.
  std::string scheduler_help;
  // The dashboard's default address when the module has one ("" disables it by default).
  std::string dashboard_listen;
  // Whether the service has projections to rebuild and a scheduler: without, --rebuild and
  // --scheduler-interval are not offered. Default: true.
  bool projections = true;
  bool scheduler = true;
};

// Flags a module adds to its Kafka main beyond the common ones (crm-integration's addresses).
// The module's add_flags makes the object, CLI11 writes into it while parsing, and the module's
// open reads it back (the same module's type).
struct ModuleFlags {
  virtual ~ModuleFlags() = default;
};

// One service, described once. Immutable after construction; the registry's modules live for
// the whole process.
struct ServiceModule {
  // Opens the host on `log` and `runtime` (both must outlive it); `options.dir` is the module's
  // own folder. `flags` is what add_flags returned (null without add_flags or outside the Kafka
  // main). The host has caught up with the log when this returns; nothing is served yet.
  using OpenFn = std::function<absl::StatusOr<std::unique_ptr<ServiceHost>>(
      eventlog::Log* log, Runtime* runtime, HostOptions options, const ModuleFlags* flags)>;

  // "customers": the folder under --data-dir, the label of its logs and metrics, and the
  // binary crm-<name>. Required; unique in the registry.
  std::string name;
  // The event topic this service alone writes (libs/topics/topics.h), which crmd seals; empty
  // for a service that owns none (analytics, integration). Default: empty.
  std::string owns;
  // The topics it reads besides its own. Default: none.
  std::vector<std::string> follows;
  // Its main on Kafka.
  KafkaServiceDefaults kafka;
  // Whether crmd (and crm-bench's in-process crmd) runs it; integration runs on Kafka only.
  // Default: true.
  bool in_crmd = true;
  // Whether its host serves a web dashboard (ServiceHost::StartDashboard): crmd gives it
  // --dashboard-listen, and crm-<name> offers that flag. At most one crmd module has one.
  // Default: false.
  bool dashboard = false;
  // Its projections with the default options, for offline rebuild and verify; null when it
  // has none (integration). Default: null.
  std::function<projection::ProjectionSpec()> spec;
  // Required.
  OpenFn open;
  // Adds the module's own flags to its Kafka main; null when it has none. Default: null.
  std::function<std::unique_ptr<ModuleFlags>(CLI::App& app)> add_flags;
};

// The topics `modules` own, in their order (crmd's seals cover these).
std::vector<std::string> OwnedTopics(std::span<const ServiceModule* const> modules);

// Modules opened together on one log and one runtime (crmd, crm-bench's in-process crmd):
// opened in the given order, closed in the reverse order. Not thread-safe.
class ModuleSet {
 public:
  // Opens each module with `options`, its dir being `options.dir` + "/" + the module's name.
  // On an error, closes the modules already opened (newest first) and returns the error of
  // the module that failed. `log`, `runtime` and `modules` must outlive the set.
  static absl::StatusOr<std::unique_ptr<ModuleSet>> Open(std::span<const ServiceModule* const> modules,
                                                         eventlog::Log* log, Runtime* runtime,
                                                         const HostOptions& options);
  ModuleSet(const ModuleSet&) = delete;
  ModuleSet& operator=(const ModuleSet&) = delete;
  // Closes the hosts, newest first. Call after the runtime drained.
  ~ModuleSet();

  // Every host's gRPC services, in module order.
  std::vector<grpc::Service*> services() const;
  // Starts every host's loops, in module order.
  void StartLoops();
  // Starts the dashboard of the module that has one (ServiceModule::dashboard) on `listen`.
  // NOT_FOUND when no module of the set has one.
  absl::Status StartDashboard(const std::string& listen);
  // The serving dashboard's port; 0 when none serves.
  int dashboard_port() const;
  // The host of the module named `name`; null when the set does not have it.
  ServiceHost* host(std::string_view name) const;

 private:
  ModuleSet() = default;

  struct Opened {
    const ServiceModule* module;
    std::unique_ptr<ServiceHost> host;
  };
  std::vector<Opened> opened_;
};

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_SERVICE_MODULE_H_
