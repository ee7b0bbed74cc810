#include "libs/server/service_module.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace crm::server {

std::vector<std::string> OwnedTopics(std::span<const ServiceModule* const> modules) {
  std::vector<std::string> topics;
  for (const ServiceModule* m : modules) {
    if (!m->owns.empty()) topics.push_back(m->owns);
  }
  return topics;
}

absl::StatusOr<std::unique_ptr<ModuleSet>> ModuleSet::Open(std::span<const ServiceModule* const> modules,
                                                           eventlog::Log* log, Runtime* runtime,
                                                           const HostOptions& options) {
  std::unique_ptr<ModuleSet> set(new ModuleSet());
  for (const ServiceModule* m : modules) {
    HostOptions o = options;
    o.dir = absl::StrCat(options.dir, "/", m->name);
    absl::StatusOr<std::unique_ptr<ServiceHost>> host = m->open(log, runtime, std::move(o), nullptr);
    if (!host.ok()) return host.status();  // ~ModuleSet closes those opened
    set->opened_.push_back({m, *std::move(host)});
  }
  return set;
}

ModuleSet::~ModuleSet() {
  while (!opened_.empty()) opened_.pop_back();
}

std::vector<grpc::Service*> ModuleSet::services() const {
  std::vector<grpc::Service*> all;
  for (const Opened& o : opened_) {
    for (grpc::Service* s : o.host->services()) all.push_back(s);
  }
  return all;
}

void ModuleSet::StartLoops() {
  for (Opened& o : opened_) o.host->StartLoops();
}

absl::Status ModuleSet::StartDashboard(const std::string& listen) {
  for (Opened& o : opened_) {
    if (o.module->dashboard) return o.host->StartDashboard(listen);
  }
  return absl::NotFoundError("no service here has a dashboard");
}

int ModuleSet::dashboard_port() const {
  for (const Opened& o : opened_) {
    if (o.module->dashboard) return o.host->dashboard_port();
  }
  return 0;
}

ServiceHost* ModuleSet::host(std::string_view name) const {
  for (const Opened& o : opened_) {
    if (o.module->name == name) return o.host.get();
  }
  return nullptr;
}

}  // namespace crm::server
